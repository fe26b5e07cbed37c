"""The memory side of a full disk (engine/journal/hold.py): what is held, in which
order, how much at most, and when the disk is tried again."""

from __future__ import annotations

import errno

from engine.journal.hold import FIRST_RETRY, MAX_RETRY, Held, recoverable


def test_held_lines_keep_their_order_and_the_cap_drops_the_newest() -> None:
    h = Held(cap=10)
    h.hold([b"a\n", b"bb\n"])
    h.hold([b"ccc\n", b"dddd\n"])  # 3 + 4 + 5 would pass the cap of 10: dddd is dropped
    assert h.blobs == [b"a\n", b"bb\n", b"ccc\n"] and h.dropped == 1
    again = h.take()
    assert again == [b"a\n", b"bb\n", b"ccc\n"] and h.size == 0
    h.hold(again)  # a retry that failed holds the same lines, in the same order
    assert h.blobs == again


def test_retries_back_off_up_to_the_maximum_and_recovery_forgets() -> None:
    h = Held()
    delays = []
    for _ in range(10):
        h.failed("full", now=100.0)
        delays.append(h.delay(100.0))
    assert delays[0] == FIRST_RETRY and delays == sorted(delays) and delays[-1] == MAX_RETRY
    assert h.active and not h.due(100.0) and h.due(100.0 + MAX_RETRY)
    reason, dropped = h.recovered()
    assert (reason, dropped) == ("full", 0) and not h.active and h.failures == 0


def test_only_errors_that_room_or_a_remount_can_cure_are_held() -> None:
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        assert recoverable(OSError(code, "x"))
    assert not recoverable(OSError(errno.EIO, "x"))
