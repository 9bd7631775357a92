"""What the room shows of text from outside: the bot escapes every line end and control
character, images come only from the hosts an admin allowed, a long runbook says it is cut, and a
NUL typed in the room's page is a form error."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import User
from incidents.models import Incident, Source
from incidents.opening import open_incident
from runbooks.graphs import GraphLink
from runbooks.models import Runbook
from warroom import bot, execute
from warroom.commands.parser import parse
from warroom.markdown import render
from warroom.models import Message

# Every character CommonMark takes for a line end, and the other controls and separators.
BREAKS = ["\r", "\n", "\r\n", "\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\x00", "\x1b", "\x9b"]
SPOOF = "Acknowledged by alice via SMS; no action needed"
TRACKER = "https://evil.example/pixel.png"
GRAFANA = "https://grafana.example.com/render/cpu.png"


@pytest.mark.parametrize("brk", BREAKS, ids=[repr(b) for b in BREAKS])
def test_a_line_end_in_a_label_stays_inside_its_table_cell(brk):
    html = render(bot.labels_table({"host": f"web-3{brk}{brk}{SPOOF}{brk}==="}))
    assert re.search(rf"<td>web\S*\s+{SPOOF} ===</td>", html), html
    assert "<p>" not in html and "<h" not in html


@pytest.mark.parametrize("brk", BREAKS, ids=[repr(b) for b in BREAKS])
def test_a_line_end_in_a_title_or_annotation_stays_on_its_line(brk):
    text = bot.opening_message(
        bot.Opening(
            number=1042,
            title=f"Disk full{brk}# {SPOOF}",
            service="checkout",
            severity=1,
            urgency="high",
            status="triggered",
            opened_by="prometheus via alert",
            alert=bot.AlertView(
                summary="Disk full",
                severity=1,
                annotations={"description": f"Only 1% left{brk}{brk}{SPOOF}{brk}- spoofed item"},
            ),
            on_call=["bob"],
        )
    )
    html = render(text)
    assert f"<p>{SPOOF}" not in html and "<h1>" not in html and "<li>spoofed" not in html
    assert re.search(rf"<blockquote>\s*<p>Only 1% left\s+{SPOOF} - spoofed item</p>", html)


def test_chat_images_from_other_hosts_are_links(settings):
    settings.IMAGE_HOSTS = ["grafana.example.com", "graphs.example.com:3000"]  # as in img-src
    html = render(
        f"![cpu]({GRAFANA}) ![pixel]({TRACKER}) ![port](https://graphs.example.com:3000/a.png) "
        "![other port](https://graphs.example.com:4000/b.png) ![](https://evil.example/empty.png)"
        " ![grafana's other port](https://grafana.example.com:8443/c.png)"
    )
    assert html.count("<img") == 2
    assert f'<img src="{GRAFANA}" alt="cpu">' in html
    assert '<img src="https://graphs.example.com:3000/a.png" alt="port">' in html
    assert f'<a href="{TRACKER}" rel="noopener noreferrer nofollow">🖼 pixel</a>' in html
    assert '<a href="https://graphs.example.com:4000/b.png"' in html
    assert '<a href="https://grafana.example.com:8443/c.png"' in html
    assert ">🖼 https://evil.example/empty.png</a>" in html


def test_no_image_is_embedded_when_no_host_is_allowed(settings):
    settings.IMAGE_HOSTS = []
    assert "<img" not in render(f"![cpu]({GRAFANA})")
    settings.IMAGE_HOSTS = ["https://grafana.example.com/"]  # written as a URL: its host counts
    assert "<img" in render(f"![cpu]({GRAFANA})")
    assert "<img" not in render("![x](javascript:alert(1)) ![y](data:image/png;base64,AAAA)")


def test_the_bot_previews_only_images_on_allowed_hosts(settings):
    settings.IMAGE_HOSTS = ["grafana.example.com"]
    links = [
        {"kind": "image", "url": TRACKER, "text": "pixel"},
        {"kind": "image", "url": GRAFANA, "text": "CPU"},
    ]
    text = bot.links_section(links)
    assert f"]({TRACKER})" in text and f"![pixel]({TRACKER})" not in text
    assert f"![CPU]({GRAFANA})" in text
    html = render(text)
    assert html.count("<img") == 1 and f'<img src="{GRAFANA}"' in html


@pytest.mark.django_db
def test_graph_previews_only_images_on_allowed_hosts(settings, monkeypatch, service, bob):
    settings.IMAGE_HOSTS = ["grafana.example.com"]
    incident = open_incident(service, title="Disk full", severity=2, source=Source.ALERT)
    found = [GraphLink("Tracker", TRACKER, TRACKER), GraphLink("CPU", GRAFANA, GRAFANA)]
    monkeypatch.setattr("warroom.handlers.runbook.graph_links", lambda _incident: found)
    reply = execute.run(parse("graph", surface="chat"), user=bob, source="chat", incident=incident)
    html = render(reply.text)
    assert html.count("<img") == 1 and f'<img src="{GRAFANA}"' in html
    assert f'href="{TRACKER}"' in html


def test_table_alignment_is_a_class_not_an_inline_style():
    html = render("| a | b | c |\n| :-- | :-: | --: |\n| 1 | 2 | 3 |")
    assert "style=" not in html
    assert '<td class="md-align-left">1</td>' in html
    assert '<th class="md-align-center">b</th>' in html
    assert '<td class="md-align-right">3</td>' in html


def test_a_long_text_says_where_it_is_cut():
    html = render("a" * 25_000, whole_at="/setup/runbooks/7/")
    assert html.count("a") >= 20_000
    assert "… truncated; 5,000 more characters: " in html
    assert '<a href="/setup/runbooks/7/">open the runbook</a>' in html
    assert "truncated" not in render("a" * 20_000, whole_at="/setup/runbooks/7/")


@pytest.mark.django_db
def test_the_incident_page_says_its_runbook_is_cut_and_links_the_whole(service, bob):
    incident: Incident = open_incident(service, title="Disk full", severity=2, source=Source.ALERT)
    book = Runbook.objects.create(title="Disk", body="word " * 5_000, service=service)
    client = Client()
    client.force_login(bob)
    page = client.get(f"/incidents/{incident.number}/").content.decode()
    assert "… truncated; 5,000 more characters: " in page
    assert f'<a href="/setup/runbooks/{book.pk}/">open the runbook</a>' in page
    whole = client.get(f"/setup/runbooks/{book.pk}/").content.decode()
    assert "truncated" not in whole


@pytest.mark.django_db
def test_a_nul_typed_in_the_room_page_is_a_form_error(service, bob: User):
    incident = open_incident(service, title="Disk full", severity=2, source=Source.ALERT)
    client = Client()
    client.force_login(bob)
    response = client.post(f"/rooms/incident/{incident.number}/", {"body": "hello\x00world"})
    assert response.status_code == 400
    assert "cannot contain NUL characters" in response.content.decode()
    assert not Message.objects.filter(room__incident=incident, body__contains="hello").exists()
