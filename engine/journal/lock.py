"""The data_dir lock: one process writes a journal at a time.

An exclusive flock on `<data_dir>/lock`, which also holds the PID of the vigil
that took it. That PID goes stale when vigil stops (the file is left: deleting
it would race with a new opener), so when the lock is busy the holder is read
from the kernel (/proc/locks) and named with its command; the file's PID is
only a fallback.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from engine.errors import JournalLocked

LOCK = "lock"


def acquire(data_dir: str) -> int:
    """Take the lock; its fd. Raises JournalLocked naming the holder, OSError else."""
    path = os.path.join(data_dir, LOCK)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raw = os.pread(fd, 32, 0)
        holder = kernel_holder(fd)
        os.close(fd)
        text = raw.decode("ascii", "replace").strip()
        written = int(text) if text.isdigit() else None
        if holder is not None:
            pid, argv = holder
            command = " ".join(argv)[:200] or "?"
            # `vigil run` is a console script: argv[0] or, run by its interpreter, argv[1]
            vigil = any(os.path.basename(a) == "vigil" for a in argv[:2])
            raise JournalLocked(path, pid, command=command, vigil=vigil) from None
        raise JournalLocked(path, written) from None
    except OSError:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release(fd: int) -> None:
    # Leave the file (with a stale PID): deleting it would race with a new opener.
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def kernel_holder(fd: int) -> tuple[int, list[str]] | None:
    """(pid, argv) of the process the kernel says holds a lock on `fd`'s file."""
    st = os.fstat(fd)
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        # "1: FLOCK  ADVISORY  WRITE 4242 00:2b:123456 0 EOF"; "1: -> FLOCK ..." waits
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->":
            continue
        try:
            major, minor, ino = parts[5].split(":")
            where = (int(major, 16), int(minor, 16), int(ino))
            pid = int(parts[4])
        except ValueError:
            continue
        if where == want and pid > 0:
            return pid, argv_of(pid)
    return None


def argv_of(pid: int) -> list[str]:
    """What `pid` runs: its command line, else its name (a kernel thread has none)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        if argv:
            return argv
        with open(f"/proc/{pid}/comm") as f:
            return [f.read().strip()]
    except OSError:
        return []
