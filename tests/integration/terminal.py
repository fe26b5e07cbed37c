"""A program in a real terminal: a detached tmux session of a given size, keys
sent with send-keys, the screen read with capture-pane. Each Terminal runs its
own tmux server (-L, a socket of its own), so it neither sees nor disturbs any
other tmux on the machine, and closing it ends that server and the program."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence


class Terminal:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        width: int = 80,
        height: int = 24,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.socket = f"vigil-test-{os.getpid()}-{time.monotonic_ns()}"
        command = " ".join(shlex.quote(a) for a in argv)
        # after the program ends, its last screen and exit code stay readable
        command += "; echo EXITED $?; sleep 600"
        envs = [f"{k}={v}" for k, v in (env or {}).items()]
        self._tmux(
            "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height),
            *[x for e in envs for x in ("-e", e)],
            *(("-c", cwd) if cwd else ()),
            command,
        )  # fmt: skip
        self.socket_path = self._tmux("display-message", "-p", "#{socket_path}").strip()

    def _tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        """tmux key names (Down, Enter, Escape) or single characters, one call each:
        an Escape sent together with the next key would arrive as Alt+key."""
        for k in keys:
            self._tmux("send-keys", "-t", "t", k)
            time.sleep(0.15)

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)
        time.sleep(0.15)

    def wait_for(
        self, cond: Callable[[str], bool], timeout: float = 20.0, what: str = "", poll: float = 0.05
    ) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if cond(screen):
                return screen
            time.sleep(poll)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)
        # the server leaves its socket file behind
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def have_tmux() -> bool:
    return shutil.which("tmux") is not None
