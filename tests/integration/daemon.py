"""Run `vigil run` as a real process on a temporary configuration.

Tests write a `file` collector's JSON to change what the daemon sees, then read
the journal (alerts.jsonl) to see what it decided. The daemon's stderr goes to
`daemon.log` in the root (a pipe nobody reads would fill up and stall the daemon
once it has logged 64 KiB); `log()` reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

VIGIL = str(Path(sys.executable).parent / "vigil")


class Daemon:
    def __init__(
        self,
        root: Path,
        rules: str,
        channels: str = "",
        extra_config: str = "",
        *,
        tokens: Mapping[str, tuple[str, str]] | None = None,
    ) -> None:
        """`tokens`: name -> (token, role), configured as sha256 digests."""
        self.root = root
        (root / "rules").mkdir(parents=True, exist_ok=True)
        (root / "channels").mkdir(exist_ok=True)
        (root / "rules" / "r.yaml").write_text(rules)
        if channels:
            (root / "channels" / "c.yaml").write_text(channels)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics = root / "metrics.json"
        self.set_values({})
        self.tokens = dict(tokens or {})
        api = f"listen: '127.0.0.1:{self.port}'"
        if self.tokens:
            entries = ", ".join(
                f"{{name: {name}, sha256: {hashlib.sha256(tok.encode()).hexdigest()}, role: {role}}}"
                for name, (tok, role) in self.tokens.items()
            )
            api += f", tokens: [{entries}]"
        (root / "vigil.yaml").write_text(
            "rules: [rules]\nchannels: [channels]\ndata_dir: data\n"
            "collectors:\n"
            "  - {name: system, type: system, enabled: false}\n"
            f"  - {{name: app, type: file, path: {self.metrics}, format: json, interval: 100ms}}\n"
            "  - {name: fixed, type: static, values: {limit: 10}}\n"
            f"api: {{{api}}}\n" + extra_config
        )
        self.proc: subprocess.Popen[str] | None = None
        self.journal = root / "data" / "alerts.jsonl"
        self.logfile = root / "daemon.log"

    def set_values(self, values: dict[str, Any]) -> None:
        tmp = self.metrics.with_suffix(".tmp")
        tmp.write_text(json.dumps(values))
        os.replace(tmp, self.metrics)  # never a half-written file for the collector

    def start(
        self, *extra: str, env: Mapping[str, str] | None = None, wait: bool = True
    ) -> subprocess.Popen[str]:
        """Start the daemon (with `env` added to this process's environment) and
        return once this run's `started` event is in the journal (at once without
        `wait`: a large journal is slow to read here)."""
        before = sum(1 for e in self.events() if e["event"] == "started") if wait else 0
        with open(self.logfile, "a") as log:
            self.proc = subprocess.Popen(
                [VIGIL, "run", "-c", str(self.root / "vigil.yaml"), *extra],
                cwd=self.root,
                stdout=log,
                stderr=log,
                text=True,
                env={**os.environ, **(env or {})},
            )
        if not wait:
            return self.proc
        self.wait_for(
            lambda evs: sum(1 for e in evs if e["event"] == "started") > before, what="started"
        )
        return self.proc

    def log(self) -> str:
        """What the daemon wrote to stderr and stdout, over every start."""
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def events(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        data = self.root / "data"
        if not data.exists():
            return out
        for seg in sorted(data.glob("alerts*.jsonl"), key=_segment_order):
            for line in seg.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):  # a line being written now
                    out.append(json.loads(line))
        return out

    def alert_events(self, rule: str) -> list[str]:
        return [e["event"] for e in self.events() if e.get("rule") == rule and "alert" in e]

    def wait_for(
        self, cond: Callable[[list[dict[str, Any]]], bool], timeout: float = 15.0, what: str = ""
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            evs = self.events()
            if cond(evs):
                # read again: a condition that reads the journal itself (ignoring
                # `evs`) may have seen events that `evs` does not hold yet
                return self.events()
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"daemon exited {self.proc.returncode} waiting for {what}:\n{self.log()[-3000:]}"
                )
            time.sleep(0.05)
        raise AssertionError(
            f"timed out waiting for {what}; events: {[e['event'] for e in self.events()][-30:]}"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
        return code

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _segment_order(p: Path) -> tuple[int, str]:
    # rotated segments (alerts-<first seq>.jsonl) before the active alerts.jsonl
    return (1, "") if p.name == "alerts.jsonl" else (0, p.name)


def by_rule(events: list[dict[str, Any]], rule: str) -> Iterator[dict[str, Any]]:
    return (e for e in events if e.get("rule") == rule and "alert" in e)
