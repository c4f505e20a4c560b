"""Fixtures of the example clients' tests: the clients copied outside the repository, and one
served gateway (shared with the docs' auth classes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.examples.clients import copy_examples
from tests.live import Server, serving


@pytest.fixture(scope="package")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_examples(tmp_path_factory.mktemp("partner"))


@pytest.fixture(scope="package")
def gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(database_url, tmp_path_factory.mktemp("gateway")) as server:
        yield server
