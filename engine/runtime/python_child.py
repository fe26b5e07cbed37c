"""vigil's own Python child processes (the sender, the logtail readers).

Each is `python -m <module> FD [args]`, speaking over one end of a socket pair
whose other end the daemon holds: the child sees that socket close when the
daemon is gone, however it went, and exits. The child runs in its own process
group (a terminal's ^C is for the daemon, which then stops its children in
order) and inherits the daemon's stderr, environment and interpreter, minus
what only the daemon may use to speak to systemd (NotifyAccess=main).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

_SYSTEMD_ONLY = {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}
# the folder holding the engine package: a checkout's run.py started from
# elsewhere has it on sys.path only by its own path, which `-m` does not know
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spawn(module: str, sock: socket.socket, *args: str) -> subprocess.Popen[bytes]:
    """Start `module` with `sock`'s descriptor as its first argument (then `args`)."""
    env = {k: v for k, v in os.environ.items() if k not in _SYSTEMD_ONLY}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-m", module, str(sock.fileno()), *args],
        pass_fds=(sock.fileno(),),
        stdin=subprocess.DEVNULL,
        process_group=0,
        env=env,
    )
