"""The operator's command line and a real `serve` process, driven as a newcomer would."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import BIN, Server, clean_env, cli, serving


def ok_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start `partner-gateway serve` on a free loopback port; stopped when the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda *extra: stack.enter_context(serving(database_url, tmp_path, *extra))


def test_admin_commands_print_json_and_a_signed_call_deletes(
    database_url: str, serve: Callable[..., Server], tmp_path: Path
) -> None:
    migrated = ok_json(cli(database_url, "migrate"))
    assert migrated["applied"] == [] and "0001_initial" in migrated["alreadyApplied"]
    partner = ok_json(cli(database_url, "partner", "create", "--name", "Acme"))
    assert re.fullmatch(r"\d{22}", partner["partnerClientId"])
    assert partner["secret"].startswith("psk_")
    store = ok_json(cli(database_url, "store", "create", "--name", "Shop"))
    assert re.fullmatch(r"\d{21}", store["storeClientId"])
    token = ok_json(
        cli(
            database_url,
            "token",
            "issue",
            "--partner",
            partner["partnerClientId"],
            "--store",
            store["storeClientId"],
        )
    )
    assert list(token) == ["storeToken"] and token["storeToken"].startswith("stkn_")
    seeded = cli(
        database_url,
        "products",
        "seed",
        "--store",
        store["storeClientId"],
        "--count",
        "3",
        "--variants",
        "2",
    )
    products = [json.loads(line) for line in seeded.stdout.splitlines()]
    assert len(products) == 3 and set(products[0]) == {"id", "externalId"}
    out = tmp_path / "more.jsonl"
    seed_args = ["products", "seed", "--store", store["storeClientId"], "--count", "2"]
    to_file = cli(database_url, *seed_args, "--out", str(out))
    assert to_file.returncode == 0
    assert out.read_text() == to_file.stdout and len(to_file.stdout.splitlines()) == 2
    more_ids = [json.loads(line)["id"] for line in to_file.stdout.splitlines()]

    server = serve()
    credentials = {
        "GATEWAY_URL": server.url,
        "PARTNER_CLIENT_ID": partner["partnerClientId"],
        "PARTNER_SECRET": partner["secret"],
        "STORE_CLIENT_ID": store["storeClientId"],
        "STORE_TOKEN": token["storeToken"],
    }
    ids = [products[0]["id"], products[1]["id"]]
    first = cli(
        database_url,
        "call",
        "--ids",
        *ids,
        "--external-ids",
        products[2]["externalId"],
        **credentials,
    )
    reply = ok_json(first)
    assert reply["status"] == 200
    assert reply["body"]["data"]["summary"] == {"total": 3, "succeeded": 3, "failed": 0}
    # Processed, but not everything was deleted: a clear line, and exit status 3.
    again = cli(database_url, "call", "--ids", ids[0], **credentials)
    assert again.returncode == 3, again.stderr
    assert again.stderr == (
        "partner-gateway call: not all deleted: 1 of 1 entries failed; see body.data.errors\n"
    )
    assert json.loads(again.stdout)["body"]["message"] == "No products were deleted"
    assert json.loads(again.stdout)["body"]["data"]["errors"][0]["code"] == "PRD_014"
    dry = cli(database_url, "call", "--dry-run", "--ids", ids[0], *more_ids[:1], **credentials)
    assert dry.returncode == 3, dry.stderr
    assert dry.stderr == (
        "partner-gateway call: dry run: 1 of 2 entries would not be deleted; see body.data.errors\n"
    )
    batch = cli(database_url, "call", "--batch", "nope", **credentials)
    assert batch.returncode == 1
    assert json.loads(batch.stdout)["body"]["error"]["code"] == "BAT_001"

    # One JSON line per request, with what an operator needs and nothing secret.
    server.process.send_signal(signal.SIGTERM)
    # A graceful stop on SIGTERM is a success: exit status 0.
    assert server.process.wait(timeout=20) == 0
    text = server.log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line["event"] == "request"]
    deletion = next(r for r in requests if r["route"].endswith("/deletions"))
    assert {"request_id", "partner", "store", "route", "status", "duration_ms"} <= set(deletion)
    assert deletion["partner"] == partner["partnerClientId"]
    assert deletion["store"] == store["storeClientId"]
    assert deletion["status"] == 200
    bat = next(r for r in requests if r["route"].endswith("{batchId}"))
    assert bat["code"] == "BAT_001"
    for secret in (partner["secret"], token["storeToken"]):
        assert secret not in text


def test_serve_demo_prints_a_command_that_deletes_two_products(
    database_url: str, serve: Callable[..., Server]
) -> None:
    """The newcomer's path: `make run` prints a command; pasted, it deletes two products."""
    server = serve("--demo")
    welcome: list[str] = []
    assert server.process.stdout is not None
    while not any("partner-gateway call" in line for line in welcome):
        welcome.append(server.process.stdout.readline())
    command = next(line for line in welcome if "partner-gateway call" in line).strip()
    argv = shlex.split(command)
    assert argv[0] == ".venv/bin/partner-gateway"
    argv[0] = str(BIN)
    result = subprocess.run(
        argv, env=clean_env(database_url), capture_output=True, text=True, timeout=60
    )
    reply = ok_json(result)
    assert reply["status"] == 200
    assert reply["body"]["data"]["summary"] == {"total": 2, "succeeded": 2, "failed": 0}
    exports = dict(re.findall(r"export (\w+)=(\S+)", "".join(welcome)))
    assert set(exports) == {
        "GATEWAY_URL",
        "PARTNER_CLIENT_ID",
        "PARTNER_SECRET",
        "STORE_CLIENT_ID",
        "STORE_TOKEN",
    }


def test_cli_errors_are_json_with_exit_status_2(database_url: str) -> None:
    unknown = cli(database_url, "token", "issue", "--partner", "1", "--store", "2")
    assert unknown.returncode == 2
    assert json.loads(unknown.stderr.strip().splitlines()[-1]) == {
        "error": "no such partner or store"
    }
    bad_setting = cli(database_url, "migrate", GATEWAY_DB_POOL_MAX="lots")
    assert bad_setting.returncode == 2
    assert "GATEWAY_DB_POOL_MAX" in bad_setting.stderr
    for args in (["migrate"], ["partner", "create", "--name", "x"]):
        down = cli("host=127.0.0.1 port=1 user=x dbname=x connect_timeout=1", *args)
        assert down.returncode == 2
        assert json.loads(down.stderr.strip().splitlines()[-1])["error"].startswith(
            "cannot connect to the database"
        )
        assert "Traceback" not in down.stderr
    no_credentials = cli(database_url, "call", "--ids", "x")
    assert no_credentials.returncode == 2
    assert "--partner-client-id" in no_credentials.stderr
