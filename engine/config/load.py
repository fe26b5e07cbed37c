"""YAML loading with positions: the safe subset operators should write.

We build plain values (dict, list, str, int, float, bool, None) from libyaml's
event stream rather than from its constructor, because only the events tell us
about anchors, tags and duplicate keys, and because we resolve plain scalars by
the YAML 1.2 core schema (`no` stays a string, `010` is 10, `12:30` is a string,
timestamps are strings). That is what check-jsonschema and editors using
yaml-language-server do, so every tool agrees on what a file means.

Every value's position is kept in `Document.marks`, keyed by its path
(`("rules", 3, "for")`), and every mapping key's position in `key_marks`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import yaml

from engine.errors import InputError, Problem

# libyaml's parser is ~10x faster; the pure-Python one is the same API where it is absent
_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32

Path = tuple[str | int, ...]
Mark = tuple[int, int]  # 1-based line, column

_CORE_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "!",
}
# YAML 1.2 core schema
_NULL = {"", "~", "null", "Null", "NULL"}
_TRUE = {"true", "True", "TRUE"}
_FALSE = {"false", "False", "FALSE"}
_INT10 = re.compile(r"[-+]?[0-9]+\Z")
_INT8 = re.compile(r"0o[0-7]+\Z")
_INT16 = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)\Z")


@dataclass(slots=True)
class Document:
    """One parsed YAML file: its data, where each node was, and its content hash."""

    file: str
    data: Any
    sha256: str
    marks: dict[Path, Mark] = field(default_factory=dict)
    key_marks: dict[Path, Mark] = field(default_factory=dict)

    def mark(self, path: Path, *, key: bool = False) -> Mark:
        """Position of the node at `path`, or of its nearest ancestor."""
        table = self.key_marks if key else self.marks
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if not key and p in self.key_marks:
                return self.key_marks[p]
            p = p[:-1]
        return self.marks.get((), (1, 1))

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        line, col = self.mark(path, key=key)
        return Problem(self.file, line, col, message, format_path(path))


class YamlError(InputError):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(problem.format())


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def resolve_plain(text: str) -> Any:
    """Value of a plain (unquoted) scalar under the YAML 1.2 core schema."""
    if text in _NULL:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    c = text[0]
    if c.isdigit() or c in "-+.":
        if _INT10.match(text):
            return int(text)
        if _INT8.match(text):
            return int(text[2:], 8)
        if _INT16.match(text):
            return int(text[2:], 16)
        if _FLOAT.match(text):
            return float(text)
        if _INF.match(text):
            return float("-inf") if text[0] == "-" else float("inf")
        if _NAN.match(text):
            return float("nan")
    return text


def load_text(
    text: str | bytes, file: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH
) -> Document:
    """Parse one YAML document; raises YamlError with file:line:col on any problem."""
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if len(raw) > max_bytes:
        raise YamlError(Problem(file, 1, 1, f"file is {len(raw)} bytes; the limit is {max_bytes}"))
    sha = hashlib.sha256(raw).hexdigest()
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = _line_col(raw[: e.start].decode("utf-8", "replace"))
        raise YamlError(Problem(file, line, col, "file is not valid UTF-8")) from None
    if decoded.startswith("\ufeff"):
        decoded = decoded[1:]
    doc = Document(file, None, sha)
    try:
        doc.data = _Builder(doc, decoded, max_depth).build()
    except YamlError:
        raise
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(s for s in (e.context, e.problem) if s) or "invalid YAML"
        raise YamlError(Problem(file, line, col, f"YAML syntax error: {what}")) from None
    except yaml.reader.ReaderError as e:
        line, col = _line_col(decoded[: e.position])
        ch = e.character if isinstance(e.character, int) else ord(e.character or "\0")
        raise YamlError(
            Problem(file, line, col, f"character U+{ch:04X} is not allowed in YAML")
        ) from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as e:
        # libyaml reports a few faults without a mark; they still name the file
        raise YamlError(Problem(file, 1, 1, f"YAML error: {e}")) from None
    return doc


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def open_regular(path: str) -> BinaryIO:
    """Open `path` for reading only if it is a regular file (a symlink to one is).

    Opened non-blocking, so a FIFO cannot hang the open (nor a reload holding its
    lock); anything else raises OSError whose strerror says what it is. Callers
    check the size on the returned file's fstat before reading."""
    _check_regular(os.stat(path).st_mode, path)  # a socket cannot even be opened
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        _check_regular(os.fstat(fd).st_mode, path)  # what was opened, if it was swapped
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_regular(mode: int, path: str) -> None:
    if not stat.S_ISREG(mode):
        what = next((name for test, name in _KINDS if test(mode)), "not a file")
        raise OSError(errno.EINVAL, f"not a regular file ({what})", path)


def load_file(path: str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH) -> Document:
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                msg = f"file is {size} bytes; the limit is {max_bytes}"
                raise YamlError(Problem(path, 1, 1, msg))
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise YamlError(Problem(path, 0, 0, f"cannot read: {e.strerror}")) from None
    return load_text(raw, path, max_bytes=max_bytes, max_depth=max_depth)


def _line_col(prefix: str) -> Mark:
    line = prefix.count("\n") + 1
    return line, len(prefix) - (prefix.rfind("\n") + 1) + 1


class _Builder:
    """Turns the event stream into values, refusing what we do not allow."""

    def __init__(self, doc: Document, text: str, max_depth: int) -> None:
        self.doc = doc
        self.text = text
        self.max_depth = max_depth
        self.events: Iterator[yaml.Event] = iter(())

    def fail(self, event: yaml.Event, message: str) -> YamlError:
        line, col = _event_mark(event)
        return YamlError(Problem(self.doc.file, line, col, message))

    def build(self) -> Any:
        parser = _Parser(self.text)
        try:
            self.events = iter(parser.get_event, None)
            ev = next(self.events)  # StreamStart
            ev = next(self.events)
            if isinstance(ev, yaml.StreamEndEvent):
                raise YamlError(Problem(self.doc.file, 1, 1, "file is empty; expected a mapping"))
            start = ev
            ev = next(self.events)
            value = self.node(ev, (), 0)
            end = next(self.events)  # DocumentEnd
            nxt = next(self.events)
            if not isinstance(nxt, yaml.StreamEndEvent):
                raise self.fail(nxt, "only one YAML document per file is allowed")
            del end
        finally:
            dispose = getattr(parser, "dispose", None)
            if dispose:
                dispose()
        if value is None:
            raise YamlError(Problem(self.doc.file, 1, 1, "file is empty; expected a mapping"))
        if not isinstance(value, dict):
            raise self.fail(start, f"top level is a {_kind(value)}; expected a mapping")
        return value

    def scalar_key(self, ev: yaml.ScalarEvent) -> Any:
        if ev.anchor is not None:
            raise self.fail(ev, f"anchor &{ev.anchor} is not allowed; write the value out")
        if ev.tag is not None and ev.tag not in _CORE_TAGS:
            raise self.fail(ev, f"tag {ev.tag} is not allowed")
        return resolve_plain(ev.value) if not ev.style and ev.implicit[0] else ev.value

    def node(self, ev: yaml.Event, path: Path, depth: int) -> Any:
        if isinstance(ev, yaml.AliasEvent):
            raise self.fail(ev, f"alias *{ev.anchor} is not allowed; write the value out")
        anchor = getattr(ev, "anchor", None)
        if anchor is not None:
            raise self.fail(ev, f"anchor &{anchor} is not allowed; write the value out")
        tag = getattr(ev, "tag", None)
        self.doc.marks[path] = _event_mark(ev)
        if isinstance(ev, yaml.ScalarEvent):
            if tag is not None and tag not in _CORE_TAGS:
                raise self.fail(ev, f"tag {tag} is not allowed")
            if not ev.style and ev.implicit[0]:
                return resolve_plain(ev.value)
            if tag is None or tag in ("!", "tag:yaml.org,2002:str"):
                return ev.value
            value = resolve_plain(ev.value)
            return value
        if depth >= self.max_depth:
            raise self.fail(ev, f"nesting is deeper than {self.max_depth} levels")
        if tag is not None and tag not in _CORE_TAGS:
            raise self.fail(ev, f"tag {tag} is not allowed")
        if isinstance(ev, yaml.SequenceStartEvent):
            out: list[Any] = []
            for child in self.events:
                if isinstance(child, yaml.SequenceEndEvent):
                    return out
                out.append(self.node(child, (*path, len(out)), depth + 1))
            raise self.fail(ev, "unterminated sequence")  # pragma: no cover
        if isinstance(ev, yaml.MappingStartEvent):
            result: dict[Any, Any] = {}
            key_marks = self.doc.key_marks
            for kev in self.events:
                if isinstance(kev, yaml.MappingEndEvent):
                    return result
                if not isinstance(kev, yaml.ScalarEvent):
                    if isinstance(kev, yaml.AliasEvent):
                        raise self.fail(kev, f"alias *{kev.anchor} is not allowed")
                    raise self.fail(kev, "mapping keys must be plain strings")
                key = self.scalar_key(kev)
                if not isinstance(key, str):
                    key = (
                        ""
                        if key is None
                        else str(key).lower()
                        if isinstance(key, bool)
                        else str(key)
                    )
                km = _event_mark(kev)
                kpath = (*path, key)
                if key in result:
                    first = key_marks[kpath]
                    raise self.fail(
                        kev, f"duplicate key {key!r} (first defined at line {first[0]})"
                    )
                key_marks[kpath] = km
                result[key] = self.node(next(self.events), kpath, depth + 1)
            raise self.fail(ev, "unterminated mapping")  # pragma: no cover
        raise self.fail(ev, f"unexpected YAML event {type(ev).__name__}")  # pragma: no cover


def _event_mark(event: yaml.Event) -> Mark:
    m = event.start_mark
    return (m.line + 1, m.column + 1) if m is not None else (1, 1)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__
