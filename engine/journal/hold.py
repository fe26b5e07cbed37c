"""What the journal does when the disk refuses a write.

Doctrine: a write error is never silent, and it never stops alerting.

* A write refused for lack of room or permission (ENOSPC, EDQUOT, EFBIG, EROFS)
  is cut back to the last whole line (never a partial line on disk) and the
  lines are *held* in memory, in order, with the seq they were stamped with.
  The appends that waited for them return: vigil keeps evaluating and
  notifying from memory. The writer retries with backoff and, once the disk
  takes writes again, writes everything held in one go before anything newer.
* A failed fsync, or any other I/O error, is fatal: after a failed fsync the
  kernel may have dropped the dirty pages and a retried fsync would lie
  (PostgreSQL's lesson), so the daemon exits non-zero and systemd restarts it
  on a journal it can trust again.

Memory is bounded: past HOLD_CAP bytes, newer lines are dropped and counted
(replay accepts a seq gap; the catch-up says how many were lost).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from engine.errors import JournalError

HOLD_CAP = 64 * 1024 * 1024  # bytes of journal lines kept in memory while the disk refuses
FIRST_RETRY = 0.5  # seconds before the first retry; doubles up to MAX_RETRY
MAX_RETRY = 10.0

# errors that space or a remount can cure: worth holding and retrying
_RECOVERABLE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES})


class JournalFatal(JournalError):
    """The journal cannot promise anything it writes any more (fsync failed, an
    I/O error): the daemon stops, non-zero, and replays on restart."""


def recoverable(e: OSError) -> bool:
    """Whether a failed write() may succeed later without a restart."""
    return e.errno in _RECOVERABLE


def describe(e: OSError) -> str:
    return e.strerror or str(e)


@dataclass(slots=True)
class Held:
    """Lines the disk refused, in order, and when to try them again."""

    cap: int = HOLD_CAP
    blobs: list[bytes] = field(default_factory=list)
    size: int = 0
    count: int = 0  # lines in blobs (kept, not recounted: /ready asks often)
    dropped: int = 0  # lines refused past the cap, lost for good
    reason: str | None = None  # why the journal is degraded; None: it is not
    failures: int = 0
    next_try: float = 0.0

    @property
    def active(self) -> bool:
        return self.reason is not None

    def lines(self) -> int:
        return self.count

    def hold(self, blobs: list[bytes]) -> None:
        """Keep `blobs`, after what is held already (newest dropped past the cap)."""
        for b in blobs:
            n = b.count(b"\n")
            if self.size + len(b) > self.cap:
                self.dropped += n
                continue
            self.blobs.append(b)
            self.size += len(b)
            self.count += n

    def failed(self, reason: str, now: float) -> None:
        """A write was refused: schedule the next try, with backoff."""
        self.reason = reason
        self.failures += 1
        self.next_try = now + min(MAX_RETRY, FIRST_RETRY * 2 ** (self.failures - 1))

    def due(self, now: float) -> bool:
        return self.active and now >= self.next_try

    def delay(self, now: float) -> float:
        return max(0.0, self.next_try - now)

    def take(self) -> list[bytes]:
        """Everything held, for one more try; hold() it again if that fails."""
        blobs, self.blobs, self.size, self.count = self.blobs, [], 0, 0
        return blobs

    def recovered(self) -> tuple[str, int]:
        """Forget the episode; return what it was and how many lines it lost."""
        reason, dropped = self.reason or "", self.dropped
        self.reason, self.failures, self.dropped, self.next_try = None, 0, 0, 0.0
        return reason, dropped
