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
from typing import Any

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
