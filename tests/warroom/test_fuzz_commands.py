"""The war-room command grammar, fed hostile text by Hypothesis (issue 13): any text, on every
surface, parses to a Command or a ParseError that says what to do, never an exception; help on
whatever a `help` command names, and the addressing rule, never fail either.

Two kinds of text: anything at all, and words of the grammar itself (every alias and keypad
code, incident references, mentions, durations, matchers, quotes) strung together in any order,
which reaches the argument readers that random text rarely gets past.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.helpers.fuzz import fuzz_settings
from warroom.commands.addressing import addressed_command
from warroom.commands.help import help_markdown, help_text
from warroom.commands.parser import ParseError, parse
from warroom.commands.specs import SPECS, SURFACE_NAMES, Command

SURFACES = st.sampled_from(sorted(SURFACE_NAMES))
_VOCABULARY = sorted(
    {phrase for spec in SPECS for phrase in (*spec.aliases, *spec.codes)}
    | {"#1042", "1042", "incident", "#", "@bob", "@", "me", "to", "for", "all", "confirm", "2h",
       "30m", "90d", "0s", "1w", "env=prod", 'job!="api"', "team=~db.*", "x=~(", "=", "sev",
       "P1", '"', "'", "“quoted”", "--", "?", "/", "@muster", "\x00", "\u202e", "9" * 30}
)  # fmt: skip
GRAMMAR_TEXT = st.lists(
    st.one_of(st.sampled_from(_VOCABULARY), st.text(max_size=6)), min_size=1, max_size=8
).map(" ".join)
TEXT = st.one_of(st.text(), GRAMMAR_TEXT)


@given(text=TEXT, surface=SURFACES)
@fuzz_settings(ci_examples=400)
def test_any_text_parses_to_a_command_or_says_what_is_wrong(text: str, surface: str) -> None:
    result = parse(text, surface=surface)
    if isinstance(result, ParseError):
        assert result.message.strip()
        return
    assert isinstance(result, Command)
    if result.name == "help":
        assert help_text(result.topic, surface=surface).strip()
        assert help_markdown(result.topic, surface=surface).strip()


@given(text=TEXT)
@fuzz_settings(ci_examples=200)
def test_any_chat_message_is_a_command_or_conversation(text: str) -> None:
    command = addressed_command(text)
    if command is not None:
        assert isinstance(parse(command, surface="chat"), Command | ParseError)
