"""A real systemd-journald for tests, in a private mount namespace.

Debian's /lib/systemd/systemd-journald runs as a plain process under `unshare
-m`: a tmpfs over /run (and /var/log/journal) inside the namespace, so nothing of
the host's is touched, with the test's folders bound where journald keeps its
sockets and its runtime journal. From the host the test then sends entries to
`socket` with journald's native protocol and reads `journal` with journalctl
--directory, exactly as on a machine where journald runs. Needs root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

JOURNALD = "/lib/systemd/systemd-journald"

_SCRIPT = f"""
set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/journal /run/log/journal
mount --bind "$1" /run/systemd/journal
mount --bind "$2" /run/log/journal
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
exec {JOURNALD}
"""


def skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("a private journald needs root (mount namespace)")
    for tool in ("unshare", "journalctl"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not os.access(JOURNALD, os.X_OK):
        pytest.skip(f"{JOURNALD} is not installed (Debian's systemd package)")


class Journald:
    def __init__(self, root: Path) -> None:
        self.sockets = root / "journald-run"
        self.journal = root / "journald-journal"
        self.sockets.mkdir()
        self.journal.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.sockets / "socket"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", _SCRIPT, "journald",
             str(self.sockets), str(self.journal)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not (self.socket.exists() and self._readable()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.stop()
                pytest.skip(f"systemd-journald did not start here: {err.strip()[-200:]}")
            time.sleep(0.05)

    def _readable(self) -> bool:
        """journald has written its first entry where journalctl reads (its files
        exist a moment before they hold an entry)."""
        out = subprocess.run(
            ["journalctl", f"--directory={self.journal}", "-o", "cat", "-n", "1", "--no-pager"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip
        return bool(out.stdout.strip())

    def send(self, message: str | bytes, ident: str = "sshd", pid: int = 4242) -> None:
        """One entry through journald's native protocol (what sd_journal_send does)."""
        body = message.encode() if isinstance(message, str) else message
        fields = [f"SYSLOG_IDENTIFIER={ident}".encode(), f"SYSLOG_PID={pid}".encode()]
        if b"\n" in body:  # binary-safe form: name, newline, 64-bit LE length, data
            fields.append(b"MESSAGE\n" + len(body).to_bytes(8, "little") + body)
        else:
            fields.append(b"MESSAGE=" + body)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"\n".join(fields) + b"\n", str(self.socket))

    def entries(self, ident: str = "sshd") -> list[str]:
        out = subprocess.run(
            ["journalctl", f"--directory={self.journal}", "-o", "cat", "--no-pager",
             f"SYSLOG_IDENTIFIER={ident}"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        return out.stdout.splitlines()

    def stop(self) -> None:
        # a daemon killed with -9 leaves its journalctl behind (under systemd the
        # unit's cgroup is killed whole; here the test cleans up)
        subprocess.run(
            ["pkill", "-f", "--", f"--directory={self.journal}"], check=False, timeout=10
        )
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
