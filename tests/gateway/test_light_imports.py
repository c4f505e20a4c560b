"""What a module loads on import: a partner's client loads no server, and `serve`'s supervisor
none of the app (each checked in a fresh interpreter, by the modules in ``sys.modules``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: The server's heavy dependencies, by their top-level package.
SERVER_PACKAGES = ["catalog_store", "procrastinate", "prometheus_client", "psycopg", "starlette"]


def _loaded_by(statement: str) -> list[str]:
    """The server packages among the modules loaded after ``statement``, in a new interpreter."""
    probe = (
        f"import json, sys\n{statement}\n"
        f"top = {{name.split('.')[0] for name in sys.modules}}\n"
        f"print(json.dumps(sorted(top & set({SERVER_PACKAGES!r}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded


def test_importing_the_partner_client_loads_none_of_the_server() -> None:
    """`import gateway.client` brings httpx and signing, never Starlette, psycopg,
    procrastinate, prometheus or the store."""
    assert _loaded_by("import gateway.client") == []


def test_the_gateway_package_still_offers_its_app_factory_and_settings() -> None:
    """`gateway.create_app`, `gateway.Settings` and `gateway.load_settings` are the real ones,
    loaded on first use; `import gateway` alone loads none of the server."""
    import gateway
    from gateway import app, settings

    assert _loaded_by("import gateway") == []
    assert (gateway.create_app, gateway.Settings, gateway.load_settings) == (
        app.create_app,
        settings.Settings,
        settings.load_settings,
    )
    with pytest.raises(AttributeError, match="has no attribute 'serve'"):
        gateway.serve  # noqa: B018


def test_serves_supervisor_module_loads_none_of_the_app() -> None:
    """`gateway.serving` (uvicorn's supervisor and serve's own stop handling) loads neither the
    app nor prometheus-client, which must first be imported once the metrics folder is set."""
    assert _loaded_by("import gateway.serving") == []
