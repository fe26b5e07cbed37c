"""engine.daemon.systemd against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.daemon.systemd import Notifier, watchdog_loop


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET: one datagram per notification."""

    def __init__(self, address: str) -> None:
        self.address = address  # as it goes into NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)

    def recv(self, timeout: float = 2.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def drain(self) -> list[str]:
        """Every datagram queued right now, without waiting."""
        out = []
        self.sock.setblocking(False)
        try:
            while True:
                out.append(self.sock.recv(4096).decode())
        except BlockingIOError:
            return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(str(tmp_path / "notify.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", fake.address)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield fake
    fake.close()


@pytest.fixture
def abstract_systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    fake = FakeSystemd(f"@vigil-test-{secrets.token_hex(8)}")
    monkeypatch.setenv("NOTIFY_SOCKET", fake.address)
    yield fake
    fake.close()


def mono_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


# -- the messages -------------------------------------------------------------------


def test_lifecycle_messages_arrive_as_the_protocol_says(systemd: FakeSystemd) -> None:
    n = Notifier.from_env()
    assert n.enabled
    assert n.ready() is True
    assert systemd.recv() == "READY=1"
    assert n.ready("watching 12 rules") is True
    assert systemd.recv() == "READY=1\nSTATUS=watching 12 rules"
    assert n.stopping() is True
    assert systemd.recv() == "STOPPING=1"
    assert n.status("3 firing, 1 pending") is True
    assert systemd.recv() == "STATUS=3 firing, 1 pending"
    assert n.watchdog() is True
    assert systemd.recv() == "WATCHDOG=1"
    assert n.extend_timeout(2.5) is True
    assert systemd.recv() == "EXTEND_TIMEOUT_USEC=2500000"
    n.close()


def test_reloading_carries_the_current_monotonic_clock(systemd: FakeSystemd) -> None:
    n = Notifier.from_env()
    before = mono_usec()
    assert n.reloading() is True
    after = mono_usec()
    fields = systemd.recv().split("\n")
    assert fields[0] == "RELOADING=1"
    key, _, value = fields[1].partition("=")
    assert key == "MONOTONIC_USEC"
    assert before <= int(value) <= after  # CLOCK_MONOTONIC in µs, as systemd compares it
    assert len(fields) == 2
    n.reloading("reloading configuration")
    assert systemd.recv().split("\n")[2] == "STATUS=reloading configuration"


def test_status_is_kept_to_one_line(systemd: FakeSystemd) -> None:
    # a newline would start a field of its own in the protocol
    Notifier.from_env().status("2 firing\nREADY=1")
    assert systemd.recv() == "STATUS=2 firing READY=1"


def test_abstract_socket(abstract_systemd: FakeSystemd) -> None:
    n = Notifier.from_env()
    assert abstract_systemd.address.startswith("@vigil-test-")
    assert n.ready("up") is True
    assert abstract_systemd.recv() == "READY=1\nSTATUS=up"
    assert abstract_systemd.address in repr(n)


# -- without systemd, or when it goes away --------------------------------------------


def test_no_notify_socket_makes_every_call_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    n = Notifier.from_env()
    assert not n.enabled
    for result in (n.ready("x"), n.reloading(), n.stopping(), n.status("x"), n.watchdog()):
        assert result is False
    assert n.watchdog_interval() is None  # nobody to ping
    assert Notifier.from_env({"NOTIFY_SOCKET": ""}).enabled is False


def test_unreachable_address_kinds_are_disabled(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vigil.systemd"):
        n = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled and n.ready() is False
    assert "not a path or an abstract socket" in caplog.text


def test_vanished_socket_never_raises_and_warns_once(
    systemd: FakeSystemd, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    n = Notifier.from_env()
    assert n.ready() is True
    systemd.close()
    os.unlink(tmp_path / "notify.sock")
    with caplog.at_level(logging.INFO, logger="vigil.systemd"):
        assert n.watchdog() is False
        assert n.status("still here") is False
        assert n.stopping() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "notify.sock" in warnings[0].getMessage()

    # systemd back (a re-executed manager rebinds the same path): it works again
    back = FakeSystemd(str(tmp_path / "notify.sock"))
    try:
        with caplog.at_level(logging.INFO, logger="vigil.systemd"):
            assert n.watchdog() is True
        assert back.recv() == "WATCHDOG=1"
        assert "works again" in caplog.text
    finally:
        back.close()


def test_socket_file_without_a_reader_never_raises(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.close()  # the file stays, nobody listens: ECONNREFUSED
    n = Notifier(str(path))
    assert n.ready() is False
    assert n.watchdog() is False


# -- the watchdog -----------------------------------------------------------------------


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    env = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_env(env).watchdog_interval() == 15.0
    ours = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(ours).watchdog_interval() == 15.0


def test_watchdog_meant_for_another_process_is_not_ours() -> None:
    env = {
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": str(os.getpid() + 1),
    }
    assert Notifier.from_env(env).watchdog_interval() is None


@pytest.mark.parametrize("usec", [None, "", "0", "-5", "soon"])
def test_no_or_bad_watchdog_usec_means_no_watchdog(usec: str | None) -> None:
    env = {"NOTIFY_SOCKET": "/run/systemd/notify"}
    if usec is not None:
        env["WATCHDOG_USEC"] = usec
    assert Notifier.from_env(env).watchdog_interval() is None


def watched(systemd: FakeSystemd, interval: float) -> Notifier:
    return Notifier(systemd.address, watchdog_usec=round(interval * 2e6))


def test_watchdog_loop_pings_at_the_interval_and_stops_on_the_event(
    systemd: FakeSystemd,
) -> None:
    n = watched(systemd, 0.05)
    assert n.watchdog_interval() == 0.05

    async def main() -> float:
        stop = asyncio.Event()
        task = asyncio.create_task(watchdog_loop(n, stop))
        await asyncio.sleep(0.5)
        stop.set()
        t0 = time.monotonic()
        await asyncio.wait_for(task, 1.0)
        return time.monotonic() - t0

    ended_after = asyncio.run(main())
    pings = systemd.drain()
    assert set(pings) == {"WATCHDOG=1"}
    # 0.5 s at 0.05 s: about 11 (one at once, then one per interval); a loaded CI
    # machine may fall behind, never ahead
    assert 6 <= len(pings) <= 12, len(pings)
    assert ended_after < 0.05  # the event wakes it, it does not sleep out the interval
    assert systemd.drain() == []  # and nothing after it ended


def test_a_blocked_event_loop_sends_no_pings(systemd: FakeSystemd) -> None:
    n = watched(systemd, 0.05)

    async def main() -> tuple[list[str], list[str]]:
        stop = asyncio.Event()
        task = asyncio.create_task(watchdog_loop(n, stop))
        await asyncio.sleep(0.2)
        assert len(systemd.drain()) >= 2  # running normally

        async def stall() -> list[str]:
            # a task making a blocking call: nothing else on the loop runs meanwhile
            systemd.drain()
            time.sleep(0.5)  # ten intervals
            return systemd.drain()

        during = await asyncio.create_task(stall())
        await asyncio.sleep(0.2)  # the loop turns again
        after = systemd.drain()
        stop.set()
        await task
        return during, after

    during, after = asyncio.run(main())
    assert during == []
    assert after and set(after) == {"WATCHDOG=1"}


def test_watchdog_loop_without_a_watchdog_returns_at_once(systemd: FakeSystemd) -> None:
    async def main() -> None:
        await asyncio.wait_for(watchdog_loop(Notifier.from_env(), asyncio.Event()), 0.5)

    asyncio.run(main())
    assert systemd.drain() == []


def test_watchdog_loop_survives_a_vanished_socket(systemd: FakeSystemd, tmp_path: Path) -> None:
    n = watched(systemd, 0.02)
    systemd.close()
    os.unlink(tmp_path / "notify.sock")

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(watchdog_loop(n, stop))
        await asyncio.sleep(0.1)
        assert not task.done()  # failing sends do not end (or crash) the loop
        stop.set()
        await task

    asyncio.run(main())
