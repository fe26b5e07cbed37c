"""Channel files: channels, routes (nested, each inheriting from its parent),
inhibit rules, time intervals, silences and templates, with the references
between them checked across all channel files.

Separate because these sections are built together (a route names channels
and time intervals from any channel file) and apart from rules and vigil.yaml.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from engine.common import matchers
from engine.config import model as m
from engine.config import plugins
from engine.config.build.common import (
    check_plugin_type,
    duration_at,
    resolve_settings,
    unknown_name,
)
from engine.config.load import Document, Path
from engine.errors import Problem
from engine.templates import check as template_check

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_MONTHS = {
    n: i + 1
    for i, n in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}


@dataclass
class NotifySections:
    channels: tuple[m.Channel, ...] = ()
    routes: tuple[m.Route, ...] = ()
    inhibits: tuple[m.Inhibit, ...] = ()
    silences: tuple[m.Silence, ...] = ()
    time_intervals: tuple[m.TimeInterval, ...] = ()
    templates: dict[str, str] = field(default_factory=dict)
    channel_names: dict[str, tuple[Document, Path]] = field(default_factory=dict)


def _matchers(
    doc: Document,
    path: Path,
    eq: Mapping[str, Any],
    rx: Mapping[str, str],
    problems: list[Problem],
    rx_key: str = "match_re",
    strings: Sequence[str] = (),
    strings_key: str = "matchers",
) -> tuple[m.Matcher, ...]:
    """Matchers from an equality map (value or list of values), a regex map and
    Alertmanager-style strings (`team!=ops`), in that order; engine.common.matchers has
    the one semantics they share."""
    out: list[m.Matcher] = []
    for k, v in eq.items():
        values = v if isinstance(v, list) else [v]
        out.append(m.Matcher(k, frozenset(str(x) for x in values)))
    for k, v in rx.items():
        try:
            out.append(m.Matcher(k, regex=matchers.compile_regex(v)))
        except matchers.MatcherError as e:
            problems.append(doc.problem((*path[:-1], rx_key, k), str(e)))
    for j, text in enumerate(strings):
        try:
            out.append(matchers.parse(text))
        except matchers.MatcherError as e:
            problems.append(doc.problem((*path[:-1], strings_key, j), str(e)))
    return tuple(out)


_ROOT = m.Route(matchers=(), channels=())  # the defaults a top-level route inherits
MAX_ROUTE_DEPTH = 16  # nested `routes:` levels; deeper is a mistake, not a routing tree


def _build_routes(
    doc: Document,
    path: Path,
    items: Sequence[Mapping[str, Any]],
    parent: m.Route | None,
    out: list[tuple[m.Route, Document, Path]],
    problems: list[Problem],
    templates: Mapping[str, str],
) -> tuple[int, ...]:
    """Append the routes `items` (at `path`) and their descendants to `out` in
    pre-order (so a config without nesting keeps its indices); each child
    inherits what it does not set from `parent`. Returns their indices."""
    depth = 0 if parent is None else parent.depth + 1
    if depth > MAX_ROUTE_DEPTH:
        problems.append(doc.problem(path, f"routes nested deeper than {MAX_ROUTE_DEPTH} levels"))
        return ()
    indices: list[int] = []
    for i, r in enumerate(items):
        rpath: Path = (*path, i)
        for tk, tv in r.get("templates", {}).items():
            bad = template_check.check(tv, templates)
            if bad is not None:
                problems.append(doc.problem((*rpath, "templates", tk), bad[0]))
        base = parent or _ROOT
        escal = (
            tuple(
                m.Escalation(
                    duration_at(doc, (*rpath, "escalate", j, "after"), e["after"], problems),
                    tuple(e["channels"]),
                )
                for j, e in enumerate(r["escalate"])
            )
            if "escalate" in r
            else base.escalate
        )

        def dur(key: str, r: Mapping[str, Any] = r, rpath: Path = rpath) -> float:
            # set here, or the parent's (whose own defaults are the top level's)
            if key in r:
                return duration_at(doc, (*rpath, key), r[key], problems)
            return float(getattr(parent or _ROOT, key))

        line, col = doc.mark(rpath)
        node = m.Route(
            matchers=_matchers(
                doc,
                (*rpath, "match"),
                r.get("match", {}),
                r.get("match_re", {}),
                problems,
                strings=r.get("matchers", ()),
            ),
            channels=tuple(r["channels"]) if "channels" in r else base.channels,
            continue_=r.get("continue", False),
            group_by=tuple(r["group_by"]) if "group_by" in r else (base.group_by),
            group_wait=dur("group_wait"),
            group_interval=dur("group_interval"),
            repeat_interval=dur("repeat_interval"),
            active_time=tuple(r["active_time"]) if "active_time" in r else base.active_time,
            mute_time=tuple(r["mute_time"]) if "mute_time" in r else base.mute_time,
            escalate=escal,
            templates=m.frozen_map({**base.templates, **r.get("templates", {})}),
            depth=depth,
            source=m.Source(doc.file, line, col),
        )
        index = len(out)
        indices.append(index)
        out.append((node, doc, rpath))
        kids = r.get("routes", ())
        if kids:
            children = _build_routes(doc, (*rpath, "routes"), kids, node, out, problems, templates)
            out[index] = (dataclasses.replace(node, children=children), doc, rpath)
    return tuple(indices)


def build_notify(
    docs: list[Document], problems: list[Problem], env: Mapping[str, str] | None
) -> NotifySections:
    n = NotifySections()
    channels: list[m.Channel] = []
    routes: list[tuple[m.Route, Document, Path]] = []
    intervals: dict[str, tuple[m.TimeInterval, Document, Path]] = {}
    inhibits: list[m.Inhibit] = []
    silences: list[m.Silence] = []
    template_defs: dict[str, tuple[Document, Path]] = {}

    for doc in docs:
        for k, v in doc.data.get("templates", {}).items():
            if k in template_defs:
                first = template_defs[k]
                problems.append(
                    doc.problem(
                        ("templates", k),
                        f"duplicate template {k!r} (first defined at {first[0].file}:{first[0].mark(first[1])[0]})",
                        key=True,
                    )
                )
                continue
            template_defs[k] = (doc, ("templates", k))
            n.templates[k] = v
    for k, (tdoc, tpath) in template_defs.items():
        bad = template_check.check(n.templates[k], n.templates)
        if bad is not None:
            problems.append(tdoc.problem(tpath, bad[0]))

    for doc in docs:
        for i, c in enumerate(doc.data.get("channels", [])):
            path: Path = ("channels", i)
            name = c["name"]
            if name in n.channel_names:
                fdoc, fpath = n.channel_names[name]
                problems.append(
                    doc.problem(
                        (*path, "name"),
                        f"duplicate channel name {name!r} (first defined at {fdoc.file}:{fdoc.mark(fpath)[0]})",
                    )
                )
                continue
            n.channel_names[name] = (doc, path)
            check_plugin_type(doc, path, "vigil.channels", c["type"], name, problems)
            rl = None
            if "rate_limit" in c:
                rl = m.RateLimit(
                    c["rate_limit"]["max"],
                    duration_at(
                        doc, (*path, "rate_limit", "per"), c["rate_limit"]["per"], problems
                    ),
                )
            tpl = c.get("templates", {})
            for tk, tv in tpl.items():
                bad = template_check.check(tv, n.templates)
                if bad is not None:
                    problems.append(doc.problem((*path, "templates", tk), bad[0]))
            before = len(problems)
            settings = {
                k: resolve_settings(doc, (*path, k), v, problems, env, urls=c["type"] != "exec")
                for k, v in c.items()
                if k not in ("name", "type", "rate_limit", "templates")
            }
            line, col = doc.mark(path)
            channel = m.Channel(
                name,
                c["type"],
                m.frozen_map(settings),
                rl,
                m.frozen_map(tpl),
                m.Source(doc.file, line, col),
            )
            if len(problems) == before:  # the plugin's own parse (secrets resolved)
                plugins.check_channel(doc, path, channel, problems)
            channels.append(channel)

        for i, t in enumerate(doc.data.get("time_intervals", [])):
            path = ("time_intervals", i)
            ti = _build_interval(doc, path, t, problems)
            if ti.name in intervals:
                fdoc, fpath = intervals[ti.name][1], intervals[ti.name][2]
                problems.append(
                    doc.problem(
                        (*path, "name"),
                        f"duplicate time interval {ti.name!r} (first defined at {fdoc.file}:{fdoc.mark(fpath)[0]})",
                    )
                )
                continue
            intervals[ti.name] = (ti, doc, path)

        _build_routes(
            doc, ("routes",), doc.data.get("routes", []), None, routes, problems, n.templates
        )

        for i, ih in enumerate(doc.data.get("inhibit", [])):
            path = ("inhibit", i)
            line, col = doc.mark(path)
            inhibits.append(
                m.Inhibit(
                    _matchers(
                        doc,
                        (*path, "source"),
                        ih.get("source", {}),
                        ih.get("source_re", {}),
                        problems,
                        "source_re",
                        ih.get("source_matchers", ()),
                        "source_matchers",
                    ),
                    _matchers(
                        doc,
                        (*path, "target"),
                        ih.get("target", {}),
                        ih.get("target_re", {}),
                        problems,
                        "target_re",
                        ih.get("target_matchers", ()),
                        "target_matchers",
                    ),
                    tuple(ih.get("equal", [])),
                    m.Source(doc.file, line, col),
                )
            )

        for i, s in enumerate(doc.data.get("silences", [])):
            path = ("silences", i)
            until = _timestamp(doc, (*path, "until"), s["until"], problems)
            starts = (
                _timestamp(doc, (*path, "starts"), s["starts"], problems) if "starts" in s else None
            )
            line, col = doc.mark(path)
            silence_matchers = _matchers(
                doc,
                (*path, "match"),
                s.get("match", {}),
                s.get("match_re", {}),
                problems,
                strings=s.get("matchers", ()),
            )
            sid = (
                "cfg-"
                + hashlib.sha256(
                    f"{doc.file}:{sorted(s.get('match', {}).items())}:{s['until']}"
                    # matchers only when given, so existing silences keep their ids
                    f"{':' + repr(s['matchers']) if s.get('matchers') else ''}".encode()
                ).hexdigest()[:12]
            )
            silences.append(
                m.Silence(
                    sid,
                    silence_matchers,
                    until,
                    s["reason"],
                    starts,
                    s.get("created_by", "config"),
                    m.Source(doc.file, line, col),
                )
            )

    names = n.channel_names
    for route, doc, path in routes:
        for j, c in enumerate(route.channels):
            if c not in names:
                problems.append(
                    doc.problem((*path, "channels", j), unknown_name("channel", c, names))
                )
        for j, e in enumerate(route.escalate):
            for k, c in enumerate(e.channels):
                if c not in names:
                    problems.append(
                        doc.problem(
                            (*path, "escalate", j, "channels", k), unknown_name("channel", c, names)
                        )
                    )
        for key, refs in (("active_time", route.active_time), ("mute_time", route.mute_time)):
            for j, t in enumerate(refs):
                if t not in intervals:
                    problems.append(
                        doc.problem((*path, key, j), unknown_name("time interval", t, intervals))
                    )

    n.channels = tuple(channels)
    n.routes = tuple(r for r, _, _ in routes)
    n.inhibits = tuple(inhibits)
    n.silences = tuple(silences)
    n.time_intervals = tuple(t for t, _, _ in intervals.values())
    return n


def _timestamp(doc: Document, path: Path, value: Any, problems: list[Problem]) -> float:
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if dt.tzinfo is None:
            raise ValueError
        return dt.timestamp()
    except ValueError:
        problems.append(
            doc.problem(
                path,
                f"expected an RFC 3339 time with zone such as 2026-12-01T00:00:00Z; got {value!r}",
            )
        )
        return 0.0


def _ranges(
    doc: Document,
    path: Path,
    items: list[Any],
    names: Mapping[str, int],
    lo: int,
    hi: int,
    problems: list[Problem],
) -> frozenset[int]:
    out: set[int] = set()
    for j, item in enumerate(items):
        text = str(item).strip().lower()
        parts = re.split(r"\s*(?:-|\.\.|:)\s*", text) if not text.lstrip("-").isdigit() else [text]

        def one(p: str) -> int | None:
            if p in names:
                return names[p]
            if p.isdigit() and lo <= int(p) <= hi:
                return int(p)
            return None

        ends = [one(p) for p in parts]
        if not 1 <= len(ends) <= 2 or any(e is None for e in ends):
            problems.append(doc.problem((*path, j), f"invalid range {item!r}"))
            continue
        a, b = cast(int, ends[0]), cast(int, ends[-1])
        if b < a:
            problems.append(doc.problem((*path, j), f"range {item!r} ends before it starts"))
            continue
        out.update(range(a, b + 1))
    return frozenset(out)


def _build_interval(
    doc: Document, path: Path, t: dict[str, Any], problems: list[Problem]
) -> m.TimeInterval:
    import zoneinfo  # only time intervals need it

    tz = t.get("timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(
            doc.problem(
                (*path, "timezone"),
                f"unknown time zone {tz!r}; expected an IANA name such as Europe/Berlin",
            )
        )
    times: list[m.TimeRange] = []
    for j, tr in enumerate(t.get("times", [])):
        mt = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", str(tr))
        if not mt:
            problems.append(doc.problem((*path, "times", j), f"expected HH:MM-HH:MM; got {tr!r}"))
            continue
        h1, m1, h2, m2 = (int(x) for x in mt.groups())
        a, b = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or b > 1440 or b <= a:
            problems.append(
                doc.problem(
                    (*path, "times", j),
                    f"invalid time range {tr!r}: the end must be after the start, within 00:00-24:00",
                )
            )
            continue
        times.append(m.TimeRange(a, b))
    weekdays = _ranges(doc, (*path, "weekdays"), t.get("weekdays", []), _WEEKDAYS, 99, -1, problems)
    dom = _ranges(doc, (*path, "days_of_month"), t.get("days_of_month", []), {}, 1, 31, problems)
    months = _ranges(doc, (*path, "months"), t.get("months", []), _MONTHS, 1, 12, problems)
    line, col = doc.mark(path)
    return m.TimeInterval(
        t["name"], weekdays, tuple(times), dom, months, tz, m.Source(doc.file, line, col)
    )
