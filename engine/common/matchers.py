"""Label matchers, one semantics for routes, inhibit rules and silences: Alertmanager's.

- A missing label is the empty string: `team!="ops"` matches an alert without
  `team`, and so does `x=~".*"`; `x=""` matches only when x is missing or empty.
- Regexes are anchored at both ends and use RE2 syntax (Alertmanager's Go regexp
  is RE2 too). RE2 runs in time linear in the text, so no pattern from a config
  file or the API can backtrack catastrophically and block the event loop
  (`(a+)+b` against a long label is as fast as any other pattern); the price is
  that back-references and look-arounds are refused, as Alertmanager refuses them.
- Four operators: `=` (equals, or one of several values), `!=`, `=~`, `!~`.

Written forms: YAML `match: {label: value | [values]}` and `match_re: {label: regex}`,
Alertmanager-style strings `label<op>value` (value optionally double-quoted) in
`matchers: [...]`, and the API/state record `{"label", "value"|"values"|"regex",
"negate"?}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import re2  # type: ignore[import-untyped]

from engine.errors import InputError

__all__ = [
    "LABEL_NAME",
    "MAX_PATTERN",
    "Matcher",
    "MatcherError",
    "Regex",
    "compile_regex",
    "from_record",
    "matches_all",
    "parse",
    "to_record",
    "to_text",
]

Op = Literal["=", "!=", "=~", "!~"]
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
MAX_PATTERN = 10_000  # characters; RE2's own memory bound (max_mem) caps the compiled program

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are reported as one line by the caller, not on stderr


class MatcherError(InputError, ValueError):
    """A matcher or regex that cannot be used; the message is one line."""


class Regex:
    """An RE2 pattern matched against whole values. Equal when the patterns are."""

    __slots__ = ("_compiled", "pattern")

    def __init__(self, pattern: str) -> None:
        if len(pattern) > MAX_PATTERN:
            raise MatcherError(f"regex longer than {MAX_PATTERN} characters")
        try:
            self._compiled: Any = re2.compile(pattern, _OPTIONS)
        except re2.error as e:
            hint = ""
            try:  # valid for Python but not RE2: say why rather than only what
                re.compile(pattern)
                hint = " (regexes are RE2, as Alertmanager's: no back-references or look-arounds)"
            except (re.error, RecursionError, OverflowError):
                pass
            raise MatcherError(f"invalid regex {pattern!r}: {_reason(e)}{hint}") from None
        except (TypeError, ValueError, UnicodeError) as e:  # e.g. a lone surrogate
            raise MatcherError(f"invalid regex {pattern!r}: {e}") from None
        self.pattern = pattern

    def fullmatch(self, text: str) -> bool:
        try:
            return self._compiled.fullmatch(text) is not None
        except UnicodeEncodeError:  # a lone surrogate cannot be UTF-8 for RE2
            safe = text.encode("utf-8", "replace").decode("utf-8")
            return self._compiled.fullmatch(safe) is not None

    def search(self, text: str) -> bool:
        """Whether the pattern occurs anywhere in `text`. As with Python's `re`, a
        `$` also matches before one final newline (RE2's `$` is the end of text)."""
        try:
            if self._compiled.search(text) is not None:
                return True
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
            if self._compiled.search(text) is not None:
                return True
        return text.endswith("\n") and self._compiled.search(text[:-1]) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Regex) and other.pattern == self.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"Regex({self.pattern!r})"


def _reason(e: BaseException) -> str:
    arg = e.args[0] if e.args else e
    text = arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)
    return " ".join(text.split())  # one line


def compile_regex(pattern: str) -> Regex:
    """An anchored RE2 regex; MatcherError (one line) when it cannot be compiled."""
    return Regex(pattern)


@dataclass(frozen=True, slots=True)
class Matcher:
    """label equals one of `values`, or matches `regex` (anchored); `negate`
    inverts it. A missing label matches as the empty string."""

    label: str
    values: frozenset[str] = frozenset()
    regex: Regex | None = None
    negate: bool = False

    @property
    def op(self) -> Op:
        if self.regex is not None:
            return "!~" if self.negate else "=~"
        return "!=" if self.negate else "="

    def matches(self, labels: Mapping[str, str]) -> bool:
        v = labels.get(self.label, "")
        hit = bool(self.regex.fullmatch(v)) if self.regex is not None else v in self.values
        return hit != self.negate


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


# -- the string form: label<op>value ------------------------------------------------------

_STRING = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*", re.DOTALL)
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t"}


def parse(text: str) -> Matcher:
    """`team!=ops`, `service=~"db.*"`, `env=""`: Alertmanager's matcher syntax,
    one matcher per string. A quoted value may hold \\" \\\\ \\n \\t escapes."""
    m = _STRING.fullmatch(text)
    if m is None:
        raise MatcherError(
            f"bad matcher {text[:80]!r}: expected label=value, label!=value, "
            'label=~regex or label!~regex (quote values with spaces: env="a b")'
        )
    label, op, raw = m.group(1), m.group(2), m.group(3)
    value = _unquote(raw, text) if raw.startswith('"') else raw
    if raw.startswith(("=", "~")):  # `team==x`, `x=~~y`: a typo, not a value
        raise MatcherError(f"bad matcher {text[:80]!r}: quote a value starting with = or ~")
    if not raw.startswith('"') and ('"' in raw or "," in raw):
        raise MatcherError(
            f"bad matcher {text[:80]!r}: one matcher per string; quote a value "
            'holding " or , (label="a,b")'
        )
    negate = op.startswith("!")
    if op.endswith("~"):
        return Matcher(label, regex=compile_regex(value), negate=negate)
    return Matcher(label, frozenset((value,)), negate=negate)


def _unquote(raw: str, text: str) -> str:
    if len(raw) < 2 or not raw.endswith('"'):
        raise MatcherError(f"bad matcher {text[:80]!r}: unterminated quoted value")
    out: list[str] = []
    body = raw[1:-1]
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt not in _ESCAPES:
                raise MatcherError(
                    f"bad matcher {text[:80]!r}: unknown escape \\{nxt} "
                    "(use \\\" \\\\ \\n or \\t; a regex's own backslash is written \\\\)"
                )
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        if c == '"':
            raise MatcherError(f'bad matcher {text[:80]!r}: unescaped " inside a quoted value')
        out.append(c)
        i += 1
    return "".join(out)


def to_text(m: Matcher, *, quote: bool = True) -> str:
    """The string form, values quoted (`quote`); several values read `label=a|b`."""
    v = m.regex.pattern if m.regex is not None else "|".join(sorted(m.values))
    return f"{m.label}{m.op}{_quote(v) if quote else v}"


def _quote(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# -- the record form (API, durable state) ---------------------------------------------------


def from_record(d: Mapping[str, Any]) -> Matcher:
    """`{"label", "value"|"values"|"regex", "negate"?}`; a string item is the
    string form. MatcherError when malformed."""
    if isinstance(d, str):
        return parse(d)
    if not isinstance(d, Mapping):
        raise MatcherError("a matcher is an object or a string")
    label = d.get("label")
    if not isinstance(label, str) or LABEL_NAME.fullmatch(label) is None:
        raise MatcherError(f"label: expected a label name, got {str(label)[:80]!r}")
    negate = d.get("negate", False)
    if not isinstance(negate, bool):
        raise MatcherError("negate: expected true or false")
    if d.get("regex") is not None:
        if not isinstance(d["regex"], str):
            raise MatcherError("regex: expected a string")
        return Matcher(label, regex=compile_regex(d["regex"]), negate=negate)
    vals = d.get("values", d.get("value"))
    vals = vals if isinstance(vals, list) else [vals]
    if not vals or not all(isinstance(v, str) for v in vals):
        raise MatcherError("value: expected a string")
    return Matcher(label, frozenset(vals), negate=negate)


def to_record(m: Matcher) -> dict[str, Any]:
    """The record form; `negate` only when set, so old readers see old records."""
    out: dict[str, Any] = {"label": m.label}
    if m.regex is not None:
        out["regex"] = m.regex.pattern
    else:
        vals = sorted(m.values)
        if len(vals) == 1:
            out["value"] = vals[0]
        else:
            out["values"] = vals
    if m.negate:
        out["negate"] = True
    return out
