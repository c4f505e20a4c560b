"""The five example clients, each copied alone into a folder outside the repository and run there
with the system's toolchain, as a partner who received only `examples/` runs them: against a live
gateway on loopback, against a stand-in server that answers what the gateway answers when it must
be retried, and against the vector file that travels with them. A missing toolchain fails these
tests; it never skips them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import signing
from gateway.auth import masked_string_to_sign
from tests.examples.stub import StubGateway, deleted, refused
from tests.live import ROOT, Server, partner_client, serving
from tests.support import DELETIONS, Tenant, make_tenant, run_with_pool

EXAMPLES = ROOT / "examples"
VECTORS = ROOT / "tests" / "vectors" / "signing_v1.json"
LANGUAGES = ["curl", "python", "node", "go", "java"]
#: The system's toolchains only: nothing of the project's virtual environment.
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def _tool(name: str) -> str:
    path = shutil.which(name, path=SYSTEM_PATH)
    assert path is not None, f"{name} is not installed: `make test` installs it (see Makefile)"
    return path


def _system_env(**extra: str) -> dict[str, str]:
    return {"PATH": SYSTEM_PATH, "HOME": str(Path.home()), "LANG": "C.UTF-8", **extra}


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each example folder copied alone, and the vector file beside them, outside the repository.
    Go and Java are built once there, from their own folders (the tests then run the binaries;
    the README commands `go run .` and `java DeleteProducts.java` are run in vectors mode)."""
    root = tmp_path_factory.mktemp("partner")
    assert not root.resolve().is_relative_to(ROOT)
    for language in [*LANGUAGES, "vectors"]:
        shutil.copytree(EXAMPLES / language, root / language)
    env = _system_env()
    subprocess.run(
        [_tool("go"), "build", "-o", "delete-products", "."],
        cwd=root / "go",
        env=env,
        check=True,
        timeout=300,
    )
    subprocess.run(
        [_tool("javac"), "-d", "classes", "DeleteProducts.java"],
        cwd=root / "java",
        env=env,
        check=True,
        timeout=300,
    )
    return root


def command(language: str) -> list[str]:
    """How the tests run each client, from its own copied folder."""
    return {
        "curl": lambda: [_tool("bash"), "delete-products.sh"],
        "python": lambda: [_tool("python3"), "delete_products.py"],
        "node": lambda: [_tool("node"), "delete-products.mjs"],
        "go": lambda: ["./delete-products"],
        "java": lambda: [_tool("java"), "-cp", "classes", "DeleteProducts"],
    }[language]()


def run(
    copies: Path, language: str, args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command(language), *args],
        cwd=copies / language,
        env=env if env is not None else _system_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _tenant(database_url: str, products: int = 3) -> Tenant:
    return run_with_pool(database_url, lambda p: make_tenant(p, products=products, name="example"))


def _env(url: str, tenant: Tenant, **extra: str) -> dict[str, str]:
    credentials = {
        "GATEWAY_URL": url,
        "PARTNER_CLIENT_ID": tenant.partner_client_id,
        "PARTNER_SECRET": tenant.secret,
        "STORE_CLIENT_ID": tenant.store_client_id,
        "STORE_TOKEN": tenant.token,
    }
    return _system_env(**{**credentials, **extra})


def _key(stderr: str) -> str:
    keys = [line.split(": ", 1)[1] for line in stderr.splitlines() if line.startswith("idempoten")]
    assert len(keys) == 1, stderr
    return keys[0]


def _verbose_blocks(stderr: str) -> list[dict[str, Any]]:
    """What --verbose printed for each attempt."""
    lines = stderr.splitlines()
    blocks = []
    for n, line in enumerate(lines):
        if line == "stringToSign (line 6, the store token, masked as AUTH_002 masks it):":
            fields = dict(item.split(": ", 1) for item in lines[n + 9 : n + 13])
            blocks.append({"stringToSign": "\n".join(lines[n + 1 : n + 9]), **fields})
    return blocks


def _body(ids: list[str], external_ids: list[str]) -> bytes:
    document = {"ids": ids, "externalIds": external_ids}
    compact = json.dumps(
        {k: v for k, v in document.items() if v}, separators=(",", ":"), ensure_ascii=False
    )
    return compact.encode("utf-8")


# --- the files travel together -----------------------------------------------------------------


def test_the_vector_file_travels_with_the_examples_and_is_the_tests_one() -> None:
    assert (EXAMPLES / "vectors" / "signing_v1.json").read_bytes() == VECTORS.read_bytes()


def test_the_go_example_is_a_module_of_the_repositorys_go_work() -> None:
    """`go run .` works from examples/go because its go.mod travels with it; go.work at the
    root names that same folder, so `go run ./examples/go` works from the root too."""
    assert (EXAMPLES / "go" / "go.mod").is_file()
    assert "use ./examples/go" in (ROOT / "go.work").read_text()


def test_the_python_example_imports_only_the_standard_library() -> None:
    import ast
    import sys

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


# --- live, against a served gateway ------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_alone_deletes_then_exits_3_when_nothing_was_deleted(
    language: str, database_url: str, gateway: Server, copies: Path
) -> None:
    tenant = _tenant(database_url)
    env = _env(gateway.url, tenant)
    args = [tenant.ids[0], tenant.ids[1], "-e", tenant.external_ids[2]]
    first = run(copies, language, args, env)
    assert first.returncode == 0, first.stderr
    assert "HTTP 200" in first.stderr
    data: dict[str, Any] = json.loads(first.stdout)["data"]
    assert data["summary"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert [item["id"] for item in data["successItems"]] == tenant.ids
    key = _key(first.stderr)
    assert len(key) == 36 and key.count("-") == 4  # a generated UUID

    second = run(copies, language, args, env)
    assert second.returncode == 3, second.stderr
    assert "3 of 3 entries not deleted (see data.errors)" in second.stderr.splitlines()
    assert _key(second.stderr) != key  # every run is a new operation
    errors = json.loads(second.stdout)["data"]["errors"]
    assert [(e["code"], e["rowIndex"]) for e in errors] == [
        ("PRD_014", 0),
        ("PRD_014", 1),
        ("PRD_015", 0),
    ]

    # The first run's key, given back: the gateway answers the first answer, byte for byte.
    again = run(copies, language, ["--idempotency-key", key, *args], env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    assert _key(again.stderr) == key

    missing = run(copies, language, args, {k: v for k, v in env.items() if k != "PARTNER_SECRET"})
    assert missing.returncode == 2 and "PARTNER_SECRET" in missing.stderr
    assert run(copies, language, [], env).returncode == 2
    assert run(copies, language, ["--idempotency-key"], env).returncode == 2


@pytest.mark.parametrize("language", LANGUAGES)
def test_verbose_prints_what_auth_002_shows_so_the_two_diff_line_for_line(
    language: str, database_url: str, gateway: Server, copies: Path
) -> None:
    tenant = _tenant(database_url, products=1)
    wrong = "psk_not_the_partners_secret"
    result = run(
        copies, language, ["-v", tenant.ids[0]], _env(gateway.url, tenant, PARTNER_SECRET=wrong)
    )
    assert result.returncode == 1, result.stderr
    context = json.loads(result.stdout)["error"]["details"]["context"]
    assert json.loads(result.stdout)["error"]["code"] == "AUTH_002"
    [shown] = _verbose_blocks(result.stderr)  # AUTH_002 is never retried
    body = _body([tenant.ids[0]], [])
    message = signing.string_to_sign(
        method="POST",
        path=DELETIONS,
        query="",
        partner_client_id=tenant.partner_client_id,
        store_client_id=tenant.store_client_id,
        store_token=tenant.token,
        timestamp=shown["x-timestamp"],
        body_hash=signing.body_sha256(body),
    )
    assert shown == {
        "stringToSign": masked_string_to_sign(message, tenant.token),
        "bodyLength": str(len(body)),
        "bodySha256": signing.body_sha256(body),
        "x-timestamp": shown["x-timestamp"],
        "x-signature": signing.sign(wrong, message),
    }
    assert shown["stringToSign"] == context["stringToSign"]
    assert shown["bodySha256"] == context["bodySha256"]
    assert tenant.token not in result.stderr


@pytest.fixture(scope="module")
def rate_limited(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A gateway that accepts one request per partner every 6 seconds."""
    folder = tmp_path_factory.mktemp("limited")
    with serving(
        database_url, folder, GATEWAY_RATE_LIMIT_REQUESTS="1", GATEWAY_RATE_LIMIT_WINDOW="6"
    ) as server:
        yield server


def test_every_example_retries_rate_001_after_retry_after_signed_anew(
    database_url: str, rate_limited: Server, copies: Path
) -> None:
    """All five at once, each for a partner that has just spent its one request of the window:
    RATE_001 (429, Retry-After), a wait of that many seconds, then the same body signed anew."""
    tenants = {language: _tenant(database_url, products=2) for language in LANGUAGES}
    started = {}
    for language, tenant in tenants.items():
        with partner_client(rate_limited, tenant) as client:
            assert client.post(DELETIONS, json={"ids": tenant.ids[:1]}).status_code == 200
        started[language] = subprocess.Popen(
            [*command(language), "-v", tenant.ids[1]],
            cwd=copies / language,
            env=_env(rate_limited.url, tenant),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for language, process in started.items():
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, (language, stderr)
        statuses = [line for line in stderr.splitlines() if line.startswith("HTTP ")]
        assert statuses[0] == "HTTP 429" and statuses[-1] == "HTTP 200", (language, stderr)
        assert json.loads(stdout)["data"]["summary"] == {"total": 1, "succeeded": 1, "failed": 0}
        retries = [line for line in stderr.splitlines() if line.startswith("RATE_001: retry ")]
        blocks = _verbose_blocks(stderr)
        assert len(retries) == len(statuses) - 1 == len(blocks) - 1, (language, stderr)
        for n, line in enumerate(retries):
            wait = int(line.split(" in ")[1].split(" s,")[0])
            assert 1 <= wait <= 6
            assert line == (
                f"RATE_001: retry {n + 1} of 3 in {wait} s, signed anew, same idempotency-key"
                " and body"
            )
            gap = int(blocks[n + 1]["x-timestamp"]) - int(blocks[n]["x-timestamp"])
            assert gap >= wait * 1000, (language, gap)
            assert blocks[n + 1]["x-signature"] != blocks[n]["x-signature"]
            assert blocks[n + 1]["bodySha256"] == blocks[n]["bodySha256"]


# --- against a stand-in that answers SYS_001, IDEM_002 or a partial report ---------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_retries_sys_001_and_idem_002_with_the_same_key_and_body_bytes(
    language: str, copies: Path
) -> None:
    tenant = Tenant(
        0, "2025112012475048491498", "psk_stub", 0, "638765489981529612855", "tok_stub_123"
    )
    ids = ["946b3ffa-5f9e-412e-acf4-eea306736e63"]
    script = [
        refused("SYS_001", 503, "1"),
        refused("IDEM_002", 409, "0"),
        deleted(total=1, failed=0),
    ]
    with StubGateway(script) as stub:
        result = run(copies, language, [*ids, "-e", "café"], _env(stub.url, tenant))
    assert result.returncode == 0, result.stderr
    assert result.stdout == script[-1].body.decode()
    assert [
        line for line in result.stderr.splitlines() if line.startswith(("HTTP", "SYS", "IDEM_"))
    ] == [
        "HTTP 503",
        "SYS_001: retry 1 of 3 in 1 s, signed anew, same idempotency-key and body",
        "HTTP 409",
        "IDEM_002: retry 2 of 3 in 0 s, signed anew, same idempotency-key and body",
        "HTTP 200",
    ]
    requests = stub.requests
    assert len(requests) == 3
    body = _body(ids, ["café"])
    assert {r.body for r in requests} == {body}
    assert {r.headers["idempotency-key"] for r in requests} == {_key(result.stderr)}
    assert len({r.headers["x-timestamp"] for r in requests}) == 3
    assert len({r.headers["x-signature"] for r in requests}) == 3
    for r in requests:
        assert r.headers["x-signature"] == signing.sign_request(
            tenant.secret,
            method="POST",
            path=DELETIONS,
            query="",
            partner_client_id=tenant.partner_client_id,
            store_client_id=tenant.store_client_id,
            store_token=tenant.token,
            timestamp=r.headers["x-timestamp"],
            body=body,
        )
    assert requests[1].at - requests[0].at >= 1.0  # Retry-After: 1 honoured


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_gives_up_after_four_attempts_and_exits_3_on_a_partial_report(
    language: str, copies: Path
) -> None:
    tenant = Tenant(0, "p-stub", "psk_stub", 0, "s-stub", "tok_stub_123")
    with StubGateway([refused("SYS_001", 503, "0")]) as stub:
        result = run(
            copies, language, ["946b3ffa-5f9e-412e-acf4-eea306736e63"], _env(stub.url, tenant)
        )
        assert len(stub.requests) == 4
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["error"]["code"] == "SYS_001"
    assert result.stderr.splitlines()[-1] == "SYS_001: giving up after 4 attempts"

    with StubGateway([deleted(total=2, failed=1)]) as stub:
        partial = run(copies, language, ["a", "b"], _env(stub.url, tenant))
    assert partial.returncode == 3, partial.stderr
    assert partial.stderr.splitlines()[-1] == "1 of 2 entries not deleted (see data.errors)"


# --- vectors mode, from the copied folder ------------------------------------------------------


#: The vectors command each README gives, to run from the example's own folder.
README_VECTORS = {
    "curl": "bash delete-products.sh --vectors ../vectors/signing_v1.json",
    "python": "python3 delete_products.py --vectors ../vectors/signing_v1.json",
    "node": "node delete-products.mjs --vectors ../vectors/signing_v1.json",
    "go": "go run . --vectors ../vectors/signing_v1.json",
    "java": "java DeleteProducts.java --vectors ../vectors/signing_v1.json",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_example_passes_every_vector_from_its_own_folder(language: str, copies: Path) -> None:
    """Run exactly as the README says, from the copied folder with only the system's tools."""
    readme = (EXAMPLES / language / "README.md").read_text("utf-8")
    assert f"`{README_VECTORS[language]}`" in readme
    tool, *args = README_VECTORS[language].split()
    count = len(json.loads(VECTORS.read_text("utf-8"))["cases"])
    result = subprocess.run(
        [_tool(tool), *args],
        cwd=copies / language,
        env=_system_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"{count} passed, 0 failed"
    assert sum(line.startswith("ok ") for line in lines) == count


def test_the_python_example_runs_with_no_site_packages_at_all(copies: Path) -> None:
    result = subprocess.run(
        [
            _tool("python3"),
            "-I",
            "-S",
            "delete_products.py",
            "--vectors",
            "../vectors/signing_v1.json",
        ],
        cwd=copies / "python",
        env=_system_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(" passed, 0 failed\n")


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
            "storeToken": f"token-of-store-{n}",
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
def test_example_checks_other_vector_files_and_skips_the_masked_token_line(
    language: str, copies: Path, tmp_path: Path
) -> None:
    foreign = _foreign_vectors(tmp_path)
    ok = run(copies, language, ["--vectors", str(foreign)])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == "3 passed, 0 failed"

    document = json.loads(foreign.read_text())
    cases = document["cases"]
    # Case 0's string to sign as an AUTH_002 answer shows it: the token masked, nothing else.
    cases[0]["stringToSign"] = masked_string_to_sign(
        cases[0]["stringToSign"], cases[0]["storeToken"]
    )
    # From an AUTH_002 whose body differed: line 6 masked, line 8 the server's body hash.
    server_side = dict(cases[1], name="from an AUTH_002")
    cases[1]["signature"] = "0" * 64
    cases[2]["body"] = "u"
    lines = masked_string_to_sign(cases[1]["stringToSign"], cases[1]["storeToken"]).split("\n")
    server_side["stringToSign"] = "\n".join([*lines[:7], signing.body_sha256(b"other")])
    cases.append(server_side)
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(document), encoding="utf-8")
    bad = run(copies, language, ["--vectors", str(tampered)])
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.strip().splitlines()
    assert lines[0] == "ok foreign 0"
    assert lines[-1] == "1 passed, 3 failed"
    assert any(line.startswith("FAIL foreign 1") for line in lines)
    assert any(line.startswith("FAIL foreign 2") for line in lines)
    assert lines[3] == (
        "FAIL from an AUTH_002: stringToSign differs from the one built from the inputs at line 8"
    )


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
        [_tool("python3"), str(copies / "python" / "delete_products.py"), "sign", *args],
        cwd=tmp_path,
        env=_system_env(**VECTOR_1),
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
