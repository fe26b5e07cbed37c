"""The collectors' latest values (`CollectorHub`), and what of them the rules read.

A leaf of the daemon package: collecting fills the hub (and reshapes it at a
reload), evaluation snapshots it, and both ask the configuration the same
questions (how far back a window reaches, which collectors a window reads).
The composition root builds one hub and hands it to both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.config.catalog import metric_names
from engine.config.model import Config, Rule
from engine.rules.evaluator import Snapshot


@dataclass
class CollectorHub:
    """The latest sample of every collector, and which are down."""

    values: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # name -> error
    last: dict[str, float] = field(default_factory=dict)  # name -> wall time of its last good read
    # name -> (monotonic, wall) time its windows are full (a collector's fills_for
    # after its first read); set once per collector object, cleared when rebuilt
    filling: dict[str, tuple[float, float]] = field(default_factory=dict)

    def snapshot(self, wall: float, mono: float) -> Snapshot:
        # values are replaced whole per collection, so a shallow copy is a consistent view
        filling = frozenset(n for n, (until, _) in self.filling.items() if until > mono)
        return Snapshot(dict(self.values), frozenset(self.down), wall, mono, filling)


def max_window(config: Config) -> float:
    return rules_max_window(config.rules())


def rules_max_window(rules: list[Rule]) -> float:
    exprs = [e for r in rules for e in (r.compiled, r.compiled_resolve) if e]
    return max((w for e in exprs for w in e.windows), default=0.0)


def windowed(rules: list[Rule]) -> set[str]:
    """The collectors whose values a window function may read (avg_over, rate ...):
    only their samples need a history. Every name a rule reads counts once any
    of its expressions has a window."""
    out: set[str] = set()
    for r in rules:
        exprs = [e for e in (r.compiled, r.compiled_resolve, r.compiled_each) if e]
        if any(e.windows for e in exprs):
            out.update(n for e in exprs for n in e.names)
    out.discard("it")  # an element's samples are recorded by the evaluator
    return out


def runtime_named(config: Config) -> frozenset[str]:
    """The collectors whose metric names only collecting can tell."""
    return frozenset(c.name for c in config.collectors if metric_names(c) is None)
