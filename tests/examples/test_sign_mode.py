"""The Python example client stands alone: standard library only, and its `sign` mode prints
what `partner-gateway sign` prints."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.examples.clients import EXAMPLES, run, system_env, tool


def test_the_python_example_imports_only_the_standard_library() -> None:
    tree = ast.parse((EXAMPLES / "python" / "delete_products.py").read_text("utf-8"))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert {name.split(".")[0] for name in imported} <= set(sys.stdlib_module_names) | {
        "__future__"
    }


def test_the_python_example_runs_with_no_site_packages_at_all(copies: Path) -> None:
    result = subprocess.run(
        [
            tool("python3"),
            "-I",
            "-S",
            "delete_products.py",
            "--vectors",
            "../vectors/signing_v1.json",
        ],
        cwd=copies / "python",
        env=system_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(" passed, 0 failed\n")


# --- sign mode of the Python client ------------------------------------------------------------

VECTOR_1 = {
    "PARTNER_CLIENT_ID": "2025112012475048491498",
    "PARTNER_SECRET": "psk_test_8f2b1c9e4d7a6b3f0e5c2a1d9b8e7f6a",
    "STORE_CLIENT_ID": "638765489981529612855",
    "STORE_TOKEN": "stkn__6AbJF05mjvxh7sh",
}
SIGN_ARGS = [
    [
        "--timestamp",
        "1758100350458",
        "--ids",
        "946b3ffa-5f9e-412e-acf4-eea306736e63",
        "66721951-5f60-47fa-828c-29040fd3595f",
    ],
    ["--timestamp", "1758100350458", "--ids", "946b3ffa-5f9e-412e-acf4-eea306736e63", "--curl"],
    [
        "--timestamp",
        "1758100350458",
        "--method",
        "get",
        "--query",
        "?limit=50&cursor=eyJvIjo1MH0",
        "--path",
        "/api/v1/partner/stores/products/deletions/0b9f7d7e-1c2a-4b8e-9d3f-5a6b7c8d9e0f",
    ],
    [
        "--timestamp",
        "1758100350458",
        "--external-ids",
        "café",
        "x'y",
        "--dispatch",
        "--dry-run",
        "--curl",
        "--url",
        "http://gateway.example:9000/",
    ],
    ["--timestamp", "1758100350458", "--body", '{"ids": ["ü"]}\n', "--store-token", "tok"],
    ["--timestamp", "1758100350458", "--body-file", "body.json"],
    ["--timestamp", "1758100350458", "--ids-file", "ids.jsonl"],
    ["--path", "no-slash"],
    ["--timestamp", "17581003504580000000000"],
    ["--ids-file", "missing.txt"],
]


def _partner_gateway_sign(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """`partner-gateway sign` run in this process (it needs no database): status, out, err. The
    logging set-up is left out, so that this process's logging stays as the other tests set it."""
    from gateway.cli import main

    monkeypatch.setattr("gateway.cli.configure_logging", lambda *args: None)
    capsys.readouterr()
    status = main(["sign", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("args", SIGN_ARGS, ids=[" ".join(a[2:4]) or "x" for a in SIGN_ARGS])
def test_the_python_client_signs_exactly_as_partner_gateway_sign(
    args: list[str],
    copies: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "body.json").write_bytes(b'{"ids":["946b3ffa-5f9e-412e-acf4-eea306736e63"]}\r\n')
    (tmp_path / "ids.jsonl").write_text('{"id": "a"}\nb\n\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEWAY_URL", raising=False)
    for name, value in VECTOR_1.items():
        monkeypatch.setenv(name, value)
    theirs = _partner_gateway_sign(args, monkeypatch, capsys)
    ours = subprocess.run(
        [tool("python3"), str(copies / "python" / "delete_products.py"), "sign", *args],
        cwd=tmp_path,
        env=system_env(**VECTOR_1),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (ours.returncode, ours.stdout, ours.stderr) == theirs
    assert ours.returncode in (0, 2)
    if ours.returncode == 0:
        assert ours.stdout.startswith(("{", "curl "))


def test_sign_mode_without_credentials_answers_as_partner_gateway_sign(
    copies: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in VECTOR_1:
        monkeypatch.delenv(name, raising=False)
    theirs = _partner_gateway_sign(["--partner-secret", "s"], monkeypatch, capsys)
    ours = run(copies, "python", ["sign", "--partner-secret", "s"])
    assert (ours.returncode, ours.stdout, ours.stderr) == theirs
    assert ours.returncode == 2 and json.loads(ours.stderr) == {
        "error": "missing credentials: give --partner-client-id, --store-client-id,"
        " --store-token (or their environment variables)"
    }
