"""The history index's follower as a process of its own (engine/journal/history.py).

    python -m engine.journal.history_child DATA_DIR POLL_SECONDS

Follows the journal of DATA_DIR into its index; any byte on stdin is a kick (look
now), end of stdin means stop (SIGINT and SIGTERM are ignored: they are meant for
the daemon, which closes our stdin as it stops). After each batch and each pass it writes one line to
stdout: `ready|building <events indexed> <passes>`. Runs at a lower priority than
the daemon, whose event loop matters more than the index being a second fresher.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

from engine.journal.history import HistoryIndex


class ChildIndex(HistoryIndex):
    def report(self) -> None:
        state = "ready" if self.ready else "building"
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(f"{state} {self.indexed} {self._passes}\n")
            sys.stdout.flush()

    def listen(self) -> None:
        while True:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:  # the daemon closed our stdin, or is gone
                self._stop.set()
                self._wake.set()
                return
            self._wake.set()


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: python -m engine.journal.history_child DATA_DIR POLL_SECONDS\n")
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        # ^C in a terminal and systemd's KillMode=control-group signal every process:
        # the daemon stops us itself (our stdin closes), after its last journal write
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.nice(10)
    logging.basicConfig(level=logging.INFO, format="vigil history: %(levelname)s %(message)s")
    index = ChildIndex(argv[1], poll=float(argv[2]), pause=0.0)
    threading.Thread(target=index.listen, name="stdin", daemon=True).start()
    index.report()
    index.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
