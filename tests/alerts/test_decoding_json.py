"""Decoding a body: orjson on the common path, the standard library at orjson's edges, one result.

alerts.decoding.decode_json tries orjson first and hands what orjson refuses, or might read
differently (a long digit run: orjson reads an integer beyond 64 bits as a float), to the
standard library. Hypothesis checks the two agree on any body: the same value (type and all,
1 is not 1.0), the same warnings, or the same refusal.

Pure: no database.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.decoding import Rejected, Request, _decode_exactly, decode_json
from tests.helpers.fuzz import fuzz_settings
from tests.helpers.fuzz_payloads import JSON_VALUES, KINDS, bodies

# Numbers at the edges of 64 bits and of a double, and digit runs inside strings.
EDGE_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(
        [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**19, -(10**19), 10**30]
    ),
    st.floats(allow_nan=False, allow_infinity=False),
)
EDGE_TEXT = st.sampled_from(
    [
        "1e400",
        "-1e400",
        "1e-400",
        "-0",
        "-0.0",
        "0.1e1",
        "12345678901234567890",
        '"1234567890123456789"',
    ]
)


def outcome(body: bytes, decode) -> tuple[str, Any, list[str]]:
    request = Request(body=body, content_type="application/json")
    try:
        value = decode(request)
    except Rejected as refused:
        return ("refused", (refused.status, refused.reason), request.warnings)
    # repr tells 1 from 1.0 and -0.0 from 0.0, which == does not.
    return ("decoded", repr(value), request.warnings)


def assert_same(body: bytes) -> None:
    if not body.strip():
        return  # refused before either decoder is asked
    assert outcome(body, decode_json) == outcome(body, _decode_exactly)


@given(kind=st.sampled_from(KINDS), data=st.data())
@fuzz_settings(ci_examples=200)
def test_any_body_decodes_as_the_standard_library_decodes_it(kind: str, data) -> None:
    assert_same(data.draw(bodies(kind), label="body"))


@given(
    value=st.recursive(
        st.one_of(EDGE_NUMBERS, JSON_VALUES),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner, max_size=4)
        ),
        max_leaves=12,
    ),
    edge=EDGE_TEXT,
)
@fuzz_settings(ci_examples=200)
def test_numbers_at_the_edges_decode_as_the_standard_library_decodes_them(value, edge) -> None:
    body = json.dumps(value).encode()
    assert_same(body)
    assert_same(f'{{"a": {body.decode()}, "b": {edge}}}'.encode())


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
        (b'{"n": -9223372036854775809}', {"n": -9223372036854775809}),
        (b'{"n": 18446744073709551616}', {"n": 18446744073709551616}),
        (b'{"n": 1e400}', {"n": float("inf")}),
    ],
)
def test_integers_beyond_64_bits_are_read_exactly(body: bytes, expected: dict) -> None:
    value = decode_json(Request(body=body, content_type="application/json"))

    assert value == expected
    assert type(value["n"]) is type(expected["n"])


def test_a_lone_surrogate_is_still_replaced_with_a_warning() -> None:
    request = Request(body=b'{"a": "x\\ud800y"}', content_type="application/json")

    assert decode_json(request) == {"a": "x\ufffdy"}
    assert request.warnings and "surrogate" in request.warnings[0]


def test_malformed_json_is_still_refused_saying_where() -> None:
    with pytest.raises(Rejected) as refused:
        decode_json(Request(body=b'{"a": [}', content_type="application/json"))

    assert refused.value.status == 400
    assert refused.value.reason.startswith("malformed JSON: Expecting value: line 1 column 8")
