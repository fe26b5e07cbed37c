"""Child processes started in their own session (command collector, exec channel)."""

from __future__ import annotations

import asyncio
import os
import signal


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's whole process group (grandchildren included) and reap it.

    The child must have been started with `start_new_session=True`."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone
    except PermissionError:  # the child changed its group; kill at least the child
        proc.kill()
    await proc.wait()
