"""The cross-language vector file: the signing library agrees with every case in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import signing

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "signing_v1.json"
CASES: list[dict[str, Any]] = json.loads(VECTORS.read_text("utf-8"))["cases"]


def test_the_file_covers_what_partners_get_wrong() -> None:
    names = " ".join(case["name"] for case in CASES)
    assert len(CASES) >= 15
    for topic in (
        "contract vector 1",
        "contract vector 2",
        "empty body",
        "unicode",
        "large",
        "reserved characters",
        "upper-case",
        "rotation",
    ):
        assert topic in names, topic
    negatives = [case for case in CASES if case["expect"] == "invalid"]
    assert len(negatives) >= 5 and all(case["changed"] for case in negatives)
    assert any(len(case["body"]) > 50_000 for case in CASES)
    assert any(len(case["secrets"]) == 2 for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    body = case["body"].encode("utf-8")
    assert signing.body_sha256(body) == case["bodySha256"]
    message = signing.string_to_sign(
        method=case["method"],
        path=case["path"],
        query=case["query"],
        partner_client_id=case["partnerClientId"],
        store_client_id=case["storeClientId"],
        store_token=case["storeToken"],
        timestamp=case["timestamp"],
        body_hash=case["bodySha256"],
    )
    assert message == case["stringToSign"]
    matched = signing.verify(case["signature"], message, case["secrets"])
    if case["expect"] == "valid":
        assert matched is not None
    else:
        assert matched is None


def test_the_file_is_what_the_generator_makes() -> None:
    """Nobody edits the file by hand: regenerating it changes nothing."""
    from tests.vectors.make_signing_v1 import cases

    assert cases() == CASES
