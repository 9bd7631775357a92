"""Payload templates: placeholders filled from the incident and labels, never anything else."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest

from runbooks.templating import (
    FORM,
    JSON,
    TEXT,
    Context,
    MissingValues,
    TemplateError,
    check_template,
    render,
)

CONTEXT = Context(
    incident={"number": 1042, "title": "Disk full", "severity": 2, "service": "checkout"},
    labels={"instance": "db-1:9100", "job": "node"},
    annotations={"summary": "95% used"},
    run={"requested_by": "bob"},
)


def test_json_placeholders_fill_strings_and_a_lone_number_stays_a_number():
    body = render(
        '{"host": "{{labels.instance}}", "n": "{{incident.number}}", '
        '"text": "#{{ incident.number }} on {{incident.service}} by {{run.requested_by}}", '
        '"list": ["{{labels.job}}", 3], "{{labels.job}}": true}',
        JSON,
        CONTEXT,
    )
    assert json.loads(body) == {
        "host": "db-1:9100",
        "n": 1042,
        "text": "#1042 on checkout by bob",
        "list": ["node", 3],
        "node": True,
    }


def test_a_label_value_cannot_break_out_of_its_json_string():
    hostile = Context(labels={"instance": 'x", "admin": true, "y": "\\'})
    body = render('{"host": "{{labels.instance}}", "safe": 1}', JSON, hostile)
    assert json.loads(body) == {"host": 'x", "admin": true, "y": "\\', "safe": 1}


def test_a_form_payload_is_url_encoded():
    hostile = Context(labels={"instance": "db&admin=1"})
    body = render('{"host": "{{labels.instance}}", "count": 2}', FORM, hostile)
    assert parse_qs(body) == {"host": ["db&admin=1"], "count": ["2"]}


def test_a_text_payload_is_filled_as_written():
    assert render("restart {{labels.instance}} for #{{incident.number}}", TEXT, CONTEXT) == (
        "restart db-1:9100 for #1042"
    )


def test_missing_values_are_named_and_nothing_is_rendered():
    with pytest.raises(MissingValues) as raised:
        render('{"a": "{{labels.pod}}", "b": "{{annotations.runbook}}"}', JSON, CONTEXT)
    assert raised.value.names == ["annotations.runbook", "labels.pod"]
    assert "labels.pod" in str(raised.value)


def test_an_empty_template_sends_an_empty_body():
    assert render("", JSON, CONTEXT) == ""


@pytest.mark.parametrize(
    ("template", "content_type", "fragment"),
    [
        ('{"host": {{labels.instance}}}', JSON, "not valid JSON"),
        ('{"host": "{{instance}}"}', JSON, "unknown placeholder {{instance}}"),
        ('{"host": "{{os.environ}}"}', JSON, "unknown placeholder"),
        ('{"x": "{{incident.__class__}}"}', JSON, "the incident has incident.number"),
        ('{"x": "{{run.id}}"}', JSON, "run.requested_by"),
        ('["a", "b"]', FORM, "a JSON object of fields"),
        ('{"nested": {"a": 1}}', FORM, "a JSON object of fields"),
        ("x", "application/xml", "content type must be one of"),
        ("a" * 20_001, TEXT, "at most 20000 characters"),
        ("nul\x00", TEXT, "NUL"),
    ],
)
def test_bad_templates_are_refused_saying_why(template, content_type, fragment):
    with pytest.raises(TemplateError) as raised:
        check_template(template, content_type)
    assert fragment in str(raised.value)


def test_a_rendered_payload_has_a_size_limit():
    big = Context(labels={"blob": "x" * 4096})
    template = json.dumps({f"k{i}": "{{labels.blob}}" for i in range(20)})
    with pytest.raises(TemplateError, match="at most 65536"):
        render(template, JSON, big)


def test_an_unclosed_placeholder_is_just_text():
    assert render("echo {{labels.x} done", TEXT, CONTEXT) == "echo {{labels.x} done"
