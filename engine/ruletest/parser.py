"""Turns a schema-valid rule test document into cases (engine/ruletest/model.py),
collecting every problem with its file:line:col.

Separate from the loader: this is the document's semantics (series, times,
expectations, references to rules and channels), the loader is the file and
configuration plumbing around it."""

from __future__ import annotations

import copy
import difflib
import os
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine.common.durations import format_duration, parse_duration
from engine.config.load import Document, format_path
from engine.config.model import Config
from engine.config.schema import schema as schema_doc
from engine.errors import Problem
from engine.ruletest.clock import EPOCH0, offset
from engine.ruletest.model import (
    SUFFIXES,
    AlertCheck,
    AlertExpect,
    Case,
    Element,
    NoteCheck,
    NoteExpect,
)
from engine.ruletest.series import SeriesError, parse_series

_RESERVED: frozenset[str] | None = None


def _reserved_names() -> frozenset[str]:
    """Names a collector cannot have (expression keywords and functions), from the
    config schema, so that the two never disagree."""
    global _RESERVED
    if _RESERVED is None:
        name = schema_doc("config")["definitions"]["collector"]["properties"]["name"]
        _RESERVED = frozenset(name.get("not", {}).get("enum", ()))
    return _RESERVED


class Parser:
    """Turns a schema-valid test document into cases; collects every problem."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        self.problems: list[Problem] = []
        self.collector_names: set[str] = set()
        self._lines: list[str] | None = None
        self.base = os.path.dirname(doc.file)

    def problem(self, path: tuple[str | int, ...], message: str, *, key: bool = False) -> None:
        self.problems.append(self.doc.problem(path, message, key=key))

    def files(self, key: str) -> list[str]:
        out: list[str] = []
        for i, f in enumerate(self.data.get(key, [])):
            full = os.path.normpath(os.path.join(self.base, f))
            if not os.path.isfile(full):
                what = "rule file" if key == "rule_files" else "channel file"
                self.problem((key, i), f"{what} {f!r} not found (looked for {full})")
            elif not full.endswith(SUFFIXES):
                self.problem((key, i), f"{f!r} is not a .yaml or .yml file")
            else:
                out.append(full)
        return out

    def time(self, path: tuple[str | int, ...], value: Any) -> float:
        try:
            return parse_duration(value)
        except ValueError as e:  # pragma: no cover - the schema's pattern is the engine's
            self.problem(path, str(e))
            return 0.0

    def start(self, path: tuple[str | int, ...], value: str | None, default: float) -> float:
        if value is None:
            return default
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
            if dt.tzinfo is None:
                raise ValueError
            return dt.timestamp()
        except ValueError:
            self.problem(
                path,
                f"expected an RFC 3339 time with zone such as 2026-11-23T10:00:00Z; got {value!r}",
            )
            return default

    def regex(self, path: tuple[str | int, ...], text: str) -> re.Pattern[str] | None:
        try:
            return re.compile(text)
        except re.error as e:
            self.problem(path, f"invalid regular expression {text!r}: {e}")
            return None

    def collectors(self, path: tuple[str | int, ...], value: Mapping[str, Any]) -> dict[str, Any]:
        for name in value:
            self.collector(path, name, key=True)
        return {k: dict(v) for k, v in value.items()}

    def collector(self, path: tuple[str | int, ...], name: str, *, key: bool = False) -> bool:
        if name in _reserved_names():
            self.problem(
                (*path, name),
                f"{name!r} cannot be a collector name: it is an expression keyword or function",
                key=key,
            )
            return False
        self.collector_names.add(name)
        return True

    # -- series ----------------------------------------------------------------------

    def _line(self, line: int) -> str:
        if self._lines is None:
            try:
                with open(self.doc.file, encoding="utf-8", errors="replace") as f:
                    self._lines = f.read().splitlines()
            except OSError:
                self._lines = []
        return self._lines[line - 1] if 0 < line <= len(self._lines) else ""

    def series_error(self, path: tuple[str | int, ...], text: Any, e: SeriesError) -> None:
        if e.index is not None:
            path = (*path, e.index)
            node: Any = text[e.index] if isinstance(text, list) else text
        else:
            node = text
        line, col = self.doc.mark(path)
        if isinstance(node, str) and e.offset is not None:
            raw = self._line(line)
            for quote in ("", '"', "'"):
                if raw[col - 1 : col - 1 + len(quote) + len(node)] == quote + node:
                    col += len(quote) + e.offset
                    break
        self.problems.append(Problem(self.doc.file, line, col, e.message, format_path(path)))

    def values(self, path: tuple[str | int, ...], value: Any) -> list[Any] | None:
        try:
            return parse_series(value)
        except SeriesError as e:
            self.series_error(path, value, e)
            return None

    def series(self, path: tuple[str | int, ...], value: Mapping[str, Any], case: Case) -> None:
        seen: dict[tuple[str, ...], str] = {}
        for key, spec in value.items():
            kpath = (*path, key)
            parts = tuple(key.split("."))
            if not self.collector(path, parts[0], key=True):
                continue
            for n in range(2, len(parts)):
                if parts[:n] in seen:
                    self.problem(
                        kpath,
                        f"{key!r} is inside {seen[parts[:n]]!r}, which is a series itself",
                        key=True,
                    )
            longer = next((k for p, k in seen.items() if p[: len(parts)] == parts), None)
            if longer is not None:
                self.problem(kpath, f"{key!r} holds {longer!r}: it cannot be a series", key=True)
            seen[parts] = key
            if isinstance(spec, list) and spec and all(isinstance(x, dict) for x in spec):
                elements: list[Element] = []
                for j, el in enumerate(spec):
                    fields: dict[str, list[Any]] = {}
                    bad = False
                    for fname, fvalue in el.items():
                        if fname == "labels":
                            continue
                        vals = self.values((*kpath, j, fname), fvalue)
                        if vals is not None:
                            fields[fname] = vals
                        bad = bad or vals is None
                    if not fields and not bad:
                        self.problem(
                            (*kpath, j), "an element needs at least one series besides labels"
                        )
                    labels = {str(k): _label(v) for k, v in el["labels"].items()}
                    elements.append(Element(labels, fields))
                case.lists[parts] = elements
            else:
                vals = self.values(kpath, spec)
                if vals is not None:
                    case.flat[parts] = vals

    # -- tests -------------------------------------------------------------------------

    def cases(self) -> list[Case]:
        d = self.data
        start = self.start(("start",), d.get("start"), EPOCH0)
        constants = self.collectors(("collectors",), d.get("collectors", {}))
        names: dict[str, int] = {}
        out: list[Case] = []
        for i, t in enumerate(d["tests"]):
            path: tuple[str | int, ...] = ("tests", i)
            line = self.doc.mark(path)[0]
            name = t["name"]
            if name in names:
                self.problem(
                    (*path, "name"), f"duplicate test name {name!r} (first at line {names[name]})"
                )
            names.setdefault(name, line)
            consts = copy.deepcopy(constants)
            for c, metrics in self.collectors(
                (*path, "collectors"), t.get("collectors", {})
            ).items():
                consts.setdefault(c, {}).update(metrics)
            case = Case(
                name=name,
                line=line,
                start=self.start((*path, "start"), t.get("start"), start),
                constants=consts,
                flat={},
                lists={},
                alerts=[],
                notifications=[],
            )
            self.series((*path, "series"), t.get("series", {}), case)
            for j, chk in enumerate(t.get("alerts", [])):
                case.alerts.append(self.alert_check((*path, "alerts", j), chk))
            last: tuple[float, int] | None = None
            for j, chk in enumerate(t.get("notifications", [])):
                nc = self.note_check((*path, "notifications", j), chk)
                if last is not None and nc.at <= last[0]:
                    self.problem(
                        (*path, "notifications", j, "at"),
                        f"notification assertions cover consecutive windows: this `at` "
                        f"({offset(nc.at)}) must be later than the one before "
                        f"({offset(last[0])}, line {last[1]})",
                    )
                last = (nc.at, nc.line)
                case.notifications.append(nc)
            if not case.alerts and not case.notifications:
                self.problem(
                    path, f"test {name!r} asserts nothing: add `alerts` or `notifications`"
                )
            out.append(case)
        return out

    def alert_check(self, path: tuple[str | int, ...], chk: Mapping[str, Any]) -> AlertCheck:
        expect: list[AlertExpect] = []
        for k, e in enumerate(chk["expect"]):
            ep = (*path, "expect", k)
            rx: dict[str, re.Pattern[str]] | None = None
            if "annotations_regex" in e:
                rx = {}
                for a, text in e["annotations_regex"].items():
                    pat = self.regex((*ep, "annotations_regex", a), text)
                    if pat is not None:
                        rx[a] = pat
            expect.append(
                AlertExpect(
                    line=self.doc.mark(ep)[0],
                    raw=dict(e),
                    rule=e["rule"],
                    state=e.get("state", "firing"),
                    labels={str(k2): _label(v) for k2, v in e["labels"].items()}
                    if "labels" in e
                    else None,
                    annotations=dict(e["annotations"]) if "annotations" in e else None,
                    annotations_regex=rx,
                    has_value="value" in e,
                    value=e.get("value"),
                    severity=e.get("severity"),
                    flags={f: e[f] for f in ("no_data", "error", "flapping") if f in e},
                )
            )
        return AlertCheck(
            at=self.time((*path, "at"), chk["at"]),
            line=self.doc.mark(path)[0],
            rules=frozenset(chk["rules"]) if "rules" in chk else None,
            expect=expect,
        )

    def note_check(self, path: tuple[str | int, ...], chk: Mapping[str, Any]) -> NoteCheck:
        expect: list[NoteExpect] = []
        for k, e in enumerate(chk["expect"]):
            ep = (*path, "expect", k)
            expect.append(
                NoteExpect(
                    line=self.doc.mark(ep)[0],
                    raw=dict(e),
                    channel=e["channel"],
                    status=e.get("status"),
                    alerts=sorted(e["alerts"]) if "alerts" in e else None,
                    title=e.get("title"),
                    title_regex=self.regex((*ep, "title_regex"), e["title_regex"])
                    if "title_regex" in e
                    else None,
                    body=e.get("body"),
                    body_regex=self.regex((*ep, "body_regex"), e["body_regex"])
                    if "body_regex" in e
                    else None,
                    kind=e.get("kind"),
                    level=e.get("level"),
                    sent_at=self.time((*ep, "sent_at"), e["sent_at"]) if "sent_at" in e else None,
                )
            )
        return NoteCheck(
            at=self.time((*path, "at"), chk["at"]), line=self.doc.mark(path)[0], expect=expect
        )

    # -- against the loaded configuration -------------------------------------------------

    def check_refs(self, config: Config, has_channels: bool) -> None:
        rules = {r.id for r in config.rules()}
        channels = {c.name for c in config.channels}
        for i, t in enumerate(self.data["tests"]):
            for j, chk in enumerate(t.get("alerts", [])):
                for k, rid in enumerate(chk.get("rules", [])):
                    self._known((("tests", i, "alerts", j, "rules", k)), "rule", rid, rules)
                for k, e in enumerate(chk["expect"]):
                    apath = ("tests", i, "alerts", j, "expect", k, "rule")
                    self._known(apath, "rule", e["rule"], rules)
            for j, chk in enumerate(t.get("notifications", [])):
                if not has_channels:
                    self.problem(
                        ("tests", i, "notifications", j),
                        "notification assertions need `channel_files` (the channels, "
                        "routes and silences to test)",
                    )
                    continue
                for k, e in enumerate(chk["expect"]):
                    npath = ("tests", i, "notifications", j, "expect", k)
                    self._known((*npath, "channel"), "channel", e["channel"], channels)
                    for m, rid in enumerate(e.get("alerts", [])):
                        self._known((*npath, "alerts", m), "rule", rid, rules)

    def _known(self, path: tuple[str | int, ...], kind: str, name: str, known: set[str]) -> None:
        if name in known:
            return
        hint = difflib.get_close_matches(name, sorted(known), n=1)
        where = "rule files" if kind == "rule" else "channel files"
        tail = f"; did you mean {hint[0]!r}?" if hint else f" (the {where} define {len(known)})"
        self.problem(path, f"unknown {kind} {name!r} in this test's {where}{tail}")

    def interval(self, config: Config) -> float:
        if "evaluation_interval" in self.data:
            return self.time(("evaluation_interval",), self.data["evaluation_interval"])
        intervals = {g.interval for g in config.groups}
        if len(intervals) <= 1:
            return intervals.pop() if intervals else config.default_interval
        groups = ", ".join(f"{g.name} every {format_duration(g.interval)}" for g in config.groups)
        self.problem(
            ("rule_files",),
            f"the rule groups have different intervals ({groups}): "
            "set evaluation_interval to the step every group is evaluated on",
        )
        return 0.0


def _label(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return str(v)
