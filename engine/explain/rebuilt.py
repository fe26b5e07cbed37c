"""The notification pipeline as a restart would rebuild it from the durable state
(engine/notify/resume.py), for `vigil explain` to ask its policies "why not now".

Only what one rule's notifications depend on is rebuilt: the rule's alerts and
those that may share a group with them (the same values of a route's
`group_by` labels), so a state of 10,000 alerts costs little more than a small
one. Inhibition sources are the state's firing alerts that can inhibit those,
gathered only when an inhibit rule can target them (inhibitor()).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.common.matchers import matches_all
from engine.config.model import Config, Rule
from engine.notify.pipeline import Pipeline
from engine.notify.router import Inhibitor, match_labels, targets

__all__ = ["inhibitor", "rebuild", "targeted"]


def _match(d: Mapping[str, Any]) -> dict[str, str]:
    labels = {str(k): str(v) for k, v in (d.get("labels") or {}).items()}
    return match_labels(labels, str(d.get("rule") or ""), str(d.get("severity") or ""))


def targeted(config: Config, labels: Iterable[Mapping[str, str]]) -> bool:
    """Whether an inhibit rule can target an alert with any of these match labels."""
    return any(matches_all(i.target_matchers, ml) for ml in labels for i in config.inhibits)


def inhibitor(
    config: Config, state: Mapping[str, Any], targets_: Iterable[Mapping[str, str]]
) -> Inhibitor:
    """The pipeline's inhibitor over the state's firing alerts that can inhibit an
    alert with one of these match labels: those with the same values of an
    inhibit rule's `equal` labels (the only ones its index would look at)."""
    wanted: list[set[tuple[str, ...]]] = [set() for _ in config.inhibits]
    for ml in targets_:
        for i, r in enumerate(config.inhibits):
            if matches_all(r.target_matchers, ml):
                wanted[i].add(tuple(ml.get(k, "") for k in r.equal))
    rules = [(r.equal, wanted[i]) for i, r in enumerate(config.inhibits) if wanted[i]]
    inh = Inhibitor(config.inhibits)
    for fp, d in (state.get("alerts") or {}).items():
        if not rules or not isinstance(d, Mapping) or d.get("state") != "firing":
            continue
        if any(_values(d, equal) in keys for equal, keys in rules):
            inh.set_firing(str(fp), _match(d), True)
    return inh


def _values(d: Mapping[str, Any], names: Sequence[str]) -> tuple[str, ...]:
    """The values of match labels `names` of a state record, without making them all."""
    labels = d.get("labels") or {}
    return tuple(
        str(d.get(k) or "") if k in ("rule", "severity") else str(labels.get(k, "")) for k in names
    )


def rebuild(
    config: Config,
    rule: Rule,
    state: Mapping[str, Any],
    now: float,
) -> Pipeline:
    """The pipeline of `config` rebuilt at `now` from `state`, with `rule`'s alerts
    and their possible group mates (and the sources that may inhibit them)."""
    alerts: Mapping[str, Any] = state.get("alerts") or {}
    resolving: Mapping[str, Any] = state.get("resolving") or {}
    own = {
        fp: _match(d)
        for part in (alerts, resolving)
        for fp, d in part.items()
        if isinstance(d, Mapping) and d.get("rule") == rule.id
    }
    # per route the rule's alerts go to: the group_by values of their groups
    keys: dict[int, set[tuple[str, ...]]] = {}
    group_by: dict[int, tuple[str, ...]] = {}
    for ml in own.values():
        for idx, r in targets(config, ml, rule):
            by = tuple(sorted(ml)) if "..." in r.group_by else r.group_by
            group_by.setdefault(idx, by)
            keys.setdefault(idx, set()).add(tuple(ml.get(k, "") for k in by))

    def mate(d: Mapping[str, Any]) -> bool:
        return any(_values(d, by) in keys[i] for i, by in group_by.items())

    kept = set(own)
    if keys:
        for part in (alerts, resolving):
            kept.update(fp for fp, d in part.items() if isinstance(d, Mapping) and mate(d))
    types = {c.name: c.type for c in config.channels}
    p = Pipeline(config, types, textless=types)  # no text is read: none is rendered
    mls = [_match(d) for part in (alerts, resolving) for fp, d in part.items() if fp in kept]
    if targeted(config, mls):
        # explain ingests nothing: the pipeline never changes it
        p.inhibitor = inhibitor(config, state, mls)
    p.load_state(
        {
            **state,
            "alerts": {fp: d for fp, d in alerts.items() if fp in kept},
            "resolving": {fp: d for fp, d in resolving.items() if fp in kept},
        },
        now,
    )
    return p
