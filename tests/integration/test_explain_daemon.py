"""`vigil explain` against real things: the journal a real daemon wrote (offline
mode, as a subprocess) and a real HTTP server answering /api/v1/explain (online
mode, the CLI's client path)."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from engine.cli import main as cli
from engine.config.build import ConfigLoader
from engine.config.model import Config
from engine.explain.explain import explain, parse_labels
from engine.explain.result import UnknownRule
from engine.journal.store import fold_event, initial_state
from engine.rules.state import fingerprint
from tests.integration.daemon import VIGIL, Daemon

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit and app.workers < 5
    for: 300ms
    severity: critical
    labels: {team: data}
    annotations: {summary: "queue at {{ value }}"}
"""

CHANNELS = """
channels:
  - {name: archive, type: file, path: notifications.jsonl}
routes:
  - match: {severity: critical}
    channels: [archive]
    group_wait: 0s
    repeat_interval: 1h
"""


@pytest.mark.slow
def test_offline_explain_reads_the_daemons_journal(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, CHANNELS)
    d.set_values({"queue": 50, "workers": 2})
    d.start()
    try:
        d.wait_for(
            lambda evs: any(
                e["event"] == "notified" and e.get("channel") == "archive" for e in evs
            ),
            what="firing and notified",
        )
    finally:
        assert d.stop() == 0
    firing = next(e for e in d.events() if e["event"] == "firing")

    proc = subprocess.run(
        [VIGIL, "explain", "queue_deep", "-c", str(tmp_path / "vigil.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(round(firing["firing_since"])))
    assert f"FIRING since {since}Z" in out, out
    # the values were collected once from the same file the daemon read
    assert "app.queue > fixed.limit → True (app.queue = 50; fixed.limit = 10)" in out
    assert "route #0 severity=critical → archive" in out
    assert "notifications go to archive" in out
    assert "channel archive (file): told at" in out
    assert "repeats every 1h while unacknowledged" in out
    assert "Traceback" not in proc.stderr

    # JSON for scripts, with an explicit journal and without collecting
    proc = subprocess.run(
        [VIGIL, "explain", "queue_deep", "-c", str(tmp_path / "vigil.yaml"),
         "--journal", str(tmp_path / "data"), "--no-collect", "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    (inst,) = data["instances"]
    assert inst["state"] == "firing"
    assert inst["fingerprint"] == firing["alert"]
    assert inst["condition"]["outcome"] == "unknown"
    assert inst["delivery"]["status"] == "sending"
    assert [r["index"] for r in inst["delivery"]["routes"]] == [0]

    # an unknown rule: one line, exit 1, a suggestion
    proc = subprocess.run(
        [VIGIL, "explain", "queue_dep", "-c", str(tmp_path / "vigil.yaml")],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr == "vigil: unknown rule 'queue_dep'; did you mean queue_deep?\n"


# -- online mode: a tiny server that answers like the daemon's route -----------------------

TOKEN = "s3cret"


class FakeDaemon:
    """Serves GET /api/v1/explain/{rule} with engine.explain.explain.explain(...).to_dict(),
    the way the daemon's route does (viewer token, ?label=k=v, 404 for unknown rules)."""

    def __init__(self, config: Config, state: dict[str, Any], values: dict[str, Any]) -> None:
        self.config, self.state, self.values = config, state, values
        self.now = 1_795_000_000.0
        self.status = {
            "archive": {"queued": 0, "folded": 0, "breaker": "open", "sent": 3, "failed": 6,
                        "error": None}
        }  # fmt: skip
        self.requests: list[str] = []
        self.server: uvicorn.Server | None = None
        self.port = 0

    def explanation(self, rule: str, labels: dict[str, str]) -> Any:
        return explain(
            self.config,
            rule,
            labels=labels,
            values=self.values,
            state=self.state,
            now=self.now,
            channel_status=self.status,
        )

    async def handle(self, request: Request) -> Response:
        self.requests.append(str(request.url.path) + "?" + request.url.query)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"error": "missing or invalid bearer token"}, status_code=401)
        try:
            labels = parse_labels(request.query_params.getlist("label"))
        except ValueError as e:
            return JSONResponse({"error": f"label: {e}"}, status_code=422)
        try:
            e = self.explanation(request.path_params["rule"], labels)
        except UnknownRule as err:
            return JSONResponse({"error": str(err)}, status_code=404)
        return JSONResponse(e.to_dict())

    async def not_here(self, request: Request) -> Response:
        return PlainTextResponse("Not Found", status_code=404)

    def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/api/v1/explain/{rule}", self.handle),
                Route("/old/api/v1/explain/{rule}", self.not_here),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_config=None, log_level="warning", lifespan="off")
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        assert self.server is not None
        self.server.should_exit = True


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeDaemon]:
    Daemon(tmp_path, RULES, CHANNELS)  # only for its files; it is not started
    result = ConfigLoader().load(str(tmp_path / "vigil.yaml"))
    assert result.config is not None, result.problems
    state = initial_state()
    labels = {"team": "data"}
    fold_event(
        state,
        {"event": "firing", "ts": "2026-11-18T20:00:00.000Z", "alert": fingerprint("queue_deep", labels),
         "rule": "queue_deep", "labels": labels, "severity": "critical", "value": 50,
         "firing_since": 1_794_999_400.0},
    )  # fmt: skip
    server = FakeDaemon(
        result.config, state, {"app": {"queue": 50, "workers": 7}, "fixed": {"limit": 10}}
    )
    server.start()
    yield server
    server.stop()


def test_online_prints_what_the_daemon_explains(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_TOKEN", TOKEN)
    url = f"http://127.0.0.1:{fake.port}"
    assert cli.main(["explain", "queue_deep", "--url", url, "--labels", "team=data"]) == 0
    out = capsys.readouterr().out
    expected = fake.explanation("queue_deep", {"team": "data"})
    assert out == expected.to_text()
    assert fake.requests[-1] == "/api/v1/explain/queue_deep?label=team%3Ddata"
    # the live channel state the daemon knows shows up
    assert "channel archive's circuit breaker is open" in out
    assert "app.workers < 5 → False (app.workers = 7)" in out
    assert "FIRING since 2026-11-18T10:56:40Z (10m ago)" in out

    assert cli.main(["explain", "queue_deep", "--url", url, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected.to_dict()


def test_online_daemon_from_env_and_errors(
    fake: FakeDaemon,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"http://127.0.0.1:{fake.port}"
    monkeypatch.setenv("VIGIL_URL", url)
    monkeypatch.delenv("VIGIL_TOKEN", raising=False)
    monkeypatch.delenv("VIGIL_TOKEN_FILE", raising=False)
    # no token
    assert cli.main(["explain", "queue_deep", "--daemon"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vigil: no token given (401)") and err.count("\n") == 1

    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    assert cli.main(["explain", "queue_deep", "--daemon", "--token-file", str(token)]) == 0
    assert "rule queue_deep" in capsys.readouterr().out

    # an unknown rule: the daemon's one line, with its suggestion
    assert cli.main(["explain", "queue_dep", "--daemon", "--token-file", str(token)]) == 1
    assert capsys.readouterr().err == "vigil: unknown rule 'queue_dep'; did you mean queue_deep?\n"

    # a daemon without the route
    old = ["explain", "queue_deep", "--url", f"{url}/old", "--token-file", str(token)]
    assert cli.main(old) == 1
    assert "does not serve /api/v1/explain" in capsys.readouterr().err

    # no daemon at all
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    assert cli.main(["explain", "queue_deep", "--url", dead]) == 1
    assert capsys.readouterr().err == f"vigil: cannot reach vigil at {dead}: connection refused\n"


@pytest.mark.slow
def test_online_explain_against_the_real_daemon(tmp_path: Path) -> None:
    # the daemon's own /api/v1/explain route, through `vigil explain --url`
    d = Daemon(tmp_path, RULES, CHANNELS, tokens={"ops": ("viewer-secret", "viewer")})
    d.set_values({"queue": 50, "workers": 2})
    d.start()
    try:
        d.wait_for(lambda e: "firing" in d.alert_events("queue_deep"), what="firing")
        r = subprocess.run(
            [VIGIL, "explain", "queue_deep", "--url", d.url, "--format", "json"],
            capture_output=True,
            text=True,
            timeout=30,
            env={"VIGIL_TOKEN": "viewer-secret", "PATH": "/usr/bin:/bin"},
        )
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert "queue_deep" in json.dumps(doc)
        assert "archive" in json.dumps(doc)
        r = subprocess.run(
            [VIGIL, "explain", "queue_dep", "--url", d.url],
            capture_output=True,
            text=True,
            timeout=30,
            env={"VIGIL_TOKEN": "viewer-secret", "PATH": "/usr/bin:/bin"},
        )
        assert r.returncode == 1
        assert "unknown rule 'queue_dep'; did you mean queue_deep?" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        d.stop()
