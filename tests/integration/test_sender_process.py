"""The sender process (engine/delivery/sender_process.py): the daemon's channels send
from a child process. A real child, a real webhook receiver, real signals."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pickle
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import pytest

from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.delivery import sender_process
from engine.delivery.retry import Outcome, RetryPolicy
from engine.delivery.sender_process import SenderProcess, dumps
from engine.delivery.senders import SenderSettings
from engine.notify.base import AlertView, Notification
from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver, Recorded, Reply

pytestmark = pytest.mark.slow

FAST = SenderSettings(policy=RetryPolicy(base=0.01, cap=0.05, max_attempts=3, timeout=5.0))


def hook(name: str, rx: Receiver, **settings: object) -> ChannelConfig:
    return ChannelConfig(
        name=name,
        type="webhook",
        settings=MappingProxyType({"url": f"{rx.url}/{name}", **settings}),
    )


def note(channel: str, i: int) -> Notification:
    view = AlertView(
        fingerprint=f"fp{i:04d}",
        rule=f"r{i}",
        status="firing",
        severity="critical",
        labels=MappingProxyType({"alertname": f"r{i}", "host": f"h{i}"}),
        annotations=MappingProxyType({"summary": f"alert {i}"}),
        value=float(i),
        starts_at=1.7e9 + i,
    )
    return Notification(
        channel=channel,
        group_key=f"g{i}",
        status="firing",
        alerts=(view,),
        key=f"key-{channel}-{i:04d}",
        title=f"r{i}",
        body=f"alert {i}\n",
    )


class Reports:
    """What SenderProcess reported: (channel, key, ok, original keys)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str, bool, list[str]]] = []

    def __call__(
        self, channel: str, n: Notification, o: Outcome, originals: list[Notification]
    ) -> None:
        self.got.append((channel, n.key, o.ok, [x.key for x in originals]))

    def originals(self) -> list[str]:
        return [k for _, _, _, ks in self.got for k in ks]


async def until(cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def started(rep: Reports, *channels: ChannelConfig) -> SenderProcess:
    """A SenderProcess for `channels`, its child starting, reporting to `rep`."""
    sp = SenderProcess(FAST, rep)
    sp.configure(channels)
    sp.start()
    return sp


def keys(reqs: list[Recorded]) -> list[str]:
    return [r.headers["idempotency-key"] for r in reqs]


def test_frames_carry_secrets_and_frozen_mappings_that_plain_pickle_refuses() -> None:
    cfg = ChannelConfig(
        name="hook",
        type="webhook",
        settings=MappingProxyType({"url": "http://127.0.0.1:1/x", "secret": Secret("s3cr3t")}),
    )
    n = note("hook", 1)
    frame = dumps(("configure", [cfg], FAST, n))
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    _, [back], settings, n2 = pickle.loads(frame[4:])
    assert back == cfg and back.settings["secret"].reveal() == "s3cr3t"
    assert isinstance(back.settings, MappingProxyType)
    assert settings == FAST and n2 == n
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret("s3cr3t"))  # an accidental pickle of a config still fails


def test_delivers_every_notification_once_and_reports_each() -> None:
    async def main() -> None:
        with Receiver() as rx:
            rep = Reports()
            sp = started(rep, hook("a", rx), hook("b", rx))
            sent = [note(ch, i) for i in range(40) for ch in ("a", "b")]
            for n in sent:
                sp.put(n)
            await until(lambda: len(rep.originals()) == len(sent))
            assert sorted(rep.originals()) == sorted(n.key for n in sent)
            assert all(ok for _, _, ok, _ in rep.got)
            assert sorted(keys(rx.requests)) == sorted(n.key for n in sent)
            status = sp.status()
            assert status["a"]["sent"] == status["b"]["sent"] == 40
            assert status["a"]["failed"] == 0 and status["a"]["breaker"] == "closed"
            o = await sp.send_test(note("a", 999))
            assert o.ok and o.attempts == 1
            await sp.aclose(2.0)

    asyncio.run(main())


def test_a_killed_sender_process_is_restarted_and_sends_again_with_the_same_keys() -> None:
    async def main() -> None:
        with Receiver(default=Reply(delay=0.3)) as rx:
            rep = Reports()
            sp = started(rep, hook("a", rx))
            sent = [note("a", i) for i in range(5)]
            for n in sent:
                sp.put(n)
            await until(lambda: len(rx.requests) >= 1)  # in flight, not yet answered
            proc = sp._proc
            assert proc is not None
            first_pid = proc.pid
            os.kill(first_pid, signal.SIGKILL)
            await until(lambda: len(rep.originals()) == len(sent))
            assert sp._proc is not None and sp._proc.pid != first_pid
            # each reported exactly once, all delivered; what was in flight went out again
            assert sorted(rep.originals()) == sorted(n.key for n in sent)
            assert all(ok for _, _, ok, _ in rep.got)
            got = keys(rx.requests)
            assert set(got) == {n.key for n in sent} and len(got) > len(set(got))
            await sp.aclose(2.0)

    asyncio.run(main())


def test_a_sender_process_that_cannot_be_started_is_tried_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = sender_process._spawn
    calls: list[int] = []

    def flaky(sock: socket.socket) -> subprocess.Popen[bytes]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(11, "Resource temporarily unavailable")
        return real(sock)

    monkeypatch.setattr(sender_process, "_spawn", flaky)

    async def main() -> None:
        with Receiver() as rx:
            rep = Reports()
            sp = started(rep, hook("a", rx))
            for i in range(3):
                sp.put(note("a", i))
            await until(lambda: len(rep.got) == 3)
            assert all(ok for _, _, ok, _ in rep.got) and len(calls) == 2
            await sp.aclose(1.0)

    asyncio.run(main())
    assert "could not start it" in caplog.text


def test_close_lets_the_queue_drain_and_the_process_exit() -> None:
    async def main() -> None:
        with Receiver(default=Reply(delay=0.02)) as rx:
            rep = Reports()
            sp = started(rep, hook("a", rx))
            for i in range(30):
                sp.put(note("a", i))
            await asyncio.sleep(0.05)
            proc = sp._proc
            assert proc is not None
            await sp.aclose(10.0)
            assert len(rep.originals()) == 30 and len(rx.requests) == 30
            assert proc.poll() is not None  # exited by itself once drained
            assert proc.returncode == 0

    asyncio.run(main())


def test_a_removed_channel_reports_each_notification_it_had_failed_once() -> None:
    async def main() -> None:
        with Receiver(default=Reply(hang=True)) as rx:
            rep = Reports()
            sp = started(rep, hook("a", rx), hook("b", rx))
            sent = [note("a", i) for i in range(30)]  # more than the channel sends at once
            for n in sent:
                sp.put(n)
            await until(lambda: len(rx.requests) >= 1)
            sp.configure([hook("b", rx)])
            # the ones being sent (cancelled by the child) as well as the queued ones
            assert sorted(rep.originals()) == sorted(n.key for n in sent)
            assert {ok for _, _, ok, _ in rep.got} == {False}
            sp.put(note("a", 99))  # no such channel any more: nothing to report
            await asyncio.sleep(0.2)
            assert len(rep.got) == 30 and not sp.inflight
            assert set(sp.status()) == {"b"}
            rx.reset(Reply())
            await sp.aclose(0.5)

    asyncio.run(main())


def test_an_open_breaker_says_when_it_lets_a_probe_through() -> None:
    """The child's breaker, mirrored: `retry_in` counts down to its probe (explain
    tells it), on the monotonic clock the two processes share."""

    async def main() -> None:
        with Receiver(default=Reply(status=503)) as rx:
            rep = Reports()
            settings = dataclasses.replace(FAST, breaker_threshold=1, breaker_cooldown=60.0)
            sp = SenderProcess(settings, rep)
            sp.configure([hook("a", rx)])
            sp.start()
            assert sp.status()["a"]["retry_in"] == 0.0  # closed
            sp.put(note("a", 1))
            await until(lambda: sp.status()["a"]["breaker"] == "open")
            first = sp.status()["a"]["retry_in"]
            assert 40.0 < first <= 60.0, first
            await asyncio.sleep(0.3)
            assert sp.status()["a"]["retry_in"] < first  # the same deadline, nearer
            rx.reset(Reply())
            await sp.aclose(0.5)

    asyncio.run(main())


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _sender_of(pid: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for child in _children(pid):
            with contextlib.suppress(OSError):
                if b"engine.delivery.sender_child" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return child
        time.sleep(0.05)
    raise AssertionError(f"no sender process under {pid}")


def _gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True  # exited; its parent (gone) will not reap it, init does
        time.sleep(0.05)
    return False


RULES = """
group: app
interval: 100ms
rules:
  - id: deep
    expr: app.queue > fixed.limit
    severity: critical
"""


def hook_now(rx: Receiver) -> str:
    """A webhook channel that gets a new alert, and its resolve, at once."""
    return (
        f"channels:\n  - name: hook\n    type: webhook\n    url: {rx.url}/hook\n"
        "routes:\n  - channels: [hook]\n    group_by: [rule]\n    group_wait: 0s\n"
        "    group_interval: 200ms\n"
    )


def test_the_daemons_sender_process_ignores_sigterm_and_dies_with_a_kill9(
    tmp_path: Path,
) -> None:
    with Receiver() as rx:
        d = Daemon(tmp_path, RULES, hook_now(rx))
        d.start()
        try:
            assert d.proc is not None
            child = _sender_of(d.proc.pid)
            d.set_values({"queue": 50})
            rx.wait_for(lambda reqs: len(reqs) == 1, 10)  # the sender process is up
            # systemd (KillMode=control-group) and a shell's kill of the group signal
            # every process: the sender process stops when the daemon has drained it
            os.kill(child, signal.SIGTERM)
            os.kill(child, signal.SIGINT)
            time.sleep(0.3)
            assert not _gone(child, 0.1)
            d.set_values({"queue": 0})
            reqs = rx.wait_for(lambda reqs: len(reqs) == 2, 10)
            assert [r.json()["status"] for r in reqs] == ["firing", "resolved"]
            d.kill9()
            assert _gone(child), "the sender process outlived its daemon"
        finally:
            if d.proc is not None and d.proc.poll() is None:
                d.kill9()


def test_sigterm_to_the_daemon_drains_the_sender_process_then_both_exit(tmp_path: Path) -> None:
    with Receiver(default=Reply(delay=1.0)) as rx:
        d = Daemon(tmp_path, RULES, hook_now(rx))
        d.start()
        try:
            assert d.proc is not None
            child = _sender_of(d.proc.pid)
            d.set_values({"queue": 50})
            d.wait_for(lambda evs: any(e["event"] == "firing" for e in evs), what="firing")
            time.sleep(0.3)  # the request is on its way; its answer comes after 1 s
            assert d.stop(signal.SIGTERM) == 0
            assert _gone(child, 1.0)
            # the answer came before the daemon stopped: its outcome is in the journal
            assert [e["event"] for e in d.events() if e["event"] == "notified"] == ["notified"]
        finally:
            if d.proc is not None and d.proc.poll() is None:
                d.kill9()
