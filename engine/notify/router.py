"""Label matching for notifications: routes, silences, inhibition.

Routes are tried in order; the first that matches wins, unless it says
`continue: true`, in which case later matching routes apply too. A matching
route's child routes are tried the same way; the route itself gets the alert only
when none of them matches (Alertmanager's tree). A route without matchers matches
everything; matchers have engine.common.matchers' one semantics (Alertmanager's).
Silences from config files and from the API are the same `Silence` objects;
inhibition is indexed so that checking one alert does not scan all alerts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from engine.common import matchers
from engine.common.matchers import Matcher, matches_all
from engine.common.timefmt import to_epoch
from engine.config.model import Config, Inhibit, Route, Rule, Silence
from engine.notify.hold import FREE, Hold

__all__ = [
    "BYPASS_INDEX",
    "Inhibitor",
    "bypass_route",
    "match_labels",
    "route",
    "silence_active",
    "silence_from_state",
    "silence_hold",
    "silenced_by",
    "source_counts",
    "targets",
]

# Route index used in group keys for a rule's own `channels:` (no configured route).
BYPASS_INDEX = -1

# The daemon's own alerts that reach every configured channel whatever the route
# tree says: a journal that cannot write concerns every operator, and a tree that
# routes by team would otherwise send it nowhere (14.B4).
BROADCAST_RULES = frozenset({"journal_degraded"})


def match_labels(labels: Mapping[str, str], rule: str, severity: str) -> dict[str, str]:
    """The labels routes, silences and inhibit rules match on: the alert's
    labels plus `rule` and `severity` (which win over labels of the same name)."""
    return {**labels, "rule": rule, "severity": severity}


def route(config: Config, labels: Mapping[str, str]) -> list[Route]:
    """The routes `labels` (as made by `match_labels`) go to, in config order."""
    return [r for _, r in _indexed(config, labels)]


def _indexed(config: Config, labels: Mapping[str, str]) -> list[tuple[int, Route]]:
    out: list[tuple[int, Route]] = []
    roots = [i for i, r in enumerate(config.routes) if r.depth == 0]
    _walk(config.routes, roots, labels, out)
    return out


def _walk(
    routes: Sequence[Route],
    indices: Iterable[int],
    labels: Mapping[str, str],
    out: list[tuple[int, Route]],
) -> bool:
    """Alertmanager's tree: among siblings the first matching route wins unless it
    says `continue`; a matching route's children are tried, and the route itself
    receives the alert only when none of them matches. Whether any matched."""
    matched = False
    for i in indices:
        r = routes[i]
        if not matches_all(r.matchers, labels):
            continue
        matched = True
        if not (r.children and _walk(routes, r.children, labels, out)):
            out.append((i, r))
        if not r.continue_:
            break
    return matched


def bypass_route(rule: Rule) -> Route:
    """The implicit route of a rule that names its own channels: default timing,
    grouped by rule, no escalation or time intervals."""
    return Route(matchers=(), channels=tuple(rule.channels or ()))


def targets(
    config: Config, labels: Mapping[str, str], rule: Rule | None = None
) -> list[tuple[int, Route]]:
    """(route index, route) pairs for an alert; a rule with `channels` set
    bypasses routing and gets its implicit route at index BYPASS_INDEX. A
    BROADCAST_RULES alert of the daemon's own takes its routes, and the implicit
    route to every channel they do not reach."""
    if rule is not None and rule.channels is not None:
        return [(BYPASS_INDEX, bypass_route(rule))]
    routed = _indexed(config, labels)
    if rule is None and labels.get("rule") in BROADCAST_RULES:
        # the routes that take it keep their timing; every other channel gets it too
        taken = {ch for _, r in routed for ch in r.channels}
        rest = tuple(c.name for c in config.channels if c.name not in taken)
        if rest:
            routed.append((BYPASS_INDEX, Route(matchers=(), channels=rest)))
    return routed


# -- silences ---------------------------------------------------------------------------


def silence_from_state(sid: str, d: Mapping[str, Any]) -> Silence | None:
    """A Silence from the durable state's API silence record (None if malformed).

    Matchers are records as engine.common.matchers reads them (`{"label", "value" |
    "values" | "regex", "negate"?}` or a `label!=value` string); a `{"match":
    {...}, "match_re": {...}}` record (the config file shape) is read too.
    """
    raw = d.get("matchers")
    ms: list[Matcher] = []
    try:
        if isinstance(raw, list):
            ms.extend(matchers.from_record(m) for m in raw)
        for k, v in (d.get("match") or {}).items():
            vals = v if isinstance(v, list) else [v]
            ms.append(Matcher(str(k), frozenset(str(x) for x in vals)))
        for k, v in (d.get("match_re") or {}).items():
            ms.append(Matcher(str(k), regex=matchers.compile_regex(str(v))))
        # RFC 3339 (journal events since 13.18) or epoch seconds (state, old journals)
        until = to_epoch(d["until"])
        starts = None if d.get("starts") is None else to_epoch(d["starts"])
        if until is None or (d.get("starts") is not None and starts is None):
            return None
    except (KeyError, TypeError, ValueError, AttributeError):  # MatcherError is a ValueError
        return None
    if not ms:  # a silence without matchers would mute everything: refuse it
        return None
    return Silence(
        sid,
        tuple(ms),
        until,
        str(d.get("reason", "")),
        starts,
        str(d.get("created_by") or "api"),
    )


def silence_active(s: Silence, now: float) -> bool:
    return (s.starts is None or s.starts <= now) and now < s.until


def silence_hold(s: Silence, labels: Mapping[str, str], now: float) -> Hold:
    """One silence's "why not now" for an alert with `labels` (as made by
    `match_labels`): held ("silenced") until its `until`; one that matches but has
    not begun holds nothing yet ("silence_starts" at its `starts`); an ended or
    non-matching one: FREE. detail: {"silence": s}."""
    if now >= s.until or not matches_all(s.matchers, labels):
        return FREE
    if s.starts is not None and s.starts > now:
        return Hold(False, "silence_starts", s.starts, {"silence": s})
    return Hold(True, "silenced", s.until, {"silence": s})


def silenced_by(
    silences: Iterable[Silence], labels: Mapping[str, str], now: float
) -> Silence | None:
    """The first active silence matching `labels` (as made by `match_labels`)."""
    for s in silences:
        if silence_hold(s, labels, now).held:
            return s
    return None


# -- inhibition -------------------------------------------------------------------------


class Inhibitor:
    """Which alerts are inhibited: a target is inhibited while another firing alert
    matches the rule's source with equal values of every `equal` label (a missing
    label counts as the empty string, as in Alertmanager). A source that also
    matches the rule's target side does not count against a target that also
    matches the source side (Alertmanager's rule): two such alerts would otherwise
    mute each other and nobody would hear of either. Sources are indexed by their
    `equal` values, so a lookup does not scan all alerts."""

    def __init__(self, rules: Sequence[Inhibit]) -> None:
        self.rules = tuple(rules)
        self._sources: list[dict[tuple[str, ...], set[str]]] = [{} for _ in self.rules]
        # of those, the sources that do not also match the rule's target side
        self._one_sided: list[dict[tuple[str, ...], set[str]]] = [{} for _ in self.rules]

    @staticmethod
    def _key(rule: Inhibit, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(k, "") for k in rule.equal)

    def set_firing(
        self, fp: str, labels: Mapping[str, str], firing: bool
    ) -> list[tuple[int, tuple[str, ...]]]:
        """Record whether alert `fp` fires. Returns the (rule index, equal values)
        whose sources changed: alerts matching those targets may have changed."""
        changed: list[tuple[int, tuple[str, ...]]] = []
        for i, r in enumerate(self.rules):
            if not matches_all(r.source_matchers, labels):
                continue
            key = self._key(r, labels)
            one_sided = not matches_all(r.target_matchers, labels)
            if _index(self._sources[i], key, fp, firing):
                changed.append((i, key))
            if one_sided:
                _index(self._one_sided[i], key, fp, firing)
        return changed

    def affects(
        self, changes: Collection[tuple[int, tuple[str, ...]]], labels: Mapping[str, str]
    ) -> bool:
        """Whether an alert with `labels` is a target of one of `changes` (a set:
        the cost is per rule, not per change)."""
        for i, r in enumerate(self.rules):
            if (i, self._key(r, labels)) in changes and matches_all(r.target_matchers, labels):
                return True
        return False

    def _inhibiting(self, i: int, fp: str, labels: Mapping[str, str]) -> set[str] | None:
        """The firing sources by which rule `i` inhibits alert `fp` (None: none)."""
        r = self.rules[i]
        if not self._sources[i] or not matches_all(r.target_matchers, labels):
            return None
        # a target that is also a source is inhibited only by one-sided sources
        # (which it cannot be itself); any other target by any source
        two_sided = matches_all(r.source_matchers, labels)
        fps = (self._one_sided if two_sided else self._sources)[i].get(self._key(r, labels))
        if fps and (len(fps) > 1 or fp not in fps):  # never by itself
            return fps
        return None

    def inhibited(self, fp: str, labels: Mapping[str, str]) -> bool:
        return any(self._inhibiting(i, fp, labels) for i in range(len(self.rules)))

    def hold(self, fp: str, labels: Mapping[str, str]) -> Hold:
        """Inhibition's "why not now": held ("inhibited") while a source fires, no
        time known (it ends when the source resolves). detail: {"by": [(inhibit
        rule index, one source's fingerprint), ...]}, one per inhibiting rule."""
        by: list[tuple[int, str]] = []
        for i in range(len(self.rules)):
            fps = self._inhibiting(i, fp, labels)
            if fps:
                by.append((i, min(fps - {fp})))
        return Hold(True, "inhibited", None, {"by": by}) if by else FREE


def source_counts(rule: Inhibit, target: Mapping[str, str], source: Mapping[str, str]) -> bool:
    """Whether a firing alert with labels `source` inhibits one with `target` under
    `rule` (equal labels aside): it matches the source side, and is not one that
    matches both sides when the target does too."""
    if not matches_all(rule.source_matchers, source):
        return False
    return not (
        matches_all(rule.source_matchers, target) and matches_all(rule.target_matchers, source)
    )


def _index(idx: dict[tuple[str, ...], set[str]], key: tuple[str, ...], fp: str, on: bool) -> bool:
    """Add (`on`) or remove `fp` under `key`; whether that changed anything."""
    fps = idx.get(key)
    if on and (fps is None or fp not in fps):
        idx.setdefault(key, set()).add(fp)
        return True
    if not on and fps is not None and fp in fps:
        fps.discard(fp)
        if not fps:
            del idx[key]
        return True
    return False
