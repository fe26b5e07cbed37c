"""14.B4: `journal_degraded` reaches EVERY channel, whatever the route tree says.

A route tree that routes by team (`team: x` only) would send the daemon's own
journal alert nowhere; vigil broadcasts it to every configured channel instead
(engine/notify/router.py BROADCAST_RULES). Real daemon, a real full disk (a
small tmpfs this test mounts; CI runs as root), two real webhook receivers.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from engine.config.model import Channel, Config, Matcher, Route
from engine.journal.reader import iter_events
from engine.notify import router
from tests.adversarial._api_live import HealthProbe
from tests.adversarial.test_disk_full import DISKS, fill, tmpfs, wait
from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver

__all__ = ["tmpfs"]  # the fixture, imported for use here

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    labels: {team: x}
  - id: disk_full
    each: app.disks
    expr: it.percent > 90
    labels: {team: x}
"""

CHANNELS = """
channels:
  - {{name: team_x, type: webhook, url: "{a}/a"}}
  - {{name: ops, type: webhook, url: "{b}/b"}}
routes:
  - matchers: ['team="x"']
    channels: [team_x]
    group_wait: 0s
    group_interval: 200ms
"""


def _seen(rx: Receiver, rule: str, status: str) -> bool:
    for r in rx.requests:
        text = r.body.decode(errors="replace")
        if rule in text and status in text:
            return True
    return False


def test_journal_degraded_reaches_every_channel_not_only_the_routed_ones(
    tmp_path: Path, tmpfs: Path
) -> None:
    with Receiver() as a, Receiver() as b:
        d = Daemon(tmp_path, RULES, CHANNELS.format(a=a.url, b=b.url))
        d.set_values({"queue": 1})
        d.start()
        try:
            with httpx.Client(base_url=d.url, timeout=5) as c:
                wait(lambda: c.get("/ready").status_code == 200, "ready")
                with HealthProbe(d) as health:  # /health within 1 s throughout the attack
                    filler = fill(tmpfs)
                    # transitions the full disk cannot take (more than the last page holds)
                    d.set_values({"queue": 50, "disks": DISKS})
                    wait(lambda: _seen(a, "queue_deep", "firing"), "queue_deep to team_x")
                    # the route matches team="x" only, yet both channels hear of the journal
                    wait(
                        lambda: _seen(a, "journal_degraded", "firing"), "journal_degraded to team_x"
                    )
                    wait(lambda: _seen(b, "journal_degraded", "firing"), "journal_degraded to ops")
                    assert not _seen(b, "queue_deep", "firing")  # ordinary routing unchanged
                    filler.unlink()
                    wait(lambda: c.get("/ready").status_code == 200, "ready again")
                health.check()
        finally:
            code = d.stop()
        assert code == 0, d.log()[-3000:]
        # journaled as usual, once space returned: the alert and its deliveries
        evs = list(iter_events(tmpfs))
        kinds = [e["event"] for e in evs if e.get("rule") == "journal_degraded"]
        assert "firing" in kinds and "resolved" in kinds, kinds
        assert "Traceback" not in d.log(), d.log()[-3000:]


def test_the_broadcast_keeps_matching_routes_and_adds_every_other_channel() -> None:
    team = Route((Matcher("team", frozenset({"x"})),), ("team_x",), group_interval=1.0)
    catch = Route((Matcher("rule", frozenset({"journal_degraded"})),), ("ops",))
    chans = tuple(Channel(n, "webhook") for n in ("team_x", "ops", "mail"))
    config = Config(routes=(team,), channels=chans)
    labels = router.match_labels({}, "journal_degraded", "critical")
    assert router.targets(config, labels) == [
        (router.BYPASS_INDEX, Route(matchers=(), channels=("team_x", "ops", "mail")))
    ]
    config = Config(routes=(team, catch), channels=chans)
    assert router.targets(config, labels) == [
        (1, catch),  # its own route and timing
        (router.BYPASS_INDEX, Route(matchers=(), channels=("team_x", "mail"))),
    ]
    # an ordinary alert is routed as ever
    assert router.targets(config, router.match_labels({}, "other", "critical")) == []
