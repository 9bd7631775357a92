"""User regexes run on RE2: linear time whatever the pattern, refused when RE2 cannot run them."""

from __future__ import annotations

import pytest

from alerts.matchers import Matcher, MatcherError, matcher_from_dict
from alerts.models import Silence

CATASTROPHIC = "(.+.+)+!"


def test_a_catastrophic_pattern_runs_in_linear_time_on_the_longest_label():
    matcher = matcher_from_dict({"label": "alertname", "op": "=~", "value": CATASTROPHIC})
    # On Python's re, 40 characters take hours; a label may hold 4,096.
    assert not matcher.matches({"alertname": "a" * 4096})
    assert matcher.matches({"alertname": "ab!"})


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"(a)\1", "invalid escape sequence: \\1 (patterns run on RE2"),
        ("(?=db)db-1", "invalid perl operator: (?= (patterns run on RE2"),
        ("a{1000}{1000}", "bad repetition operator"),
        ("db-(", "missing ): db-("),
    ],
)
def test_what_re2_cannot_run_is_refused_with_the_reason(pattern, why):
    with pytest.raises(MatcherError, match="invalid regex for 'host'") as refused:
        matcher_from_dict({"label": "host", "op": "=~", "value": pattern})
    assert why in str(refused.value)


def test_the_usual_syntax_works_as_in_alertmanager():
    for pattern, text in [
        (r"db-\d+", "db-12"),
        ("(?i)checkout", "CheckOut"),
        ("(?P<env>prod|staging)-.*", "prod-eu"),
        ("a|b", "b"),
    ]:
        assert Matcher("x", "=~", pattern).matches({"x": text}), pattern
    assert not Matcher("x", "=~", "db").matches({"x": "db-1"})  # anchored at both ends
    assert Matcher("x", "!~", "db").matches({"x": "db-1"})


def test_a_stored_pattern_re2_cannot_run_matches_nothing(service, caplog):
    # Saved before matchers ran on RE2: it neither silences nor fails processing.
    Silence.objects.bulk_create(
        [
            Silence(
                matchers=[{"label": "host", "op": "!~", "value": r"(a)\1"}],
                starts_at="2020-01-01T00:00:00Z",
                ends_at="2099-01-01T00:00:00Z",
            )
        ]
    )
    assert not Matcher("host", "!~", r"(a)\1").matches({"host": "db-1"})
    assert "cannot run, so it matches nothing" in caplog.text
