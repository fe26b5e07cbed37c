"""Detections: named regexes over one field of a parsed line, behind one prefilter.

Each pattern reads one field (`url` is the path and query, URL-decoded; `line` is
the raw line; any other name is that field of the format) and may list literal
tokens (`any`), one of which must occur in the text for the regex to match. For
every field, all patterns' tokens go into one RE2 Set, case-insensitive: one
linear pass over the text tells which patterns can match at all, so a benign line
costs one Set scan per field however many patterns the packs hold, and only the
candidates' own regexes run. A pattern without tokens goes into the Set as its
whole regex (then the Set's answer is final for it). Results are cached per text
(user agents and static paths repeat), in a bounded dict.

All regexes are RE2: linear in the text, so no pattern or line can stall the
reader; look-arounds and back-references are refused at load with a clear message.

URL decoding: `url`, `path` and `query` are decoded (percent and plus) once, and a
second time when the first pass left percent escapes (`%2527` -> `%27` -> `'`), so
an encoded attack is seen as what the application will see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import re2  # type: ignore[import-untyped]

from engine.detect.formats import Fields, re2_message

_NGINX_ESCAPE = re.compile(r"\\x([0-9A-Fa-f]{2})")
DECODED = frozenset({"url", "path", "query"})
CACHE_SIZE = 16_384  # texts per field; cleared when full (cheaper than LRU upkeep)
CACHE_TEXT = 512  # longer texts are not cached: bounds the cache to ~8 MiB a field
MAX_PATTERN = 4096

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.case_sensitive = False


@dataclass(frozen=True)
class Pattern:
    name: str
    pack: str
    field: str  # url | line | a field of the format
    regex: str | None  # None: any of the tokens is the match
    any: tuple[str, ...] = ()  # literal tokens; one must occur for the regex to match
    allow: tuple[tuple[str, str], ...] = ()  # (field, regex): a hit whose field matches is dropped


def decode(text: str) -> str:
    """Percent and plus decoding, twice when the first pass leaves escapes; and
    nginx's own \\xHH escapes of the request line (it logs `"` as \\x22) first."""
    if "\\x" in text:
        text = _NGINX_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    if "%" not in text and "+" not in text:
        return text
    once = unquote_plus(text)
    return unquote_plus(once) if "%" in once else once


def raw_text(fields: Fields, line: str, field: str) -> str | None:
    """The text a pattern on `field` reads, before URL decoding."""
    if field == "url":
        path = fields.get("path")
        if path is None:
            return None
        query = fields.get("query")
        return f"{path}?{query}" if query else path
    return line if field == "line" else fields.get(field)


def field_text(fields: Fields, line: str, field: str) -> str | None:
    """The text a pattern on `field` reads: decoded for url, path and query."""
    raw = raw_text(fields, line, field)
    return decode(raw) if raw is not None and field in DECODED else raw


class _FieldSet:
    """The patterns of one field: a Set over their tokens, and what each entry means."""

    def __init__(self, field: str, patterns: Sequence[tuple[int, Pattern]]) -> None:
        self.field = field
        # the extension's Set, not the wrapper's: the wrapper adds a Python call and
        # an isinstance per line, a fifth of the whole cost of a benign line
        self.set = re2._re2.Set(re2._Anchor.UNANCHORED, _OPTIONS)
        # Set entry -> (pattern index, compiled regex to confirm, or None when final)
        self.entries: list[tuple[int, Any]] = []
        for index, p in patterns:
            confirm = compile_regex(p.regex, p.name) if p.regex is not None and p.any else None
            items = [re2.escape(t) for t in p.any] or [p.regex or ""]
            for item in items:
                if self.set.Add(item.encode()) < 0:
                    raise ValueError(f"patterns.{p.name}: {item!r} does not compile in RE2")
                self.entries.append((index, confirm))
        if not self.set.Compile():  # RE2's memory bound: too many or too large patterns
            raise ValueError(f"patterns on field {field}: the prefilter is too large for RE2")
        self.cache: dict[str, tuple[int, ...]] = {}
        self.decoded = field in DECODED

    def match(self, raw: str) -> tuple[int, ...]:
        """The patterns that hit `raw` (the field's text before decoding); cached by it."""
        got = self.cache.get(raw)
        if got is not None:
            return got
        text = decode(raw) if self.decoded else raw
        hits = self.set.Match(text.encode())
        if not hits:
            out: tuple[int, ...] = ()
        else:
            found: list[int] = []
            for entry in hits:
                index, confirm = self.entries[entry]
                if index in found:
                    continue
                if confirm is None or confirm.search(text) is not None:
                    found.append(index)
            out = tuple(sorted(found))
        if len(raw) <= CACHE_TEXT:
            if len(self.cache) >= CACHE_SIZE:
                self.cache.clear()
            self.cache[raw] = out
        return out


def compile_regex(regex: str, where: str) -> Any:
    """An RE2 regex, case-insensitive; ValueError naming `where` when it is bad."""
    if len(regex) > MAX_PATTERN:
        raise ValueError(f"{where}: regex longer than {MAX_PATTERN} characters")
    try:
        return re2.compile(regex, _OPTIONS)
    except re2.error as e:
        raise ValueError(f"{where}: not an RE2 regex: {re2_message(e)}") from None


class Matcher:
    """All patterns of a configuration; `match` gives the indexes of those that hit."""

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self.patterns = tuple(patterns)
        by_field: dict[str, list[tuple[int, Pattern]]] = {}
        for i, p in enumerate(self.patterns):
            if p.regex is None and not p.any:
                raise ValueError(f"patterns.{p.name}: needs a regex or tokens in `any`")
            if p.regex is not None:
                compile_regex(p.regex, f"patterns.{p.name}")  # refuse it with its own name
            by_field.setdefault(p.field, []).append((i, p))
        self._sets = tuple(_FieldSet(f, ps) for f, ps in by_field.items())
        self._allow = {
            i: tuple((f, compile_regex(rx, f"patterns.{p.name}.allow.{f}")) for f, rx in p.allow)
            for i, p in enumerate(self.patterns)
            if p.allow
        }

    def match(self, fields: Fields, line: str) -> tuple[int, ...]:
        out: tuple[int, ...] = ()
        for fs in self._sets:
            field = fs.field
            if field == "url":  # the common case, inlined: this runs on every line
                raw = fields.get("path")
                if raw is None:
                    continue
                query = fields.get("query")
                if query:
                    raw = f"{raw}?{query}"
            else:
                raw = line if field == "line" else fields.get(field)
                if raw is None:
                    continue
            got = fs.cache.get(raw)  # the cache hit, inlined: user agents repeat
            if got is None:
                got = fs.match(raw)
            if got:
                out = out + got if out else got
        if out and self._allow:
            out = tuple(i for i in out if not self._allowed(i, fields, line))
        return out

    def _allowed(self, index: int, fields: Fields, line: str) -> bool:
        for field, rx in self._allow.get(index, ()):
            text = field_text(fields, line, field)
            if text is not None and rx.search(text) is not None:
                return True
        return False


def pattern_from_setting(raw: object, where: str, pack: str = "custom") -> Pattern:
    """One entry of `patterns:` as written in YAML."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping with name, field and regex or any")
    extra = sorted(set(raw) - {"name", "pack", "field", "regex", "any", "allow"})
    if extra:
        raise ValueError(f"{where}: unknown setting {extra[0]!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise ValueError(f"{where}.name: expected a name of letters, digits and _")
    field = raw.get("field", "url")
    regex = raw.get("regex")
    tokens = raw.get("any", [])
    if not isinstance(field, str) or not field:
        raise ValueError(f"{where}.field: expected a field name, url or line")
    if regex is not None:
        if not isinstance(regex, str):
            raise ValueError(f"{where}.regex: expected a string")
        compile_regex(regex, where)
    if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
        raise ValueError(f"{where}.any: expected a list of non-empty strings")
    if regex is None and not tokens:
        raise ValueError(f"{where}: needs a regex, or tokens in `any`")
    pack_name = raw.get("pack", pack)
    if not isinstance(pack_name, str) or not pack_name.replace("_", "").isalnum():
        raise ValueError(f"{where}.pack: expected a name of letters, digits and _")
    return Pattern(
        name=name,
        pack=pack_name,
        field=field,
        regex=regex,
        any=tuple(tokens),
        allow=allow_from_setting(raw.get("allow", {}), f"{where}.allow"),
    )


def allow_from_setting(raw: object, where: str) -> tuple[tuple[str, str], ...]:
    """`allow: {field: [regex, ...]}`: hits whose field matches one regex are dropped."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: expected a mapping of field to a list of regexes")
    out: list[tuple[str, str]] = []
    for field, regexes in raw.items():
        if not isinstance(regexes, list) or not all(isinstance(r, str) for r in regexes):
            raise ValueError(f"{where}.{field}: expected a list of regexes")
        for i, rx in enumerate(regexes):
            compile_regex(rx, f"{where}.{field}[{i}]")
            out.append((str(field), rx))
    return tuple(out)
