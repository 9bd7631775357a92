"""Parsing: text to the `Command` it asks for on a surface, or a `ParseError` saying what is
wrong and what to type instead (the closest command, by difflib)."""

from __future__ import annotations

import difflib
import re
import string
from dataclasses import dataclass

from warroom.commands.args import BadArgument, Word, quote_typed
from warroom.commands.specs import (
    PHONE_SURFACES,
    SPECS,
    SURFACE_NAMES,
    Command,
    Spec,
    listed_specs,
    match_spec,
    phrases,
)


@dataclass(frozen=True)
class ParseError:
    """Text that is not a command; `message` says what was wrong and what to type instead."""

    message: str
    suggestion: str | None = None  # the closest valid command, as people type it
    command: str | None = None  # the command recognised, when only its arguments were wrong

    def __str__(self) -> str:
        return self.message


# Surrounding punctuation is noise ("ack!", "(1042)", "/ack"), but "#" marks an incident.
_STRIP = string.punctuation.replace("#", "") + "“”‘’«»…"


def _words(text: str) -> list[Word]:
    words = []
    for match in re.finditer(r"\S+", text):
        norm = match.group().strip(_STRIP).lower()
        if not norm and not words and set(match.group()) == {"?"}:
            norm = "?"  # a message starting with "?" asks for help
        if norm:
            words.append(Word(match.group(), norm, match.start()))
    return words


def parse(text: str, *, surface: str) -> Command | ParseError:
    """Return the command `text` asks for on `surface`, or a ParseError saying what is wrong."""
    if surface not in SURFACE_NAMES:
        raise ValueError(f"unknown surface {surface!r}; one of {sorted(SURFACE_NAMES)}")
    words = _words(text)
    if not words:
        return ParseError(f"Nothing to do. {_try_help(surface)}")
    spec, used = match_spec(words, surface)
    if spec is None:
        return _unknown(words, surface)
    values: dict[str, object] = {}
    rest = words[used:]
    try:
        for arg in spec.args:
            value, rest = arg.read(rest, text, surface)
            if value is None:
                if arg.required:
                    raise BadArgument(f'"{spec.word}" needs {arg.noun}, e.g. {spec.example}.')
                continue
            for field, each in (value if isinstance(value, dict) else {arg.field: value}).items():
                if field in values:  # `sev #1042 2 #1043`
                    raise BadArgument(f"Name one {arg.noun}, not two.")
                values[field] = each
    except BadArgument as exc:
        return ParseError(f"{exc} {_try_help(surface)}", suggestion=spec.word, command=spec.name)
    if rest:
        leftover = text[rest[0].start :].strip()
        return _leftover(spec, words, leftover, surface)
    return Command(name=spec.name, **values)


def _try_help(surface: str) -> str:
    return "Reply HELP for the commands." if surface in PHONE_SURFACES else 'Try "help".'


def _suggestable(surface: str) -> dict[str, Spec]:
    return {
        phrase: spec
        for spec in SPECS
        if spec.listed and surface in spec.surfaces
        for phrase in phrases(spec, surface)
        if len(phrase) > 1  # "a" and "4" are close to everything
    }


def _closest(words: list[Word], surface: str) -> Spec | None:
    """Return the command most like what was typed (difflib), if any is close."""
    candidates = _suggestable(surface)
    for size in (2, 1):
        typed = " ".join(w.norm for w in words[:size])
        found = difflib.get_close_matches(typed, list(candidates), n=1, cutoff=0.6)
        if found:
            return candidates[found[0]]
    return None


def _unknown(words: list[Word], surface: str) -> ParseError:
    typed = quote_typed(words[0].raw)
    spec = _closest(words, surface)
    if spec is None:
        listed = ", ".join(s.word for s in listed_specs(surface))
        return ParseError(f"Unknown command {typed}. Commands: {listed}. {_try_help(surface)}")
    return ParseError(
        f'Unknown command {typed}. Did you mean "{spec.word}"? e.g. {spec.example}',
        suggestion=spec.word,
    )


def _leftover(spec: Spec, words: list[Word], leftover: str, surface: str) -> ParseError:
    other = _closest(words, surface)  # "ack al" is "ack all", not "ack" and then "al"
    if other is not None and other is not spec:
        return ParseError(
            f'Did you mean "{other.word}"? e.g. {other.example}',
            suggestion=other.word,
            command=spec.name,
        )
    nouns = list(dict.fromkeys(arg.noun for arg in spec.args))
    takes = " and ".join(nouns) or "nothing"
    unsure = quote_typed(leftover)
    return ParseError(
        f'"{spec.word}" takes {takes}; not sure what {unsure} means. e.g. {spec.example}',
        suggestion=spec.word,
        command=spec.name,
    )
