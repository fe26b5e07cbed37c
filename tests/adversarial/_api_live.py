"""Helpers shared by the adversarial tests of the API and of deploys: a real
daemon (tests/integration/daemon.py) and the journal as the witness."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.integration.daemon import Daemon

RULES = """\
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > {limit}
    for: 0s
    severity: warning
"""


VIEWER = "tok-viewer-adv-51c2"
ADMIN = "tok-admin-adv-9e07"
TOKENS = {"dash": (VIEWER, "viewer"), "deployer": (ADMIN, "admin")}


def make_daemon(root: Path, rule_text: str, extra_config: str = "", channels: str = "") -> Daemon:
    return Daemon(root, rule_text, channels, extra_config=extra_config, tokens=TOKENS)


def rules(limit: int) -> str:
    return RULES.format(limit=limit)


def wait_ready(d: Daemon, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=d.url, timeout=2, trust_env=False) as c:
        while time.monotonic() < deadline:
            try:
                if c.get("/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    raise AssertionError(f"the daemon did not become ready:\n{d.log()[-2000:]}")


def last_seq(d: Daemon) -> int:
    evs = d.events()
    return int(evs[-1]["seq"]) if evs else 0


def wait_loaded(d: Daemon, seq: int, limit: int, timeout: float = 10.0) -> dict[str, Any]:
    """The daemon evaluates `app.queue > limit` after a `config_loaded` by a file
    change journaled after `seq`."""
    d.wait_for(
        lambda evs: any(
            e["seq"] > seq and e["event"] == "config_loaded" and e.get("by") == "file change"
            for e in evs
        ),
        timeout=timeout,
        what=f"config_loaded by file change after seq {seq}",
    )
    deadline = time.monotonic() + timeout
    expr = ""
    while time.monotonic() < deadline:
        expr = rule_expr(d, "queue_deep")
        if expr == f"app.queue > {limit}":
            return {"expr": expr}
        time.sleep(0.05)
    raise AssertionError(f"expected limit {limit}, the daemon evaluates {expr!r}")


def rule_expr(d: Daemon, rule_id: str) -> str:
    auth = {"Authorization": f"Bearer {VIEWER}"}
    with httpx.Client(base_url=d.url, timeout=5, trust_env=False, headers=auth) as c:
        found = c.get("/api/v1/rules").json()["rules"]
    return next(str(r["expr"]) for r in found if r["id"] == rule_id)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


class HealthProbe:
    """Asks GET /health on a new connection every `every` seconds from a thread,
    while an attack runs; `check()` asserts each answered 200 within `bound`."""

    def __init__(self, d: Daemon, path: str = "/health", every: float = 0.2) -> None:
        self.url = d.url + path
        self.every = every
        self.results: list[tuple[int | None, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.monotonic()
            try:
                # a fresh connection each time: a new client must get in, too
                status: int | None = httpx.get(self.url, timeout=5.0, trust_env=False).status_code
            except httpx.HTTPError:
                status = None
            self.results.append((status, time.monotonic() - t0))
            self._stop.wait(self.every)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def check(self, bound: float = 1.0) -> None:
        assert self.results, "no probe ran"
        bad = [(s, round(t, 3)) for s, t in self.results if s != 200 or t > bound]
        assert not bad, f"{len(bad)} of {len(self.results)} probes failed or were late: {bad[:10]}"


@contextlib.contextmanager
def health_during(d: Daemon) -> Iterator[None]:
    """What runs inside: /health answers 200 within 1 s throughout (HealthProbe)."""
    with HealthProbe(d) as health:
        yield
        time.sleep(0.3)  # at least one probe, also for the quick ones
    health.check()


def stop_clean(d: Daemon) -> None:
    """Stop `d`: exit 0, and no traceback in its log."""
    code = d.stop()
    log = d.log()
    assert "Traceback" not in log, log[-3000:]
    assert code == 0
