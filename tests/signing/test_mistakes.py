"""signing.mistakes: a fixed number of HMACs per key whatever the request, and the base64 check."""

from __future__ import annotations

import base64

import pytest

import signing
import signing.canonical
from signing.mistakes import mistaken_keys, mistaken_messages

SECRET = "psk_test_8f2b1c9e4d7a6b3f0e5c2a1d9b8e7f6a"
MESSAGE = "\n".join(["GET", "/p", "", "p", "s", "t", "1758100350458", signing.body_sha256(b"")])


def test_every_mistake_is_looked_for_once_with_twelve_hmacs_per_key() -> None:
    assert [m.cause for m in signing.MISTAKES] == [
        "body-newline-added",
        "body-newline-removed",
        "crlf-line-joins",
        "timestamp-in-seconds",
        "query-omitted",
        "query-sorted",
        "query-decoded",
        "path-with-query",
        "method-lower-case",
        "secret-hex-decoded",
        "secret-base64-decoded",
    ]
    assert signing.HMACS_PER_KEY == 12


def test_a_mistake_that_cannot_apply_is_the_right_message_itself() -> None:
    """No query, no trailing newline: those entries repeat the message, so the count holds."""
    messages = mistaken_messages(MESSAGE, body=b"")
    assert len(messages) == 10
    assert [m == MESSAGE for m in messages] == [
        False,  # body + "\n"
        True,  # no newline to remove
        False,  # CR LF
        False,  # seconds
        True,  # no query to omit, sort, decode or move onto the path
        True,
        True,
        True,
        True,
        False,  # lower-case method
    ]
    assert mistaken_messages("not eight lines", body=b"") == ("not eight lines",) * 10


def test_keys_that_do_not_decode_are_used_as_they_are() -> None:
    assert mistaken_keys(SECRET.encode()) == (
        bytes.fromhex("8f2b1c9e4d7a6b3f0e5c2a1d9b8e7f6a"),
        base64.urlsafe_b64decode(SECRET[:-1] + "="),  # 41 characters: the dangling one dropped
    )
    random_bytes = bytes(range(200, 232))
    assert mistaken_keys(random_bytes) == (random_bytes, random_bytes)


@pytest.mark.parametrize("keys", [1, 2, 3])
def test_find_mistake_computes_the_same_hmacs_whatever_matches(
    keys: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    count: list[int] = []
    real_sign = signing.canonical.sign

    def counting(key: str | bytes, message: str) -> str:
        count.append(1)
        return real_sign(key, message)

    lower = signing.sign(SECRET, MESSAGE.replace("GET", "get", 1))
    key_list = [SECRET.encode()] + [b"other"] * (keys - 1)
    monkeypatch.setattr(signing.canonical, "sign", counting)
    for signature, real, cause in [
        (lower, 1, "method-lower-case"),
        (lower, 0, None),  # matched with a key that is not the partner's: not named
        ("0" * 64, 1, None),
    ]:
        count.clear()
        found = signing.find_mistake(signature, MESSAGE, body=b"", keys=key_list, real=real)
        assert (found.cause if found else None) == cause
        assert len(count) == keys * 12


@pytest.mark.parametrize(
    ("value", "base64_like"),
    [
        (base64.b64encode(bytes(32)).decode(), True),
        (base64.b64encode(bytes(32)).decode().rstrip("="), True),
        (base64.urlsafe_b64encode(b"\xff" * 32).decode(), True),
        (base64.b64encode(b"ab" * 32).decode(), True),  # the hex digest base64-encoded
        ("a" * 64, False),
        ("=" * 44, False),
        ("a" * 44, False),
        ("!" * 43, False),
    ],
)
def test_a_base64_signature_is_recognised(value: str, base64_like: bool) -> None:
    assert signing.looks_like_base64_signature(value) is base64_like
