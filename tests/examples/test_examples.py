"""The five example clients, each copied alone into a folder outside the repository and run there
with the system's toolchain, as a partner who received only `examples/` runs them: against a live
gateway on loopback, and against a stand-in server that answers what the gateway answers when it
must be retried. A missing toolchain fails these tests; it never skips them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import signing
from gateway.auth import masked_string_to_sign
from tests.examples.clients import LANGUAGES, command, run, system_env
from tests.examples.stub import StubGateway, deleted, refused
from tests.live import Server, partner_client, serving
from tests.support import DELETIONS, Tenant, make_tenant, run_with_pool


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
    return system_env(**{**credentials, **extra})


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
