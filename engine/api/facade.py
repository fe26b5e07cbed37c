"""What the HTTP API needs from the daemon: the `DaemonFacade` protocol.

The server (engine/api/server.py) only ever talks to this protocol, so the API
can be tested against an in-memory fake and the daemon (engine/daemon/app.py) stays the
only owner of live state. The helpers below turn the durable state of
engine/journal/store.py into the shapes the API returns, so every implementation of the
protocol answers in the same shape:

    alert   {"fingerprint", "rule", "state", "severity", "labels", "annotations",
             "value", "starts_at", "pending_since", "firing_since",
             "acknowledged": {"by", "note", "at", "until"} | None,
             "silenced": bool, "silenced_by": [silence ids], "inhibited": bool,
             "escalation": int, "flapping": bool, "stale": bool}
             (`get_alert` adds "history": [journal events, oldest first] and
             "history_source": index | journal_tail | unavailable;
             engine/common/records.py's ApiAlert)
    silence {"id", "matchers": [{"label", "value"} | {"label", "regex"}],
             "starts", "until", "reason", "created_by", "state": active|pending|expired}

What the facade returns must be JSON-able: dict, list, tuple, str, int, float,
bool, None, plus Mapping (e.g. MappingProxyType), set, datetime and Secret, which
the server's encoder turns into objects, lists, RFC 3339 and "***". Not
dataclasses: build dicts, so that nothing is published by accident. Times
should be RFC 3339 strings; `alert_view` and `silence_view` produce them. Times the facade receives (ack `until`, silence `starts`/`until`) are
epoch seconds: the server parses and checks them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from engine.channels.preview_build import Choice
from engine.common import matchers
from engine.common.records import ApiAlert
from engine.config.model import Matcher
from engine.runtime.fanout import Fanout

if TYPE_CHECKING:
    from engine.journal.history import HistoryIndex


class DaemonFacade(Protocol):
    """The daemon as the API sees it. Every method runs on the daemon's event loop.

    Sync methods must be quick (they read in-memory state); async methods may
    write to the journal. Errors the API maps to responses: KeyError → 404,
    ValueError → 422 (with its message shown to the client). Anything else is a
    bug and becomes a 500.
    """

    ready: bool
    """True once the configuration is loaded and the journal replayed (GET /ready)."""

    @property
    def degraded(self) -> str | None:
        """Why the daemon runs but is not ready (the journal cannot write); None if not."""
        ...

    @property
    def stream(self) -> Fanout:
        """Every journaled event, as it is folded (GET /api/v1/events)."""
        ...

    async def prepare_alerts(self) -> None:
        """Called before list_alerts: do ahead, in steps that let the event loop
        run, whatever list_alerts would otherwise do in one go (a facade with
        nothing to prepare returns at once)."""
        ...

    def list_alerts(
        self,
        *,
        state: str | None,
        severity: str | None,
        rule: str | None,
        labels: Mapping[str, str],
        silenced: bool | None,
        acknowledged: bool | None,
    ) -> list[ApiAlert]:
        """Active (pending and firing) alerts matching every given filter, as
        `alert_view` dicts. None means "do not filter"; `labels` must all match
        exactly. `filter_alerts` implements the filters.

        The facade must not change the returned dicts afterwards (the server keeps
        the last list to reuse its encoding when the next one is equal); it may
        return the same unchanged dicts again. It may return an `AlertList`
        carrying the list's JSON, which the server then sends as it is."""
        ...

    async def get_alert(self, fp: str) -> ApiAlert | None:
        """One active alert by fingerprint, with "history": its latest journal events
        (oldest first, newest last, capped to a hundred, never read on the event
        loop) and "history_source": where they came from; None if unknown."""
        ...

    async def ack(self, fp: str, *, by: str, note: str, until: float | None) -> ApiAlert:
        """Acknowledge an active alert until `until` (epoch seconds; None: until it
        resolves). The `acknowledged` event is durable before this returns.
        Returns the updated alert. KeyError if no such active alert."""
        ...

    async def unack(self, fp: str, *, by: str) -> ApiAlert:
        """Remove the acknowledgement (durable before returning); returns the alert.
        KeyError if no such active alert. Unacking an unacknowledged alert is a no-op."""
        ...

    def list_silences(self, *, expired: bool = False) -> list[dict[str, Any]]:
        """Silences from the journal and from channel files, as `silence_view`
        dicts: active and pending (future `starts`) ones; with `expired` also the
        expired ones (by time or by hand, the latest few hundred)."""
        ...

    async def create_silence(
        self,
        *,
        matchers: list[dict[str, Any]],
        starts: float | None,
        until: float,
        reason: str,
        by: str,
    ) -> dict[str, Any]:
        """Create a silence (the `silence_created` event is durable before this
        returns) and return it, with its new "id". `matchers` are already checked:
        each is {"label", "value"} or {"label", "regex"} (regex compiles, anchored
        match). ValueError for what only the daemon can judge."""
        ...

    async def expire_silence(self, sid: str, *, by: str) -> dict[str, Any]:
        """Expire a silence now (durable before returning); returns it.
        KeyError if unknown. A silence from a channel file cannot be expired here:
        ValueError saying so."""
        ...

    def list_rules(self) -> list[dict[str, Any]]:
        """Every rule of the running configuration (id, group, expr, severity,
        for, labels, annotations, source file:line, enabled ...)."""
        ...

    def list_channels(self) -> list[dict[str, Any]]:
        """Every channel (name, type, settings, delivery status). Secret values are
        already redacted or left as Secret objects (the API encodes them as ***)."""
        ...

    def status(self) -> dict[str, Any]:
        """{"version", "config_hash", "started" (RFC 3339),
        "last_reload": {"ok", "at", "errors": [...]}, ...}."""
        ...

    async def reload(self, *, by: str) -> dict[str, Any]:
        """Reload the configuration the same way as SIGHUP: build aside, swap on
        success. {"ok": bool, "errors": ["file:line:col: ...", ...]}."""
        ...

    async def push_metrics(self, collector: str, values: Mapping[str, Any], *, by: str) -> None:
        """Feed the `push` collector named `collector`. KeyError if there is no push
        collector of that name; ValueError (nothing stored) for bad names or values."""
        ...

    def list_bans(self) -> list[dict[str, Any]]:
        """The ban channels' active bans, newest first."""
        ...

    async def unban(self, address: str, *, by: str) -> list[dict[str, Any]]:
        """Lift `address`'s ban on every ban channel holding it: per channel
        {channel, ok, error}; KeyError if none held it."""
        ...

    async def test_channel(self, name: str, *, by: str) -> dict[str, Any]:
        """Send a test notification through the channel's queue, retries and
        breaker. {"ok": bool, "message": "..."}. KeyError if unknown."""
        ...

    async def preview_channel(self, name: str, choice: Choice) -> dict[str, Any]:
        """What the channel would send for the chosen alert, sending nothing
        (engine/channels/preview_build.py). KeyError: no such channel or active
        alert; ValueError (PreviewError): no such rule."""
        ...

    def explain(self, rule: str, labels: Mapping[str, str]) -> dict[str, Any]:
        """engine.explain.result's Explanation.to_dict() for `rule` (and the alert with these
        labels) on the live config, values, state and delivery status. Raises
        engine.explain.result.UnknownRule (→ 404)."""
        ...

    def history_index(self) -> HistoryIndex | None:
        """The history index beside the journal (engine/journal/history.py) that the
        history endpoints query, in its own thread; None when there is none."""
        ...

    async def audit(self, action: str, *, by: str, details: Mapping[str, Any]) -> None:
        """Journal {"event": "audit", "action", "by", **details}. `by` is the API
        token's name (never the token). Called for every write and every denied
        write, after the action."""
        ...


class AlertList(list[ApiAlert]):
    """What `list_alerts` may return instead of a plain list: the same views, and
    `json`, the bytes of `{"alerts": [...]}` for exactly these views (encoded as the
    server encodes), which the server then sends as they are. A facade that keeps
    its alerts' encodings spares the event loop re-encoding 10,000 alerts per call."""

    json: bytes | None = None


# -- shapes ----------------------------------------------------------------------------


def rfc3339(ts: float | str | None) -> str | None:
    """Epoch seconds as UTC RFC 3339 with milliseconds (`2026-11-22T20:00:00.000Z`),
    the format of the journal and the webhook body. Strings pass through."""
    if ts is None or isinstance(ts, str):
        return ts
    return _rfc3339(float(ts))


@functools.lru_cache(maxsize=1 << 16)
def _rfc3339(ts: float) -> str:
    # an alert's times do not change between requests: listing 10,000 alerts would
    # otherwise spend a third of its time formatting the same timestamps again
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def matcher_view(m: Matcher | Mapping[str, Any]) -> dict[str, Any]:
    """A matcher as the API shows it. Config matchers with several values become
    one anchored alternation, since the API form has one value or one regex."""
    if not isinstance(m, Matcher):
        return {k: v for k, v in m.items() if k in ("label", "value", "regex", "negate")}
    if m.regex is None and len(m.values) > 1:
        alt = "|".join(re.escape(v) for v in sorted(m.values))
        return matchers.to_record(
            Matcher(m.label, regex=matchers.compile_regex(alt), negate=m.negate)
        )
    return matchers.to_record(m)


def silence_matches(matchers_: Iterable[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    """Whether API-form matchers all match `labels` (engine.common.matchers' semantics)."""
    try:
        return all(matchers.from_record(m).matches(labels) for m in matchers_)
    except matchers.MatcherError:
        return False


def alert_view(
    fp: str,
    stored: Mapping[str, Any],
    *,
    silenced_by: Iterable[str] = (),
    inhibited: bool = False,
) -> ApiAlert:
    """An alert of engine/journal/store.py's state as the API returns it (new dicts: the
    caller may keep them)."""
    get = stored.get  # called for 10,000 alerts per listing: every lookup counts
    ack = get("ack")
    pending = get("pending_since")
    starts = get("starts_at", pending)
    silences = list(silenced_by)
    return {
        "fingerprint": fp,
        "rule": get("rule"),
        "state": get("state"),
        "severity": get("severity"),
        "labels": dict(get("labels") or ()),
        "annotations": dict(get("annotations") or ()),
        "value": get("value"),
        "starts_at": _rfc3339(starts) if isinstance(starts, int | float) else starts,
        "pending_since": _rfc3339(pending) if isinstance(pending, int | float) else pending,
        "firing_since": rfc3339(get("firing_since")),
        "acknowledged": (
            {
                "by": ack.get("by"),
                "note": ack.get("note"),
                "at": rfc3339(ack.get("at")),
                "until": rfc3339(ack.get("until")),
            }
            if ack
            else None
        ),
        "silenced": bool(silences),
        "silenced_by": silences,
        "inhibited": inhibited,
        "escalation": get("escalation") or 0,
        "flapping": bool(get("flapping")),
        # a collector its rule reads is down: the state is the last one known
        "stale": bool(get("stale")),
    }


def silence_view(sid: str, stored: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A silence of engine/journal/store.py's state (or a config one turned into the same
    mapping) as the API returns it; `state` is judged at `now` (epoch seconds)."""
    starts, until = stored.get("starts"), stored.get("until")
    state = "active"
    if isinstance(until, int | float) and until <= now:
        state = "expired"
    elif isinstance(starts, int | float) and starts > now:
        state = "pending"
    return {
        "id": sid,
        "matchers": [matcher_view(m) for m in stored.get("matchers") or ()],
        "starts": rfc3339(starts),
        "until": rfc3339(until),
        "reason": stored.get("reason"),
        "created_by": stored.get("created_by"),
        "state": state,
    }


def filter_alerts(
    alerts: Iterable[ApiAlert],
    *,
    state: str | None = None,
    severity: str | None = None,
    rule: str | None = None,
    labels: Mapping[str, str] | None = None,
    silenced: bool | None = None,
    acknowledged: bool | None = None,
) -> list[ApiAlert]:
    """The `list_alerts` filters over `alert_view` dicts (not copied); None means any."""
    want = list((labels or {}).items())
    out: list[ApiAlert] = []
    for a in alerts:
        if state is not None and a.get("state") != state:
            continue
        if severity is not None and a.get("severity") != severity:
            continue
        if rule is not None and a.get("rule") != rule:
            continue
        if silenced is not None and bool(a.get("silenced")) != silenced:
            continue
        if acknowledged is not None and (a.get("acknowledged") is not None) != acknowledged:
            continue
        if want:
            have = a.get("labels") or {}
            if any(have.get(k) != v for k, v in want):
                continue
        out.append(a)
    return out
