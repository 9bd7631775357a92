"""The ChatOps grammar as a pure function: every command, alias, reference form and refusal."""

from __future__ import annotations

import pytest

from warroom.commands import (
    SPECS,
    SURFACES,
    Command,
    ParseError,
    addressed_command,
    help_text,
    parse,
)


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
    for surface in SURFACES:
        seen: dict[str, str] = {}
        for spec in SPECS:
            if surface not in spec.surfaces:
                continue
            for phrase in (*spec.aliases, *spec.codes):
                assert seen.setdefault(phrase, spec.name) == spec.name, (surface, phrase)


@pytest.mark.parametrize("surface", ["sms", "chat"])
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
