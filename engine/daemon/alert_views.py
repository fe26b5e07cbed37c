"""The API's alert listing, cached (engine/daemon/control.py's list_alerts).

Each alert's view (engine/api/facade.py's alert_view) and its JSON are built once per
change of the alert, of the silences in force or of its inhibition, and reused by
every listing until then: with 10,000 alerts a listing is a few milliseconds on the
event loop, which runs the evaluations too. `prepare` builds them ahead, within the
loop's time budget, after a burst changed many.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from engine.api.facade import AlertList, alert_view, filter_alerts
from engine.api.responses import encode
from engine.common.records import ApiAlert
from engine.config.model import Silence
from engine.notify import router
from engine.runtime.budget import Budget

if TYPE_CHECKING:
    from engine.config.model import Config
    from engine.delivery.dispatch import Dispatcher

PREPARE_PASSES = 3  # passes of prepare over alerts that changed while it ran


class AlertState(Protocol):
    """What the alert views are built from: the daemon's state, config and pipeline."""

    @property
    def config(self) -> Config: ...
    @property
    def state(self) -> dict[str, Any]: ...
    @property
    def state_version(self) -> int: ...
    @property
    def alert_versions(self) -> dict[str, int]: ...
    @property
    def dispatcher(self) -> Dispatcher: ...
    @property
    def wall(self) -> Callable[[], float]: ...
    @property
    def budget(self) -> Budget: ...


def silences(live: AlertState) -> list[Silence]:
    """Every silence: the config's first, then the API's from the state."""
    out = list(live.config.silences)
    for sid, rec in live.state["silences"].items():
        s = router.silence_from_state(sid, rec)
        if s is not None:
            out.append(s)
    return out


def active_inhibitor(live: AlertState) -> router.Inhibitor | None:
    """The pipeline's inhibitor when it has rules (None: nothing is inhibited)."""
    pipeline = live.dispatcher.pipeline
    return pipeline.inhibitor if pipeline is not None and pipeline.inhibitor.rules else None


def one_view(live: AlertState, fp: str, stored: Mapping[str, Any]) -> ApiAlert:
    """One alert's view now, built afresh (not cached)."""
    now = live.wall()
    labels = _match_labels(stored)
    by = [
        s.id
        for s in silences(live)
        if router.silence_active(s, now) and all(m.matches(labels) for m in s.matchers)
    ]
    pipeline = live.dispatcher.pipeline
    inhibited = pipeline.inhibitor.inhibited(fp, labels) if pipeline is not None else False
    return alert_view(fp, stored, silenced_by=by, inhibited=inhibited)


class _Entry:
    """One alert's view and its JSON, as of the alert's `version`; never changed
    once built (the view is handed out)."""

    __slots__ = ("json", "match", "version", "view")

    def __init__(
        self,
        fp: str,
        stored: Mapping[str, Any],
        version: int,
        match: Mapping[str, str],
        marks: _Marks,
    ) -> None:
        self.version = version
        self.match = match
        by, inhibited = marks.of(fp, match)
        self.view = alert_view(fp, stored, silenced_by=by, inhibited=inhibited)
        self.json = encode(self.view)

    def stale(self, marks: _Marks) -> bool:
        by, inhibited = marks.of(self.view["fingerprint"], self.match)
        return bool(by != self.view["silenced_by"] or inhibited != self.view["inhibited"])


class _Marks:
    """What decides an alert's `silenced_by` and `inhibited` at one moment."""

    __slots__ = ("active", "inhibitor")

    def __init__(self, active: list[Silence], inhibitor: router.Inhibitor | None) -> None:
        self.active = active
        self.inhibitor = inhibitor

    def of(self, fp: str, match: Mapping[str, str]) -> tuple[list[str], bool]:
        by = [s.id for s in self.active if all(m.matches(match) for m in s.matchers)]
        inhibited = self.inhibitor is not None and self.inhibitor.inhibited(fp, match)
        return by, inhibited


def _match_labels(stored: Mapping[str, Any]) -> Mapping[str, str]:
    return router.match_labels(
        stored.get("labels") or {}, stored.get("rule") or "", stored.get("severity") or ""
    )


class AlertViews:
    """The cache of alert views and the last listing, over one daemon's state."""

    def __init__(self, live: AlertState) -> None:
        self.live = live
        self._cache: dict[str, _Entry] = {}  # fingerprint -> its view and JSON
        self._prepared = -1  # the state version prepare last built views for
        self._marks: tuple[tuple[Silence, ...], tuple[str, ...]] | None = None  # in force
        self._last: tuple[Any, AlertList] | None = None
        self._inhibitor: router.Inhibitor | None = None  # ... the views were built with
        self._sources: list[dict[tuple[str, ...], set[str]]] | None = None  # its sources then

    async def prepare(self) -> None:
        """Build, within the loop's time budget, the views a listing would otherwise
        build at once: after a burst changed thousands of alerts, the first
        listing would hold the loop for a hundred milliseconds or more. Alerts
        that change while it runs (a burst being folded) are built in another
        pass, a few at most; the listing that follows finds the views ready
        (silence and inhibition marks are still checked by the listing itself)."""
        app = self.live
        for _ in range(PREPARE_PASSES):
            if app.state_version == self._prepared:
                return  # nothing changed since the last pass: every view is built
            version_at_start = app.state_version
            await self._prepare_pass()
            self._prepared = version_at_start

    async def _prepare_pass(self) -> None:
        app = self.live
        now = app.wall()
        active = [s for s in silences(app) if router.silence_active(s, now)]
        current = _Marks(active, active_inhibitor(app))
        budget = app.budget
        budget.start()
        for fp in list(app.state["alerts"]):
            if budget.spent():
                await budget.pause()
            # read again after a pause: the alert may have changed or gone meanwhile
            a = app.state["alerts"].get(fp)
            if a is not None:
                self._entry(fp, a, current, recheck=False)

    def _entry(self, fp: str, a: Mapping[str, Any], marks: _Marks, *, recheck: bool) -> _Entry:
        """Alert `fp`'s cached view, rebuilt if the alert changed since, or (with
        `recheck`) if its silence or inhibition marks did."""
        version = self.live.alert_versions.get(fp, 0)
        e = self._cache.get(fp)
        if e is None or e.version != version:
            e = self._cache[fp] = _Entry(fp, a, version, _match_labels(a), marks)
        elif recheck and e.stale(marks):
            e = self._cache[fp] = _Entry(fp, a, version, e.match, marks)
        return e

    def list(
        self,
        *,
        state: str | None,
        severity: str | None,
        rule: str | None,
        labels: Mapping[str, str],
        silenced: bool | None,
        acknowledged: bool | None,
    ) -> AlertList:
        """The alerts as views, with their JSON (see AlertList), from the cache."""
        app = self.live
        now = app.wall()
        every = silences(app)
        active = [s for s in every if router.silence_active(s, now)]
        # the silences in force: config ones by value (a reload may change one's
        # matchers but not its id), the API's by id (their records never change)
        configured = len(app.config.silences)  # silences() lists them first
        marks = (
            tuple(s for s in every[:configured] if router.silence_active(s, now)),
            tuple(s.id for s in every[configured:] if router.silence_active(s, now)),
        )
        inhibitor = active_inhibitor(app)
        recheck = self._inhibition_changed(inhibitor)
        filters = (state, severity, rule, tuple(sorted(labels.items())), silenced, acknowledged)
        key = (app.state_version, marks, filters)
        if not recheck and self._last is not None and self._last[0] == key:
            return self._last[1]
        alerts = app.state["alerts"]
        cache = self._cache
        # the silences in force or the inhibitions changed: look at every alert's
        # marks again, and rebuild the views whose marks did change
        recheck = recheck or self._marks != marks
        self._marks = marks
        current = _Marks(active, inhibitor)
        entries: list[_Entry] = []
        for fp, a in alerts.items():
            # cheap filters before anything else: 10,000 alerts per listing
            if (
                (state is not None and a.get("state") != state)
                or (severity is not None and a.get("severity") != severity)
                or (rule is not None and a.get("rule") != rule)
            ):
                continue
            entries.append(self._entry(fp, a, current, recheck=recheck))
        if len(cache) > len(alerts) + 1024:  # resolved alerts' entries
            for fp in [fp for fp in cache if fp not in alerts]:
                del cache[fp]
        if labels or silenced is not None or acknowledged is not None:
            views = filter_alerts(
                [e.view for e in entries],
                labels=labels,
                silenced=silenced,
                acknowledged=acknowledged,
            )
            keep = {id(v) for v in views}
            entries = [e for e in entries if id(e.view) in keep]
        out = AlertList(e.view for e in entries)
        out.json = b'{"alerts":[' + b",".join(e.json for e in entries) + b"]}"
        self._last = (key, out)
        return out

    def _inhibition_changed(self, inhibitor: router.Inhibitor | None) -> bool:
        """Whether any alert's inhibition may differ from when the cached views were
        built. The inhibitor changes as the notification pipeline takes in firing
        and resolved alerts, which may be later than their events were folded into
        the state; comparing its index of firing sources with a copy is exact and
        costs one pass over the firing sources."""
        if inhibitor is None:
            changed = self._inhibitor is not None
            self._inhibitor, self._sources = None, None
            return changed
        sources = getattr(inhibitor, "_sources", None)
        if not isinstance(sources, list):
            return True  # an Inhibitor without the index we know: check every alert
        if inhibitor is self._inhibitor and sources == self._sources:
            return False
        self._inhibitor = inhibitor
        self._sources = [{k: set(v) for k, v in idx.items()} for idx in sources]
        return True
