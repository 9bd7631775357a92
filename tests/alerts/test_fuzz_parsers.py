"""Every ingest parser, fed hostile input by Hypothesis (issue 13): any bytes, any JSON, and
real payloads with parts replaced give alerts or a clear error (Rejected: the body is not
JSON; PayloadError: not the format), never another exception. The alerts that come out keep
the promises of alerts.sources.base.NormalizedAlert, so storing them cannot fail either.

Pure: no database. The same bodies go through the real ingest views in test_fuzz_ingest.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from alerts.decoding import Rejected, Request, parse
from alerts.sources.base import NUL, STATUSES, NormalizedAlert, PayloadError
from alerts.sources.registry import PARSERS
from tests.helpers.fuzz import fuzz_settings
from tests.helpers.fuzz_payloads import JSON_VALUES, KINDS, bodies, payloads

OPSGENIE_PARAMS = st.fixed_dictionaries(
    {
        "action": st.one_of(st.sampled_from(["create", "close", "acknowledge"]), st.text()),
        "identifier": st.one_of(st.none(), st.text(max_size=40)),
        "identifier_type": st.one_of(st.just("alias"), st.text(max_size=10)),
        "new_key": st.just("0123456789abcdef0123456789abcdef"),
    }
)


def params_for(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return OPSGENIE_PARAMS if kind == "opsgenie" else st.just({})


def assert_well_formed(alerts: list[NormalizedAlert]) -> None:
    for alert in alerts:
        assert isinstance(alert.fingerprint, str) and alert.fingerprint
        assert alert.status in STATUSES
        assert isinstance(alert.summary, str) and NUL not in alert.summary
        assert alert.severity in range(1, 6)
        for mapping in (alert.labels, alert.annotations):
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())
            assert not any(NUL in k or NUL in v for k, v in mapping.items())
        for moment in (alert.starts_at, alert.ends_at):
            assert moment is None or (isinstance(moment, datetime) and moment.tzinfo is not None)
        assert alert.group_key is None or isinstance(alert.group_key, str)
        assert all(isinstance(w, str) for w in alert.warnings)


@given(kind=st.sampled_from(KINDS), data=st.data())
@fuzz_settings(ci_examples=150)
def test_any_body_gives_alerts_or_a_clear_refusal(kind: str, data: st.DataObject) -> None:
    body = data.draw(bodies(kind), label="body")
    content_type = data.draw(
        st.sampled_from(["application/json", "", "application/vnd+json; charset=utf-8"])
    )
    try:
        alerts = parse(
            kind, Request(body=body, content_type=content_type), data.draw(params_for(kind))
        )
    except (Rejected, PayloadError) as exc:
        assert str(exc)
    else:
        assert_well_formed(alerts)


@given(kind=st.sampled_from(KINDS), data=st.data())
@fuzz_settings(ci_examples=150)
def test_any_decoded_payload_gives_alerts_or_a_payload_error(
    kind: str, data: st.DataObject
) -> None:
    payload = data.draw(payloads(kind), label="payload")
    try:
        alerts = PARSERS[kind](payload, **data.draw(params_for(kind)))
    except PayloadError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    else:
        assert_well_formed(alerts)


@given(value=JSON_VALUES)
@fuzz_settings(ci_examples=50)
def test_a_payload_is_parsed_the_same_twice(value: Any) -> None:
    # The processor parses a stored body again after the answer: it must find the same alerts.
    for kind in KINDS:
        params = {"new_key": "k" * 32} if kind in ("opsgenie", "pagerduty") else {}
        try:
            first = PARSERS[kind](value, **params)
        except PayloadError:
            continue
        assert PARSERS[kind](value, **params) == first
