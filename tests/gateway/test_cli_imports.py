"""What the `partner-gateway` commands load: the command line itself and the partner's `call`
and `sign` load none of the server (each checked in a fresh interpreter, by ``sys.modules``)."""

from __future__ import annotations

import json
import subprocess
import sys

#: The app and the server's heavy dependencies: only `serve` and `worker` need them.
SERVER_MODULES = ["gateway.app", "procrastinate", "prometheus_client", "starlette", "uvicorn"]

_CREDENTIALS = [
    "--partner-client-id=2025112012475048491498",
    "--partner-secret=psk_test",
    "--store-client-id=202511201247504849149",
    "--store-token=stkn_test",
]


def _loaded_by(statement: str) -> list[str]:
    """The server modules loaded after ``statement``, in a new interpreter."""
    probe = (
        f"import json, sys\n{statement}\n"
        f"wanted = {SERVER_MODULES!r}\n"
        "loaded = [m for m in wanted\n"
        "          if any(n == m or n.startswith(m + '.') for n in sys.modules)]\n"
        "print(json.dumps(loaded))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return loaded


def test_the_command_line_and_its_parser_load_none_of_the_server() -> None:
    """Every command group registers its flags without importing what its commands run."""
    assert _loaded_by("from gateway.cli import _parser\n_parser()") == []


def test_partner_sign_loads_none_of_the_server() -> None:
    """`sign` computes and prints the signed headers with the signing library alone."""
    run = (
        f"from gateway.cli import main\nassert main(['sign', *{_CREDENTIALS!r}, '--ids', 'x']) == 0"
    )
    assert _loaded_by(run) == []


def test_partner_call_loads_none_of_the_server() -> None:
    """`call` needs the HTTP client and signing only (here it finds no gateway: exit 2)."""
    run = (
        "from gateway.cli import main\n"
        "url = 'http://127.0.0.1:9'\n"
        f"assert main(['call', '--url', url, *{_CREDENTIALS!r}, '--ids', 'x']) == 2"
    )
    assert _loaded_by(run) == []
