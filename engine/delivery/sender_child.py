"""The sender process: `python -m engine.delivery.sender_child FD LOG_LEVEL`.

Started by SenderProcess (sender_process.py), which holds the other end of the
socket FD. Runs `Senders` on its own event loop: puts what it is given into
the channels' queues and answers with each outcome, those of a few ms together.
Exits once drained after a "close", or at once when the socket closes (the
main process is gone: what was not reported is sent again after its restart).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import signal
import socket
import sys
from typing import Any

from engine.delivery.retry import Outcome
from engine.delivery.sender_process import FrameProtocol
from engine.delivery.senders import Senders, SenderSettings
from engine.notify.base import Notification

COALESCE = 0.002  # seconds outcomes wait to go back together


class Child:
    def __init__(self) -> None:
        self.senders: Senders | None = None  # built by the first "configure"
        self.proto: FrameProtocol | None = None
        self.done = asyncio.Event()
        # id(n) -> (its seqs, n kept alive so the id stays its own); a list, since
        # one object put twice in a frame is unpickled once
        self._seq_of: dict[int, tuple[list[int], Notification]] = {}
        self._out: list[tuple[Any, ...]] = []
        self._flush_handle: asyncio.Handle | None = None
        self._closing: asyncio.Task[None] | None = None
        self._last_status: dict[str, dict[str, Any]] | None = None
        self._books: dict[str, Any] = {}  # the journal's books, as of the last "configure"

    def on_frame(self, message: Any) -> None:
        kind = message[0]
        if kind == "configure":
            if len(message) > 3:
                self._books = message[3]
            if self.senders is None:
                settings: SenderSettings = message[2]
                self.senders = Senders(settings, self._report, books=lambda: self._books)
                self.senders.configure(message[1])
                self.senders.start()
            else:
                self.senders.configure(message[1])
            self._send_status()
            return
        senders = self.senders
        assert senders is not None, "the main process configures first"
        if kind == "put":
            for seq, n, test in message[1]:
                self._seq_of.setdefault(id(n), ([], n))[0].append(seq)
                if test:
                    fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
                    fut.add_done_callback(functools.partial(self._test_done, seq, n))
                    senders.put_test(n, fut)
                else:
                    senders.put(n)
        elif kind == "close" and self._closing is None:
            self._closing = asyncio.create_task(self._close(float(message[1])))

    async def _close(self, drain_timeout: float) -> None:
        if self.senders is not None:
            await self.senders.aclose(drain_timeout)
        self._flush()
        self.done.set()

    def _report(
        self, channel: str, n: Notification, o: Outcome, originals: list[Notification]
    ) -> None:
        if len(originals) == 1 and originals[0] is n:
            seq = self._take_seq(n)
            if seq is not None:
                self._out.append((seq, o))
        else:  # a queue digest: which of ours it stands for
            seqs = [seq for x in originals if (seq := self._take_seq(x)) is not None]
            self._out.append((seqs, n, o))
        if self._flush_handle is None:
            # a few ms of outcomes in one frame: fewer wake-ups of the main process
            self._flush_handle = asyncio.get_running_loop().call_later(COALESCE, self._flush)

    def _take_seq(self, n: Notification) -> int | None:
        got = self._seq_of.get(id(n))
        if got is None:
            return None
        seqs = got[0]
        seq = seqs.pop(0)
        if not seqs:
            del self._seq_of[id(n)]
        return seq

    def _test_done(self, seq: int, n: Notification, fut: asyncio.Future[Outcome]) -> None:
        self._flush()  # the test's own report (set just after its result) goes first
        got = self._seq_of.get(id(n))
        if got is not None and seq in got[0]:  # folded into a digest: reported only here
            self._take_seq(n)
        if self.proto is not None:
            self.proto.send(("test", seq, fut.result()))

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._out and self.proto is not None:
            out, self._out = self._out, []
            self.proto.send(("out", out, self._status()))

    def _send_status(self) -> None:
        if self.proto is not None:
            self.proto.send(("out", [], self._status()))

    def _status(self) -> dict[str, dict[str, Any]] | None:
        """The channels' status, if it changed since it was last sent."""
        if self.senders is None:
            return None
        workers = self.senders.workers
        status = {
            # when the breaker lets a probe through: monotonic, the same clock in the
            # parent (CLOCK_MONOTONIC is the system's), and unchanged while it is open
            name: {k: s[k] for k in ("queued", "folded", "breaker", "error")}
            | {"probe_at": workers[name].breaker.probe_at() if name in workers else None}
            for name, s in self.senders.status().items()
        }
        if status == self._last_status:
            return None
        self._last_status = status
        return status


async def serve(fd: int) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(fileno=fd)
    child = Child()
    lost = asyncio.Event()
    _, proto = await loop.connect_accepted_socket(
        lambda: FrameProtocol(child.on_frame, lost.set), sock=sock
    )
    child.proto = proto
    waits = [asyncio.ensure_future(lost.wait()), asyncio.ensure_future(child.done.wait())]
    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    if proto.transport is not None:
        transport = proto.transport
        transport.close()  # written frames go out first
        while proto.transport is not None:
            await asyncio.sleep(0.005)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        # systemd's KillMode=control-group signals every process of the unit: the
        # main process says when to stop, once it has drained this one
        signal.signal(sig, signal.SIG_IGN)
    fd, level = int(argv[1]), int(argv[2])
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # the HTTP channels' aiohttp (~100 ms to import): now, not in the first burst
    importlib.import_module("engine.httpclient.aio_hooks")
    asyncio.run(serve(fd))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
