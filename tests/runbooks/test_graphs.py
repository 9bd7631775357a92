"""Graph links: templates filled with URL-encoded labels, plus the alerts' own http(s) links."""

from __future__ import annotations

import pytest

from incidents.models import Service
from runbooks.graphs import (
    GraphLink,
    GraphTemplateError,
    alert_links,
    check_url_template,
    fill,
    graph_links,
)
from runbooks.models import GraphTemplate

GRAFANA = "https://grafana.example.com/d/node?var-host={instance}&var-job={job}"


def test_label_values_are_url_encoded_into_the_template():
    url = fill(GRAFANA, {"instance": "db 1:9100/x?&#", "job": "node"})
    assert (
        url == "https://grafana.example.com/d/node?var-host=db%201%3A9100%2Fx%3F%26%23&var-job=node"
    )


def test_a_missing_or_empty_label_skips_the_template():
    assert fill(GRAFANA, {"instance": "db-1"}) is None
    assert fill(GRAFANA, {"instance": "db-1", "job": ""}) is None


@pytest.mark.parametrize(
    ("template", "fragment"),
    [
        ("https://{host}/d/node", "never the scheme or host"),
        ("https://grafana-{env}.example.com/d/node", "never the scheme or host"),
        ("{scheme}://grafana.example.com/", "absolute http"),
        ("javascript:alert({instance})", "absolute http"),
        ("ftp://files.example.com/{instance}", "absolute http"),
        ("/d/node?var-host={instance}", "absolute http"),
        ("https://grafana.example.com/d/node host={instance}", "absolute http"),
    ],
)
def test_bad_templates_are_refused(template, fragment):
    with pytest.raises(GraphTemplateError, match=fragment):
        check_url_template(template)


def test_a_good_template_is_accepted():
    assert check_url_template(GRAFANA) == GRAFANA


def test_only_graph_kinds_with_http_urls_survive_from_alert_links():
    links = alert_links(
        [
            {"kind": "generator", "url": "http://prometheus:9090/graph?g0.expr=up", "text": ""},
            {"kind": "panel", "url": "https://grafana.example.com/d/x?viewPanel=2", "text": "CPU"},
            {"kind": "image", "url": "https://grafana.example.com/render/x.png", "text": "CPU"},
            {"kind": "dashboard", "url": "javascript:alert(1)", "text": "evil"},
            {"kind": "graph", "url": "data:text/html,<script>", "text": "evil"},
            {"kind": "graph", "url": "ftp://x.example.com/g", "text": "evil"},
            {"kind": "runbook", "url": "https://wiki.example.com/rb", "text": "not a graph"},
            {"kind": "silence", "url": "https://am.example.com/silence", "text": "not a graph"},
            "https://not-an-object.example.com",
        ]
    )
    assert links == [
        GraphLink("Source graph", "http://prometheus:9090/graph?g0.expr=up"),
        GraphLink("CPU", "https://grafana.example.com/d/x?viewPanel=2"),
        GraphLink(
            "CPU",
            "https://grafana.example.com/render/x.png",
            "https://grafana.example.com/render/x.png",
        ),
    ]


def test_an_incidents_graphs_are_its_templates_then_its_alerts_links_deduplicated(
    make_incident, service
):
    GraphTemplate.objects.create(
        name="Everywhere", url_template="https://grafana.example.com/d/all?h={instance}"
    )
    GraphTemplate.objects.create(
        service=service,
        name="Host",
        url_template=GRAFANA,
        image_url_template="https://grafana.example.com/render/node.png?var-host={instance}",
        position=1,
    )
    GraphTemplate.objects.create(
        service=service, name="Needs pod", url_template="https://g.example.com/?p={pod}"
    )
    GraphTemplate.objects.create(
        service=Service.objects.create(name="search"),
        name="Other service",
        url_template="https://g.example.com/?h={instance}",
    )
    duplicate = "https://grafana.example.com/d/node?var-host=db-1&var-job=node"
    incident = make_incident(
        {"instance": "db-1", "job": "node"},
        {"instance": "db-2", "job": "node"},
        links=[
            {"kind": "panel", "url": duplicate, "text": "Same panel"},
            {"kind": "generator", "url": "http://prometheus:9090/graph", "text": ""},
            {"kind": "generator", "url": "javascript:alert(1)", "text": ""},
        ],
    )
    assert graph_links(incident) == [
        GraphLink("Host", duplicate, "https://grafana.example.com/render/node.png?var-host=db-1"),
        GraphLink("Everywhere", "https://grafana.example.com/d/all?h=db-1"),
        GraphLink("Source graph", "http://prometheus:9090/graph"),
    ]


def test_an_incident_without_alerts_or_templates_has_no_graphs(make_incident):
    assert graph_links(make_incident()) == []
