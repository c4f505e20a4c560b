"""`make run`'s first-start demo: a partner, a store, a token and 1,000 products, and a welcome."""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import catalog_store

__all__ = ["Demo", "ensure_demo", "print_welcome"]

DEMO_PRODUCTS = 1_000


@dataclass(frozen=True, slots=True)
class Demo:
    partnerClientId: str
    partnerSecret: str
    storeClientId: str
    storeToken: str
    sampleIds: tuple[str, ...] = ()
    created: bool = False


async def _sample_ids(pool: catalog_store.Pool, store_client_id: str) -> tuple[str, ...]:
    """The ids of two of the store's products, for the welcome's sample command."""
    refs = await catalog_store.first_products(pool, store_client_id=store_client_id, limit=2)
    return tuple(str(ref.id) for ref in refs)


async def _still_there(pool: catalog_store.Pool, demo: Demo) -> bool:
    """Whether the saved demo's partner and store are still in the database."""
    partner, store = await catalog_store.clients_exist(
        pool, partner_client_id=demo.partnerClientId, store_client_id=demo.storeClientId
    )
    return partner and store


async def ensure_demo(
    pool: catalog_store.Pool, data_dir: Path, *, box: catalog_store.SecretBox
) -> Demo:
    """Reuse the demo credentials kept in ``data_dir/demo.json`` (mode 0600), or create them;
    re-seed 1,000 products when the demo store has none left."""
    path = data_dir / "demo.json"
    demo: Demo | None = None
    if path.exists():
        saved = json.loads(path.read_text("utf-8"))
        demo = Demo(
            **{
                k: saved[k]
                for k in ("partnerClientId", "partnerSecret", "storeClientId", "storeToken")
            }
        )
        if not await _still_there(pool, demo):
            demo = None
    created = demo is None
    if demo is None:
        partner = await catalog_store.create_partner(pool, "Demo partner", box=box)
        store = await catalog_store.create_store(pool, "Demo store")
        token = await catalog_store.issue_token(
            pool, partner_client_id=partner.client_id, store_client_id=store.client_id
        )
        demo = Demo(partner.client_id, partner.secret, store.client_id, token.token)
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(
                {k: v for k, v in asdict(demo).items() if k not in ("sampleIds", "created")},
                handle,
                indent=2,
            )
    sample = await _sample_ids(pool, demo.storeClientId)
    if not sample:
        await catalog_store.seed_products(
            pool, store_client_id=demo.storeClientId, count=DEMO_PRODUCTS, variants=2
        )
        sample = await _sample_ids(pool, demo.storeClientId)
    return Demo(
        demo.partnerClientId,
        demo.partnerSecret,
        demo.storeClientId,
        demo.storeToken,
        sample,
        created,
    )


def print_welcome(demo: Demo, url: str) -> None:
    """Print the demo credentials and a command that signs and sends a real deletion."""
    exports = {
        "GATEWAY_URL": url,
        "PARTNER_CLIENT_ID": demo.partnerClientId,
        "PARTNER_SECRET": demo.partnerSecret,
        "STORE_CLIENT_ID": demo.storeClientId,
        "STORE_TOKEN": demo.storeToken,
    }
    lines = [
        "",
        "Partner Catalog Gateway: demo "
        + ("created" if demo.created else "credentials")
        + f" (kept in the data folder's demo.json); serving on {url}",
        "",
        "  # the demo partner's credentials, as the example clients read them:",
        *(f"  export {name}={shlex.quote(value)}" for name, value in exports.items()),
        "",
        "  # in another terminal, paste this: it signs a request and deletes two products",
        "  .venv/bin/partner-gateway call --url "
        + shlex.quote(url)
        + f" --partner-client-id {demo.partnerClientId}"
        + f" --partner-secret {shlex.quote(demo.partnerSecret)}"
        + f" --store-client-id {demo.storeClientId}"
        + f" --store-token {shlex.quote(demo.storeToken)}"
        + " --ids "
        + " ".join(demo.sampleIds),
        "",
        f"  API page: {url}/docs",
        "",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
