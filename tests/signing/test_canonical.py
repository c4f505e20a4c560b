"""The signing library: the contract's vectors, refused inputs, and its properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import signing
from tests import strategies as s

SECRET = "psk_test_8f2b1c9e4d7a6b3f0e5c2a1d9b8e7f6a"
COMMON = {
    "partner_client_id": "2025112012475048491498",
    "store_client_id": "638765489981529612855",
    "store_token": "stkn__6AbJF05mjvxh7sh",
    "timestamp": "1758100350458",
}
BODY_1 = b'{"ids":["946b3ffa-5f9e-412e-acf4-eea306736e63","66721951-5f60-47fa-828c-29040fd3595f"]}'


def test_vector_1_post_with_body() -> None:
    """Contract vector 1: the body hash and the signature of a POST."""
    assert signing.body_sha256(BODY_1) == (
        "09ccee9ee64a7a4984fd1d61425b245f6aec2cde14a1321898e69ca6f0fe56cd"
    )
    signature = signing.sign_request(
        SECRET,
        method="POST",
        path="/api/v1/partner/stores/products/deletions",
        query="",
        body=BODY_1,
        **COMMON,
    )
    assert signature == "c15b8dbfd45ec670c847217f8170fdfa1876d90cdea305dd260a373b432616a5"


def test_vector_2_get_with_query() -> None:
    """Contract vector 2: a GET whose query is signed as sent, with the empty-body hash."""
    parts = signing.RequestParts(
        method="GET",
        path="/api/v1/partner/stores/products/deletions/0b9f7d7e-1c2a-4b8e-9d3f-5a6b7c8d9e0f",
        query="limit=50&cursor=eyJvIjo1MH0",
        body_hash=signing.EMPTY_BODY_SHA256,
        **COMMON,
    )
    message = parts.string_to_sign()
    lines = message.split("\n")
    assert len(lines) == 8
    assert lines[2] == "limit=50&cursor=eyJvIjo1MH0"
    assert lines[7] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert signing.sign(SECRET, message) == (
        "da77b9b9610119de8edd0d313ba9eeb55ee7e25a6eb43dccdba0defb6ac44afa"
    )


def test_string_to_sign_has_eight_lines_and_no_trailing_newline() -> None:
    """The string to sign is the eight lines joined by LF, the method upper-cased."""
    message = signing.string_to_sign(
        method="post", path="/p", query="", body_hash=signing.EMPTY_BODY_SHA256, **COMMON
    )
    assert message == "\n".join(["POST", "/p", "", *COMMON.values(), signing.EMPTY_BODY_SHA256])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("method", "PO\nST"),
        ("method", ""),
        ("method", "P O"),
        ("path", "/a\nb"),
        ("path", "a"),
        ("path", "/a?b=1"),
        ("query", "a=1\r\nb=2"),
        ("query", "?a=1"),
        ("partner_client_id", "p\n1"),
        ("partner_client_id", ""),
        ("store_client_id", "s\r"),
        ("store_token", "t\nx"),
        ("timestamp", "1758100350.458"),
        ("timestamp", "-1758100350458"),
        ("timestamp", "17581003504580000000"),
        ("timestamp", "1e12"),
        ("timestamp", ""),
        ("timestamp", "１２３"),
        ("body_hash", "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"),
        ("body_hash", "abc"),
    ],
)
def test_refuses_values_that_could_make_two_requests_share_a_string(field: str, value: str) -> None:
    """A line break, a non-decimal timestamp or a malformed hash raises MalformedInput."""
    args: dict[str, Any] = {
        "method": "POST",
        "path": "/p",
        "query": "",
        "body_hash": signing.EMPTY_BODY_SHA256,
        **COMMON,
    }
    args[field] = value
    with pytest.raises(signing.MalformedInput) as caught:
        signing.string_to_sign(**args)
    assert caught.value.field in {
        field,
        "x-timestamp",
        "body hash",
        "x-partner-client-id",
        "x-store-client-id",
        "x-store-token",
    }


def test_verify_accepts_upper_case_hex_and_names_the_matching_key() -> None:
    """Upper-case signatures verify; the index of the key that matched is returned."""
    message = "m"
    signature = signing.sign("second", message)
    assert signing.verify(signature.upper(), message, ["first", "second"]) == 1
    assert signing.verify(signature, message, ["first"]) is None
    assert signing.verify("zz" * 32, message, ["second"]) is None
    assert signing.verify(signature[:-1], message, ["second"]) is None
    assert signing.verify(signature, message, []) is None


@given(
    key=s.keys,
    method=s.methods,
    path=s.paths,
    query=s.queries,
    partner=s.line,
    store=s.line,
    token=s.line,
    timestamp=s.timestamps,
    body=s.bodies,
)
def test_sign_then_verify_round_trips(
    key: bytes,
    method: str,
    path: str,
    query: str,
    partner: str,
    store: str,
    token: str,
    timestamp: str,
    body: bytes,
) -> None:
    """Whatever the inputs, what sign_request produced verifies against the same key."""
    signature = signing.sign_request(
        key,
        method=method,
        path=path,
        query=query,
        partner_client_id=partner,
        store_client_id=store,
        store_token=token,
        timestamp=timestamp,
        body=body,
    )
    message = signing.string_to_sign(
        method=method,
        path=path,
        query=query,
        partner_client_id=partner,
        store_client_id=store,
        store_token=token,
        timestamp=timestamp,
        body_hash=signing.body_sha256(body),
    )
    assert signing.verify(signature, message, [key]) == 0


_FIELDS = (
    "method",
    "path",
    "query",
    "partner_client_id",
    "store_client_id",
    "store_token",
    "timestamp",
    "body",
    "key",
)


@given(data=st.data(), field=st.sampled_from(_FIELDS))
def test_changing_any_one_input_or_the_key_breaks_verification(
    data: st.DataObject, field: str
) -> None:
    """Each of the eight inputs, and the key, is bound by the signature."""
    strategies: dict[str, st.SearchStrategy[Any]] = {
        "method": s.methods,
        "path": s.paths,
        "query": s.queries,
        "partner_client_id": s.line,
        "store_client_id": s.line,
        "store_token": s.line,
        "timestamp": s.timestamps,
        "body": s.bodies,
        "key": s.keys,
    }
    original = {name: data.draw(strategies[name], label=name) for name in _FIELDS}
    changed = dict(original)
    changed[field] = data.draw(
        strategies[field].filter(
            lambda v: (
                v != original[field]
                and not (field == "method" and v.upper() == original["method"].upper())
            )
        ),
        label=f"new {field}",
    )

    def signature_of(values: dict[str, Any]) -> str:
        args = {k: v for k, v in values.items() if k != "key"}
        return signing.sign_request(values["key"], **args)

    message = signing.string_to_sign(
        **{k: v for k, v in changed.items() if k not in ("key", "body")},
        body_hash=signing.body_sha256(changed["body"]),
    )
    assert signing.verify(signature_of(original), message, [changed["key"]]) is None


@pytest.mark.parametrize(
    ("now_ms", "timestamp", "within", "seconds", "age"),
    [
        (1_758_100_350_458, "1758100350458", True, False, 0),
        (1_758_100_650_458, "1758100350458", True, False, 300),
        (1_758_100_650_459, "1758100350458", False, False, 300),
        (1_758_100_050_457, "1758100350458", False, False, -300),
        (1_758_100_350_458, "1758100350", False, True, 1_756_342_250),
        (1_758_100_350_458, "0", False, False, 1_758_100_350),
    ],
)
def test_timestamp_window(
    now_ms: int, timestamp: str, within: bool, seconds: bool, age: int
) -> None:
    """±300 s inclusive; age in whole seconds, negative in the future; seconds are spotted."""
    check = signing.check_timestamp(timestamp, now_ms=now_ms)
    assert (check.within_window, check.looks_like_seconds, check.age_seconds) == (
        within,
        seconds,
        age,
    )
