"""One served gateway for the example clients' tests and the docs' auth classes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import Server, serving


@pytest.fixture(scope="package")
def gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(database_url, tmp_path_factory.mktemp("gateway")) as server:
        yield server
