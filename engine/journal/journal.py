"""The journal: vigil's durable, append-only JSONL log, and its memory across restarts.

Files in ``data_dir``::

    alerts.jsonl                       the active segment, appended to
    alerts-<first seq, 12 digits>.jsonl  rotated segments, oldest first
    snapshot-<seq, 12 digits>.json     folded state up to and including <seq>
    quarantine-<UTC stamp>.jsonl       damaged lines moved aside by repair()
    lock                               flock()ed by the one process using the dir; holds its PID

Every line is one JSON object written whole, whose last member is a CRC-32 of
the text before it::

    {"v":1,"seq":7,"ts":"2026-11-22T20:00:00.123Z","event":"firing",...,"crc":"1a2b3c4d"}

``seq`` increases strictly across segments and restarts. The checksum lets a
reader tell a torn final line (a write cut short by a crash: repaired with a
warning) from damage in the middle (start-up stops and names ``file:offset``).

Durability follows ``LogConfig.fsync``:

    always       every append returns after fsync
    transitions  ``durable=True`` appends return after fsync; ``durable=False``
                 ones return at once and reach the disk with the next fsync
    interval     appends return once written to the OS; fsync every fsync_interval
    never        appends return once written to the OS; only flush()/close() fsync

Concurrent appends are group-committed: one writer task drains a buffer into one
write() and one fsync() per batch, both run in a dedicated thread so the event
loop keeps running while the disk works.

One event loop drives a Journal (``append``, ``flush``, ``write_snapshot``,
``close``); without a loop use the ``*_sync`` methods, never both at once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import json.encoder
import logging
import os
import re
import stat
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from engine.common.boundary import clean, clean_text, valid_text
from engine.common.json_text import compact_json, compact_json_ascii
from engine.config.model import LogConfig
from engine.errors import JournalError
from engine.journal import lock as _lock
from engine.journal.format import FORMAT_VERSION, format_ts, parse_ts
from engine.journal.hold import Held, JournalFatal, describe, recoverable

__all__ = [
    "ACTIVE",
    "DEFAULT_RETENTION",
    "FORMAT_VERSION",
    "Journal",
    "JournalInfo",
    "ReplayResult",
    "SegmentInfo",
    "compact_offline",
    "follow_events",
    "format_ts",
    "inspect",
    "iter_events",
    "parse_ts",
    "read_snapshot",
    "repair",
    "tail_events",
    "verify",
]

ACTIVE = "alerts.jsonl"
DEFAULT_RETENTION = 30 * 86400.0
KEEP_SNAPSHOTS = 2  # the newest may be damaged; the one before it is the fallback
MAX_PROBLEMS_PER_FILE = 100
FILE_MODE = 0o640

_SEGMENT_RE = re.compile(r"alerts-(\d{12,})\.jsonl\Z")
_SNAPSHOT_RE = re.compile(r"snapshot-(\d{12,})\.json\Z")
# What every line we write starts with; lets readers skip lines without parsing them.
_PREFIX = re.compile(rb'\{"v":(\d+),"seq":(\d+),(?:"ts":"([^"\\]*)")?')
_CRC_HEAD = b',"crc":"'
_SUFFIX_LEN = 18  # ,"crc":"xxxxxxxx"}
_BLOCK = 1 << 16
_RESERVED = frozenset(("v", "seq", "ts", "crc"))

Event = dict[str, Any]
log = logging.getLogger("vigil.journal")

# Wait levels of an append.
_NO_WAIT, _WAIT_WRITE, _WAIT_FSYNC = 0, 1, 2


# --------------------------------------------------------------------- format


def encode_json(obj: Any) -> bytes:
    """Compact JSON as the journal writes it: lone surrogates (from
    surrogateescape'd input) only survive as \\u escapes."""
    try:
        return compact_json(obj).encode("utf-8")
    except UnicodeEncodeError:
        return compact_json_ascii(obj).encode("ascii")


def _seal_encoded(body: bytes) -> bytes:
    """An encoded JSON object (`{...}`) as one checksummed line."""
    head = body[:-1]
    return b'%s,"crc":"%08x"}\n' % (head, zlib.crc32(head))


def _seal(obj: Mapping[str, Any]) -> bytes:
    """`obj` as one checksummed line, newline included."""
    return _seal_encoded(encode_json(obj))


def _writable(rec: Event, error: BaseException) -> tuple[Event, bytes]:
    """`rec` cut down to what can be written (engine/common/boundary.py's bounds), and why;
    as a last resort only its identity: the event is journaled either way."""
    bounded, _cut = clean(rec)
    try:
        out = cast(Event, bounded)
        return out, _seal(out)
    except (RecursionError, ValueError, TypeError):
        keep = ("v", "seq", "ts", "event", "alert", "rule", "channel", "collector")
        out = {k: rec[k] for k in keep if isinstance(rec.get(k), str | int)}
        out["unwritable"] = clean_text(f"{type(error).__name__}: {error}", 500)
        return out, _seal(out)


class _BadLine(Exception):
    """A line that cannot be used. `damaged`: its bytes are wrong (torn or rotted),
    as opposed to well-formed content this version refuses."""

    def __init__(self, reason: str, *, damaged: bool = True) -> None:
        self.reason = reason
        self.damaged = damaged
        super().__init__(reason)


def _check_crc(line: bytes) -> None:
    if len(line) < _SUFFIX_LEN + 2 or line[-_SUFFIX_LEN:-10] != _CRC_HEAD or line[-2:] != b'"}':
        raise _BadLine("no checksum at the end of the line")
    digits = line[-10:-2]
    if digits.strip(b"0123456789abcdef"):
        raise _BadLine("malformed checksum")
    if zlib.crc32(line[:-_SUFFIX_LEN]) != int(digits, 16):
        raise _BadLine("checksum mismatch")


def _open_line(line: bytes) -> Event:
    """The event in one line (without its newline); raises _BadLine."""
    _check_crc(line)
    try:
        obj = json.loads(line)
    except ValueError:  # includes UnicodeDecodeError
        raise _BadLine("checksum matches but the line is not valid JSON") from None
    if not isinstance(obj, dict):
        raise _BadLine("not a JSON object", damaged=False)
    del obj["crc"]
    v, seq = obj.get("v"), obj.get("seq")
    if v != FORMAT_VERSION:
        if type(v) is int and v > FORMAT_VERSION:
            raise _BadLine(f"format version {v} is newer than this vigil reads", damaged=False)
        raise _BadLine(f"bad format version {v!r}", damaged=False)
    if type(seq) is not int or seq < 1:
        raise _BadLine(f"bad seq {seq!r}", damaged=False)
    if not isinstance(obj.get("event"), str):
        raise _BadLine("no event name", damaged=False)
    if b"\\ud" in line:  # a lone surrogate escaped by an older vigil: valid text now
        return cast(Event, valid_text(obj))
    return obj


def _where(path: str, offset: int) -> str:
    return f"{path}:{offset}"


def _corrupt(path: str, offset: int, reason: str) -> JournalError:
    return JournalError(
        f"{_where(path, offset)}: {reason}; `vigil log verify` lists the damage, "
        "`vigil log repair` quarantines it"
    )


# ---------------------------------------------------------------- files on disk


@dataclass(frozen=True, slots=True)
class _Segment:
    path: str
    first_seq: int | None  # from the file name; None for the active segment

    @property
    def active(self) -> bool:
        return self.first_seq is None


def _segments(data_dir: str) -> list[_Segment]:
    """Rotated segments by first seq, then the active one if it exists."""
    try:
        names = os.listdir(data_dir)
    except FileNotFoundError:
        raise JournalError(f"{data_dir}: no such directory; is data_dir right?") from None
    rotated = sorted((int(m.group(1)), n) for n in names if (m := _SEGMENT_RE.match(n)))
    out = [_Segment(os.path.join(data_dir, n), first) for first, n in rotated]
    if ACTIVE in names:
        out.append(_Segment(os.path.join(data_dir, ACTIVE), None))
    return out


def _snapshot_files(data_dir: str) -> list[tuple[int, str]]:
    """(seq, path) of every snapshot, newest first."""
    names = os.listdir(data_dir)
    found = [(int(m.group(1)), n) for n in names if (m := _SNAPSHOT_RE.match(n))]
    return [(seq, os.path.join(data_dir, n)) for seq, n in sorted(found, reverse=True)]


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_file(path: str, data: bytes, *, sync: bool = True) -> None:
    """Write `path` whole via a temporary file and rename, so readers see old or new."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        _write_all(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        _fsync_dir(os.path.dirname(path) or ".")


def _reverse_lines(f: BinaryIO, end: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line without newline) of each line before `end`, last first.

    `end` must be 0 or just after a newline. Reads backwards in blocks, so the
    cost is the size of the part consumed, not of the file.
    """
    buf_start, buf = end, b""
    line_end = end  # just past the newline of the next line to yield
    block = _BLOCK
    while line_end > 0:
        nl = buf.rfind(b"\n", 0, max(line_end - 1 - buf_start, 0))
        if nl < 0 and buf_start > 0:
            n = min(block, buf_start)
            block = min(block * 2, 1 << 24)  # long lines: keep refills linear
            buf_start -= n
            f.seek(buf_start)
            buf = f.read(n) + buf[: line_end - buf_start - n]
            continue
        start = buf_start + nl + 1
        yield start, buf[start - buf_start : line_end - 1 - buf_start]
        line_end = start


def _last_newline_end(f: BinaryIO, size: int) -> int:
    """Offset just past the last newline before `size` (0 if there is none)."""
    pos = size
    while pos > 0:
        n = min(_BLOCK, pos)
        pos -= n
        f.seek(pos)
        i = f.read(n).rfind(b"\n")
        if i >= 0:
            return pos + i + 1
    return 0


def _prefix(line: bytes) -> tuple[int, str | None] | None:
    """(seq, ts) read from the start of a line without parsing it, if it looks like ours."""
    m = _PREFIX.match(line)
    if m is None:
        return None
    ts = m.group(3)
    return int(m.group(2)), ts.decode("ascii", "replace") if ts is not None else None


def _edges(path: str) -> tuple[int | None, int | None, str | None, int]:
    """(first seq, last seq, last ts, size) of a segment, read from its ends only."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; FileNotFoundError handled by caller
    except FileNotFoundError:
        return None, None, None, 0
    with f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(256)
        p = _prefix(head)
        first = p[0] if p else None
        end = _last_newline_end(f, size)
        for _off, line in _reverse_lines(f, end):
            q = _prefix(line)
            if q is not None:
                return first, q[0], q[1], size
            break
        return first, None, None, size


def _tail_start(f: BinaryIO, end: int, after_seq: int) -> tuple[int, int | None]:
    """(offset of the first line with seq > after_seq, seq of the last line).

    Walks back from the end, so only the tail is read. A line we cannot place
    stops the walk there: the forward pass then reports it with its offset.
    """
    start, last = end, None
    for off, line in _reverse_lines(f, end):
        p = _prefix(line)
        if p is None:
            return off, last
        if last is None:
            last = p[0]
        if p[0] <= after_seq:
            return start, last
        start = off
    return start, last


# ------------------------------------------------------------------- snapshots


class _BadSnapshot(Exception):
    pass


def _read_snapshot_file(path: str, name_seq: int) -> tuple[int, dict[str, Any]]:
    try:
        # O_NONBLOCK: a FIFO with a snapshot's name must not hang start-up
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _BadSnapshot("not a regular file")
            data = f.read().rstrip(b"\n")
    except OSError as e:
        raise _BadSnapshot(f"cannot read: {e.strerror}") from None
    if data[-_SUFFIX_LEN:-10] == _CRC_HEAD:
        try:
            _check_crc(data)
        except _BadLine as e:
            raise _BadSnapshot(e.reason) from None
    try:
        obj = json.loads(data)
    except ValueError:
        raise _BadSnapshot("not valid JSON") from None
    if not isinstance(obj, dict) or obj.get("v") != FORMAT_VERSION:
        raise _BadSnapshot("not a version-1 snapshot object")
    seq, state = obj.get("seq"), obj.get("state")
    if type(seq) is not int or seq != name_seq:
        raise _BadSnapshot(f"seq {seq!r} does not match the file name")
    if not isinstance(state, dict):
        raise _BadSnapshot("state is not a JSON object")
    if b"\\ud" in data:  # see _open_line
        state = cast(dict[str, Any], valid_text(state))
    return seq, state


def read_snapshot(data_dir: str | os.PathLike[str]) -> tuple[int, dict[str, Any]] | None:
    """(seq, state) of the newest readable snapshot, or None. Read-only, no lock."""
    for seq, path in _snapshot_files(os.fspath(data_dir)):
        try:
            return _read_snapshot_file(path, seq)
        except _BadSnapshot:
            continue
    return None


# ---------------------------------------------------------------------- journal


@dataclass(slots=True)
class ReplayResult:
    """What open() found: the newest good snapshot and every event after it."""

    snapshot_seq: int  # 0: no snapshot
    state: dict[str, Any] | None  # the snapshot's state; None without one
    events: list[Event]
    warnings: list[str]
    last_seq: int


class Journal:
    """The append-only log of one data_dir; one process at a time (see `open`)."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        config: LogConfig,
        *,
        clock: Callable[[], float] = time.time,
        retention_seconds: float = DEFAULT_RETENTION,
        on_fsync: Callable[[float], None] | None = None,
        on_degraded: Callable[[str | None], None] | None = None,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self.data_dir = os.fspath(data_dir)
        self.config = config
        self.retention_seconds = retention_seconds
        self.on_fsync = on_fsync
        # called in the loop: with the reason when writes start being held in
        # memory (engine/journal/hold.py), with None once they are all on disk
        self.on_degraded = on_degraded
        self.on_fatal = on_fatal  # the journal can promise nothing more: stop
        self._held = Held()
        self._rotate_error: str | None = None
        self.fsync_seconds: collections.deque[float] = collections.deque(maxlen=1024)
        self.fsync_count = 0
        self._clock = clock
        self._ts_ms, self._ts = -1, ""
        self._active_path = os.path.join(self.data_dir, ACTIVE)
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._seq = 0
        self._snapshot_seq = 0
        self._active_first: int | None = None
        self._size = 0
        self._dirty = False  # written since the last fsync
        self._last_fsync = time.monotonic()
        self._io_lock = threading.Lock()  # file state belongs to whoever holds it
        self._failed: str | None = None
        # async side, created on first use inside the loop
        self._executor: ThreadPoolExecutor | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._buf: list[bytes] = []
        self._sync_waiters: list[asyncio.Future[None]] = []
        self._write_waiters: list[asyncio.Future[None]] = []
        self._closing = False
        # what an append waits for, by its `durable` flag (see the module doc)
        self._level_durable = self._wait_level(True)
        self._level_other = self._wait_level(False)

    # ------------------------------------------------------------ properties

    @property
    def last_seq(self) -> int:
        """The seq of the last event handed to the journal (written or about to be)."""
        return self._seq

    @property
    def snapshot_seq(self) -> int:
        """The seq of the newest snapshot this journal read or wrote (0: none)."""
        return self._snapshot_seq

    @property
    def is_open(self) -> bool:
        return self._lock_fd is not None

    @property
    def degraded(self) -> str | None:
        """Why writes are held in memory instead of on disk; None when they are not."""
        if self._held.reason is None:
            return None
        return f"{self._held.reason}; {self._held.lines()} event(s) held in memory"

    # -------------------------------------------------------------- open/replay

    def open(self) -> ReplayResult:
        """Take the data_dir lock, repair a torn tail, and replay snapshot + log.

        Raises JournalLocked when another process holds the lock, JournalError
        naming `file:offset` for damage anywhere but the final line.
        """
        if self._lock_fd is not None:
            raise JournalError(f"{self.data_dir}: journal is already open")
        try:
            os.makedirs(self.data_dir, mode=0o750, exist_ok=True)
            self._lock_fd = _lock.acquire(self.data_dir)
            try:
                result = self._replay()
                created = not os.path.exists(self._active_path)
                self._fd = os.open(
                    self._active_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE
                )
                if created:
                    _fsync_dir(self.data_dir)
                self._size = os.fstat(self._fd).st_size
            except BaseException:
                self._close_files()
                raise
        except OSError as e:
            # a read-only or unwritable data_dir: one line that says which and why
            where = e.filename if isinstance(e.filename, str) else self.data_dir
            if isinstance(e, FileExistsError):  # os.makedirs on a file
                raise JournalError(f"{where}: not a directory; not starting") from None
            raise JournalError(f"{where}: cannot open the journal: {describe(e)}") from None
        self._seq = result.last_seq
        self._snapshot_seq = result.snapshot_seq
        self._failed = None
        self._closing = False
        return result

    def _replay(self) -> ReplayResult:
        warnings: list[str] = []
        for seg in _segments(self.data_dir):
            # opening a FIFO with a segment's name would block start-up forever
            # (devices are allowed: tests put /dev/full there to fill the "disk")
            if stat.S_ISFIFO(os.stat(seg.path).st_mode):
                raise JournalError(
                    f"{seg.path}: a FIFO, not a regular file; the journal's segments "
                    "must be regular files"
                )
        for name in os.listdir(self.data_dir):
            if name.endswith(".tmp") and name.startswith(("snapshot-", "alerts", "quarantine-")):
                # an interrupted snapshot or repair; the rename never happened
                os.unlink(os.path.join(self.data_dir, name))

        snap_seq, state = 0, None
        snaps = _snapshot_files(self.data_dir)
        for i, (seq, path) in enumerate(snaps):
            try:
                snap_seq, state = _read_snapshot_file(path, seq)
                break
            except _BadSnapshot as e:
                then = "an older snapshot" if i + 1 < len(snaps) else "the log from its start"
                warnings.append(f"{path}: {e}; replaying from {then} instead")

        torn = self._truncate_torn_tail()
        if torn:
            warnings.append(torn)

        segments = _segments(self.data_dir)
        self._active_first = None
        if segments and segments[-1].active:
            self._active_first, *_ = _edges(segments[-1].path)
        events: list[Event] = []
        log_last = 0
        for i, seg in enumerate(segments):
            nxt = segments[i + 1] if i + 1 < len(segments) else None
            upper = self._upper_bound(nxt)
            if upper is not None and upper <= snap_seq:
                continue  # fully covered by the snapshot: never read it
            last = self._read_tail(seg, snap_seq, events)
            if last is not None:
                log_last = last

        if snap_seq > log_last:
            if log_last:
                warnings.append(
                    f"snapshot at seq {snap_seq} is ahead of the log (last seq {log_last}); "
                    "the log lost writes that were never fsynced"
                )
        elif events and events[0]["seq"] > snap_seq + 1 and snap_seq:
            warnings.append(
                f"events {snap_seq + 1}..{events[0]['seq'] - 1} after the snapshot are missing"
            )
        return ReplayResult(snap_seq, state, events, warnings, max(snap_seq, log_last))

    def _upper_bound(self, nxt: _Segment | None) -> int | None:
        """Highest seq a segment can hold, given the segment after it."""
        if nxt is None:
            return None
        first = nxt.first_seq if nxt.first_seq is not None else self._active_first
        return None if first is None else first - 1

    def _read_tail(self, seg: _Segment, after_seq: int, out: list[Event]) -> int | None:
        """Append the events of `seg` with seq > after_seq to `out`; return its last seq."""
        with open(seg.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if seg.first_seq is not None and seg.first_seq > after_seq:
                start, last = 0, None
            else:
                start, last = _tail_start(f, size, after_seq)
            f.seek(start)
            data = f.read(size - start)
        if data and not data.endswith(b"\n"):
            # only the active segment may end torn, and that was cut off before
            raise _corrupt(seg.path, start + data.rfind(b"\n") + 1, "incomplete final line")
        prev = None
        offset = start
        for line in data.split(b"\n")[:-1]:
            try:
                ev = _open_line(line)
            except _BadLine as e:
                raise _corrupt(seg.path, offset, e.reason) from None
            seq = ev["seq"]
            if prev is not None and seq <= prev:
                raise _corrupt(seg.path, offset, f"seq {seq} does not follow {prev}")
            if out and seq <= out[-1]["seq"]:
                raise _corrupt(seg.path, offset, f"seq {seq} does not follow {out[-1]['seq']}")
            prev = seq
            if seq > after_seq:
                out.append(ev)
            offset += len(line) + 1
        return prev if prev is not None else last

    def _truncate_torn_tail(self) -> str | None:
        """Cut a final line that a crash left incomplete; return the warning, if any."""
        try:
            f = open(self._active_path, "r+b")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            return None
        with f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return None
            f.seek(size - 1)
            if f.read(1) != b"\n":
                cut = _last_newline_end(f, size)
                why = "no newline"
            else:
                for off, line in _reverse_lines(f, size):
                    try:
                        _open_line(line)
                        return None
                    except _BadLine as e:
                        if not e.damaged:
                            return None  # well-formed but refused: not torn, replay reports it
                        cut, why = off, e.reason
                    break
                else:  # pragma: no cover - size > 0 and ends with a newline: one line at least
                    return None
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        return (
            f"{_where(self._active_path, cut)}: torn final line ({size - cut} bytes, {why}) "
            "removed; it was a write cut short by a crash"
        )

    # ------------------------------------------------------------- appending

    def _stamp(self, events: Sequence[Mapping[str, Any]]) -> tuple[bytes, list[Event]]:
        ms = round(self._clock() * 1000)
        if ms != self._ts_ms:  # appends within one millisecond share the string
            self._ts_ms, self._ts = ms, format_ts(ms / 1000)
        ts = self._ts
        seq = self._seq
        lines: list[bytes] = []
        out: list[Event] = []
        for ev in events:
            name = ev.get("event")
            if not isinstance(name, str) or not name:
                raise ValueError(f"a journal event needs a non-empty 'event' name, got {name!r}")
            seq += 1
            rec: Event = {"v": FORMAT_VERSION, "seq": seq, "ts": ts, "event": name, **ev}
            if not _RESERVED.isdisjoint(ev):
                # the journal owns these, whatever the caller passed
                rec["v"] = FORMAT_VERSION
                rec["seq"] = seq
                rec["ts"] = ts
                rec.pop("crc", None)
            try:
                line = _seal(rec)
            except (RecursionError, ValueError) as e:
                # one event too deep to write must not take its batch with it (a type
                # JSON does not know is a bug upstream: TypeError, loudly)
                rec, line = _writable(rec, e)
            lines.append(line)
            out.append(rec)
        self._seq = seq  # only once every event serialised: a bad one leaves no gap
        return (lines[0] if len(lines) == 1 else b"".join(lines)), out

    def _wait_level(self, durable: bool) -> int:
        policy = self.config.fsync
        if policy == "always":
            return _WAIT_FSYNC
        if policy == "transitions":
            return _WAIT_FSYNC if durable else _NO_WAIT
        return _WAIT_WRITE if durable else _NO_WAIT

    def _check_usable(self) -> None:
        if self._lock_fd is None:
            raise JournalError(f"{self.data_dir}: journal is not open")
        if self._failed is not None:
            raise JournalError(self._failed)
        if self._closing:
            raise JournalError(f"{self.data_dir}: journal is closing")

    async def append(
        self, events: Sequence[Mapping[str, Any]], *, durable: bool = True
    ) -> list[Event]:
        """Stamp `events` with v/seq/ts, write them, and return the stamped copies
        once they are as durable as the fsync policy promises (see module doc).

        Each event needs an `event` name. Concurrent calls share writes and
        fsyncs. When the disk refuses the write (full, read-only) the lines are
        held in memory and written once it takes them again, and this returns
        all the same (engine/journal/hold.py; `degraded` says so). Raises
        JournalError once the journal is unusable (a failed fsync, an I/O error);
        after that every append fails until the journal is reopened.
        """
        stamped, done = self.submit(events, durable=durable)
        if done is not None:
            await done
        return stamped

    def submit(
        self, events: Sequence[Mapping[str, Any]], *, durable: bool = True
    ) -> tuple[list[Event], asyncio.Future[None] | None]:
        """append() without waiting: the events are stamped and queued now (so
        their order is the order of the calls) and the future, if any, is done
        when they are as durable as the policy promises. Raises as append() does.
        """
        if self._lock_fd is None or self._failed is not None or self._closing:
            self._check_usable()  # raises the right error
        if not events:
            return [], None
        blob, stamped = self._stamp(events)
        writer, wake = self._writer, self._wake
        if writer is None or wake is None or writer.done():
            self._start_writer()
            writer, wake = self._writer, self._wake
            assert writer is not None and wake is not None
        self._buf.append(blob)
        level = self._level_durable if durable else self._level_other
        if level == _NO_WAIT:
            wake.set()
            return stamped, None
        fut: asyncio.Future[None] = writer.get_loop().create_future()
        (self._sync_waiters if level == _WAIT_FSYNC else self._write_waiters).append(fut)
        wake.set()
        return stamped, fut

    def append_sync(
        self, events: Sequence[Mapping[str, Any]], *, durable: bool = True
    ) -> list[Event]:
        """append() for code without an event loop: write now, fsync per the policy."""
        self._check_usable()
        self._no_writer("append_sync")
        if not events:
            return []
        blob, stamped = self._stamp(events)
        policy = self.config.fsync
        sync = (
            policy == "always"
            or (policy == "transitions" and durable)
            or (
                policy == "interval"
                and time.monotonic() - self._last_fsync >= self.config.fsync_interval
            )
        )
        self._report(self._write_sync([blob], sync))
        return stamped

    def _no_writer(self, what: str) -> None:
        if self._writer is not None and not self._writer.done():
            raise RuntimeError(f"{what}() cannot be used while an event loop drives this journal")

    def _interval_due(self) -> bool:
        return self._dirty and time.monotonic() - self._last_fsync >= self.config.fsync_interval

    def _report(self, elapsed: float | None) -> None:
        if elapsed is None:
            return
        self.fsync_count += 1
        self.fsync_seconds.append(elapsed)
        if self.on_fsync is not None:
            self.on_fsync(elapsed)

    # --------------------------------------------------------- the writer task

    def _start_writer(self) -> None:
        if self._writer is not None and not self._writer.done():
            return
        self._executor = self._executor or ThreadPoolExecutor(1, "vigil-journal")
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(
            self._write_loop(), name="vigil-journal-writer"
        )

    def _kick(self) -> None:
        assert self._wake is not None
        self._wake.set()

    def _want_timer(self) -> None:
        """Under `interval`, make sure dirty data gets its fsync even if appends stop."""
        if self.config.fsync != "interval" or not self._dirty or self._timer is not None:
            return
        delay = max(0.0, self._last_fsync + self.config.fsync_interval - time.monotonic())
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._wake is not None:
            self._wake.set()

    async def _write_loop(self) -> None:
        assert self._wake is not None and self._executor is not None
        loop = asyncio.get_running_loop()
        wake, executor, held = self._wake, self._executor, self._held
        inflight: list[asyncio.Future[None]] = []
        try:
            while True:
                if held.active:  # retry the disk with backoff, even if nothing is appended
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), held.delay(time.monotonic()))
                else:
                    await wake.wait()
                wake.clear()
                due = self.config.fsync == "interval" and self._interval_due()
                retry = held.due(time.monotonic()) or (held.active and self._closing)
                if not (self._buf or self._sync_waiters or self._write_waiters or due or retry):
                    if self._closing:
                        return
                    continue
                blobs, self._buf = self._buf, []
                sync = bool(self._sync_waiters) or due
                inflight = [*self._sync_waiters, *self._write_waiters]
                self._sync_waiters, self._write_waiters = [], []
                if held.active and not retry:
                    held.hold(blobs)  # behind what waits already: order is kept
                else:
                    if held.active:
                        blobs = held.take() + blobs
                    try:
                        elapsed = await loop.run_in_executor(
                            executor, self._write_batch, blobs, sync
                        )
                    except OSError as e:
                        if not recoverable(e):
                            raise JournalFatal(
                                f"{self._active_path}: journal write failed: {describe(e)}"
                            ) from e
                        self._hold(blobs, e)
                    else:
                        self._report(elapsed)
                        if held.active:
                            self._caught_up(len(blobs))
                # written, or held when the disk refused: either way the caller goes
                # on from memory (the module doc of engine/journal/hold.py)
                for fut in inflight:
                    if not fut.done():
                        fut.set_result(None)
                inflight = []
                self._want_timer()
                if self._closing and held.active:
                    self._give_up()
                    return
                if self._closing and not (self._buf or self._sync_waiters or self._write_waiters):
                    return
        except JournalFatal as e:
            self._failed = str(e)
            log.critical("%s; stopping so that a restart replays a journal that can be trusted", e)
            if self.on_fatal is not None:
                self.on_fatal(str(e))
        finally:
            # however we stop, nobody may wait forever for a write that will not come
            pending = [*inflight, *self._sync_waiters, *self._write_waiters]
            if self._failed is None and (pending or self._buf):
                self._failed = f"{self._active_path}: journal writer stopped"
            for fut in pending:
                if not fut.done():
                    fut.set_exception(JournalError(self._failed or "journal closed"))
            self._sync_waiters, self._write_waiters, self._buf = [], [], []

    def _hold(self, blobs: list[bytes], e: OSError) -> None:
        first = not self._held.active
        self._held.hold(blobs)
        self._held.failed(
            f"{self._active_path}: journal write failed: {describe(e)}", time.monotonic()
        )
        if first:
            log.error(
                "%s; alerting goes on from memory, the journal is retried with backoff",
                self._held.reason,
            )
            if self.on_degraded is not None:
                self.on_degraded(self.degraded)

    def _caught_up(self, blobs: int) -> None:
        reason, dropped = self._held.recovered()
        lost = f"; {dropped} event(s) past the memory cap were lost" if dropped else ""
        log.warning("journal writes again after: %s (caught up%s)", reason, lost)
        if self.on_degraded is not None:
            self.on_degraded(None)

    def _give_up(self) -> None:
        n = self._held.lines()
        self._failed = f"{self._held.reason}; {n} event(s) held in memory were lost at close"
        log.error("%s", self._failed)

    def _write_batch(self, blobs: list[bytes], sync: bool) -> float | None:
        """Write `blobs`, fsync if asked, rotate if due; seconds fsync took, or None.

        Runs in the journal thread (or the caller's, for the sync API).
        """
        with self._io_lock:
            fd = self._fd
            if fd is None:
                raise OSError(9, "journal file is closed")
            elapsed = None
            if blobs:
                data = blobs[0] if len(blobs) == 1 else b"".join(blobs)
                try:
                    _write_all(fd, data)
                except OSError as e:
                    # never leave half a batch: later lines would follow garbage
                    try:
                        if os.fstat(fd).st_size != self._size:
                            os.ftruncate(fd, self._size)
                    except OSError as cut:
                        raise JournalFatal(
                            f"{self._active_path}: cannot cut a failed write back: {describe(cut)}"
                        ) from e
                    raise
                if self._active_first is None:
                    p = _prefix(data)
                    self._active_first = p[0] if p else None
                self._size += len(data)
                self._dirty = True
            if sync and self._dirty:
                elapsed = self._fsync_locked()
            if self._size > self.config.segment_bytes:
                try:
                    took = self._rotate_locked()
                except OSError as err:
                    # the lines are written: only the rotation waits (for room, say)
                    if self._rotate_error is None:
                        log.warning("journal rotation postponed: %s", describe(err))
                    self._rotate_error = describe(err)
                else:
                    self._rotate_error = None
                    if took is not None:
                        elapsed = (elapsed or 0.0) + took
            return elapsed

    def _fsync_locked(self) -> float:
        assert self._fd is not None
        t0 = time.perf_counter()
        try:
            os.fdatasync(self._fd)  # data + size; the mtime is not worth a second write
        except OSError as e:
            # the kernel may have dropped the pages it could not write: a retry
            # would report success for data that is gone (hold.py)
            raise JournalFatal(f"{self._active_path}: fsync failed: {describe(e)}") from e
        self._dirty = False
        self._last_fsync = time.monotonic()
        return time.perf_counter() - t0

    def _rotate_locked(self) -> float | None:
        assert self._fd is not None
        sync = self.config.fsync != "never"
        elapsed = self._fsync_locked() if sync and self._dirty else None
        first = self._active_first
        if first is None:  # the first line was unreadable at open: fall back to a scan
            first, *_ = _edges(self._active_path)
            first = first if first is not None else self._seq
        target = os.path.join(self.data_dir, f"alerts-{first:012d}.jsonl")
        if os.path.exists(target):
            raise OSError(17, f"cannot rotate: {target} exists")
        # rename under the open fd, then swap: _fd is never unset, so the loop
        # thread never sees a journal that looks closed mid-rotation
        os.rename(self._active_path, target)
        new_fd = os.open(
            self._active_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, FILE_MODE
        )
        old_fd, self._fd = self._fd, new_fd
        os.close(old_fd)
        if sync:
            _fsync_dir(self.data_dir)  # both the rename and the new file
        self._size = 0
        self._active_first = None
        self._dirty = False
        return elapsed

    async def flush(self) -> None:
        """Return once everything appended so far is written and fsynced."""
        if self._lock_fd is None:
            raise JournalError(f"{self.data_dir}: journal is not open")
        if self._failed is not None:
            raise JournalError(self._failed)
        self._start_writer()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sync_waiters.append(fut)
        self._kick()
        await fut

    def flush_sync(self) -> None:
        self._check_usable()
        self._no_writer("flush_sync")
        self._report(self._write_sync([], True))

    def _write_sync(self, blobs: list[bytes], sync: bool) -> float | None:
        try:
            return self._write_batch(blobs, sync)
        except JournalFatal as e:
            self._failed = str(e)
            raise
        except OSError as e:
            self._failed = f"{self._active_path}: journal write failed: {describe(e)}"
            raise JournalError(self._failed) from e

    # --------------------------------------------------------------- snapshots

    def _snapshot_head(self, state_json: bytes, seq: int) -> bytes:
        """The snapshot object around an encoded state, without its checksum."""
        if not 0 <= seq <= self._seq:
            raise ValueError(f"snapshot seq {seq} is not within the log (last seq {self._seq})")
        return b'{"v":%d,"seq":%d,"state":%s}' % (FORMAT_VERSION, seq, state_json)

    def _store_snapshot(self, blob: bytes, seq: int) -> list[str]:
        path = os.path.join(self.data_dir, f"snapshot-{seq:012d}.json")
        _write_file(path, blob)
        self._snapshot_seq = max(self._snapshot_seq, seq)
        removed = []
        for _s, old in _snapshot_files(self.data_dir)[KEEP_SNAPSHOTS:]:
            if not os.path.isfile(old):
                continue  # not a snapshot we wrote (a directory with its name): not ours to remove
            os.unlink(old)
            removed.append(old)
        removed += self._compact_locked(self.retention_seconds, fsync_dir=False)
        if removed:
            _fsync_dir(self.data_dir)
        return removed

    async def write_snapshot(self, state: Mapping[str, Any], seq: int) -> str:
        """Store `state` (the fold of every event up to `seq`) durably; return its path.

        The state is serialised at once, so the caller may keep changing it. The
        log is fsynced first, so a snapshot never gets ahead of it. Keeps the two
        newest snapshots and removes segments that are covered and expired.
        """
        return await self.write_snapshot_encoded(encode_json(state), seq)

    async def write_snapshot_encoded(self, state_json: bytes, seq: int) -> str:
        """write_snapshot() of a state already encoded as JSON (see
        engine/journal/snapshot_copy.py); the line is sealed off the event loop."""
        self._check_usable()
        if self._held.active:  # the log is not on disk: a snapshot would get ahead of it
            raise JournalError(f"no snapshot while the journal is degraded: {self.degraded}")
        head = self._snapshot_head(state_json, seq)
        await self.flush()
        assert self._executor is not None

        def store() -> None:
            self._store_snapshot(_seal_encoded(head), seq)

        await asyncio.get_running_loop().run_in_executor(self._executor, store)
        return os.path.join(self.data_dir, f"snapshot-{seq:012d}.json")

    def write_snapshot_sync(self, state: Mapping[str, Any], seq: int) -> str:
        self._check_usable()
        self._no_writer("write_snapshot_sync")
        head = self._snapshot_head(encode_json(state), seq)
        self.flush_sync()
        self._store_snapshot(_seal_encoded(head), seq)
        return os.path.join(self.data_dir, f"snapshot-{seq:012d}.json")

    def compact(self, retention_seconds: float | None = None) -> list[str]:
        """Delete rotated segments that both kept snapshots cover and whose last
        event is older than `retention_seconds` (default: the constructor's).
        Younger covered segments stay: reports read history from them."""
        self._check_usable()
        keep = self.retention_seconds if retention_seconds is None else retention_seconds
        removed = self._compact_locked(keep, fsync_dir=True)
        return removed

    def _compact_locked(self, retention: float, *, fsync_dir: bool) -> list[str]:
        with self._io_lock:
            # Covered means covered by the older kept snapshot too: if the newest
            # turns out damaged, open() falls back to it and needs the log after it.
            snaps = _snapshot_files(self.data_dir)
            covered = snaps[KEEP_SNAPSHOTS - 1][0] if len(snaps) >= KEEP_SNAPSHOTS else 0
            segs = [s for s in _segments(self.data_dir) if not s.active]
            next_first = self._active_first if self._active_first is not None else self._seq + 1
            horizon = self._clock() - retention
            removed: list[str] = []
            for i, seg in enumerate(segs):
                after = segs[i + 1].first_seq if i + 1 < len(segs) else next_first
                if after is None or after - 1 > covered:
                    break  # holds events only the log has
                _first, _last, last_ts, _size = _edges(seg.path)
                try:
                    when = parse_ts(last_ts) if last_ts else os.path.getmtime(seg.path)
                except ValueError:
                    when = os.path.getmtime(seg.path)
                if when > horizon:
                    break  # later segments are younger still
                os.unlink(seg.path)
                removed.append(seg.path)
            if removed and fsync_dir:
                _fsync_dir(self.data_dir)
            return removed

    # ------------------------------------------------------------------ close

    async def close(self) -> None:
        """Write and fsync what is pending, stop the writer, release the lock."""
        if self._lock_fd is None:
            return
        try:
            if self._writer is not None and not self._writer.done():
                if self._failed is None:
                    await self.flush()
                self._closing = True
                self._kick()
                with contextlib.suppress(JournalError):
                    await self._writer
            elif self._fd is not None and self._failed is None:
                self._report(self._write_sync([], True))
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._writer = None
            self._close_files()

    def close_sync(self) -> None:
        """close() for code without an event loop."""
        if self._lock_fd is None:
            return
        self._no_writer("close_sync")
        try:
            if self._fd is not None and self._failed is None:
                self._report(self._write_sync([], True))
        finally:
            self._writer = None
            self._close_files()

    def _close_files(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._io_lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self._lock_fd is not None:
            _lock.release(self._lock_fd)
            self._lock_fd = None


# ------------------------------------------------------------- offline readers


def _read_segment(seg: _Segment, since_seq: int, f: BinaryIO) -> Iterator[Event]:
    """Events with seq > since_seq from an open segment, checksums verified."""
    offset = 0
    prev = 0
    for raw in f:
        n = len(raw)
        if not raw.endswith(b"\n"):
            if seg.active:
                return  # a write in progress (or a torn tail start-up will cut)
            raise _corrupt(seg.path, offset, "incomplete final line")
        line = raw[:-1]
        p = _prefix(line)
        if p is not None and p[0] <= since_seq:
            offset += n
            continue  # before the range asked for: skip without parsing
        try:
            ev = _open_line(line)
        except _BadLine as e:
            raise _corrupt(seg.path, offset, e.reason) from None
        if ev["seq"] <= prev:
            raise _corrupt(seg.path, offset, f"seq {ev['seq']} does not follow {prev}")
        prev = ev["seq"]
        yield ev
        offset += n


def iter_events(
    data_dir: str | os.PathLike[str], since_seq: int = 0, *, since_ts: str | None = None
) -> Iterator[Event]:
    """Every event with seq > since_seq, oldest first, across all segments.

    Read-only and lock-free, so it works beside a running daemon. `since_ts`
    (a journal timestamp) lets whole segments that end before it be skipped;
    callers still filter single events by ts. Raises JournalError on damage.
    """
    d = os.fspath(data_dir)
    last = since_seq
    while True:
        segs = _segments(d)
        seen = {s.path for s in segs}
        restart = False
        for i, seg in enumerate(segs):
            nxt = segs[i + 1] if i + 1 < len(segs) else None
            if nxt is not None and nxt.first_seq is not None and nxt.first_seq - 1 <= last:
                continue
            if since_ts is not None and not seg.active:
                _first, _last, last_ts, _size = _edges(seg.path)
                if last_ts is not None and last_ts < since_ts:
                    continue
            try:
                f = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
            except FileNotFoundError:
                restart = True  # rotated or compacted under us: list again
                break
            with f:
                if seg.active and _rotated_since(d, seen, last):
                    restart = True  # we may have opened the segment after the one we listed
                    break
                for ev in _read_segment(seg, last, f):
                    last = ev["seq"]
                    yield ev
        if not restart:
            return


def _rotated_since(data_dir: str, seen: set[str], last: int) -> bool:
    for seg in _segments(data_dir):
        if not seg.active and seg.path not in seen and (seg.first_seq or 0) > last:
            return True
    return False


def tail_events(data_dir: str | os.PathLike[str], n: int) -> list[Event]:
    """The last `n` events, oldest first; reads the files backwards, not whole."""
    d = os.fspath(data_dir)
    out: list[Event] = []
    if n <= 0:
        return out
    for seg in reversed(_segments(d)):
        try:
            f = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            continue
        with f:
            size = os.fstat(f.fileno()).st_size
            end = _last_newline_end(f, size)
            if end != size and not seg.active:
                raise _corrupt(seg.path, end, "incomplete final line")
            for off, line in _reverse_lines(f, end):
                try:
                    out.append(_open_line(line))
                except _BadLine as e:
                    raise _corrupt(seg.path, off, e.reason) from None
                if len(out) >= n:
                    break
        if len(out) >= n:
            break
    out.reverse()
    return out


def follow_events(
    data_dir: str | os.PathLike[str],
    since_seq: int = 0,
    *,
    poll_interval: float = 0.5,
    stop: Callable[[], bool] | None = None,
) -> Iterator[Event]:
    """Events with seq > since_seq as they are written, following rotation.

    Yields what exists, then polls for more every `poll_interval` seconds;
    returns when `stop()` is true after a poll found nothing new.
    """
    d = os.fspath(data_dir)
    active = os.path.join(d, ACTIVE)
    last = since_seq
    f: BinaryIO | None = None
    ino = -1
    partial = b""
    try:
        while True:
            if f is None:
                # open first, then catch up from every file: a rotation between the
                # two lands in the catch-up, a later one in the file we hold
                try:
                    f = open(active, "rb")  # noqa: SIM115 - closed in finally/on rotation
                    ino = os.fstat(f.fileno()).st_ino
                    partial = b""
                except FileNotFoundError:
                    f = None
                for ev in iter_events(d, last):
                    last = ev["seq"]
                    yield ev
            got = False
            if f is not None:
                chunk = f.read()
                if chunk:
                    got = True
                    data = partial + chunk
                    cut = data.rfind(b"\n") + 1
                    partial = data[cut:]
                    for line in data[:cut].split(b"\n")[:-1]:
                        p = _prefix(line)
                        if p is not None and p[0] <= last:
                            continue
                        try:
                            ev = _open_line(line)
                        except _BadLine as e:
                            raise JournalError(f"{active}: {e.reason}") from None
                        last = ev["seq"]
                        yield ev
            if got:
                continue
            try:
                moved = os.stat(active).st_ino != ino
            except FileNotFoundError:
                moved = True
            if moved and f is not None:
                # drain what the old file got before its rename, then switch
                rest = f.read()
                if rest:
                    f.seek(-len(rest), os.SEEK_CUR)
                    continue
                f.close()
                f = None
                continue
            if stop is not None and stop():
                return
            time.sleep(poll_interval)
    finally:
        if f is not None:
            f.close()


# ---------------------------------------------------------------- inspection


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    path: str
    first_seq: int | None
    last_seq: int | None
    last_ts: str | None
    bytes: int
    active: bool


@dataclass(frozen=True, slots=True)
class JournalInfo:
    """A cheap overview of a data_dir, read from file names and segment ends."""

    data_dir: str
    segments: list[SegmentInfo] = field(default_factory=list)
    snapshots: list[tuple[int, str]] = field(default_factory=list)  # (seq, path), newest first

    @property
    def first_seq(self) -> int | None:
        return next((s.first_seq for s in self.segments if s.first_seq is not None), None)

    @property
    def last_seq(self) -> int | None:
        return next((s.last_seq for s in reversed(self.segments) if s.last_seq is not None), None)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.segments)


def inspect(data_dir: str | os.PathLike[str]) -> JournalInfo:
    d = os.fspath(data_dir)
    segs = []
    for seg in _segments(d):
        first, last, last_ts, size = _edges(seg.path)
        segs.append(SegmentInfo(seg.path, first, last, last_ts, size, seg.active))
    return JournalInfo(d, segs, _snapshot_files(d))


def verify(
    data_dir: str | os.PathLike[str], *, progress: Callable[[int, int], None] | None = None
) -> list[str]:
    """Check every line and snapshot; one `file:offset: problem` string per problem.

    Read-only and lock-free. `progress(bytes_done, bytes_total)` is called as
    files are read. An empty list means the journal is sound.
    """
    d = os.fspath(data_dir)
    problems: list[str] = []
    segs = _segments(d)
    total = sum(_size(s.path) for s in segs)
    done = 0
    prev = 0
    for seg in segs:
        found: list[str] = []
        try:
            f = open(seg.path, "rb")  # noqa: SIM115 - closed by the with below
        except FileNotFoundError:
            continue
        with f:
            offset = 0
            next_report = 1 << 22
            first = True
            for raw in f:
                where = _where(seg.path, offset)
                if not raw.endswith(b"\n"):
                    fate = "start-up removes it" if seg.active else "repair quarantines it"
                    found.append(f"{where}: torn final line ({len(raw)} bytes, no newline); {fate}")
                else:
                    try:
                        ev = _open_line(raw[:-1])
                    except _BadLine as e:
                        found.append(f"{where}: {e.reason}")
                    else:
                        seq = ev["seq"]
                        if first and seg.first_seq is not None and seq != seg.first_seq:
                            found.append(
                                f"{where}: first seq is {seq} but the file name says "
                                f"{seg.first_seq}"
                            )
                        if seq <= prev:
                            found.append(f"{where}: seq {seq} does not follow {prev}")
                        prev = max(prev, seq)
                        first = False
                offset += len(raw)
                if progress is not None and offset >= next_report:
                    progress(done + offset, total)
                    next_report = offset + (1 << 22)
            done += offset
        if len(found) > MAX_PROBLEMS_PER_FILE:
            extra = len(found) - MAX_PROBLEMS_PER_FILE
            found = [*found[:MAX_PROBLEMS_PER_FILE], f"{seg.path}: ... and {extra} more problems"]
        problems += found
    if progress is not None:
        progress(total, total)
    for seq, path in _snapshot_files(d):
        try:
            _read_snapshot_file(path, seq)
        except _BadSnapshot as e:
            problems.append(f"{path}: {e}")
            continue
        if seq > prev:
            problems.append(f"{path}: snapshot at seq {seq} is ahead of the log (last seq {prev})")
    return problems


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:
        return 0


# ------------------------------------------------------------------- repair


class _Quarantine:
    """Damaged lines, as JSON records saying where each came from and why."""

    def __init__(self, data_dir: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        base = os.path.join(data_dir, f"quarantine-{stamp}")
        self.path, n = base + ".jsonl", 1
        while os.path.exists(self.path):
            n += 1
            self.path = f"{base}-{n}.jsonl"
        self.data_dir = data_dir
        self.lines: list[bytes] = []

    def add(self, file: str, offset: int, reason: str, line: bytes) -> None:
        rec = {
            "file": os.path.basename(file),
            "offset": offset,
            "reason": reason,
            "line": line.decode("utf-8", "backslashreplace"),
        }
        self.lines.append(json.dumps(rec, ensure_ascii=False).encode() + b"\n")

    def save(self) -> None:
        if self.lines:
            _write_file(self.path, b"".join(self.lines))


def _salvage(line: bytes, prev: int) -> tuple[int, Event] | None:
    """A whole record at the end of a damaged line (a torn write followed by a good one)."""
    pos = line.rfind(b'{"v":', 1)
    if pos < 0:
        return None
    try:
        ev = _open_line(line[pos:])
    except _BadLine:
        return None
    return (pos, ev) if ev["seq"] > prev else None


def repair(data_dir: str | os.PathLike[str]) -> str:
    """Move damaged or out-of-order lines to quarantine-<stamp>.jsonl, rewrite
    the segments without them (temp file + rename), set aside bad snapshots.

    Takes the data_dir lock (raises JournalLocked while a daemon runs). Returns
    a report of what it did, one line per change.
    """
    d = os.fspath(data_dir)
    if not os.path.isdir(d):
        raise JournalError(f"{d}: no such directory; is data_dir right?")
    lock = _lock.acquire(d)
    try:
        q = _Quarantine(d)
        report: list[str] = []
        prev = 0
        for seg in _segments(d):
            with open(seg.path, "rb") as f:
                data = f.read()
            parts = data.split(b"\n")
            keep: list[bytes] = []
            moved: list[str] = []
            offset = 0
            for i, line in enumerate(parts):
                last_part = i == len(parts) - 1
                if last_part and not line:
                    break
                reason, seq = None, 0
                if last_part:
                    reason = "torn final line (no newline)"
                else:
                    try:
                        seq = _open_line(line)["seq"]
                    except _BadLine as e:
                        reason = e.reason
                    else:
                        if seq <= prev:
                            reason = f"seq {seq} does not follow {prev}"
                if reason is None:
                    keep.append(line)
                    prev = seq
                else:
                    saved = _salvage(line, prev) if not last_part else None
                    if saved is not None:
                        pos, ev = saved
                        q.add(seg.path, offset, reason, line[:pos])
                        keep.append(line[pos:])
                        prev = ev["seq"]
                    else:
                        q.add(seg.path, offset, reason, line)
                    moved.append(f"offset {offset}: {reason}")
                offset += len(line) + 1
            name = os.path.basename(seg.path)
            if moved:
                q.save()  # the quarantine is durable before any line leaves its segment
                shown = "; ".join(moved[:3]) + (
                    f"; and {len(moved) - 3} more" if len(moved) > 3 else ""
                )
                report.append(f"{name}: moved {len(moved)} line(s) to quarantine ({shown})")
                if keep or seg.active:
                    _write_file(seg.path, b"".join(line + b"\n" for line in keep))
                else:
                    os.unlink(seg.path)
                    _fsync_dir(d)
                    report.append(f"{name}: removed, nothing good was left in it")
                    continue
            if not seg.active and keep:
                true_first = _open_line(keep[0])["seq"]
                target = os.path.join(d, f"alerts-{true_first:012d}.jsonl")
                if true_first != seg.first_seq and not os.path.exists(target):
                    os.rename(seg.path, target)
                    _fsync_dir(d)
                    report.append(f"{name}: renamed to {os.path.basename(target)} (its first seq)")
        for seq, path in _snapshot_files(d):
            try:
                _read_snapshot_file(path, seq)
            except _BadSnapshot as e:
                target = f"{q.path[: -len('.jsonl')]}-{os.path.basename(path)}"
                os.rename(path, target)
                _fsync_dir(d)
                report.append(f"{os.path.basename(path)}: {e}; moved to {target}")
        if q.lines:
            report.append(f"quarantined lines are in {q.path}")
        return "\n".join(report) if report else f"{d}: journal is sound; nothing to repair"
    finally:
        _lock.release(lock)


def compact_offline(
    data_dir: str | os.PathLike[str],
    fold: Callable[[dict[str, Any], Event], None],
    initial: Callable[[], dict[str, Any]],
    *,
    retention_seconds: float = DEFAULT_RETENTION,
    clock: Callable[[], float] = time.time,
) -> str:
    """Fold the log into a fresh snapshot without a daemon, prune old snapshots
    and segments that are covered and older than `retention_seconds`.

    `fold(state, event)` applies one event in place; `initial()` makes the empty
    state. Takes the lock (JournalLocked while a daemon runs). Returns a report.
    """
    j = Journal(data_dir, LogConfig(), clock=clock, retention_seconds=retention_seconds)
    r = j.open()
    try:
        # writing a snapshot compacts too: report whatever left, by either path
        before = {seg.path for seg in _segments(j.data_dir) if not seg.active}
        lines = [*r.warnings]
        if r.last_seq == 0:
            return "\n".join([*lines, f"{j.data_dir}: journal is empty; nothing to compact"])
        if r.state is not None and r.last_seq == r.snapshot_seq:
            lines.append(f"newest snapshot is already at the last seq {r.last_seq}")
        else:
            state = r.state if r.state is not None else initial()
            for ev in r.events:
                try:
                    fold(state, ev)
                except (KeyError, TypeError, ValueError, AttributeError) as e:
                    # on-disk state the fold does not understand: a data problem
                    raise JournalError(
                        f"{j.data_dir}: cannot fold event seq {ev['seq']} into the snapshot "
                        f"at seq {r.snapshot_seq}: {type(e).__name__}: {e}"
                    ) from None
            path = j.write_snapshot_sync(state, r.last_seq)
            lines.append(
                f"wrote {os.path.basename(path)}: {len(r.events)} event(s) after seq "
                f"{r.snapshot_seq} folded in"
            )
        j.compact()
        removed = sorted(before - {seg.path for seg in _segments(j.data_dir)})
        if removed:
            lines.append(
                f"removed {len(removed)} segment(s) covered by the snapshot and older than "
                f"the retention: " + ", ".join(os.path.basename(p) for p in removed)
            )
        return "\n".join(lines)
    finally:
        j.close_sync()
