"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

from hypothesis import strategies as st

# A line of the string to sign: any text without line breaks.
line = st.text(
    alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]),
    min_size=1,
    max_size=40,
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
paths = line.map(lambda s: "/" + s.replace("?", ""))
queries = st.one_of(st.just(""), line.map(lambda s: s.lstrip("?")))
timestamps = st.integers(min_value=0, max_value=10**19 - 1).map(str)
bodies = st.binary(max_size=256)
keys = st.binary(min_size=1, max_size=64)
