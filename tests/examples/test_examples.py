"""The five example clients, run for real: against a live gateway on loopback, and against the
shared vector file. A missing toolchain fails these tests; it never skips them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import signing
from tests.live import ROOT, Server, serving
from tests.support import Tenant, make_tenant, run_with_pool

VECTORS = ROOT / "tests" / "vectors" / "signing_v1.json"
LANGUAGES = ["curl", "python", "node", "go", "java"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is not installed: `make test` installs it (see Makefile)"
    return path


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("go") / "delete-products"
    subprocess.run(
        [_tool("go"), "build", "-o", str(out), "."],
        cwd=ROOT / "examples" / "go",
        check=True,
        timeout=300,
    )
    return out


def command(language: str, go_binary: Path) -> list[str]:
    examples = ROOT / "examples"
    return {
        "curl": lambda: [_tool("bash"), str(examples / "curl" / "delete-products.sh")],
        "python": lambda: [sys.executable, str(examples / "python" / "delete_products.py")],
        "node": lambda: [_tool("node"), str(examples / "node" / "delete-products.mjs")],
        "go": lambda: [str(go_binary)],
        "java": lambda: [_tool("java"), str(examples / "java" / "DeleteProducts.java")],
    }[language]()


@pytest.fixture(scope="module")
def gateway(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(database_url, tmp_path_factory.mktemp("gateway")) as server:
        yield server


def _tenant(database_url: str) -> Tenant:
    return run_with_pool(database_url, lambda p: make_tenant(p, products=3, name="example"))


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_deletes_then_reports_not_found(
    language: str, database_url: str, gateway: Server, go_binary: Path
) -> None:
    tenant = _tenant(database_url)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(Path.home()),
        "GATEWAY_URL": gateway.url,
        "PARTNER_CLIENT_ID": tenant.partner_client_id,
        "PARTNER_SECRET": tenant.secret,
        "STORE_CLIENT_ID": tenant.store_client_id,
        "STORE_TOKEN": tenant.token,
    }
    argv = [
        *command(language, go_binary),
        tenant.ids[0],
        tenant.ids[1],
        "-e",
        tenant.external_ids[2],
    ]
    first = run(argv, env)
    assert first.returncode == 0, first.stderr
    assert "HTTP 200" in first.stderr
    data: dict[str, Any] = json.loads(first.stdout)["data"]
    assert data["summary"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert [item["id"] for item in data["successItems"]] == tenant.ids
    second = run(argv, env)
    assert second.returncode == 0, second.stderr
    errors = json.loads(second.stdout)["data"]["errors"]
    assert [(e["code"], e["rowIndex"]) for e in errors] == [
        ("PRD_014", 0),
        ("PRD_014", 1),
        ("PRD_015", 0),
    ]
    missing = run(argv, {k: v for k, v in env.items() if k != "PARTNER_SECRET"})
    assert missing.returncode == 2 and "PARTNER_SECRET" in missing.stderr
    usage = run(command(language, go_binary), env)
    assert usage.returncode == 2


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_passes_every_vector(language: str, go_binary: Path) -> None:
    count = len(json.loads(VECTORS.read_text("utf-8"))["cases"])
    result = run([*command(language, go_binary), "--vectors", str(VECTORS)])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"{count} passed, 0 failed"
    assert sum(line.startswith("ok ") for line in lines) == count


def _foreign_vectors(folder: Path) -> Path:
    """A vector file that is not ours: other credentials, secrets and bodies."""
    cases = []
    for n, (body, query) in enumerate([("", "a=1"), ('{"ids":["x"]}', ""), ("ü", "q=%C3%BC")]):
        inputs = {
            "method": "PUT" if n else "GET",
            "path": f"/other/{n}",
            "query": query,
            "partnerClientId": f"p{n}",
            "storeClientId": f"s{n}",
            "storeToken": f"tok{n}",
            "timestamp": str(1_700_000_000_000 + n),
            "body": body,
        }
        message = signing.string_to_sign(
            method=inputs["method"],
            path=inputs["path"],
            query=query,
            partner_client_id=inputs["partnerClientId"],
            store_client_id=inputs["storeClientId"],
            store_token=inputs["storeToken"],
            timestamp=inputs["timestamp"],
            body_hash=signing.body_sha256(body.encode()),
        )
        cases.append(
            {
                "name": f"foreign {n}",
                "expect": "valid",
                "secrets": [f"other-secret-{n}"],
                **inputs,
                "bodySha256": signing.body_sha256(body.encode()),
                "stringToSign": message,
                "signature": signing.sign(f"other-secret-{n}", message),
            }
        )
    path = folder / "foreign.json"
    path.write_text(json.dumps({"version": 1, "cases": cases}), encoding="utf-8")
    return path


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_checks_other_vector_files_and_reports_mismatches(
    language: str, go_binary: Path, tmp_path: Path
) -> None:
    foreign = _foreign_vectors(tmp_path)
    ok = run([*command(language, go_binary), "--vectors", str(foreign)])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == "3 passed, 0 failed"

    document = json.loads(foreign.read_text())
    document["cases"][1]["signature"] = "0" * 64
    document["cases"][2]["body"] = "u"
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document), encoding="utf-8")
    bad = run([*command(language, go_binary), "--vectors", str(tampered)])
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.strip().splitlines()
    assert lines[-1] == "1 passed, 2 failed"
    assert any(line.startswith("FAIL foreign 1") for line in lines)
    assert any(line.startswith("FAIL foreign 2") for line in lines)
