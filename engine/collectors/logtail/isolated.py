"""A logtail Reader in a child process: `python -m engine.collectors.logtail.isolated FD LEVEL`.

The collector's worker thread asks, the child reads and answers, one pass at a
time, over a socket pair (multiprocessing's Connection: length-prefixed pickles;
only our own processes are at either end):

    collector thread ── ("start", config, saved) ──► child: Reader(parse_settings(config))
                     ── ("run", woken) ───────────► Reader.run -> Pass
                     ◄── ("ok", Pass | changes, logs) or ("error", message, logs)
                     ── ("close",) ───────────────► Reader.close -> the last records; exits

What the child logs comes back with the answer and is logged by the daemon,
so it goes where the daemon's log goes. The detection sample's `keys` list
(up to 500 elements with their evidence) mostly holds the same elements pass
after pass (engine/detect/sink.py reuses an unchanged key's element): such an
element crosses once and then as its number, and the daemon hands out its
same copy again, so the daemon unpickles (holding the GIL its loop needs) only
what changed. The sample is cleaned at the boundary here (`_Outbox`), where it
is made: the daemon does not walk it again (`cleaned`, collecting.py).

The parent keeps the state records it was given and the changes since, so a
child that dies (a crash, the OOM killer) is replaced at the next pass by one
that resumes from the last record; that pass reports the collector down, and its
windows start empty again (the daemon holds resolves while they fill: it
restarts their filling when a collector comes back up). The child ignores
SIGINT and SIGTERM (systemd signals every process of the unit): it stops when
the daemon closes it or when its socket closes (the daemon is gone).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from types import MappingProxyType
from typing import Any

from engine.collectors.logtail.reader import Changes, Pass, Reader, parse_settings
from engine.common.boundary import Memo, clean
from engine.config.model import CollectorConfig, frozen_map
from engine.errors import CollectorError
from engine.runtime import python_child

log = logging.getLogger("vigil")

MODULE = "engine.collectors.logtail.isolated"
CLOSE_WAIT = 5.0  # seconds a closed child gets to exit before it is killed
NICE = 10  # the child's niceness, added to the daemon's

# the configuration's read-only mappings cross as what they are
ForkingPickler.register(MappingProxyType, lambda m: (frozen_map, (dict(m),)))


class ReaderProcess:
    """The Reader's methods, run in a child process; blocking, for a worker thread."""

    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self._state: dict[str, Any] = {}  # the last records: a new child resumes from them
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._keys: dict[int, Any] = {}  # number -> element of the last `keys` list

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def restore(self, saved: Mapping[str, Any]) -> None:
        self._state = dict(saved)

    def run(self, woken: bool) -> Pass:
        p = self._ask(("run", woken))
        assert isinstance(p, Pass)
        for key, rec in p.changes.items():
            if rec is None:
                self._state.pop(key, None)
            else:
                self._state[key] = rec
        if p.values is not None and "keys" in p.values:
            p.values["keys"] = self._decode(p.values["keys"])
        return p

    def close(self) -> Changes:
        if self._conn is None:
            return {}
        try:
            changes = self._ask(("close",))
        except CollectorError:
            changes = {}
        self._end(CLOSE_WAIT)
        assert isinstance(changes, dict)
        return changes

    def kill(self) -> None:
        """Stop the child now (a pass may still be running in it: it is abandoned,
        and a thread waiting for it sees the socket close)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()

    # -- the exchange --------------------------------------------------------------------

    def _ask(self, message: tuple[Any, ...]) -> Any:
        conn = self._conn if self._conn is not None else self._start()
        try:
            conn.send(message)
            kind, body, logs = conn.recv()
        except (EOFError, OSError):
            code = self._end(CLOSE_WAIT)
            raise CollectorError(
                f"its reader process ended ({_exit(code)}); a new one resumes at the next pass"
            ) from None
        for level, text in logs:
            log.log(level, "%s", text)
        if kind == "error":
            raise CollectorError(body)
        return body

    def _start(self) -> Connection:
        ours, theirs = socket.socketpair()
        try:
            level = str(logging.getLogger().getEffectiveLevel())
            self._proc = python_child.spawn(MODULE, theirs, level)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._conn = conn = Connection(ours.detach())
        self._keys = {}
        c = self.config
        config = (c.name, c.type, c.interval, c.timeout, c.settings, c.source)
        conn.send(("start", config, self._state))
        return conn

    def _end(self, wait: float) -> int | None:
        """Close the socket and reap the child; its exit code (None: killed now)."""
        conn, proc = self._conn, self._proc
        self._conn = self._proc = None
        if conn is not None:
            conn.close()
        if proc is None:
            return None
        try:
            return proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None

    def _decode(self, items: list[Any]) -> list[Any]:
        known, out = self._keys, []
        now: dict[int, Any] = {}
        for item in items:
            if type(item) is int:
                n, el = item, known[item]
            else:
                n, el = item
            now[n] = el
            out.append(el)
        self._keys = now
        return out


def _exit(code: int | None) -> str:
    if code is None:
        return "killed"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


# -- the child -----------------------------------------------------------------------------


class _Shared:
    """The `keys` elements sent last, by identity: one sent before goes as its number."""

    def __init__(self) -> None:
        self._sent: dict[int, tuple[int, Any]] = {}  # id -> (number, the element, kept alive)
        self._next = 0

    def encode(self, keys: list[Any]) -> list[Any]:
        sent: dict[int, tuple[int, Any]] = {}
        out: list[Any] = []
        for el in keys:
            got = self._sent.get(id(el))
            if got is not None and got[1] is el:
                out.append(got[0])
            else:
                got = (self._next, el)
                self._next += 1
                out.append(got)
            sent[id(el)] = got
        self._sent = sent
        return out


class _Logs(logging.Handler):
    """What the child logs, handed back with the next answer."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[tuple[int, str]] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, self.format(record)))

    def take(self) -> list[tuple[int, str]]:
        out, self.records = self.records, []
        return out


def _reader(config: tuple[Any, ...], saved: Mapping[str, Any]) -> Reader:
    name, type_, interval, timeout, settings, source = config
    cc = CollectorConfig(name, type_, interval, timeout, settings, source)
    reader = Reader(parse_settings(cc), timeout)
    reader.restore(saved)
    return reader


class _Outbox:
    """What a pass hands the daemon: its sample cleaned at the boundary here, where
    it was read (engine/common/boundary.py, with a Memo: unchanged elements are not
    walked again), so the daemon does not walk it again in its own process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.memo = Memo()
        self.shared = _Shared()
        self.cut: str | None = None  # the last cut logged

    def answer(self, p: Pass) -> Pass:
        if p.values is None:
            return p
        values, cut = clean(p.values, memo=self.memo)
        if cut is not None and cut != self.cut:  # once per kind of cut, as collecting.py
            log.warning("collector %s: values cut at the boundary: %s", self.name, cut)
            self.cut = cut
        if "keys" in values:
            values = {**values, "keys": self.shared.encode(values["keys"])}
        return replace(p, values=values)


def serve(conn: Connection) -> None:
    logs = _Logs()
    vigil = logging.getLogger("vigil")
    vigil.addHandler(logs)
    vigil.propagate = False
    reader: Reader | None = None
    out: _Outbox | None = None
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return  # the daemon is gone
            kind = message[0]
            try:
                if kind == "start":
                    reader, out = _reader(message[1], message[2]), _Outbox(message[1][0])
                    continue  # the first "run" answers
                assert reader is not None and out is not None, "the collector starts it first"
                if kind == "run":
                    answer: tuple[str, Any] = ("ok", out.answer(reader.run(bool(message[1]))))
                else:
                    closing, reader = reader, None
                    answer = ("ok", closing.close())
            except CollectorError as e:
                answer = ("error", str(e))
            except Exception as e:
                log.exception("logtail reader: %s failed", kind)
                answer = ("error", f"{type(e).__name__}: {e}")
            try:
                conn.send((*answer, logs.take()))
            except OSError:
                return
            if kind != "run":
                return  # closed; or it could not start (answered in the first run's stead)
    finally:
        if reader is not None:
            reader.close()  # a journalctl child ends with it


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # the daemon says when (python_child.py)
    logging.getLogger().setLevel(int(argv[2]))
    # bulk work: when the CPUs are busy, the daemon's ticks go first
    os.nice(NICE)
    serve(Connection(int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
