"""The evidence part of `vigil explain` for a rule over a detecting `logtail`
collector (`each: web.keys`, engine/detect): which patterns hit the key and which
lines did it, so "why does 203.0.113.9 fire" is answered with the log itself.

The lines come from the element when the values are known (its `evidence`: the
last matching lines, with the patterns each hit), else from the alert's
`evidence` annotation in the journal (the lines as the rule rendered them when
it fired), matched again here with the collector's own patterns. Only the
patterns the rule reads count: `it.hits.sqli` reads the sqli pack's patterns,
`it.patterns.admin_path` that one; a rule that reads no pattern (a 401 count, a
distinct-users window) is shown every kept line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.config.model import CollectorConfig, Rule
from engine.detect import settings as detect
from engine.detect.patterns import Matcher
from engine.explain.facts import Facts

MAX_LINES = 20
_READS = re.compile(r"\bit\s*\.\s*(hits|patterns)\s*(?:\.\s*(\w+)|\[\s*['\"]([^'\"]+)['\"]\s*\])")


def evidence(facts: Facts, it: Any, fp: str) -> Mapping[str, Any] | None:
    """{source, hits: {pattern: n}, lines: [{line, patterns, path?, offset?}]}, or None
    when the rule does not read a detecting collector or nothing is known."""
    rule = facts.rule
    collector = _detecting_collector(facts, rule)
    if collector is None:
        return None
    try:
        settings = detect.parse(collector.settings)
    except ValueError:
        return None  # reported by the config check; nothing to match with here
    wanted = _patterns_read(rule, settings)
    if isinstance(it, Mapping) and isinstance(it.get("evidence"), list):
        got = it.get("patterns")
        counts: Mapping[str, Any] = got if isinstance(got, Mapping) else {}
        lines = [
            {k: ev[k] for k in ("line", "patterns", "path", "offset") if k in ev}
            for ev in it["evidence"]
            if isinstance(ev, Mapping) and _relevant(ev.get("patterns") or (), wanted)
        ]
        hits = {str(k): v for k, v in counts.items() if wanted is None or k in wanted}
        return _result(f"the sample of collector {collector.name}", hits, lines)
    alert = facts.alerts.get(fp)
    annotations = alert.get("annotations") if isinstance(alert, Mapping) else None
    text = annotations.get("evidence") if isinstance(annotations, Mapping) else None
    if not isinstance(text, str) or not text.strip():
        return None
    matcher = Matcher(settings.patterns)
    names = [p.name for p in settings.patterns]
    lines, hits = [], {}
    for line in text.splitlines():
        f = settings.format.parse(line)
        got = [names[i] for i in matcher.match(f, line)] if f is not None else []
        if not _relevant(got, wanted):
            continue
        lines.append({"line": line, "patterns": got})
        for name in got:
            if wanted is None or name in wanted:
                hits[name] = hits.get(name, 0) + 1
    return _result("the alert's evidence annotation (journal)", hits, lines)


def _result(source: str, hits: Mapping[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = dict(sorted(hits.items(), key=lambda kv: -kv[1] if isinstance(kv[1], int) else 0))
    return {"source": source, "hits": ranked, "lines": lines[-MAX_LINES:]}


def _detecting_collector(facts: Facts, rule: Rule) -> CollectorConfig | None:
    if rule.compiled_each is None or not rule.each:
        return None
    root = rule.each.split(".", 1)[0].split("[", 1)[0].strip()
    for c in facts.config.collectors:
        if c.name == root and c.type == "logtail" and not detect.DETECT_KEYS.isdisjoint(c.settings):
            return c
    return None


def _patterns_read(rule: Rule, settings: detect.DetectSettings) -> frozenset[str] | None:
    """The pattern names the rule's expression reads; None: it reads none (all count)."""
    packs: set[str] = set()
    names: set[str] = set()
    for kind, dotted, indexed in _READS.findall(rule.expr):
        (packs if kind == "hits" else names).add(dotted or indexed)
    if not packs and not names:
        return None
    return frozenset(p.name for p in settings.patterns if p.pack in packs or p.name in names)


def _relevant(patterns: Any, wanted: frozenset[str] | None) -> bool:
    return wanted is None or any(p in wanted for p in patterns)
