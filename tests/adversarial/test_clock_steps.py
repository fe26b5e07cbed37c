"""Wall-clock steps (issue 14, B.7): a real daemon under Debian's libfaketime,
its wall clock stepped an hour back and an hour forward while it runs (the
monotonic clock is left alone, as a real step leaves it).

Evaluation and collection keep their pace across each step (before, a step back
stopped both for the hour APScheduler waited out), a `for:` duration is measured
on the monotonic clock whatever the wall clock does, and /health answers within
1 s throughout.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial._api_live import HealthProbe, last_seq, make_daemon, wait_ready
from tests.integration.daemon import Daemon

LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        not os.path.exists(LIBFAKETIME), reason="needs Debian's faketime (apt-get install faketime)"
    ),
]

RULES = """\
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > 10
    for: 0s
    flapping: {max_changes: 1000, window: 1s}
  - id: queue_stuck
    expr: app.stuck > 0
    for: 2s
"""


CHANNELS = """\
channels:
  - {{name: out, type: file, path: {path}}}
routes:
  - channels: [out]
    group_by: [rule]
    group_wait: 3s
    group_interval: 1s
    repeat_interval: 1h
"""


@pytest.fixture
def stepped(tmp_path: Path) -> Iterator[tuple[Daemon, Path]]:
    # the clock file and the collector's file live outside the configured folders, so
    # writing them is no configuration change (see libfaketime_artefact too)
    outside = tmp_path / "outside"
    outside.mkdir()
    clock = outside / "faketime.rc"
    clock.write_text("+0\n")
    d = make_daemon(tmp_path / "d", RULES, channels=CHANNELS.format(path=outside / "out.jsonl"))
    metrics = outside / "metrics.json"
    cfg = d.root / "vigil.yaml"
    cfg.write_text(cfg.read_text().replace(str(d.metrics), str(metrics)))
    d.metrics = metrics
    d.set_values({"queue": 0, "stuck": 0})
    env = {
        "LD_PRELOAD": LIBFAKETIME,
        "FAKETIME_TIMESTAMP_FILE": str(clock),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_CACHE_DURATION": "1",  # the file is read again each second
    }
    d.start(env=env)
    wait_ready(d)
    yield d, clock
    code = d.stop()
    shutil.rmtree(outside, ignore_errors=True)
    tracebacks = [t for t in d.log().split("Traceback")[1:] if not libfaketime_artefact(t)]
    assert not tracebacks, tracebacks[0][-3000:]
    assert code == 0


def libfaketime_artefact(traceback: str) -> bool:
    """libfaketime's clock_nanosleep fails with EINVAL once the wall clock is offset,
    though the sleep is on the monotonic clock. watchdog's delay queue sleeps so for
    a rename in any watched folder, and the watcher watches every folder on the way
    to the configured ones, /tmp included, where other processes rename files. A
    real step never does this."""
    return "delayed_queue.py" in traceback and "OSError: [Errno 22]" in traceback


def event_after(d: Daemon, seq: int, event: str, rule: str, timeout: float) -> float:
    """Seconds until `event` of `rule` is journaled after `seq`."""
    t0 = time.monotonic()
    d.wait_for(
        lambda evs: any(
            e["seq"] > seq and e["event"] == event and e.get("rule") == rule for e in evs
        ),
        timeout=timeout,
        what=f"{event} {rule}",
    )
    return time.monotonic() - t0


def flip(d: Daemon, queue: int, event: str) -> float:
    seq = last_seq(d)
    d.set_values({"queue": queue, "stuck": 0})
    return event_after(d, seq, event, "queue_deep", timeout=5)


def step(clock: Path, offset: str) -> None:
    clock.write_text(offset + "\n")
    time.sleep(1.5)  # libfaketime reads the file again within a second


@pytest.mark.parametrize("offset", ["-3600", "+3600"])
def test_evaluation_keeps_its_pace_across_a_step(stepped: tuple[Daemon, Path], offset: str) -> None:
    d, clock = stepped
    with HealthProbe(d) as health:
        assert flip(d, 50, "firing") < 1.0
        assert flip(d, 0, "resolved") < 1.0
        step(clock, offset)
        # each tick of the 100 ms group still comes: before the fix, a step back
        # left the group (and the collector) unscheduled for the hour
        for _ in range(3):
            assert flip(d, 50, "firing") < 2.5  # 100 ms ticks; slack for a loaded machine
            assert flip(d, 0, "resolved") < 2.5
    health.check()
    assert "the wall clock stepped" in d.log()


@pytest.mark.parametrize("offset", ["-3600", "+3600"])
def test_for_duration_is_measured_on_the_monotonic_clock(
    stepped: tuple[Daemon, Path], offset: str
) -> None:
    """A step during `for: 2s` neither fires it at once (forward) nor holds it an
    hour (back): it fires 2 s after it started pending."""
    d, clock = stepped
    seq = last_seq(d)
    d.set_values({"queue": 0, "stuck": 1})
    event_after(d, seq, "pending", "queue_stuck", timeout=5)
    clock.write_text(offset + "\n")
    waited = event_after(d, seq, "firing", "queue_stuck", timeout=10)
    assert 1.3 <= waited <= 4.0, f"fired {waited:.1f} s after it was seen pending"


def test_a_step_back_does_not_hold_a_notification_for_the_hour(
    stepped: tuple[Daemon, Path],
) -> None:
    """group_wait (3 s) is under way when the clock steps back an hour: the
    notification still goes about 3 s after the alert fired."""
    d, clock = stepped
    seq = last_seq(d)
    d.set_values({"queue": 50, "stuck": 0})
    event_after(d, seq, "firing", "queue_deep", timeout=5)
    t0 = time.monotonic()
    clock.write_text("-3600\n")
    d.wait_for(
        lambda evs: any(e["seq"] > seq and e["event"] == "notified" for e in evs),
        timeout=12,
        what="the notification after group_wait",
    )
    waited = time.monotonic() - t0
    assert 2.0 <= waited <= 8.0, f"notified {waited:.1f} s after firing"


def test_a_step_forward_does_not_repeat_notifications(stepped: tuple[Daemon, Path]) -> None:
    """repeat_interval is 1 h: an hour's step forward is no hour of waiting."""
    d, clock = stepped
    seq = last_seq(d)
    d.set_values({"queue": 50, "stuck": 0})
    d.wait_for(
        lambda evs: any(e["seq"] > seq and e["event"] == "notified" for e in evs),
        timeout=12,
        what="the first notification",
    )
    step(clock, "+3700")
    time.sleep(4)  # group_interval is 1 s: a repeat would be out by now
    sent = [e for e in d.events() if e["seq"] > seq and e["event"] == "notified"]
    assert len(sent) == 1, sent
