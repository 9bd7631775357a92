"""The ChatOps grammar as a pure function: every command, alias, reference form and refusal."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerts.matchers import Matcher
from warroom.commands.addressing import addressed_command
from warroom.commands.args import parse_duration
from warroom.commands.help import help_markdown, help_text
from warroom.commands.parser import ParseError, parse
from warroom.commands.specs import CHAT_SURFACES, SPECS, SURFACE_NAMES, Command


def cmd(name: str, incident: int | None = None, **fields) -> Command:
    return Command(name=name, incident=incident, **fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # every alias of every verb, with and without an incident
        ("ack", cmd("acknowledge")),
        ("acknowledge", cmd("acknowledge")),
        ("a", cmd("acknowledge")),
        ("resolve", cmd("resolve")),
        ("res", cmd("resolve")),
        ("r", cmd("resolve")),
        ("escalate", cmd("escalate")),
        ("esc", cmd("escalate")),
        ("ack 1042", cmd("acknowledge", 1042)),
        ("acknowledge 1042", cmd("acknowledge", 1042)),
        ("a 1042", cmd("acknowledge", 1042)),
        ("res 1042", cmd("resolve", 1042)),
        ("r 1042", cmd("resolve", 1042)),
        ("esc 1042", cmd("escalate", 1042)),
        ("escalate 1042", cmd("escalate", 1042)),
        # the three ways to name an incident
        ("ack incident 778467", cmd("acknowledge", 778467)),
        ("ack incident 12", cmd("acknowledge", 12)),
        ("ack incident #12", cmd("acknowledge", 12)),
        ("ack #12", cmd("acknowledge", 12)),
        ("ack #778467", cmd("acknowledge", 778467)),
        ("ack 778467", cmd("acknowledge", 778467)),
        # case, whitespace and punctuation around it do not matter
        ("ACK 1042", cmd("acknowledge", 1042)),
        ("  Ack   Incident   1042  ", cmd("acknowledge", 1042)),
        ("ack!", cmd("acknowledge")),
        ("ack?", cmd("acknowledge")),
        ("Ack #1042.", cmd("acknowledge", 1042)),
        ("ack (1042)", cmd("acknowledge", 1042)),
        ("ack, 1042", cmd("acknowledge", 1042)),
        ("/ack 1042", cmd("acknowledge", 1042)),
        ("“ack 1042”", cmd("acknowledge", 1042)),
        ("ack\u00a01042", cmd("acknowledge", 1042)),
        # resolve takes a note, spelled as written
        ("resolve 1042 Cleared /var/log", cmd("resolve", 1042, text="Cleared /var/log")),
        ("resolve 1042 - rebooted db-1.", cmd("resolve", 1042, text="rebooted db-1.")),
        ("r incident 99: False alarm!", cmd("resolve", 99, text="False alarm!")),
        ("resolve rolled back v2", cmd("resolve", text="rolled back v2")),
        ("resolve 3 nodes rebooted", cmd("resolve", text="3 nodes rebooted")),
        # ack all
        ("ack all", cmd("acknowledge_all")),
        ("ACK ALL", cmd("acknowledge_all")),
        ("acknowledge all", cmd("acknowledge_all")),
        # help
        ("help", cmd("help")),
        ("HELP", cmd("help")),
        ("?", cmd("help")),
        ("help ack", cmd("help", topic="acknowledge")),
        ("help r", cmd("help", topic="resolve")),
        ("help ack all", cmd("help", topic="acknowledge_all")),
        ("help me please", cmd("help")),
    ],
)
@pytest.mark.parametrize("surface", ["chat", "sms"])
def test_commands_parse_on_every_text_surface(text, expected, surface):
    assert parse(text, surface=surface) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", cmd("acknowledge")),
        ("6", cmd("resolve")),
        ("5", cmd("escalate")),
        ("4 1042", cmd("acknowledge", 1042)),
        ("6 #1042", cmd("resolve", 1042)),
        ("6 1042 fixed it", cmd("resolve", 1042, text="fixed it")),
        ("5 incident 7", cmd("escalate", 7)),
        (" 4. ", cmd("acknowledge")),
    ],
)
@pytest.mark.parametrize("surface", ["sms", "voice"])
def test_short_codes_work_by_phone(text, expected, surface):
    assert parse(text, surface=surface) == expected


@pytest.mark.parametrize("text", ["4", "6 1042", "5"])
def test_short_codes_are_not_commands_in_chat(text):
    result = parse(text, surface="chat")
    assert isinstance(result, ParseError)
    assert "Unknown command" in result.message


STOP_WORDS = ["STOP", "stop", "Stop", "STOPALL", "unsubscribe", "CANCEL", "end", "Quit", " stop. "]
START_WORDS = ["START", "start", "YES", "yes", "UNSTOP", "Unstop"]


@pytest.mark.parametrize("text", STOP_WORDS)
def test_twilio_opt_out_keywords_stop_by_sms(text):
    assert parse(text, surface="sms") == cmd("stop")


@pytest.mark.parametrize("text", START_WORDS)
def test_twilio_opt_in_keywords_start_by_sms(text):
    assert parse(text, surface="sms") == cmd("start")


@pytest.mark.parametrize("text", ["STOP", "start", "yes", "cancel"])
@pytest.mark.parametrize("surface", ["chat", "voice", "slack"])
def test_opt_out_keywords_mean_nothing_off_sms(text, surface):
    assert isinstance(parse(text, surface=surface), ParseError)


def test_opt_out_keyword_counts_only_as_the_whole_message():
    result = parse("stop paging me", surface="sms")
    assert isinstance(result, ParseError)
    assert result.command == "stop"


@pytest.mark.parametrize(
    ("text", "suggestion", "says"),
    [
        ("akc 1042", "ack", 'Unknown command "akc". Did you mean "ack"? e.g. ack 1042'),
        ("acknowlege", "ack", 'Did you mean "ack"?'),
        ("reslove 1042", "resolve", 'Did you mean "resolve"?'),
        ("escalte", "escalate", 'Did you mean "escalate"?'),
        ("hlep", "help", 'Did you mean "help"?'),
        ("ack al", "ack all", 'Did you mean "ack all"?'),
        (
            "ack 1042 on it",
            "ack",
            '"ack" takes an incident number; not sure what "on it" means. e.g. ack 1042',
        ),
        ("esc 1042 1043", "escalate", 'not sure what "1043" means'),
    ],
)
def test_mistyped_commands_suggest_the_closest(text, suggestion, says):
    result = parse(text, surface="chat")
    assert isinstance(result, ParseError)
    assert result.suggestion == suggestion
    assert says in result.message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("ack 42", "For incident 42, write #42 or incident 42."),
        ("ack incident", '"incident" needs a number after it, e.g. incident 1042.'),
        ("resolve incident foo", '"incident" needs a number after it'),
        ("esc #1234567890123456789012", "is too long to be an incident number"),
    ],
)
def test_bad_incident_references_say_what_is_wrong(text, says):
    result = parse(text, surface="sms")
    assert isinstance(result, ParseError)
    assert says in result.message
    assert "Reply HELP" in result.message


@pytest.mark.parametrize("text", ["", "   ", "!!!", "..."])
def test_nothing_to_parse_points_at_help(text):
    result = parse(text, surface="chat")
    assert isinstance(result, ParseError)
    assert result.message == 'Nothing to do. Try "help".'


def test_text_that_is_no_command_lists_the_commands():
    result = parse("ok thanks", surface="sms")
    assert isinstance(result, ParseError)
    assert result.suggestion is None
    assert result.message == (
        'Unknown command "ok". Commands: ack, ack all, resolve, escalate, help. '
        "Reply HELP for the commands."
    )


def test_an_unknown_surface_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown surface"):
        parse("ack", surface="pigeon")


# --- addressing in chat ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("/ack", "ack"),
        ("/ack 1042", "ack 1042"),
        ("  / resolve 1042 fixed  ", "resolve 1042 fixed"),
        ("@muster ack 1042", "ack 1042"),
        ("@Muster: ack 1042", "ack 1042"),
        ("@muster, help", "help"),
        ("@muster", ""),
        ("ack incident 778467", "ack incident 778467"),
        ("Ack incident #778467.", "Ack incident #778467."),
        ("resolve incident 1042", "resolve incident 1042"),
        ("esc incident 1042", "esc incident 1042"),
        ("acknowledge incident 1042!", "acknowledge incident 1042!"),
    ],
)
def test_addressed_messages_are_commands(text, command):
    assert addressed_command(text) == command


@pytest.mark.parametrize(
    "text",
    [
        "we should ack this",
        "ack",
        "ack 1042",
        "ack incident 778467 now",
        "please ack incident 778467",
        "help",
        "@musterbot ack 1042",
        "email muster@example.com",
        "",
        "resolve incident",
        "incident 1042 looks bad",
    ],
)
def test_everything_else_in_chat_is_conversation(text):
    assert addressed_command(text) is None


def test_addressed_text_parses():
    text = addressed_command("@muster resolve 1042 rolled back")
    assert parse(text, surface="chat") == cmd("resolve", 1042, text="rolled back")


# --- the table and its help ------------------------------------------------------------------


def test_every_command_has_help_with_an_example_that_parses():
    for spec in SPECS:
        assert spec.summary and spec.example
        surface = next(iter(sorted(spec.surfaces)))
        parsed = parse(spec.example, surface=surface)
        assert isinstance(parsed, Command) and parsed.name == spec.name, spec.example


def test_no_phrase_means_two_commands_on_one_surface():
    for surface in SURFACE_NAMES:
        seen: dict[str, str] = {}
        for spec in SPECS:
            if surface not in spec.surfaces:
                continue
            for phrase in (*spec.aliases, *spec.codes):
                assert seen.setdefault(phrase, spec.name) == spec.name, (surface, phrase)


# Chat has more commands than fit 160 characters; its help is help_markdown's table (below).
@pytest.mark.parametrize("surface", ["sms"])
def test_general_help_fits_one_sms(surface):
    text = help_text(surface=surface)
    assert len(text) <= 160
    assert "ack (N)" in text and "resolve (N) (note)" in text and "ack all" in text
    assert text.isascii()
    assert not set(text) & set("[]{}~^|\\")  # GSM-7 extension characters cost two


def test_help_on_each_command_fits_one_sms():
    for spec in SPECS:
        for surface in spec.surfaces:
            text = help_text(spec.name, surface=surface)
            assert len(text) <= 160 and text.isascii(), text
            assert not set(text) & set("[]{}~^|\\")


def test_help_by_phone_names_the_short_codes():
    assert "4 or ack (N)" in help_text(surface="sms")
    assert help_text(surface="voice") == "Press 4 to acknowledge, 6 to resolve, 5 to escalate."


def test_help_on_one_command_gives_its_example_and_aliases():
    assert help_text("acknowledge", surface="sms") == (
        "ack (N): acknowledge an incident (paging stops; it is yours). e.g. ack 1042. "
        "Also: acknowledge, a, 4."
    )
    assert "Also: acknowledge, a." in help_text("acknowledge", surface="chat")


# --- the chat commands -----------------------------------------------------------------------


def m(label: str, op: str, value: str) -> Matcher:
    return Matcher(label, op, value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # assign: a person, by @mention, bare name or "me"; the incident optional and first
        ("assign @bob", cmd("assign", user="bob")),
        ("assign @Bob.", cmd("assign", user="Bob")),
        ("assign to @bob", cmd("assign", user="bob")),
        ("assign bob", cmd("assign", user="bob")),
        ("reassign me", cmd("assign", user="me")),
        ("assign ME", cmd("assign", user="me")),
        ("assign #1042 @bob", cmd("assign", 1042, user="bob")),
        ("assign 1042 to @j.doe-2", cmd("assign", 1042, user="j.doe-2")),
        ("assign incident 12 @bob", cmd("assign", 12, user="bob")),
        # page: a person, or a schedule (or person) by name, the rest of the text
        ("page @bob", cmd("page", user="bob")),
        ("page @bob!", cmd("page", user="bob")),
        ("page #1042 @bob", cmd("page", 1042, user="bob")),
        ("page DBA primary", cmd("page", target="DBA primary")),
        ('page "DBA primary"', cmd("page", target="DBA primary")),
        ("page 1042 dba", cmd("page", 1042, target="dba")),
        ("page bob", cmd("page", target="bob")),
        # oncall: everything, or a schedule or service
        ("oncall", cmd("oncall")),
        ("on call", cmd("oncall")),
        ("on-call", cmd("oncall")),
        ("who is on call?", cmd("oncall")),
        ("oncall checkout", cmd("oncall", target="checkout")),
        ("oncall for DBA primary", cmd("oncall", target="DBA primary")),
        ("who is on call for checkout", cmd("oncall", target="checkout")),
        # status updates and notes: free text, spelled as written
        (
            "status Failover done; checkout is back",
            cmd("status", text="Failover done; checkout is back"),
        ),
        ("update #1042 Back to normal.", cmd("status", 1042, text="Back to normal.")),
        ("status incident 12: mitigated", cmd("status", 12, text="mitigated")),
        ("note db-1 disk is 98% full", cmd("note", text="db-1 disk is 98% full")),
        ("note 3 nodes down", cmd("note", text="3 nodes down")),
        ("comment #1042 see PR 77", cmd("note", 1042, text="see PR 77")),
        # severity: 1 to 5, the incident before or after
        ("sev 2", cmd("severity", severity=2)),
        ("severity 1", cmd("severity", severity=1)),
        ("sev p3", cmd("severity", severity=3)),
        ("sev sev4", cmd("severity", severity=4)),
        ("sev #1042 2", cmd("severity", 1042, severity=2)),
        ("sev 1042 5", cmd("severity", 1042, severity=5)),
        ("sev 2 #1042", cmd("severity", 1042, severity=2)),
        ("sev 2 incident 7", cmd("severity", 7, severity=2)),
        # incidents
        ("incidents", cmd("incidents")),
        ("open incidents", cmd("incidents")),
        # subscriptions
        ("subscribe", cmd("subscribe")),
        ("sub email", cmd("subscribe", channel="email")),
        ("subscribe e-mail", cmd("subscribe", channel="email")),
        ("subscribe chat", cmd("subscribe", channel="chat")),
        ("subscribe #1042 email", cmd("subscribe", 1042, channel="email")),
        ("unsubscribe", cmd("unsubscribe")),
        ("unsub chat", cmd("unsubscribe", channel="chat")),
        ("unsubscribe incident 1042", cmd("unsubscribe", 1042)),
        # runbooks, graphs, actions
        ("runbook", cmd("runbook")),
        ("rb", cmd("runbook")),
        ("runbooks #1042", cmd("runbook", 1042)),
        ("graph", cmd("graph")),
        ("graphs 1042", cmd("graph", 1042)),
        ("dashboards", cmd("graph")),
        ("run", cmd("run")),
        ("run restart-db", cmd("run", action="restart-db")),
        ("run restart-db confirm", cmd("run", action="restart-db", confirm=True)),
        ("run Flush_Cache.v2 CONFIRM", cmd("run", action="Flush_Cache.v2", confirm=True)),
        ("run `restart-db`", cmd("run", action="restart-db")),
        # help knows every command
        ("help silence", cmd("help", topic="silence")),
        ("help on call", cmd("help", topic="oncall")),
        ("help unsubscribe", cmd("help", topic="unsubscribe")),
        ("help sev", cmd("help", topic="severity")),
        ("help run", cmd("help", topic="run")),
    ],
)
@pytest.mark.parametrize("surface", sorted(CHAT_SURFACES))
def test_chat_commands_parse(text, expected, surface):
    assert parse(text, surface=surface) == expected


@pytest.mark.parametrize(
    ("text", "matchers", "duration", "comment"),
    [
        (
            'silence alertname=DiskFull instance=~"db-.*" for 2h',
            (m("alertname", "=", "DiskFull"), m("instance", "=~", "db-.*")),
            timedelta(hours=2),
            "",
        ),
        ("silence job=db for 30m", (m("job", "=", "db"),), timedelta(minutes=30), ""),
        ("mute job=db for 1d", (m("job", "=", "db"),), timedelta(days=1), ""),
        ("silence job=db for 1h30m", (m("job", "=", "db"),), timedelta(minutes=90), ""),
        ("silence job=db for 1h 30m", (m("job", "=", "db"),), timedelta(minutes=90), ""),
        ("silence job=db for 2 hours", (m("job", "=", "db"),), timedelta(hours=2), ""),
        ("silence job=db FOR 90 Minutes", (m("job", "=", "db"),), timedelta(minutes=90), ""),
        ("silence job=db for 1w", (m("job", "=", "db"),), timedelta(weeks=1), ""),
        ("silence job=db for 30d", (m("job", "=", "db"),), timedelta(days=30), ""),
        (
            'silence env!=dev job!~"test.*" team=db for 2h',
            (m("env", "!=", "dev"), m("job", "!~", "test.*"), m("team", "=", "db")),
            timedelta(hours=2),
            "",
        ),
        (
            'silence {alertname="DiskFull", job="db"} for 2h',
            (m("alertname", "=", "DiskFull"), m("job", "=", "db")),
            timedelta(hours=2),
            "",
        ),
        (  # chat apps curl the quotes
            "silence instance=~“db-.*” for 2h",
            (m("instance", "=~", "db-.*"),),
            timedelta(hours=2),
            "",
        ),
        (  # "for" inside a quoted value is part of the value
            'silence summary="waiting for disk" job=db for 2h',
            (m("summary", "=", "waiting for disk"), m("job", "=", "db")),
            timedelta(hours=2),
            "",
        ),
        (
            'silence msg="say \\"for\\" twice" for 2h',
            (m("msg", "=", 'say "for" twice'),),
            timedelta(hours=2),
            "",
        ),
        (
            "silence job=db for 2h: DB migration, see CHG-12",
            (m("job", "=", "db"),),
            timedelta(hours=2),
            "DB migration, see CHG-12",
        ),
    ],
)
def test_silence_parses_matchers_a_duration_and_a_comment(text, matchers, duration, comment):
    assert parse(text, surface="chat") == cmd(
        "silence", matchers=matchers, duration=duration, text=comment
    )


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("silence for 2h", '"silence" needs label matchers like alertname=DiskFull, e.g.'),
        ("silence job=db", '"silence" needs how long, as "for 2h", e.g.'),
        ("silence job=db for", "For how long? e.g. for 2h."),
        ("silence job=db for ever", '"ever" is not a duration; write it like 30m, 2h, 1d'),
        ("silence job=db for 2x", '"2x" is not a duration'),
        ("silence job=db for 1h30mfoo", '"1h30mfoo" is not a duration'),
        ("silence job=db for 0m", "A silence lasts at least a minute."),
        ("silence DiskFull for 2h", "Matchers: cannot read a matcher at 'DiskFull'."),
        ('silence job=~"(" for 2h', "Matchers: invalid regex for 'job'"),
    ],
)
def test_bad_silences_say_what_is_wrong(text, says):
    result = parse(text, surface="chat")
    assert isinstance(result, ParseError)
    assert says in result.message
    assert (result.command, result.suggestion) == ("silence", "silence")
    assert result.message.endswith('Try "help".')


@pytest.mark.parametrize(
    ("text", "command", "says"),
    [
        ("assign", "assign", '"assign" needs a person (@name, or me), e.g. assign @bob.'),
        ("assign #1042", "assign", '"assign" needs a person'),
        ("assign b*b", "assign", '"b*b" is not a username; write @ and their name.'),
        ("page", "page", '"page" needs a person or a schedule, e.g. page @bob.'),
        ("page @bob @carol", "page", "Page one person or one schedule at a time"),
        ("status", "status", '"status" needs the update\'s text, e.g. status Failover done'),
        ("status #1042", "status", "needs the update's text"),
        ("note", "note", '"note" needs the note\'s text'),
        ("note 42", "note", "For incident 42, write #42 or incident 42."),
        ("sev", "severity", '"sev" needs a severity from 1 to 5, e.g. sev 2.'),
        ("sev 1042", "severity", '"sev" needs a severity from 1 to 5'),
        ("sev 0", "severity", "Severity is 1 (most severe) to 5; 0 is not."),
        ("sev 6", "severity", "Severity is 1 (most severe) to 5; 6 is not."),
        ("sev 12", "severity", "Severity is 1 (most severe) to 5; 12 is not."),
        ("sev high", "severity", "Severity is a number from 1 (most severe) to 5, e.g. sev 2."),
        ("sev #1042 2 #1043", "severity", "Name one an incident number, not two."),
        ("run $(reboot)", "run", "is not an action name; runbook lists them."),
    ],
)
def test_missing_and_bad_arguments_say_what_is_wrong(text, command, says):
    result = parse(text, surface="chat")
    assert isinstance(result, ParseError)
    assert says in result.message
    assert result.command == command
    assert result.suggestion == text.split()[0]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "assign @bob now",
            '"assign" takes an incident number and a person (@name, or me); '
            'not sure what "now" means. e.g. assign @bob',
        ),
        ("sev 2 3", "For incident 3, write #3 or incident 3."),
        ("incidents now", '"incidents" takes nothing; not sure what "now" means.'),
        ("subscribe sms", 'not sure what "sms" means. e.g. subscribe email'),
        ("run restart-db now", 'not sure what "now" means'),
        ("runbook please", 'not sure what "please" means'),
    ],
)
def test_leftover_words_are_refused(text, says):
    result = parse(text, surface="chat")
    assert isinstance(result, ParseError)
    assert says in result.message


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("asign @bob", "assign"),
        ("pgae @bob", "page"),
        ("oncal", "oncall"),
        ("stauts all good", "status"),
        ("ntoe x", "note"),
        ("silnce job=db for 2h", "silence"),
        ("incident", "incidents"),
        ("incidnets", "incidents"),
        ("subscibe", "subscribe"),
        ("unsubscibe", "unsubscribe"),
        ("runbok", "runbook"),
        ("grpah", "graph"),
        ("severty 2", "sev"),
    ],
)
def test_mistyped_chat_commands_suggest_the_closest(text, suggestion):
    result = parse(text, surface="chat")
    assert isinstance(result, ParseError)
    assert result.suggestion == suggestion
    assert f'Did you mean "{suggestion}"? e.g. ' in result.message


CHAT_ONLY = [
    "assign @bob",
    "page @bob",
    "oncall",
    "status all good",
    "note x",
    "sev 2",
    "silence job=db for 2h",
    "incidents",
    "subscribe",
    "runbook",
    "graph",
    "run restart-db",
]


@pytest.mark.parametrize("text", CHAT_ONLY)
@pytest.mark.parametrize("surface", ["sms", "voice"])
def test_chat_commands_are_not_phone_commands(text, surface):
    result = parse(text, surface=surface)
    assert isinstance(result, ParseError)
    assert "Unknown command" in result.message or result.suggestion is not None


def test_unsubscribe_by_sms_still_opts_out():
    assert parse("unsubscribe", surface="sms") == cmd("stop")
    assert parse("unsubscribe", surface="chat") == cmd("unsubscribe")


def test_phone_help_is_unchanged_by_the_chat_commands():
    assert help_text(surface="sms") == (
        "Commands: 4 or ack (N); ack all; 6 or resolve (N) (note); 5 or escalate (N); "
        "help (command). N: an incident number, else your latest page. STOP ends texts."
    )
    assert parse("help silence", surface="sms") == cmd("help")


def test_chat_help_is_a_table_of_every_command_with_its_example():
    table = help_markdown(surface="chat")
    lines = table.splitlines()
    assert lines[0] == "| Command | What it does | Example |"
    listed = [s for s in SPECS if s.listed and "chat" in s.surfaces]
    assert len(listed) == 20
    for spec in listed:
        assert f"| `{spec.usage}` | {spec.summary} | `{spec.example}` |" in lines
    assert "STOP" not in table  # SMS only
    assert "| `silence (matchers) for (duration) (comment)` |" in table


def test_chat_help_on_one_command_is_its_line():
    assert help_markdown("page") == help_text("page", surface="chat")
    assert help_markdown("page").startswith("page (N) (@user or schedule): page a person")


def test_plain_chat_help_names_every_chat_command():
    text = help_text(surface="chat")
    for spec in SPECS:
        if spec.listed and "chat" in spec.surfaces:
            assert spec.usage in text
    assert text.endswith("else this room's incident.")


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("runbook incident 1042", "runbook incident 1042"),
        ("graph incident #1042", "graph incident #1042"),
        ("subscribe incident 1042", "subscribe incident 1042"),
        ("unsubscribe incident 1042.", "unsubscribe incident 1042."),
        ("/page @bob", "page @bob"),
        ("@muster silence job=db for 2h", "silence job=db for 2h"),
    ],
)
def test_chat_commands_are_addressed_like_the_others(text, command):
    assert addressed_command(text) == command


@pytest.mark.parametrize(
    "text",
    [
        # these need more than an incident, so "<verb> incident N" alone is conversation
        "status incident 1042",
        "note incident 1042",
        "assign incident 1042",
        "page incident 1042",
        "sev incident 1042",
        "silence incident 1042",
        "incidents",
        "oncall",
        "page @bob",
    ],
)
def test_chat_commands_need_addressing_unless_an_incident_is_all_they_take(text):
    assert addressed_command(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", (timedelta(minutes=30), 3)),
        ("2h and more", (timedelta(hours=2), 2)),
        ("1h30m", (timedelta(minutes=90), 5)),
        ("1d 2h 3m", (timedelta(days=1, hours=2, minutes=3), 8)),
        ("3 days", (timedelta(days=3), 6)),
        ("2hrs", (timedelta(hours=2), 4)),
        ("h", None),
        ("2x", None),
        ("2hx", None),
        ("1h30mx", None),
        ("2h30", None),
        ("", None),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


def test_a_command_is_a_value():
    a = parse('silence job=~"db.*" for 2h', surface="chat")
    b = parse('silence   job=~"db.*"   for   2h', surface="chat")
    assert a == b and hash(a) == hash(b)
