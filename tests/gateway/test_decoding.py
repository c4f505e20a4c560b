"""The body decoder alone: any bytes give a request or one of our own reasons naming a field,
never another exception; a key given twice is refused whichever field it is."""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.decoding import REPEATED, BodyDecoder
from gateway.errors import InvalidField
from gateway.wire import DeletionRequest

DECODER = BodyDecoder(DeletionRequest, example='{"ids": ["<product uuid>"]}')
FIELDS = DECODER.field_names

# Every reason the decoder gives, as the templates we wrote (names and numbers vary).
_REASONS = [
    r'is empty: send a JSON object such as \{"ids": \["<product uuid>"\]\}',
    r"is not valid JSON(: JSON text must be encoded in UTF-8)?",
    r'must be a JSON object such as \{"ids": \["<product uuid>"\]\}; got (an object|an array|a'
    r" string|a number|a boolean|null)",
    r"nests arrays or objects too deeply; send one flat JSON object",
    r"is not a field of this request; expected ids, externalIds, dispatch, dryRun",
    re.escape(REPEATED),
    r"must be (an array of strings( of 1 to 255 characters)?|true or false); got (an object|an"
    r" array|a string|a number|a boolean|null)",
    r"must be an array of strings( of 1 to 255 characters)?; (ids|externalIds)\[\d+\] (is (an"
    r" object|an array|a number|a boolean|null|empty)|has [\d,]+ characters)",
    r"must have at most 100,000 entries; got [\d,]+",
]
REASON = re.compile("|".join(f"(?:{r})" for r in _REASONS))

_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_json = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*FIELDS, "x", "IDS"]), inner, max_size=3)
    ),
    max_leaves=8,
)


def test_the_fields_checked_for_repeats_are_the_request_types_own() -> None:
    assert FIELDS == tuple(f.encode_name for f in msgspec.structs.fields(DeletionRequest))
    assert "dryRun" in FIELDS


def _outcome(body: bytes) -> DeletionRequest | InvalidField:
    try:
        return DECODER.decode(body)
    except InvalidField as exc:
        return exc


@settings(max_examples=300)
@given(body=st.binary(max_size=64) | _json.map(lambda v: json.dumps(v).encode()))
def test_any_body_decodes_or_names_a_field_with_one_of_our_reasons(body: bytes) -> None:
    outcome = _outcome(body)
    if isinstance(outcome, InvalidField):
        assert REASON.fullmatch(outcome.reason), outcome.reason
        unknown = outcome.reason.startswith("is not a field")
        assert outcome.field in ("body", *FIELDS) or unknown, outcome


@settings(max_examples=200)
@given(
    value=st.fixed_dictionaries(
        {},
        optional={
            "ids": st.lists(st.text(min_size=1, max_size=5), max_size=3),
            "externalIds": st.lists(st.text(min_size=1, max_size=5), max_size=3),
            "dispatch": st.booleans(),
            "dryRun": st.booleans(),
        },
    ),
    repeated=st.sampled_from(FIELDS),
    again=_json,
    first=st.booleans(),
    escaped=st.booleans(),
)
def test_any_field_given_twice_is_refused_naming_it(
    value: dict[str, Any], repeated: str, again: Any, first: bool, escaped: bool
) -> None:
    """Valid or not, the other copy's value, before or after, plain or behind a \\u escape."""
    members = [json.dumps(k) + ":" + json.dumps(v) for k, v in value.items() if k != repeated]
    name = f"\\u{ord(repeated[0]):04x}{repeated[1:]}" if escaped else repeated
    extra = [f'"{name}":{json.dumps(again)}', f'"{repeated}":{json.dumps(again)}']
    members = extra + members if first else members + extra
    outcome = _outcome(("{" + ",".join(members) + "}").encode())
    assert isinstance(outcome, InvalidField)
    try:
        msgspec.json.decode(json.dumps({repeated: again}).encode(), type=DeletionRequest)
    except msgspec.DecodeError:
        # The copy's value is refused first (or the body is not JSON: NaN, Infinity).
        assert outcome.field in (repeated, "body") and outcome.reason != REPEATED
    else:
        assert (outcome.field, outcome.reason) == (repeated, REPEATED)


def test_a_valid_request_is_decoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The happy path pays one typed decode: no diagnosis, no second parse."""

    def second_pass(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a second pass over a valid body")

    monkeypatch.setattr(DECODER, "_diagnose", second_pass)
    monkeypatch.setattr(json, "loads", second_pass)
    body = b'{"ids": ["946b3ffa-5f9e-412e-acf4-eea306736e63"], "dryRun": true}'
    assert DECODER.decode(body) == DeletionRequest(
        ids=["946b3ffa-5f9e-412e-acf4-eea306736e63"], dryRun=True
    )
