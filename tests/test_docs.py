"""The docs say what the code does: the signing guide's worked examples, every error code, every
setting. A documented string to sign that differs from the code's fails here."""

from __future__ import annotations

import re
from pathlib import Path

import signing
from gateway.errors import CATALOG, ITEM_CODES
from gateway.settings import ENVIRONMENT
from tests.signing.test_vectors import CASES

ROOT = Path(__file__).resolve().parent.parent


def _text_blocks(markdown: str) -> list[str]:
    return re.findall(r"```text\n(.*?)\n```", markdown, flags=re.S)


def test_the_signing_guides_worked_examples_are_the_codes_output() -> None:
    guide = (ROOT / "docs" / "signing.md").read_text("utf-8")
    blocks = _text_blocks(guide)
    for case in CASES[:2]:  # the contract's two vectors
        assert case["stringToSign"] in blocks
        assert case["signature"] in guide
        secret = case["secrets"][0]
        assert signing.sign(secret, case["stringToSign"]) == case["signature"]


def test_every_error_code_is_in_the_catalog_page() -> None:
    page = (ROOT / "docs" / "errors.md").read_text("utf-8")
    for code, spec in CATALOG.items():
        assert f"### {code}" in page, code
        assert spec.message in page, code
    for code, message in ITEM_CODES.items():
        assert code in page and message in page, code


def test_the_readme_lists_every_setting_and_both_commands() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    for name in ENVIRONMENT:
        assert f"`{name}`" in readme, name
    assert "make run" in readme and "make test" in readme


def test_the_safety_net_page_names_every_restore_reason_and_the_headers() -> None:
    import catalog_store as store
    from gateway.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER

    page = (ROOT / "docs" / "safety-net.md").read_text("utf-8")
    for refusal in store.RestoreRefusal:
        assert f"| `{refusal.value}` |" in page, refusal
    assert f"{IDEMPOTENCY_HEADER}: " in page and f"`{REPLAYED_HEADER}: true`" in page
    assert "Dry run: nothing was deleted" in page
