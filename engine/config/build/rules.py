"""Rule files: each group and its rules, with every expression compiled and
checked against what the collectors provide, and the checks across rule files
(duplicate groups and rule ids, channels a rule names).

Separate because rule files are built per file and cached by content and
context (`RuleContext.key`); nothing here depends on channel files except the
channel names the cross-file check is given.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.config import catalog
from engine.config import model as m
from engine.config.build.common import duration_at, unknown_name
from engine.config.load import Document, Path, open_regular
from engine.errors import ExprError, Problem
from engine.expr import types as expr_types
from engine.expr.compiler import compile_expr
from engine.expr.types import Provides
from engine.templates import check as template_check


@dataclass
class RuleContext:
    """What building a file depends on besides its own content."""

    collector_names: frozenset[str]
    default_interval: float
    env: Mapping[str, str] | None
    no_data: m.NoData = "ok"  # vigil.yaml's default for rules without their own
    # what each collector provides, for the checks beyond compiling (expr_types)
    provides: Mapping[str, Provides] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return (
            f"{sorted(self.collector_names)}|{self.default_interval}|{self.no_data}|"
            f"{catalog.key(self.provides)}"
        )


def _compile(
    doc: Document,
    path: Path,
    source: str,
    names: Iterable[str],
    problems: list[Problem],
    provides: Mapping[str, Provides] | None = None,
    *,
    condition: bool = True,
) -> Any:
    """The compiled expression, or None with its problems added; with `provides`,
    also what can be told before it runs (expr_types: metric names, kinds)."""
    try:
        compiled = compile_expr(source, names=frozenset(names))
    except ExprError as e:
        problems.append(_expr_problem(doc, path, source, e))
        return None
    found = expr_types.check(source, provides, condition=condition) if provides else []
    problems.extend(_expr_problem(doc, path, source, e) for e in found)
    return None if found else compiled


def _expr_problem(doc: Document, path: Path, source: str, e: ExprError) -> Problem:
    line, col = doc.mark(path)
    # a plain scalar's text starts at the mark; point into it when we can
    text = doc.data
    for p in path:
        text = text[p]
    if e.col is not None and isinstance(text, str) and "\n" not in source:
        raw_line = _line_text(doc, line)
        at = raw_line.find(source, col - 1) if raw_line else -1
        if at >= 0:
            col = at + 1 + e.col
    return Problem(doc.file, line, col, f"expression: {e.message}", _fmt(path))


def _line_text(doc: Document, line: int) -> str | None:
    lines = _file_lines(doc.file, doc.sha256)
    return lines[line - 1] if lines is not None and 0 < line <= len(lines) else None


@functools.lru_cache(maxsize=4)
def _file_lines(file: str, sha256: str) -> tuple[str, ...] | None:
    """The lines of a file, read once per version (`sha256`): a file with
    thousands of bad expressions re-read itself per error, quadratic time."""
    try:
        with open_regular(file) as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
            return tuple(f)
    except (OSError, UnicodeDecodeError):
        return None


def _fmt(path: Path) -> str:
    from engine.config.load import format_path

    return format_path(path)


def _value_source(source: str) -> str | None:
    """The operand an alert reports as its value: the non-constant side of the
    first comparison (`system.cpu_percent` in `system.cpu_percent > 90`)."""
    import ast

    try:
        node: ast.AST = ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return None
    while True:
        if isinstance(node, ast.BoolOp):
            node = node.values[0]
        elif isinstance(node, ast.UnaryOp):
            node = node.operand
        else:
            break
    if not isinstance(node, ast.Compare):
        return None
    side = node.left
    if isinstance(side, ast.Constant) and not isinstance(node.comparators[0], ast.Constant):
        side = node.comparators[0]
    return ast.get_source_segment(source.strip(), side)


def build_group(doc: Document, ctx: RuleContext, problems: list[Problem]) -> m.RuleGroup | None:
    data = doc.data
    interval = ctx.default_interval
    if "interval" in data:
        interval = duration_at(doc, ("interval",), data["interval"], problems)
        if interval <= 0:
            problems.append(doc.problem(("interval",), "interval must be greater than 0"))
    start = len(problems)
    rules: list[m.Rule] = []
    for i, r in enumerate(data["rules"]):
        if r is None:  # a rule with schema problems (partial.rules_doc)
            continue
        rule = _build_rule(doc, ("rules", i), r, data["group"], ctx, problems)
        if rule is not None:
            rules.append(rule)
    if len(problems) > start:
        return None
    line, col = doc.mark(("group",))
    return m.RuleGroup(
        data["group"], interval, tuple(rules), m.Source(doc.file, line, col), doc.sha256
    )


def _build_rule(
    doc: Document,
    path: Path,
    r: dict[str, Any],
    group: str,
    ctx: RuleContext,
    problems: list[Problem],
) -> m.Rule | None:
    start = len(problems)
    names = set(ctx.collector_names)
    each = None
    if "each" in r:
        each = _compile(
            doc, (*path, "each"), r["each"], names, problems, ctx.provides, condition=False
        )
        names.add("it")
    compiled = _compile(doc, (*path, "expr"), r["expr"], names, problems, ctx.provides)
    compiled_value = None
    value_src = _value_source(r["expr"]) if compiled is not None else None
    if value_src is not None:
        try:
            compiled_value = compile_expr(value_src, names=frozenset(names))
        except ExprError:
            compiled_value = None  # the whole expression compiled; its value is a nicety
    compiled_resolve = None
    if "resolve_expr" in r:
        compiled_resolve = _compile(
            doc, (*path, "resolve_expr"), r["resolve_expr"], names, problems, ctx.provides
        )
    for_ = duration_at(doc, (*path, "for"), r["for"], problems) if "for" in r else 0.0
    keep = (
        duration_at(doc, (*path, "keep_firing_for"), r["keep_firing_for"], problems)
        if "keep_firing_for" in r
        else 0.0
    )
    flapping = m.Flapping()
    if "flapping" in r:
        f = r["flapping"]
        flapping = m.Flapping(
            f.get("max_changes", flapping.max_changes),
            duration_at(doc, (*path, "flapping", "window"), f["window"], problems)
            if "window" in f
            else flapping.window,
        )
    for key in ("labels", "annotations"):
        for k, v in r.get(key, {}).items():
            bad = template_check.check(v)
            if bad is not None:
                problems.append(doc.problem((*path, key, k), bad[0]))
    if len(problems) > start:
        return None
    line, col = doc.mark(path)
    return m.Rule(
        id=r["id"],
        group=group,
        expr=r["expr"],
        compiled=compiled,
        severity=r.get("severity", "warning"),
        for_=for_,
        consecutive=r.get("consecutive", 0),
        keep_firing_for=keep,
        resolve_expr=r.get("resolve_expr"),
        compiled_resolve=compiled_resolve,
        each=r.get("each"),
        compiled_each=each,
        compiled_value=compiled_value,
        labels=m.frozen_map({str(k): str(v) for k, v in r.get("labels", {}).items()}),
        annotations=m.frozen_map(r.get("annotations", {})),
        no_data=r.get("no_data", ctx.no_data),
        on_error=r.get("on_error", "error"),
        channels=tuple(r["channels"]) if "channels" in r else None,
        enabled=r.get("enabled", True),
        flapping=flapping,
        source=m.Source(doc.file, line, col),
        max_alerts=r.get("max_alerts"),
    )


@dataclass(frozen=True, slots=True)
class RuleIds:
    """What the cross-file checks need of one rule file, computed once per content."""

    group: str
    group_at: tuple[int, int]
    ids: tuple[tuple[str, int, int, int], ...]  # id, rule index, line, col
    channel_refs: tuple[tuple[int, int, str], ...]  # rule index, item index, name

    @classmethod
    def of(cls, doc: Document) -> RuleIds:
        ids: list[tuple[str, int, int, int]] = []
        refs: list[tuple[int, int, str]] = []
        for i, rule in enumerate(doc.data["rules"]):
            line, col = doc.mark(("rules", i, "id"))
            ids.append((rule["id"], i, line, col))
            refs.extend((i, j, c) for j, c in enumerate(rule.get("channels", ())))
        return cls(doc.data["group"], doc.mark(("group",)), tuple(ids), tuple(refs))


def check_rule_cross_refs(
    rule_docs: list[tuple[Document, RuleIds]],
    channel_names: Mapping[str, Any],
    problems: list[Problem],
    *,
    check_channels: bool,
) -> None:
    """Duplicate groups and rule ids across files (both places named) and rules'
    channel references (to `channel_names`, the channels the channel files define);
    read from every schema-valid file, so a file with an expression error still
    takes part."""
    seen_groups: dict[str, tuple[Document, tuple[int, int]]] = {}
    seen_rules: dict[str, tuple[str, int, int]] = {}
    for doc, s in rule_docs:
        if s.group in seen_groups:
            first, at = seen_groups[s.group]
            problems.append(
                doc.problem(
                    ("group",),
                    f"duplicate group name {s.group!r} (first defined at {first.file}:{at[0]})",
                )
            )
        else:
            seen_groups[s.group] = (doc, s.group_at)
        for rid, i, line, col in s.ids:
            first_rule = seen_rules.setdefault(rid, (doc.file, line, col))
            if first_rule != (doc.file, line, col):
                ffile, fl, fc = first_rule
                problems.append(
                    Problem(
                        doc.file,
                        line,
                        col,
                        f"duplicate rule id {rid!r} (first defined at {ffile}:{fl}:{fc})",
                        f"rules[{i}].id",
                    )
                )
        if check_channels:
            for i, j, c in s.channel_refs:
                if c not in channel_names:
                    problems.append(
                        doc.problem(
                            ("rules", i, "channels", j),
                            unknown_name("channel", c, channel_names),
                        )
                    )
