"""A hypothesis state machine: partners sign valid requests while an attacker replays, truncates,
re-orders, re-encodes, swaps headers between partners and stores, and flips bits. Invariant:
only a partner's untouched requests delete anything, and nothing gets a 500.

The machine is built by :func:`attack_machine` around a :class:`Driver`: here an app in-process,
and in the fuzz campaign (``make fuzz``) a real ``serve`` process."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import msgspec
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import catalog_store
from gateway.settings import Settings
from tests.support import DELETIONS, NOW_MS, Tenant, gateway_client, make_tenant, signed_headers

T = TypeVar("T")
_SIGNED = ("x-partner-client-id", "x-store-client-id", "x-store-token", "x-timestamp")


class _Loop:
    """One gateway app (and a pool for checking the store) on an event loop in a thread, so
    that the synchronous state machine can drive it."""

    def __init__(self, database_url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = contextlib.AsyncExitStack()
        self.client: httpx.AsyncClient = self.run(self._open(database_url))

    async def _open(self, database_url: str) -> httpx.AsyncClient:
        no_limits = Settings(pool_min=1, pool_max=2, rate_limit_requests=0, rate_limit_batches=0)
        client = await self.stack.enter_async_context(
            gateway_client(database_url, settings=no_limits)
        )
        self.pool = catalog_store.create_pool(database_url, min_size=1, max_size=2)
        await self.pool.open(wait=True)
        self.stack.push_async_callback(self.pool.close)
        return client

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=120)

    def close(self) -> None:
        self.run(self.stack.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass(frozen=True)
class Signed:
    """A request exactly as its partner signed it."""

    owner: int  # index of the tenant that signed it
    headers: dict[str, str]
    body: bytes
    ids: tuple[str, ...]


def _flip(data: bytes, position: int, bit: int) -> bytes:
    index = position % len(data)
    return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]


class Driver(Protocol):
    """Where the machine's requests go, and how it sees the store."""

    def make_tenant(self, name: str) -> Tenant:
        """A partner with a token on a store of its own, holding 6 products."""
        ...

    def send(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        """POST the deletion with exactly these headers and body bytes."""
        ...

    def present(self, store_id: int) -> set[str]:
        """The ids of the store's products now."""
        ...

    def stamp(self) -> int:
        """A fresh x-timestamp, unique, inside the gateway's window."""
        ...


def attack_machine(driver: Driver) -> type[RuleBasedStateMachine]:
    """The state machine, driving ``driver``; run it with ``run_state_machine_as_test``."""

    class Attack(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.tenants: list[Tenant] = []
            self.present: dict[int, set[str]] = {}
            self.sent: list[Signed] = []
            self.held: list[Signed] = []  # signed by the partner, caught before delivery

        @initialize()
        def tenants_with_products(self) -> None:
            for name in ("a", "b"):
                tenant = driver.make_tenant(name)
                self.tenants.append(tenant)
                self.present[tenant.store_id] = set(tenant.ids)

        # --- the partners ---

        def _sign(self, owner: int, picks: list[int], extra: int, encoding: str) -> Signed:
            tenant = self.tenants[owner]
            ids = [tenant.ids[i % len(tenant.ids)] for i in picks]
            ids += [str(uuid.uuid4()) for _ in range(extra)]
            if encoding == "compact":
                body = msgspec.json.encode({"ids": ids})
            else:
                body = b'{ "ids" : [ ' + b" , ".join(b'"%s"' % i.encode() for i in ids) + b" ] }"
            headers = signed_headers(tenant, body=body, timestamp=driver.stamp())
            return Signed(owner, headers, body, tuple(ids))

        def _deliver(self, request: Signed) -> None:
            tenant = self.tenants[request.owner]
            response = self._send(request.headers, request.body)
            assert response.status_code == 200, response.text
            expected = [i for i in dict.fromkeys(request.ids) if i in self.present[tenant.store_id]]
            deleted = [item["id"] for item in response.json()["data"]["successItems"]]
            assert deleted == expected
            self.present[tenant.store_id] -= set(deleted)
            self.sent.append(request)

        @rule(
            owner=st.integers(0, 1),
            picks=st.lists(st.integers(0, 5), max_size=3),
            extra=st.integers(0, 2),
            encoding=st.sampled_from(["compact", "spaced"]),
        )
        def partner_sends(self, owner: int, picks: list[int], extra: int, encoding: str) -> None:
            if not picks and not extra:
                extra = 1
            self._deliver(self._sign(owner, picks, extra, encoding))

        @rule(owner=st.integers(0, 1), picks=st.lists(st.integers(0, 5), min_size=1, max_size=3))
        def partner_signs_but_the_attacker_holds_it(self, owner: int, picks: list[int]) -> None:
            self.held.append(self._sign(owner, picks, 0, "compact"))

        @precondition(lambda self: self.held)
        @rule(data=st.data())
        def the_held_request_arrives_untouched(self, data: st.DataObject) -> None:
            request = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
            self._deliver(request)

        # --- the attacker ---

        def _pick(self, data: st.DataObject, pool: str = "any") -> Signed:
            choices = self.sent + self.held if pool == "any" else self.sent
            return choices[data.draw(st.integers(0, len(choices) - 1), label="request")]

        def _refused(self, headers: dict[str, str], body: bytes, *codes: str) -> None:
            response = self._send(headers, body)
            assert response.status_code != 500, response.text
            assert response.status_code in (400, 401, 403, 413), response.text
            assert response.json()["error"]["code"] in codes, response.text

        @precondition(lambda self: self.sent)
        @rule(data=st.data(), upper=st.booleans())
        def replay(self, data: st.DataObject, upper: bool) -> None:
            request = self._pick(data, "sent")
            headers = dict(request.headers)
            if upper:  # the same signature re-encoded in upper-case hex is the same signature
                headers["x-signature"] = headers["x-signature"].upper()
            self._refused(headers, request.body, "AUTH_006")

        @precondition(lambda self: self.sent or self.held)
        @rule(data=st.data())
        def truncate_the_body(self, data: st.DataObject) -> None:
            request = self._pick(data)
            cut = data.draw(st.integers(0, len(request.body) - 1), label="cut")
            self._refused(request.headers, request.body[:cut], "AUTH_002")

        @precondition(lambda self: self.sent or self.held)
        @rule(data=st.data(), how=st.sampled_from(["reverse", "upper", "escape", "spaces"]))
        def re_encode_the_body(self, data: st.DataObject, how: str) -> None:
            request = self._pick(data)
            ids = list(request.ids)
            if how == "reverse":
                ids.reverse()
                body = msgspec.json.encode({"ids": ids})
            elif how == "upper":
                body = msgspec.json.encode({"ids": [i.upper() for i in ids]})
            elif how == "escape":
                body = request.body.replace(b'"ids"', b'"\\u0069ds"')
            else:
                body = request.body + b" "
            if body == request.body:
                return  # one id reversed, or digits only: nothing changed
            self._refused(request.headers, body, "AUTH_002")

        @precondition(lambda self: self.sent or self.held)
        @rule(data=st.data(), name=st.sampled_from(_SIGNED))
        def swap_a_header_with_the_other_partner(self, data: st.DataObject, name: str) -> None:
            request = self._pick(data)
            other = self.tenants[1 - request.owner]
            theirs = signed_headers(other, body=request.body, timestamp=driver.stamp())
            headers = {**request.headers, name: theirs[name]}
            self._refused(headers, request.body, "AUTH_002")

        @precondition(lambda self: self.sent or self.held)
        @rule(data=st.data())
        def send_it_as_the_other_partner(self, data: st.DataObject) -> None:
            """Every header of the other partner, with this request's signature and body."""
            request = self._pick(data)
            other = self.tenants[1 - request.owner]
            theirs = signed_headers(other, body=request.body, timestamp=driver.stamp())
            headers = {**theirs, "x-signature": request.headers["x-signature"]}
            self._refused(headers, request.body, "AUTH_002")

        @precondition(lambda self: self.sent or self.held)
        @rule(data=st.data(), position=st.integers(0, 10_000), bit=st.integers(0, 7))
        def flip_a_bit_in_the_body(self, data: st.DataObject, position: int, bit: int) -> None:
            request = self._pick(data)
            self._refused(request.headers, _flip(request.body, position, bit), "AUTH_002")

        @precondition(lambda self: self.sent or self.held)
        @rule(data=st.data(), position=st.integers(0, 63), bit=st.integers(0, 7))
        def flip_a_bit_in_the_signature(self, data: st.DataObject, position: int, bit: int) -> None:
            request = self._pick(data)
            signature = request.headers["x-signature"].encode()
            flipped = _flip(signature, position, bit).decode("latin-1")
            if flipped.lower() == signature.decode():
                return  # a flip of letter case only: the same signature
            headers = {**request.headers, "x-signature": flipped}
            codes = (
                ("AUTH_002",)
                if all(c in "0123456789abcdefABCDEF" for c in flipped)
                else ("AUTH_001",)
            )
            self._refused(headers, request.body, *codes)

        def _send(self, headers: dict[str, str], body: bytes) -> httpx.Response:
            return driver.send(headers, body)

        @invariant()
        def only_the_partners_deliveries_deleted_anything(self) -> None:
            for tenant in self.tenants:
                refs = driver.present(tenant.store_id)
                assert refs == self.present[tenant.store_id], "deleted without being sent"

    return Attack


class _InProcess:
    """The test's driver: an app in-process on :class:`_Loop`, with the fixed clock."""

    def __init__(self, runner: _Loop) -> None:
        self.runner = runner
        self.stamps: Callable[[], int] = itertools.count(NOW_MS - 250_000).__next__

    def make_tenant(self, name: str) -> Tenant:
        return self.runner.run(make_tenant(self.runner.pool, products=6, variants=1, name=name))

    def send(self, headers: dict[str, str], body: bytes) -> httpx.Response:
        raw = [(k.encode(), v.encode("latin-1")) for k, v in headers.items()]
        return self.runner.run(self.runner.client.post(DELETIONS, content=body, headers=raw))

    def present(self, store_id: int) -> set[str]:
        return self.runner.run(present_ids(self.runner.pool, store_id))

    def stamp(self) -> int:
        return self.stamps()  # unique, all inside the window of the clock


def test_an_attacker_never_gets_a_deletion_through(database_url: str) -> None:
    runner = _Loop(database_url)
    try:
        run_state_machine_as_test(
            attack_machine(_InProcess(runner)),
            settings=settings(settings.default, stateful_step_count=12),
        )
    finally:
        runner.close()


async def present_ids(pool: catalog_store.Pool, store_id: int) -> set[str]:
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT id::text FROM products WHERE store_id = %s", (store_id,))
        return {row[0] for row in await cur.fetchall()}
