"""Delivery from a child process: the daemon's channels send off the evaluation loop.

A burst of a thousand alerts costs the main loop its evaluation, journal and
pipeline work; the sends (encoding, HTTP exchanges, retries, the sender tasks)
would cost about as much again on the same thread. The child runs the same
`Senders` (senders.py) on its own loop and CPU:

    main: Dispatcher ─► SenderProcess.put ─┐ frames on a socket pair   ┌─► Senders.put
                                           │ (length + pickle)         │   (queue, retries,
          Dispatcher._report ◄── outcomes ─┘                           └── breaker, send)
                                                   sender_child.py

Frames, main to child: ("configure", [Channel config], SenderSettings),
("put", [(seq, n, test)]), ("close", drain_timeout). Child to main: ("out", [(seq, outcome) or (seqs,
digest, outcome)], {channel: {queued, folded, breaker, error}} if it changed,
else None), ("test", seq, outcome). Having drained, the child exits.

What the child was given but has not reported stays here (`inflight`). If the
child dies, a new one is started and gets it all again, with the same keys
(receivers deduplicate by them, as after a daemon restart). If the main
process dies, the child sees its socket close and exits. The child runs in its
own process group (a terminal's ^C goes to the daemon only) and ignores SIGINT
and SIGTERM (systemd's default KillMode signals every process of the unit; the
shipped unit says KillMode=mixed): it stops when the main process has drained it.

Secrets cross only this private socket pair; `Secret` still refuses ordinary
pickling (a pickled config must not leak by accident).
"""

from __future__ import annotations

import asyncio
import contextlib
import copyreg
import dataclasses
import io
import logging
import operator
import pickle
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Sequence
from types import MappingProxyType
from typing import Any

from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.secrets import reveal
from engine.delivery.retry import Outcome
from engine.delivery.senders import Books, Report, SenderSettings, channel_traits
from engine.notify.base import AlertView, Notification
from engine.plugins import registry
from engine.runtime import python_child

__all__ = ["FrameProtocol", "SenderProcess", "dumps"]

log = logging.getLogger("vigil.notify")

HEADER = struct.Struct(">I")
RESPAWN_FIRST = 0.2  # seconds before restarting a child that died; doubles up to
RESPAWN_MAX = 30.0  # this while it keeps dying within
STABLE = 60.0  # seconds of life that count as having worked
KILL_GRACE = 5.0  # seconds beyond the drain a closing child gets before it is killed


# -- frames --------------------------------------------------------------------------


def _proxy(d: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(d)


def _fields(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """Pickle a frozen dataclass as its constructor's arguments: a third of the
    cost of the slots dataclass's own __getstate__ (which calls fields() every time)."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    getter = operator.attrgetter(*names)
    return lambda obj: (cls, getter(obj))


# Secrets (for the child's channels) and read-only mappings (frozen config and
# alert labels) are refused by plain pickle; notifications are the hot path
_REDUCE: dict[type, Callable[[Any], Any]] = {
    **copyreg.dispatch_table,
    Secret: lambda s: (Secret, (reveal(s),)),  # the class unpickles; an instance refuses
    MappingProxyType: lambda m: (_proxy, (dict(m),)),
    AlertView: _fields(AlertView),
    Notification: _fields(Notification),
    Outcome: _fields(Outcome),
}


def dumps(message: Any) -> bytes:
    """One frame: a 4-byte length, then the pickled message."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _REDUCE
    pickler.dump(message)
    body = buf.getvalue()
    return HEADER.pack(len(body)) + body


class FrameProtocol(asyncio.Protocol):
    """Reads frames; `on_frame` gets each message, `on_lost` is called once the
    other end is gone. Only our own processes are at either end of the socket."""

    def __init__(self, on_frame: Callable[[Any], None], on_lost: Callable[[], None]) -> None:
        self.on_frame = on_frame
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        at = 0
        while len(buf) - at >= HEADER.size:
            (size,) = HEADER.unpack_from(buf, at)
            end = at + HEADER.size + size
            if len(buf) < end:
                break
            message = pickle.loads(memoryview(buf)[at + HEADER.size : end])
            at = end
            self.on_frame(message)
        del buf[:at]

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.on_lost()

    def send(self, message: Any) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(dumps(message))


# -- the main process's side -----------------------------------------------------------


class SenderProcess:
    """The Delivery protocol (senders.py), the sending done by a child process."""

    def __init__(
        self, settings: SenderSettings, report: Report, books: Books | None = None
    ) -> None:
        self.settings = settings
        self.report = report
        self.books = books
        self.channels: list[ChannelConfig] = []
        self.inflight: dict[int, tuple[Notification, bool]] = {}  # seq -> (n, is a test)
        self._seq = 0
        self._tests: dict[int, asyncio.Future[Outcome]] = {}
        self._mirror: dict[str, dict[str, Any]] = {}  # the child's last status
        self._counts: dict[str, list[int]] = {}  # channel -> [sent, failed]
        self._outgoing: list[tuple[int, Notification, bool]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._proto: FrameProtocol | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False

    # -- the Delivery protocol ------------------------------------------------------

    def configure(self, channels: Sequence[ChannelConfig]) -> None:
        self.channels = list(channels)
        names = {c.name for c in channels}
        # a removed channel's notifications fail here and now, each once (the
        # child would cancel the one it is sending without a word)
        removed = Outcome(False, 0, "channel removed by reload")
        for seq, (n, test) in list(self.inflight.items()):
            if n.channel not in names:
                del self.inflight[seq]
                if test:
                    self._test_result(seq, removed)
                else:
                    self._reported(n, removed, [n])
        for name in list(self._counts):
            if name not in names:
                del self._counts[name]
                self._mirror.pop(name, None)
        for name in names:
            self._counts.setdefault(name, [0, 0])
        if self._proto is not None:
            self._proto.send(self._configure_frame())

    def start(self) -> None:
        self._supervisor = asyncio.create_task(self._supervise(), name="vigil-sender-process")

    def put(self, n: Notification) -> None:
        if n.channel not in self._counts:
            return  # not a channel (any more): as Senders.put
        self._seq += 1
        self.inflight[self._seq] = (n, False)
        self._queue_out(self._seq, n, False)

    async def send_test(self, n: Notification) -> Outcome:
        self._seq += 1
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._tests[self._seq] = fut
        self.inflight[self._seq] = (n, True)
        self._queue_out(self._seq, n, True)
        return await fut

    def status(self) -> dict[str, dict[str, Any]]:
        out = {}
        for c in self.channels:
            s = dict(self._mirror.get(c.name) or {"queued": 0, "folded": 0, "breaker": "closed"})
            sent, failed = self._counts.get(c.name, (0, 0))
            probe_at = s.pop("probe_at", None)
            retry_in = 0.0 if probe_at is None else max(0.0, probe_at - time.monotonic())
            out[c.name] = {
                **s, "sent": sent, "failed": failed, "error": s.get("error"),
                "retry_in": round(retry_in, 3),
            }  # fmt: skip
        return out

    def traits(self) -> tuple[set[str], set[str]]:
        classes: dict[str, tuple[str, type | None]] = {}
        for c in self.channels:
            try:
                cls: type | None = registry.load("vigil.channels", c.type)
            except (KeyError, ImportError):
                cls = None
            classes[c.name] = (c.type, cls)
        return channel_traits(classes)

    async def aclose(self, drain_timeout: float) -> None:
        self._closing = True
        if self._supervisor is None:
            return
        self._flush()
        supervisor, self._supervisor = self._supervisor, None
        if self._proto is not None:
            # the child drains its queues, reports, and exits; the supervisor then ends
            self._proto.send(("close", drain_timeout))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(drain_timeout + KILL_GRACE):
                    await asyncio.shield(supervisor)
        supervisor.cancel()  # a child still restarting, or one that did not stop: killed
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor

    # -- sending ------------------------------------------------------------------

    def _queue_out(self, seq: int, n: Notification, test: bool) -> None:
        if self._proto is None:
            return  # the child is (re)starting: it gets all of `inflight`
        self._outgoing.append((seq, n, test))
        if self._flush_handle is None:
            # one frame per loop iteration: a burst's puts are pickled together
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if self._outgoing and self._proto is not None:
            batch, self._outgoing = self._outgoing, []
            self._proto.send(("put", batch))

    def _on_frame(self, message: Any) -> None:
        kind = message[0]
        if kind == "out":
            for item in message[1]:
                if len(item) == 3:
                    self._outcome(*item)
                else:
                    self._outcome_one(*item)
            if message[2] is not None:
                self._mirror = message[2]
        elif kind == "test":
            _, seq, outcome = message
            self.inflight.pop(seq, None)
            self._test_result(seq, outcome)

    def _test_result(self, seq: int, o: Outcome) -> None:
        fut = self._tests.pop(seq, None)
        if fut is not None and not fut.done():
            fut.set_result(o)

    def _outcome_one(self, seq: int, o: Outcome) -> None:
        got = self.inflight.pop(seq, None)
        if got is not None:
            self._reported(got[0], o, [got[0]])

    def _outcome(self, seqs: list[int], digest: Notification, o: Outcome) -> None:
        originals = [got[0] for s in seqs if (got := self.inflight.pop(s, None)) is not None]
        self._reported(digest, o, originals)

    def _reported(self, n: Notification, o: Outcome, originals: list[Notification]) -> None:
        counts = self._counts.get(n.channel)
        if counts is not None:
            counts[0 if o.ok else 1] += 1
        self.report(n.channel, n, o, originals)

    # -- the child ------------------------------------------------------------------

    async def _supervise(self) -> None:
        delay = RESPAWN_FIRST
        try:
            while True:
                started = time.monotonic()
                try:
                    code: int | str | None = await self._run_child()
                except OSError as e:  # could not start one (out of processes, files)
                    code = f"none: could not start it ({e})"
                if self._closing:
                    return
                if time.monotonic() - started > STABLE:
                    delay = RESPAWN_FIRST
                log.error(
                    "sender process exited with code %s; restarting it in %.1fs"
                    " (%d notifications to send again)",
                    code,
                    delay,
                    len(self.inflight),
                )
                await asyncio.sleep(delay)
                delay = min(RESPAWN_MAX, delay * 2)
        finally:
            self._stop_child()

    async def _run_child(self) -> int | None:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        try:
            self._proc = _spawn(theirs)
        finally:
            theirs.close()
        lost = asyncio.Event()
        try:
            _, proto = await loop.connect_accepted_socket(
                lambda: FrameProtocol(self._on_frame, lost.set), sock=ours
            )
        except BaseException:
            ours.close()
            self._stop_child()
            raise
        self._proto = proto
        proto.send(self._configure_frame())
        # everything given to a child that is gone goes to this one, in order
        self._outgoing = [(seq, n, test) for seq, (n, test) in self.inflight.items()]
        self._flush()
        await lost.wait()
        self._proto = None
        proc, self._proc = self._proc, None
        while proc.poll() is None:  # the socket closes as the child exits
            await asyncio.sleep(0.01)
        return proc.returncode

    def _configure_frame(self) -> tuple[Any, ...]:
        # the channels' journaled books ride along: a (re)started child's ban
        # channel restores what the journal holds now
        books = dict(self.books()) if self.books is not None else {}
        return ("configure", self.channels, self.settings, books)

    def _stop_child(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None


def _spawn(sock: socket.socket) -> subprocess.Popen[bytes]:
    level = logging.getLogger().getEffectiveLevel()
    return python_child.spawn("engine.delivery.sender_child", sock, str(level))
