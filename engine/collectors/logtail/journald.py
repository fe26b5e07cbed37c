"""journald as a logtail source: `journalctl -o json --follow` as a subprocess.

    journald:
      units: [ssh.service]          # journalctl --unit (any of them); journald: {} reads all
      matches: [SYSLOG_IDENTIFIER=sshd]   # FIELD=value matches, as journalctl takes them
      directory: /var/log/journal   # read these journal files instead of the system's

Each entry becomes one line the way `journalctl -o short` shows it without date
and host, `IDENT[PID]: MESSAGE`, so the formats written for syslog files (sshd,
generic patterns) read it unchanged. The lines go to the same line sinks as a
file's (detection, recent lines), under the name `journald`.

Where it resumes: the cursor of the last entry read is kept in the journal as the
`journald` record of the collector's state (with the counters), and the next
start passes `--after-cursor`; without a saved cursor (or with `start: end`)
reading begins at the newest entry, with `start: beginning` at the oldest.

journalctl is started on the first pass and read without blocking (its output is
a pipe with O_NONBLOCK), within the pass's byte budget. When it exits (journald
not running, a bad match) its last error line is the source's error and it is
started again, from the last cursor, after `RESTART_AFTER` seconds. A MESSAGE
that is not valid UTF-8 (journalctl prints it as a list of byte values) is
decoded with replacement characters; a line longer than `max_line_bytes` is cut
and counted in `truncated`. An entry whose JSON is longer than what is held
(16 × max_line_bytes + 64 KiB: any local user can send a multi-megabyte message)
keeps its head, the rest is skipped: it is still one line, cut and counted.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from engine.collectors.logtail.follow import Counters, Limits
from engine.collectors.logtail.sink import LineBatch, LineSink, hand_over

log = logging.getLogger("vigil")

NAME = "journald"  # the lines' path, the files element's label and the state record's key
RESTART_AFTER = 5.0  # seconds between starts of a journalctl that exited
TAIL = 16384  # bytes kept of the end of an entry too long to hold
FIELDS = "MESSAGE,SYSLOG_IDENTIFIER,SYSLOG_PID,_PID,_COMM"
_MATCH = re.compile(r"[A-Z0-9_]+=.*", re.S)
_VALUE_END = re.compile(rb'(\\*)"(?=,")|\](?=,")')
_UNIT = re.compile(r"[A-Za-z0-9:_.\\@*-]+")


@dataclass(frozen=True, slots=True)
class JournaldSettings:
    units: tuple[str, ...] = ()
    matches: tuple[str, ...] = ()
    directory: str | None = None


def parse(raw: object) -> JournaldSettings:
    """The `journald:` mapping; ValueError naming the key for anything else."""
    if not isinstance(raw, Mapping):
        raise ValueError("journald: expected a mapping (units, matches, directory; {} for all)")
    extra = set(raw) - {"units", "matches", "directory"}
    if extra:
        raise ValueError(f"journald.{sorted(extra)[0]}: unknown key (units, matches, directory)")
    units = _strings(raw, "units")
    for i, u in enumerate(units):
        if not _UNIT.fullmatch(u):
            raise ValueError(f"journald.units[{i}]: expected a unit name such as ssh.service")
    matches = _strings(raw, "matches")
    for i, m in enumerate(matches):
        if not _MATCH.fullmatch(m):
            raise ValueError(f"journald.matches[{i}]: expected FIELD=value, FIELD in A-Z0-9_")
    directory = raw.get("directory")
    if directory is not None and (not isinstance(directory, str) or not directory.startswith("/")):
        raise ValueError("journald.directory: expected an absolute path")
    return JournaldSettings(units, matches, directory)


def _strings(raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    v = raw.get(key, [])
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"journald.{key}: expected a list of strings")
    return tuple(v)


class JournalSource:
    """Lines from journald for the line sinks; one pass at a time (the collector's thread)."""

    def __init__(
        self,
        settings: JournaldSettings,
        limits: Limits,
        start: str,
        sinks: list[LineSink],
        *,
        journalctl: str = "journalctl",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.start = start
        self.sinks = sinks  # shared with the file tailer
        self.journalctl = journalctl
        self.clock = clock
        self.counters = Counters()
        self.cursor: str | None = None
        self.error: str | None = None
        self.sink_errors = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._partial = b""
        self._head: bytes | None = None  # the start of an entry too long to hold
        self._tail = b""  # and its last TAIL bytes (the fields after the long one)
        self._offset = 0  # bytes of lines handed out since start: evidence offsets
        self._next_start = float("-inf")
        self._started_at = 0.0
        self._spawned = False  # journalctl was started once already
        self._said = b""  # journalctl's stderr, its last line names why it exited
        self._saved: dict[str, Any] | None = None
        self._saved_at = float("-inf")

    # -- state across restarts -----------------------------------------------------------

    def restore(self, rec: Mapping[str, Any]) -> None:
        cursor = rec.get("cursor")
        self.cursor = cursor if isinstance(cursor, str) and cursor else None

        def n(key: str) -> int:
            v = rec.get(key)
            return v if type(v) is int and v >= 0 else 0

        self.counters = Counters(n("lines"), n("bytes"), n("truncated"), 0)
        self._saved = dict(rec)

    def changes(self, every: float = 0.0) -> dict[str, dict[str, Any] | None]:
        rec: dict[str, Any] = {**asdict(self.counters), "cursor": self.cursor}
        now = self.clock()
        if rec == self._saved or now - self._saved_at < every:
            return {}
        self._saved, self._saved_at = rec, now
        return {NAME: rec}

    # -- one pass ------------------------------------------------------------------------

    def poll(self, budget: int, deadline: float) -> None:
        """Hand what journalctl printed since the last pass to the sinks: at most
        `budget` bytes, no read started after `deadline` (monotonic)."""
        proc = self._proc
        if proc is None:
            if self.clock() < self._next_start:
                return
            proc = self._proc = self._spawn()
            if proc is None:
                return
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        eof = False
        while budget > 0 and time.monotonic() <= deadline:
            try:
                chunk = os.read(fd, min(budget, self.limits.batch_bytes))
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            budget -= len(chunk)
            self._lines(chunk)
        self._drain_stderr(proc)
        if eof or proc.poll() is not None:
            self._ended(proc)
        elif self.clock() - self._started_at >= RESTART_AFTER:
            self.error = None  # up for a while: not a start that fails at once

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        exe = shutil.which(self.journalctl)
        if exe is None:
            self.error = f"{self.journalctl} not found"
            self._next_start = self.clock() + RESTART_AFTER
            return None
        where = [f"--directory={self.settings.directory}"] if self.settings.directory else []
        # --all: without it journalctl prints a field of 4 KiB or more as null, and a
        # long line (an attack padded out) would reach the sinks empty
        argv = [
            exe,
            "--output=json",
            f"--output-fields={FIELDS}",
            "--follow",
            "--no-pager",
            "--all",
        ]
        # `start` applies to the first start only (`end` and `beginning` ignore a
        # saved cursor, as they ignore a file's saved offset); a journalctl started
        # again after it exited goes on from the last entry read
        again, self._spawned = self._spawned, True
        cursor = self.cursor if again or self.start == "saved" else None
        if cursor is None and (again or self.start != "beginning"):
            cursor = _newest(exe, where)
        # `--lines=0` is not used: systemd 252's journalctl -f -n 0 with a match can
        # miss the first entries or stop with "Data from the specified boot (+0) is
        # not available"; seeking after the newest entry's cursor does neither
        # --follow alone shows only the last 10 entries, after a cursor too: all of them
        argv.append("--lines=all")
        if cursor:
            argv.append(f"--after-cursor={cursor}")
        argv += where
        argv += [f"--unit={u}" for u in self.settings.units]
        argv += list(self.settings.matches)
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
                start_new_session=True,  # a terminal's ^C to the daemon is not journalctl's
            )
        except OSError as e:
            self.error = f"journalctl: {e.strerror or e}"
            self._next_start = self.clock() + RESTART_AFTER
            return None
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            flags = fcntl.fcntl(stream.fileno(), fcntl.F_GETFL)
            fcntl.fcntl(stream.fileno(), fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._partial = b""
        self._head, self._tail = None, b""
        self._said = b""
        self._started_at = self.clock()
        return proc

    def _drain_stderr(self, proc: subprocess.Popen[bytes]) -> None:
        # a full stderr pipe would stop journalctl; only its last lines matter
        assert proc.stderr is not None
        with contextlib.suppress(OSError):
            while said := os.read(proc.stderr.fileno(), 65536):
                self._said = (self._said + said)[-4096:]

    def _ended(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
        self._drain_stderr(proc)
        last = self._said.decode("utf-8", "replace").strip().splitlines()
        self.error = f"journalctl exited ({proc.returncode})" + (f": {last[-1]}" if last else "")
        if self.cursor is not None and last and "cursor" in last[-1].lower():
            # a cursor journalctl cannot seek to (another machine's journal, a damaged
            # record) would fail every start: read on from the newest entry instead
            log.warning(
                "logtail: journald cursor refused (%s); reading from the newest entry", last[-1]
            )
            self.cursor = None
        self.close()
        self._next_start = self.clock() + RESTART_AFTER

    def _lines(self, chunk: bytes) -> None:
        entries: list[tuple[Mapping[str, Any], bool]] = []  # (entry, cut short)
        if self._head is not None:  # the rest of an entry too long to hold
            nl = chunk.find(b"\n")
            self._tail = (self._tail + (chunk if nl < 0 else chunk[:nl]))[-TAIL:]
            if nl < 0:
                return
            entries.append((_salvage(self._head, self._tail), True))
            self._head, self._tail = None, b""
            chunk = chunk[nl + 1 :]
        data = self._partial + chunk
        cut = data.rfind(b"\n")
        complete, rest = (data[:cut], data[cut + 1 :]) if cut >= 0 else (b"", data)
        # an entry longer than a batch waits for its end; one longer than what may be
        # held (a hostile 10 MB message) keeps its head and skips to its end, so it
        # is counted once, cut, and never lost nor mistaken for the next entries
        hold = 16 * self.limits.max_line_bytes + 65536
        if len(rest) > hold:
            self._head, self._tail, self._partial = rest[:hold], rest[-TAIL:], b""
        else:
            self._partial = rest
        for raw in complete.split(b"\n") if complete else ():
            try:
                entry = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue  # not an entry (journalctl prints only JSON objects here)
            if isinstance(entry, dict):
                entries.append((entry, False))
        if entries:
            self._hand_over(entries)

    def _hand_over(self, entries: list[tuple[Mapping[str, Any], bool]]) -> None:
        out: list[str] = []
        cursor = self.cursor
        offset = self._offset  # bytes of the lines handed out, as if the journal were a file
        for entry, cut_short in entries:
            c = entry.get("__CURSOR")
            if isinstance(c, str):
                cursor = c
            line = _text(entry)
            whole = line.encode("utf-8", "replace")
            size = len(whole)
            if size > self.limits.max_line_bytes:
                line = whole[: self.limits.max_line_bytes].decode("utf-8", "ignore")
                size = len(line.encode())  # a character cut in two is dropped
            if cut_short or size < len(whole):
                self.counters.truncated += 1
            out.append(line)
            self.counters.lines += 1
            self.counters.bytes += len(whole) + 1
            offset += size + 1
        self.cursor = cursor
        batch = LineBatch(NAME, self._offset, offset, out)
        self._offset = offset
        self.sink_errors += hand_over(self.sinks, batch, self.sink_errors)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=1)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _newest(exe: str, where: list[str]) -> str | None:
    """The cursor of the journal's newest entry (any entry: a cursor is a position);
    None for an empty journal or when it cannot be read (the follow says why)."""
    try:
        out = subprocess.run(
            [exe, "--output=json", "--output-fields=MESSAGE", "--lines=1", "--no-pager", *where],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False,
        )  # fmt: skip
        entry = orjson.loads(out.stdout.splitlines()[-1])
    except (OSError, subprocess.SubprocessError, IndexError, orjson.JSONDecodeError):
        return None
    cursor = entry.get("__CURSOR") if isinstance(entry, dict) else None
    return cursor if isinstance(cursor, str) else None


def _salvage(head: bytes, tail: bytes) -> dict[str, Any]:
    """The fields of an entry known by its first and last bytes only: those before
    the long field and its start from the head (the JSON closed where it was cut,
    inside the field's string or its list of byte values), those after it from the
    tail (journalctl may print MESSAGE before SYSLOG_IDENTIFIER). Fields not
    recovered are missing; the entry is still counted."""
    entry = _closed(head)
    # the long value ends at its first closing quote (one not escaped) or bracket
    for m in _VALUE_END.finditer(tail):
        if m.group(1) and len(m.group(1)) % 2:
            continue  # an escaped quote, inside the value
        with contextlib.suppress(orjson.JSONDecodeError):
            after = orjson.loads(b"{" + tail[m.end() + 1 :])  # past the comma
            if isinstance(after, dict):
                entry.update(after)
            break
    return entry


def _closed(head: bytes) -> dict[str, Any]:
    """The JSON object `head` begins, closed where it was cut."""
    for trim in range(12):  # back off a cut escape, UTF-8 sequence or byte value
        part = head[: len(head) - trim]
        for close in (b'"}', b"]}"):
            if close == b"]}" and head[len(part) : len(part) + 1] != b",":
                continue  # the last byte value may be cut short: end at a comma
            with contextlib.suppress(orjson.JSONDecodeError):
                got = orjson.loads(part + close)
                return got if isinstance(got, dict) else {}
    return {}


def _field(entry: Mapping[str, Any], key: str) -> str | None:
    v = entry.get(key)
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(type(b) is int and 0 <= b < 256 for b in v):
        return bytes(v).decode("utf-8", "replace")  # journalctl's form for binary data
    return None


def _text(entry: Mapping[str, Any]) -> str:
    """`IDENT[PID]: MESSAGE`, as `journalctl -o short` shows an entry after the host."""
    message = _field(entry, "MESSAGE") or ""
    ident = _field(entry, "SYSLOG_IDENTIFIER") or _field(entry, "_COMM")
    pid = _field(entry, "SYSLOG_PID") or _field(entry, "_PID")
    if ident is None:
        return message
    return f"{ident}[{pid}]: {message}" if pid else f"{ident}: {message}"
