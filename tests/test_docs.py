"""The docs say what the code does: the signing guide's worked examples, every error code, every
setting. A documented string to sign that differs from the code's fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec

import signing
from gateway.errors import CATALOG, ITEM_CODES
from gateway.settings import ENVIRONMENT, SETTINGS
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


def test_the_readmes_settings_table_says_each_default_and_bounds_of_the_code() -> None:
    """Each setting's row in the README gives the default and the bounds of the settings table
    (``gateway/settings.py``): ``1`` for 1.0, thousands written either way, "unset" for none."""
    readme = (ROOT / "README.md").read_text("utf-8")
    rows = {
        cells[0].strip("`"): cells
        for line in readme.splitlines()
        if line.startswith("| `") and len(cells := line.strip("| ").split(" | ")) == 3
    }
    for row in SETTINGS.values():
        meaning, default = rows[row.variable][1:]
        shown = row.shown_default()
        if shown is None:
            assert default.startswith("unset"), row.variable
        else:
            assert default == f"`{shown}`", row.variable
        if row.reader.bounds:
            plain = re.sub(r"(?<=\d),(?=\d{3})", "", meaning)
            assert f"({row.reader.bounds}" in plain, row.variable


def test_the_safety_net_page_names_every_restore_reason_and_the_headers() -> None:
    import catalog_store
    from gateway.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER

    page = (ROOT / "docs" / "safety-net.md").read_text("utf-8")
    for refusal in catalog_store.RestoreRefusal:
        assert f"| `{refusal.value}` |" in page, refusal
    assert f"{IDEMPOTENCY_HEADER}: " in page and f"`{REPLAYED_HEADER}: true`" in page
    assert "Dry run: nothing was deleted" in page


# Issue 16: the partner-facing specification lives in docs/, whole and consistent.

PARTNER_DOCS = [
    "api.md",
    "signing.md",
    "vectors.md",
    "errors.md",
    "troubleshooting.md",
    "batches.md",
    "safety-net.md",
]


def _docs(names: list[str] | None = None) -> dict[str, str]:
    paths = (
        [ROOT / "docs" / name for name in names]
        if names is not None
        else [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    )
    return {path.name: path.read_text("utf-8") for path in paths}


def _json_blocks(markdown: str) -> list[Any]:
    """The ```json blocks that are whole documents (some show only a fragment)."""
    blocks = []
    for text in re.findall(r"```json\n(.*?)\n```", markdown, flags=re.S):
        try:
            blocks.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return blocks


def test_nothing_refers_to_a_specification_outside_the_repository() -> None:
    files = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    files += [p for p in (ROOT / "examples").rglob("*") if p.is_file()]
    for path in files:
        text = path.read_text("utf-8", errors="replace")
        found = re.findall(r"CONTRACT\.md|[Cc]ontract §", text)
        assert not found, (path, found)


def test_partner_docs_never_send_the_reader_into_the_servers_code() -> None:
    for name, text in _docs(PARTNER_DOCS).items():
        found = re.findall(r"\b(?:gateway|catalog_store|signing)/[\w/]*\.(?:py|sql)\b", text)
        assert not found, (name, found)


def test_the_vector_page_is_the_vector_file_written_out() -> None:
    from tests.vectors.make_signing_v1 import render_markdown

    document = json.loads((ROOT / "tests" / "vectors" / "signing_v1.json").read_text("utf-8"))
    page = (ROOT / "docs" / "vectors.md").read_text("utf-8")
    assert page == render_markdown(document), "run python -m tests.vectors.make_signing_v1"
    assert page.count("```text\n") == len(document["cases"]) == len(CASES)


def _answer_type(answer: dict[str, Any]) -> type[Any]:
    from gateway import wire

    if "error" in answer:
        return wire.ErrorResponse
    data = answer["data"]
    if "progress" in data:
        return wire.BatchResponse
    if "batchId" in data:
        return wire.DispatchResponse
    if answer["meta"].get("dryRun"):
        return wire.DryRunResponse
    return wire.DeletionResponse


def test_every_answer_in_the_api_page_has_the_gateways_exact_shape() -> None:
    """Each full example decodes strictly (no key missing, none extra) as the wire type of its
    answer; its message is one the gateway sends; an error's code, message and context keys are
    the catalog's."""
    source = "\n".join(p.read_text("utf-8") for p in (ROOT / "gateway").glob("*.py"))
    seen: set[str] = set()
    for name in ("api.md", "troubleshooting.md", "batches.md", "safety-net.md"):
        for answer in _json_blocks((ROOT / "docs" / name).read_text("utf-8")):
            if not isinstance(answer, dict) or "success" not in answer:
                continue
            kind = _answer_type(answer)
            msgspec.convert(answer, kind)
            seen.add(kind.__name__)
            if answer["success"]:
                assert f'"{answer["message"]}"' in source, (name, answer["message"])
            else:
                error = answer["error"]
                assert CATALOG[error["code"]].message == error["message"], (name, error)
    assert seen == {
        "DeletionResponse",
        "DryRunResponse",
        "DispatchResponse",
        "BatchResponse",
        "ErrorResponse",
    }


def test_the_api_page_lists_every_code_with_its_status_and_message() -> None:
    page = (ROOT / "docs" / "api.md").read_text("utf-8")
    for code, spec in CATALOG.items():
        assert f"| `{code}` | {spec.status} | {spec.message} |" in page, code
    for code, message in ITEM_CODES.items():
        assert f"| `{code}` | {message} |" in page, code


def test_every_doc_gives_each_code_its_own_status() -> None:
    for name, text in _docs().items():
        for code, status in re.findall(r"`?\b([A-Z]+_\d{3})\b`? \((\d{3})\)", text):
            assert CATALOG[code].status == int(status), (name, code, status)
        for code, status in re.findall(r"\| `([A-Z]+_\d{3})` \| (\d{3}) \|", text):
            assert CATALOG[code].status == int(status), (name, code, status)


def test_the_numbers_a_partner_codes_against_are_the_same_in_every_doc() -> None:
    docs = _docs()
    everything = "\n".join(docs.values())
    windows = re.findall(r"(?:[Tt]imestamp|clock)\b[^.\n]{0,60}?\bwithin (\d+) s", everything)
    assert windows and set(windows) == {"300"}
    partner = "\n".join(_docs(PARTNER_DOCS).values()) + docs["README.md"]
    body_caps = re.findall(r"\b(\d+) MiB (?:cap|body|\(8,388,608)", partner)
    assert body_caps and set(body_caps) == {"8"}
    kept = re.findall(r"kept (?:for )?(\d+) hours", everything)
    assert kept and set(kept) == {"24"}
    dispatched_from = re.findall(r"\b(\d{1,3},\d{3}) to 100,000\b", everything)
    assert dispatched_from and set(dispatched_from) == {"1,001"}
    assert "`products:delete,batches:read`" in docs["README.md"]


def test_every_scope_and_likely_cause_is_documented_where_partners_look() -> None:
    docs = _docs(["api.md", "errors.md", "troubleshooting.md"])
    for scope in ("products:delete", "batches:read"):
        assert f"| `{scope}` |" in docs["api.md"], scope
        assert f'{{"missingScope": "{scope}"}}' in docs["errors.md"], scope
    for mistake in signing.MISTAKES:
        assert f"| `{mistake.cause}` | {mistake.advice} |" in docs["troubleshooting.md"]
        assert f"| `{mistake.cause}` |" in docs["errors.md"], mistake.cause
    assert f"{signing.BODY_MISTAKES_MAX_BYTES:,} bytes" in docs["errors.md"]


def test_no_doc_says_a_verified_request_can_be_sent_again() -> None:
    """Every request whose signature verified is spent, whatever its answer: no page may say
    that a refused read, or a refused deletion, records nothing."""
    for name, text in _docs().items():
        flat = re.sub(r"\s+", " ", text)
        for sentence in re.split(r"(?<=[.:])\s", flat):
            if not re.search(r"BAT_001|VAL_001|IDEM_00\d|RATE_001|batch read|A read", sentence):
                continue
            said = re.search(
                r"records nothing|records no replay|no replay record|is not recorded"
                r"|gets the same answer",
                sentence,
            )
            assert not said, (name, sentence)


def test_the_documented_migrate_output_of_a_fresh_database_names_every_migration() -> None:
    from gateway.jobs import migrations

    page = (ROOT / "docs" / "operations.md").read_text("utf-8")
    found = re.search(r'`\{"applied": \[([^]]*)\],\s+"alreadyApplied": \[\]\}`', page)
    assert found is not None
    documented = re.findall(r'"([0-9]{4}_\w+)"', found.group(1))
    assert documented == [m.name for m in migrations()]
