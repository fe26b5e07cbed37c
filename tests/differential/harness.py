"""Shared parts of the differential suite: the real peer binaries, a tiny
exporter the tests change values on, and a timeline that drives both sides.

The suite feeds the same scenarios to vigil (a real `vigil run` process) and to
Debian's `prometheus` / `prometheus-alertmanager` (started here on loopback with
temporary data directories) and compares what comes out. Each binary is started
once per module; the scenarios of a module run side by side on one timeline, each
on its own series / label set, so the module's wall time is one timeline long.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.receivers import free_port

__all__ = [
    "Exporter",
    "Recorder",
    "binary",
    "dump_yaml",
    "free_port",
    "parse_ts",
    "run_binary",
    "run_timeline",
]


def binary(*names: str) -> str:
    """The first of `names` on PATH; skips the module (saying so) when none is installed."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        f"{' / '.join(names)} not installed (Debian package {names[0]}): differential suite skipped"
    )


@contextmanager
def run_binary(
    argv: Sequence[str], log: Path, ready_url: str, timeout: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv` (stdout and stderr to `log`), wait until `ready_url` answers 200,
    and kill it (by its own pid) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{argv[0]} exited {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{argv[0]} not ready in {timeout}s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.05)
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def parse_ts(text: str) -> float:
    """Epoch seconds of an RFC 3339 time as Go or vigil write it (nanoseconds, Z)."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, sep, rest = text.partition(".")
    if sep:  # Python parses at most microseconds
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        text = f"{head}.{(digits + '000000')[:6]}{zone}"
    return datetime.fromisoformat(text).timestamp()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = (
        256  # the default backlog of 5 drops a burst's connections (1 s SYN retries)
    )


# -- the exporter -----------------------------------------------------------------------

Series = Mapping[str, Mapping[tuple[tuple[str, str], ...], float]]  # metric -> labels -> value


class Exporter:
    """A /metrics endpoint in the Prometheus text format whose series the test sets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text = b""
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with exporter._lock:
                    body = exporter._text
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="exporter", daemon=True
        )

    def set(self, series: Series) -> None:
        lines = []
        for metric, values in sorted(series.items()):
            lines.append(f"# TYPE {metric} gauge")
            for labels, value in sorted(values.items()):
                inner = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{metric}{{{inner}}} {value}" if inner else f"{metric} {value}")
        with self._lock:
            self._text = ("\n".join(lines) + "\n").encode()

    def __enter__(self) -> Exporter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# -- the timeline -----------------------------------------------------------------------


def run_timeline(
    t0: float,
    steps: Sequence[tuple[float, Callable[[], None]]],
    until: float,
    tick: Callable[[], None] | None = None,
    tick_every: float = 0.1,
) -> None:
    """Run each step's action at wall time t0 + offset (in offset order), calling
    `tick` every `tick_every` seconds in between, until t0 + `until`."""
    pending = sorted(steps, key=lambda s: s[0])
    i = 0
    while True:
        now = time.time()
        while i < len(pending) and t0 + pending[i][0] <= now:
            pending[i][1]()
            i += 1
        if tick is not None:
            tick()
        if now >= t0 + until and i == len(pending):
            return
        nxt = t0 + pending[i][0] if i < len(pending) else t0 + until
        time.sleep(max(0.0, min(tick_every, nxt - time.time())))


# -- the webhook recorder ---------------------------------------------------------------


class Recorder:
    """Webhook receivers for both programs: every POST's arrival time, path and JSON body."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.posts: list[tuple[float, str, Any]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self._body()
                at = time.time()
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None
                with recorder.lock:
                    recorder.posts.append((at, self.path, data))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _body(self) -> bytes:
                if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                out = b""
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    out += self.rfile.read(size)
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return out

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="recorder", daemon=True
        )

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # vigil refuses YAML anchors; a shared list is written out twice


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_NoAliases, sort_keys=False)
