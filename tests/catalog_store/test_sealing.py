"""Partner secrets at rest: sealed with the server key, bound to their row, rotated and retired."""

from __future__ import annotations

import os

import pytest

import catalog_store
from tests.support import TEST_BOX, Tenant, make_tenant

pytestmark = pytest.mark.anyio


def test_a_sealed_secret_opens_only_with_its_key_and_for_its_row() -> None:
    sealed = TEST_BOX.seal(b"psk_abc", partner_id=7, key_id="k1")
    assert b"psk_abc" not in sealed and sealed[:1] == b"\x01" and len(sealed) == 1 + 12 + 7 + 16
    assert TEST_BOX.open(sealed, partner_id=7, key_id="k1") == b"psk_abc"
    other = catalog_store.SecretBox(catalog_store.parse_key(catalog_store.generate_key()))
    for box, partner_id, key_id, blob in [
        (other, 7, "k1", sealed),  # another server key
        (TEST_BOX, 8, "k1", sealed),  # copied onto another partner's row
        (TEST_BOX, 7, "k2", sealed),  # or another key id
        (TEST_BOX, 7, "k1", sealed[:-1] + bytes([sealed[-1] ^ 1])),  # one bit flipped
        (TEST_BOX, 7, "k1", b"\x02" + sealed[1:]),  # unknown version
        (TEST_BOX, 7, "k1", b""),
    ]:
        with pytest.raises(catalog_store.SecretUnreadable) as caught:
            box.open(blob, partner_id=partner_id, key_id=key_id)
        assert (caught.value.partner_id, caught.value.key_id) == (partner_id, key_id)
    assert "key" in repr(TEST_BOX) and repr(TEST_BOX) == "SecretBox(<key hidden>)"


@pytest.mark.parametrize(
    ("text", "why"),
    [("", "must decode to 32 bytes, not 0"), ("a!b", "is not base64"), ("AAAA", "not 3")],
)
def test_a_bad_server_key_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        catalog_store.parse_key(text)


def test_a_generated_key_parses_back_in_both_base64_alphabets() -> None:
    text = catalog_store.generate_key()
    raw = catalog_store.parse_key(text)
    assert len(raw) == 32
    assert catalog_store.parse_key(text.replace("-", "+").replace("_", "/").rstrip("=")) == raw


async def test_the_database_never_holds_a_secret_in_clear(pool: catalog_store.Pool) -> None:
    tenant = await make_tenant(pool)
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT key_id, secret, sealed FROM partner_secrets")
        rows = await cur.fetchall()
        cur = await conn.execute(
            "SELECT count(*) FROM partner_secrets ps"
            " WHERE position(%s::bytea IN coalesce(ps.sealed, ''::bytea)) > 0",
            (tenant.secret.encode(),),
        )
        assert await cur.fetchone() == (0,)
    assert [(r[0], r[1]) for r in rows] == [("k1", None)]
    assert TEST_BOX.open(bytes(rows[0][2]), partner_id=tenant.partner_id, key_id="k1") == (
        tenant.secret.encode()
    )


async def test_plain_secrets_of_an_older_install_are_sealed_and_still_verify(
    pool: catalog_store.Pool,
) -> None:
    """Rows written before migration 0004 hold the secret plain; migrate seals them."""
    tenant = await make_tenant(pool)
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "UPDATE partner_secrets SET secret = %s, sealed = NULL", (tenant.secret.encode(),)
        )

    async def secrets() -> tuple[bytes, ...]:
        record = await catalog_store.lookup_auth(
            pool,
            partner_client_id=tenant.partner_client_id,
            store_client_id=tenant.store_client_id,
            store_token=tenant.token,
            box=TEST_BOX,
        )
        return record.secrets

    assert await secrets() == (tenant.secret.encode(),)
    assert await catalog_store.has_plain_secrets(pool) is True
    assert await catalog_store.seal_plain_secrets(pool, box=TEST_BOX) == 1
    assert await catalog_store.seal_plain_secrets(pool, box=TEST_BOX) == 0
    assert await catalog_store.has_plain_secrets(pool) is False
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute("SELECT secret IS NULL, sealed IS NOT NULL FROM partner_secrets")
        assert await cur.fetchall() == [(True, True)]
    assert await secrets() == (tenant.secret.encode(),)


def test_a_box_of_several_keys_seals_with_the_first_and_opens_with_any() -> None:
    old, new = (
        catalog_store.parse_key(catalog_store.generate_key()),
        catalog_store.parse_key(catalog_store.generate_key()),
    )
    by_old = catalog_store.SecretBox(old).seal(b"psk_old", partner_id=1, key_id="k1")
    both = catalog_store.SecretBox(new, old)
    assert both.key_count == 2 and repr(both) == "SecretBox(<key hidden>)"
    assert both.open(by_old, partner_id=1, key_id="k1") == b"psk_old"
    by_both = both.seal(b"psk_new", partner_id=1, key_id="k2")
    assert catalog_store.SecretBox(new).open(by_both, partner_id=1, key_id="k2") == b"psk_new"
    with pytest.raises(catalog_store.SecretUnreadable):
        catalog_store.SecretBox(old).open(by_both, partner_id=1, key_id="k2")
    with pytest.raises(catalog_store.SecretUnreadable):
        catalog_store.SecretBox(new).open(by_old, partner_id=1, key_id="k1")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (" , ", "holds no key"),
        ("AAAA", "must decode to 32 bytes, not 3"),
        (f"{catalog_store.generate_key()},AAAA", "key 2 of 2 must decode to 32 bytes, not 3"),
        (f"a!b, {catalog_store.generate_key()}", "key 1 of 2 is not base64"),
    ],
)
def test_a_list_of_keys_names_the_bad_one_by_its_place(text: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        catalog_store.parse_keys(text)
    assert str(caught.value) == why


async def _seal_under(
    pool: catalog_store.Pool, box: catalog_store.SecretBox, tenant: Tenant
) -> None:
    """Seal the tenant's secret anew under ``box``, as another host's key would have."""
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "UPDATE partner_secrets SET sealed = %s WHERE partner_id = %s AND key_id = 'k1'",
            (
                box.seal(tenant.secret.encode(), partner_id=tenant.partner_id, key_id="k1"),
                tenant.partner_id,
            ),
        )


async def test_reseal_moves_every_secret_under_the_first_key_and_reports_the_unreadable(
    pool: catalog_store.Pool,
) -> None:
    """Partners sealed under an older key and under a key nobody has: with the new key first
    and the old one after it, every secret but the lost one is sealed anew under the new key."""
    new_key, old_key = (
        catalog_store.parse_key(catalog_store.generate_key()),
        catalog_store.parse_key(catalog_store.generate_key()),
    )
    old = catalog_store.SecretBox(old_key)
    current = await make_tenant(pool, name="a")
    moved = await make_tenant(pool, name="b")
    orphan = await make_tenant(pool, name="c")
    await _seal_under(pool, old, moved)
    await _seal_under(
        pool, catalog_store.SecretBox(catalog_store.parse_key(catalog_store.generate_key())), orphan
    )
    check = await catalog_store.check_secrets(pool, box=TEST_BOX)
    assert (check.stored, check.unreadable) == (
        3,
        ((moved.partner_client_id, "k1"), (orphan.partner_client_id, "k1")),
    )
    ring = catalog_store.SecretBox(
        new_key, catalog_store.parse_key(os.environ["GATEWAY_SECRET_KEY"]), old_key
    )
    report = await catalog_store.reseal_secrets(pool, box=ring)
    assert (report.resealed, report.unreadable) == (2, ((orphan.partner_client_id, "k1"),))
    only_new = catalog_store.SecretBox(new_key)
    check = await catalog_store.check_secrets(pool, box=only_new)
    assert check == catalog_store.SecretCheck(
        stored=3, unreadable=((orphan.partner_client_id, "k1"),)
    )
    for tenant in (current, moved):
        record = await catalog_store.lookup_auth(
            pool,
            partner_client_id=tenant.partner_client_id,
            store_client_id=tenant.store_client_id,
            store_token=tenant.token,
            box=only_new,
        )
        assert record.secrets == (tenant.secret.encode(),)


async def test_rotating_a_partner_whose_secrets_open_with_no_key_retires_them(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool)
    second = await catalog_store.rotate_secret(
        pool, partner_client_id=tenant.partner_client_id, box=TEST_BOX
    )
    assert second.retired_unreadable == ()
    lost = catalog_store.SecretBox(catalog_store.parse_key(catalog_store.generate_key()))
    async with catalog_store.connection(pool) as conn:
        await conn.execute(
            "UPDATE partner_secrets SET sealed = %s WHERE key_id = 'k1'",
            (lost.seal(b"psk_gone", partner_id=tenant.partner_id, key_id="k1"),),
        )
        await conn.execute(
            "UPDATE partner_secrets SET sealed = %s WHERE key_id = 'k2'",
            (lost.seal(b"psk_gone", partner_id=tenant.partner_id, key_id="k2"),),
        )
    third = await catalog_store.rotate_secret(
        pool, partner_client_id=tenant.partner_client_id, box=TEST_BOX
    )
    assert (third.key_id, third.retired_unreadable) == ("k3", ("k1", "k2"))
    infos = await catalog_store.list_secrets(pool, partner_client_id=tenant.partner_client_id)
    assert [(i.key_id, i.retired_at is not None) for i in infos] == [
        ("k1", True),
        ("k2", True),
        ("k3", False),
    ]
    assert await catalog_store.check_secrets(pool, box=TEST_BOX) == catalog_store.SecretCheck(
        stored=1, unreadable=()
    )


async def test_rotation_keeps_two_secrets_at_most_and_never_retires_the_last(
    pool: catalog_store.Pool,
) -> None:
    tenant = await make_tenant(pool)
    pid = tenant.partner_client_id
    with pytest.raises(catalog_store.CredentialError, match="is the only active secret"):
        await catalog_store.retire_secret(pool, partner_client_id=pid)
    new = await catalog_store.rotate_secret(pool, partner_client_id=pid, box=TEST_BOX)
    assert new.key_id == "k2" and new.secret.startswith("psk_") and new.secret != tenant.secret
    with pytest.raises(catalog_store.CredentialError, match="already has 2 active secrets"):
        await catalog_store.rotate_secret(pool, partner_client_id=pid, box=TEST_BOX)
    record = await catalog_store.lookup_auth(
        pool,
        partner_client_id=pid,
        store_client_id=tenant.store_client_id,
        store_token=tenant.token,
        box=TEST_BOX,
    )
    assert record.key_ids == ("k2", "k1")
    assert record.secrets == (new.secret.encode(), tenant.secret.encode())
    with pytest.raises(catalog_store.CredentialError, match="no active secret k9; active: k1, k2"):
        await catalog_store.retire_secret(pool, partner_client_id=pid, key_id="k9")
    retired = await catalog_store.retire_secret(pool, partner_client_id=pid)
    assert (retired.key_id, retired.active_key_ids) == ("k1", ("k2",))
    async with catalog_store.connection(pool) as conn:
        cur = await conn.execute(
            "SELECT key_id, secret IS NULL AND sealed IS NULL, retired_at IS NOT NULL"
            " FROM partner_secrets ORDER BY key_id"
        )
        assert await cur.fetchall() == [("k1", True, True), ("k2", False, False)]
    third = await catalog_store.rotate_secret(pool, partner_client_id=pid, box=TEST_BOX)
    assert third.key_id == "k3"
    infos = await catalog_store.list_secrets(pool, partner_client_id=pid)
    assert [(i.key_id, i.retired_at is not None) for i in infos] == [
        ("k1", True),
        ("k2", False),
        ("k3", False),
    ]
    for call in (
        catalog_store.rotate_secret(pool, partner_client_id="nobody", box=TEST_BOX),
        catalog_store.retire_secret(pool, partner_client_id="nobody"),
        catalog_store.list_secrets(pool, partner_client_id="nobody"),
        catalog_store.set_partner_active(pool, partner_client_id="nobody", active=False),
    ):
        with pytest.raises(catalog_store.UnknownClient):
            await call


async def test_revoking_a_token_by_its_value(pool: catalog_store.Pool) -> None:
    tenant = await make_tenant(pool)
    assert await catalog_store.revoke_token(pool, token=tenant.token) is True
    assert await catalog_store.revoke_token(pool, token=tenant.token) is False
    assert await catalog_store.revoke_token(pool, token="stkn_never_issued") is False
