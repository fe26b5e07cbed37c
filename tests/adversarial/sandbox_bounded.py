"""Run an attack in a child Python whose memory is capped, and measure it.

A regression in a growth limit must not take the machine down: the child runs
under RLIMIT_AS (its whole address space), so a bomb that gets through dies
there with MemoryError instead of swapping the host, and tracemalloc reports
the peak the attack itself allocated (imports are done before it starts).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.daemon import VIGIL, Daemon

# Address space for the child: the interpreter and vigil's imports take
# ~150 MB of it; the attacks' bombs each want gigabytes.
LIMIT = 1 << 30
PRELUDE = """
import json, resource, sys, tracemalloc
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
"""


def limit_memory(limit: int = LIMIT) -> None:
    """preexec_fn for a child process (a real `vigil` command)."""
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def run_bounded(body: str, *, limit: int = LIMIT, timeout: float = 120.0) -> Any:
    """Run `body` (Python source) in a memory-capped child; it prints one JSON
    document as its last line, which is returned."""
    script = PRELUDE.format(limit=limit) + textwrap.dedent(body)
    p = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


class CappedDaemon(Daemon):
    """The integration helper's `vigil run`, under `prlimit --as` (its whole address
    space), so a bomb that gets through kills the daemon instead of the machine."""

    limit = 3 << 30

    def start(self, *extra: str, env: Any = None) -> subprocess.Popen[str]:
        before = sum(1 for e in self.events() if e["event"] == "started")
        with open(self.logfile, "a") as log:
            self.proc = subprocess.Popen(
                ["prlimit", f"--as={self.limit}", "--", VIGIL, "run", "-c", "vigil.yaml", *extra],
                cwd=self.root,
                stdout=log,
                stderr=log,
                text=True,
            )
        self.wait_for(
            lambda evs: sum(1 for e in evs if e["event"] == "started") > before, what="started"
        )
        return self.proc

    def rss(self) -> int:
        """The daemon's resident memory, bytes."""
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


def health_time(url: str) -> float:
    """Seconds /health took to answer 200."""
    t0 = time.monotonic()
    with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
        assert r.status == 200
    return time.monotonic() - t0


def wait_for_api(url: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            health_time(url)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
