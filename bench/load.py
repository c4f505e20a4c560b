"""Load for `make bench`: the catalog, signed request files, wrk runs, and the database alone."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

import catalog_store
import signing
from bench.floor import FLOOR_DELETE
from gateway.client import PartnerAuth
from gateway.jobs import migrate

BENCH = Path(__file__).resolve().parent
LUA = BENCH / "load.lua"
DELETIONS = "/api/v1/partner/stores/products/deletions"

# Products and their two variants in one set-based statement, whatever the count.
_SEED = """
WITH new_products AS (
    INSERT INTO products (store_id, id, external_id, name)
    SELECT %(store)s, gen_random_uuid(), 'ext-' || gen_random_uuid(), 'Bench product ' || n
      FROM generate_series(1, %(count)s) AS n
    RETURNING store_id, id, external_id
)
INSERT INTO product_variants (store_id, id, product_id, sku)
SELECT p.store_id, gen_random_uuid(), p.id, p.external_id || '-v' || v
  FROM new_products p, generate_series(1, 2) AS v
"""


@dataclass(frozen=True)
class Credentials:
    partner_client_id: str
    secret: str
    store_id: int
    store_client_id: str
    token: str
    partner_id: int

    def partner_auth(self) -> PartnerAuth:
        """The partner's signer for httpx, as a partner's client would hold it."""
        return PartnerAuth(
            partner_client_id=self.partner_client_id,
            partner_secret=self.secret,
            store_client_id=self.store_client_id,
            store_token=self.token,
        )


async def create_tenant(url: str, name: str, *, products: int = 0) -> tuple[Credentials, list[str]]:
    """Migrate ``url``'s database, and make one partner, store and token there, with
    ``products`` products of two variants each; their credentials and the products' ids. The
    partner's secret is sealed with ``GATEWAY_SECRET_KEY`` (drawn now when unset), which the
    processes started later inherit."""
    await migrate(url)
    pool = catalog_store.create_pool(url, min_size=1, max_size=2)
    await pool.open(wait=True)
    try:
        key = os.environ.setdefault("GATEWAY_SECRET_KEY", catalog_store.generate_key())
        box = catalog_store.SecretBox(catalog_store.parse_key(key))
        partner = await catalog_store.create_partner(pool, name, box=box)
        store = await catalog_store.create_store(pool, name)
        token = await catalog_store.issue_token(
            pool, partner_client_id=partner.client_id, store_client_id=store.client_id
        )
        refs = (
            await catalog_store.seed_products(
                pool, store_client_id=store.client_id, count=products, variants=2
            )
            if products
            else []
        )
    finally:
        await pool.close()
    creds = Credentials(
        partner.client_id, partner.secret, store.id, store.client_id, token.token, partner.id
    )
    return creds, [str(ref.id) for ref in refs]


@dataclass
class RunResult:
    """One measured run: a target under one scenario's load."""

    target: str
    entries_per_request: int
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad: int = 0
    exhausted: bool = False
    round_rates: list[float] = field(default_factory=list)  # entries/s of every round
    round_p99s: list[float] = field(default_factory=list)  # p99 ms of every round

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def entries_per_second(self) -> float:
        return self.requests_per_second * self.entries_per_request

    def as_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "entriesPerRequest": self.entries_per_request,
            "connections": self.connections,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "requestsPerSecond": round(self.requests_per_second, 1),
            "entriesPerSecond": round(self.entries_per_second, 1),
            "p50Ms": round(self.p50_ms, 2),
            "p99Ms": round(self.p99_ms, 2),
            "badAnswers": self.bad,
            "ranOutOfRequests": self.exhausted,
            "entriesPerSecondEachRound": self.round_rates,
            "p99MsEachRound": self.round_p99s,
        }


class Catalog:
    """The bench store's products, kept at a given size between runs (set-based SQL only)."""

    def __init__(self, url: str, store_id: int) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.store_id = store_id
        # Vacuumed by hand between runs instead, so every run starts from the same state.
        # The tables under the views products and product_variants (tombstones included).
        for table in ("all_products", "all_product_variants"):
            self.conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")

    def size(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM products WHERE store_id = %s", (self.store_id,)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def top_up(self, size: int) -> int:
        """Bring the catalog back to ``size`` products, vacuumed, without the tombstones of the
        runs before (as the upkeep would purge them); return how many were added."""
        self.conn.execute(
            "DELETE FROM all_products WHERE store_id = %s AND deleted_at IS NOT NULL",
            (self.store_id,),
        )
        missing = size - self.size()
        if missing > 0:
            self.conn.execute(_SEED, {"store": self.store_id, "count": missing})
        self.conn.execute("VACUUM (ANALYZE) all_products, all_product_variants")
        return max(missing, 0)

    def sample(self, count: int) -> list[str]:
        """``count`` ids of the catalog, in random order."""
        rows = self.conn.execute(
            "SELECT id::text FROM products WHERE store_id = %s ORDER BY random() LIMIT %s",
            (self.store_id, count),
        ).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        self.conn.close()


def _body(ids: list[str]) -> str:
    return json.dumps({"ids": ids}, separators=(",", ":"))


def write_signed_requests(path: Path, creds: Credentials, batches: list[list[str]]) -> None:
    """One signed deletion per batch, all signed now: each unique, so none is a replay."""
    secret = creds.secret.encode()
    lines = [
        f"POST\t{DELETIONS}",
        "\t".join(
            [
                "content-type: application/json",
                f"{signing.HEADER_PARTNER_CLIENT_ID}: {creds.partner_client_id}",
                f"{signing.HEADER_STORE_CLIENT_ID}: {creds.store_client_id}",
                f"{signing.HEADER_STORE_TOKEN}: {creds.token}",
            ]
        ),
    ]
    for ids in batches:
        body = _body(ids)
        timestamp = str(time.time_ns() // 1_000_000)
        signature = signing.sign_request(
            secret,
            method="POST",
            path=DELETIONS,
            query="",
            partner_client_id=creds.partner_client_id,
            store_client_id=creds.store_client_id,
            store_token=creds.token,
            timestamp=timestamp,
            body=body.encode(),
        )
        lines.append(
            f"{signing.HEADER_TIMESTAMP}: {timestamp}\t{signing.HEADER_SIGNATURE}: {signature}\t"
            + body
        )
    path.write_text("\n".join(lines) + "\n")


def write_floor_requests(path: Path, floor_path: str, batches: list[list[str]]) -> None:
    """The same bodies for the floor: no headers but the content type."""
    lines = [f"POST\t{floor_path}", "content-type: application/json"]
    lines += [_body(ids) for ids in batches]
    path.write_text("\n".join(lines) + "\n")


def run_wrk(
    url: str,
    requests_file: Path,
    *,
    target: str,
    entries: int,
    connections: int,
    duration: float,
    expect: str = "",
) -> RunResult:
    """Drive ``url`` with wrk for ``duration`` seconds (or until every request is sent)."""
    threads = int(os.environ.get("BENCH_WRK_THREADS", "1"))
    env = {
        **os.environ,
        "BENCH_REQUESTS": str(requests_file),
        "BENCH_THREADS": str(threads),
        "BENCH_EXPECT": expect,
    }
    done = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, math.ceil(duration))}s",
            "--timeout",
            "60s",
            "-s",
            str(LUA),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 120,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    report = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    # Socket errors are not counted: wrk closes the connections still parked when a thread has
    # sent all of its requests. Every request sent is answered or timed out (counted).
    bad = report["bad"] + report["unexpected"] + report["timeouts"]
    if bad:
        print(f"  ! {target}: {bad} bad answers: {report}\n{done.stderr[:1000]}", flush=True)
    return RunResult(
        target=target,
        entries_per_request=entries,
        connections=connections,
        requests=report["ok"],
        seconds=report["seconds"],
        p50_ms=report["p50Ms"],
        p99_ms=report["p99Ms"],
        bad=bad,
        exhausted=report["exhaustedThreads"] > 0,
    )


def run_database_alone(
    url: str, store_id: int, batches: list[list[str]], *, duration: float
) -> RunResult:
    """The floor's deletes from one psycopg connection, one after another, with no HTTP."""
    latencies: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        for ids in batches:
            t0 = time.perf_counter()
            conn.execute(FLOOR_DELETE, (store_id, ids)).fetchall()
            now = time.perf_counter()
            latencies.append(now - t0)
            if now - started >= duration:
                break
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return RunResult(
        target="database",
        entries_per_request=len(batches[0]),
        connections=1,
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=cuts[49] * 1000,
        p99_ms=cuts[98] * 1000,
        exhausted=len(latencies) == len(batches),
    )
