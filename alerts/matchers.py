"""Label matchers, as Alertmanager writes them: `team="db"`, `env!="dev"`, `host=~"db-.*"`.

Pure functions: used by routing rules, silences, runbooks and the chat `silence` command.

Regular expressions are anyone's input (a responder's silence, an alert's label) and run on
every alert, so they run on RE2, as Alertmanager's own (Go's regexp) do: linear in the text,
whatever the pattern, so one pattern can never stall processing. What RE2 cannot run
(backreferences, lookaround) is refused when a matcher is saved; a stored one that no longer
compiles matches nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

import re2

log = logging.getLogger(__name__)

OPS = ("=", "!=", "=~", "!~")
MAX_REGEX_LENGTH = 512
# RE2's memory budget for one compiled pattern; a pattern needing more is refused.
REGEX_MAX_MEMORY = 1 << 20
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = REGEX_MAX_MEMORY

_MATCHER_RE = re.compile(
    r"""\s*(?P<label>[A-Za-z_][A-Za-z0-9_.\-]*)\s*(?P<op>=~|!~|!=|=)\s*"""
    r"""(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^,\s}]*))\s*"""
)


class MatcherError(ValueError):
    pass


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        """Return whether `labels` satisfy this matcher (a missing label counts as "")."""
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        pattern = _compiled_or_none(self.value)
        if pattern is None:
            return False  # refused when saved today; an old one matches nothing, loudly
        found = pattern.fullmatch(actual) is not None
        return found if self.op == "=~" else not found

    def to_dict(self) -> dict[str, str]:
        return {"label": self.label, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'


class RegexError(ValueError):
    pass


@lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> re2._Regexp:
    """Return `pattern` compiled for RE2 (linear time), or raise RegexError saying why not."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode(errors="replace")
        unsupported = ("invalid perl operator", "invalid escape sequence")
        hint = (
            " (patterns run on RE2, as Alertmanager's do: no backreferences or lookaround)"
            if str(reason).startswith(unsupported)
            else ""
        )
        raise RegexError(f"{reason}{hint}") from None


@lru_cache(maxsize=1024)
def _compiled_or_none(pattern: str) -> re2._Regexp | None:
    try:
        return compile_regex(pattern)
    except RegexError as exc:
        log.warning(
            "a stored matcher's regex %r cannot run, so it matches nothing: %s", pattern, exc
        )
        return None


def matcher_from_dict(data: object) -> Matcher:
    """Return the matcher a `{"label", "op", "value"}` object describes, or raise MatcherError."""
    if not isinstance(data, dict):
        raise MatcherError('a matcher must be an object like {"label": "team", "op": "=", ...}')
    label, op, value = data.get("label"), data.get("op", "="), data.get("value")
    if not isinstance(label, str) or not label:
        raise MatcherError("a matcher needs a non-empty string 'label'")
    if op not in OPS:
        raise MatcherError(f"matcher op must be one of {', '.join(OPS)}, not {op!r}")
    if not isinstance(value, str):
        raise MatcherError(f"matcher value for {label!r} must be a string")
    if op in ("=~", "!~"):
        if len(value) > MAX_REGEX_LENGTH:
            raise MatcherError(f"regex for {label!r} is longer than {MAX_REGEX_LENGTH} characters")
        try:
            compile_regex(value)
        except RegexError as exc:
            raise MatcherError(f"invalid regex for {label!r}: {exc}") from None
    return Matcher(label, op, value)


def matchers_from_json(data: object) -> list[Matcher]:
    """Return the matchers of a JSON list of matcher objects, or raise MatcherError."""
    if not isinstance(data, list):
        raise MatcherError("matchers must be a list")
    return [matcher_from_dict(item) for item in data]


def parse_matchers(text: str) -> list[Matcher]:
    """Parse `{team="db", env=~"prod.*"}` or `team=db env!=dev` into matchers."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    matchers: list[Matcher] = []
    pos = 0
    while pos < len(text):
        if text[pos] in ", ":
            pos += 1
            continue
        found = _MATCHER_RE.match(text, pos)
        if not found:
            raise MatcherError(f"cannot read a matcher at {text[pos : pos + 30]!r}")
        value = found["quoted"] if found["quoted"] is not None else found["bare"]
        if found["quoted"] is not None:
            value = re.sub(r"\\(.)", r"\1", value)
        matchers.append(
            matcher_from_dict({"label": found["label"], "op": found["op"], "value": value})
        )
        pos = found.end()
    if not matchers:
        raise MatcherError("no matchers given")
    return matchers


def all_match(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
