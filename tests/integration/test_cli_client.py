"""`vigil alerts|ack|unack|silence|silences|expire|status|reload` against a real
server (uvicorn in a thread, in-memory facade), through engine.cli.main.main."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

import engine.cli.main
from engine.api.server import bound_address, create_app, serve
from engine.daemon.metrics import Metrics
from tests.unit.api.test_api_fakes import TOKENS, FakeFacade, api_config


class ServerThread:
    """The API on its own event loop in a thread, so the synchronous CLI can call it."""

    def __init__(self, facade: FakeFacade) -> None:
        self.facade = facade
        self.port = 0
        self.server: uvicorn.Server | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.ready = threading.Event()

    async def _main(self) -> None:
        app = create_app(self.facade, api_config(), registry=Metrics().registry)
        self.server, task = await serve(app, "127.0.0.1", 0)
        self.port = bound_address(self.server)[1]
        self.ready.set()
        await task

    def __enter__(self) -> ServerThread:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def facade() -> FakeFacade:
    f = FakeFacade()
    f.add_alert("host_cpu_high", {"host": "web-1"}, severity="critical", value=97.25)
    f.add_alert("disk_full", {"host": "db-1", "mount": "/"})
    return f


@pytest.fixture
def daemon(facade: FakeFacade) -> Iterator[ServerThread]:
    with ServerThread(facade) as s:
        yield s


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("VIGIL_URL", "VIGIL_TOKEN", "VIGIL_TOKEN_FILE", "VIGIL_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./vigil.yaml to find by default
    monkeypatch.setenv("COLUMNS", "200")  # rich tables on one line each
    if "client" not in engine.cli.main.COMMANDS:  # until the lead registers the module
        monkeypatch.setattr(engine.cli.main, "COMMANDS", (*engine.cli.main.COMMANDS, "client"))


def vigil(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = engine.cli.main.main(list(argv))
    except SystemExit as e:  # argparse usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def token_file(tmp_path: Path, role: str) -> str:
    p = tmp_path / f"{role}.token"
    p.write_text(TOKENS[role] + "\n")
    return str(p)


def fp_of(facade: FakeFacade, host: str) -> str:
    return next(fp for fp, a in facade.alerts.items() if a["labels"].get("host") == host)


def test_alerts_table_json_and_filters(
    daemon: ServerThread, facade: FakeFacade, capsys: pytest.CaptureFixture[str]
) -> None:
    web, db = fp_of(facade, "web-1"), fp_of(facade, "db-1")
    args = ("--url", daemon.url, "--token-file", token_file(Path.cwd(), "viewer"))
    code, out, err = vigil(capsys, "alerts", *args)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["fingerprint", "severity", "state"]
    assert lines[1].split()[:4] == [web, "critical", "firing", "host_cpu_high"]  # worst first
    assert "97.25" in lines[1] and "host=web-1" in lines[1]
    assert db in lines[2] and "2 active alert(s)" in out

    code, out, _ = vigil(capsys, "alerts", *args, "--format", "json", "--label", "host=db-1")
    assert code == 0 and [a["fingerprint"] for a in json.loads(out)] == [db]
    code, out, _ = vigil(capsys, "alerts", *args, "--severity", "emergency")
    assert (code, out.strip()) == (0, "no active alerts")


def test_ack_by_prefix_then_unack(
    daemon: ServerThread, facade: FakeFacade, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fp = fp_of(facade, "web-1")
    args = ("--url", daemon.url, "--token-file", token_file(tmp_path, "operator"))
    code, out, err = vigil(capsys, "ack", fp[:6], "--note", "rebooting", "--for", "2h", *args)
    assert code == 0, err
    assert out.startswith(f"acknowledged {fp} (host_cpu_high host=web-1) until ")
    assert facade.alerts[fp]["ack"]["note"] == "rebooting"
    assert facade.alerts[fp]["ack"]["by"] == "oncall"
    code, out, _ = vigil(capsys, "unack", fp, *args)
    assert code == 0 and out.strip() == f"unacknowledged {fp} (host_cpu_high host=web-1)"
    assert facade.alerts[fp]["ack"] is None


def test_silence_list_expire(
    daemon: ServerThread, facade: FakeFacade, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkey_env = {"VIGIL_URL": daemon.url, "VIGIL_TOKEN": TOKENS["operator"]}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in monkey_env.items():
            mp.setenv(k, v)
        code, out, err = vigil(
            capsys,
            "silence",
            "--match",
            "rule=host_cpu_high",
            "--match",
            "host=~web-.*",
            "--for",
            "2h",
            "--reason",
            "kernel upgrade",
        )
        assert code == 0, err
        assert out.startswith("silence s0001 created: rule=host_cpu_high, host=~web-.* until ")
        assert facade.silences["s0001"]["matchers"] == [
            {"label": "rule", "value": "host_cpu_high"},
            {"label": "host", "regex": "web-.*"},
        ]
        code, out, _ = vigil(capsys, "silences")
        assert code == 0 and "s0001" in out and "kernel upgrade" in out and "active" in out
        code, out, _ = vigil(capsys, "silences", "--format", "json")
        assert json.loads(out)[0]["created_by"] == "oncall"
        code, out, _ = vigil(capsys, "expire", "s0001")
        assert (code, out.strip()) == (0, "silence s0001 expired")
        code, _, err = vigil(capsys, "expire", "nope")
        assert (code, err.strip()) == (1, "vigil: no silence nope")


def test_status_and_reload(
    daemon: ServerThread, facade: FakeFacade, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    viewer = ("--url", daemon.url, "--token-file", token_file(tmp_path, "viewer"))
    admin = ("--url", daemon.url, "--token-file", token_file(tmp_path, "admin"))
    code, out, _ = vigil(capsys, "status", *viewer)
    assert code == 0 and out.startswith(f"vigil 0.1.0 at {daemon.url}\n")
    assert f"config_hash: {facade.config_hash}" in out and "last reload: none since start" in out
    code, out, _ = vigil(capsys, "status", *viewer, "--format", "json")
    assert json.loads(out)["config_hash"] == facade.config_hash
    code, out, _ = vigil(capsys, "reload", *admin)
    assert (code, out.strip()) == (0, "configuration reloaded")
    facade.reload_errors = ["rules/a.yaml:3:5: rules[0].expr: unknown name 'sytem'"]
    code, out, err = vigil(capsys, "reload", *admin)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "rules/a.yaml:3:5: rules[0].expr: unknown name 'sytem'",
        "vigil: configuration rejected (1 problem(s)); the previous configuration stays active",
    ]


def test_url_from_the_config_and_token_from_env_file(
    daemon: ServerThread,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "vigil.yaml").write_text(
        f"api:\n  listen: 0.0.0.0:{daemon.port}\n"
        "rules: [does-not-matter]\ncollectors: [{name: x, type: nonsense}]\n"
    )
    monkeypatch.setenv("VIGIL_TOKEN_FILE", token_file(tmp_path, "viewer"))
    code, out, err = vigil(capsys, "status")  # ./vigil.yaml, found by the default lookup
    assert code == 0, err
    assert f"at http://127.0.0.1:{daemon.port}" in out
    code, _, err = vigil(capsys, "status", "-c", str(tmp_path / "missing.yaml"))
    assert code == 1 and err.startswith("vigil: cannot read api.listen from ")
    assert "missing.yaml: cannot read: No such file or directory" in err


# -- errors: one line each, exit 1 ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_daemon_down(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    code, out, err = vigil(capsys, "alerts", "--url", f"http://127.0.0.1:{port}")
    assert (code, out) == (1, "")
    assert err == f"vigil: cannot reach vigil at http://127.0.0.1:{port}: connection refused\n"
    code, _, err = vigil(capsys, "status", "--url", "http://h:x")
    assert (code, err) == (1, "vigil: 'http://h:x' is not a usable daemon URL: Invalid port: 'x'\n")


def test_daemon_down_in_a_real_process(tmp_path: Path) -> None:
    port = free_port()
    code = (
        "import sys, engine.cli.main as c\n"
        "if 'client' not in c.COMMANDS: c.COMMANDS += ('client',)\n"
        "sys.exit(c.main(sys.argv[1:]))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code, "ack", "abc", "--note", "x"],
        env={"VIGIL_URL": f"127.0.0.1:{port}", "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == f"vigil: cannot reach vigil at http://127.0.0.1:{port}: connection refused\n"


def test_token_problems(
    daemon: ServerThread, facade: FakeFacade, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = ("--url", daemon.url)
    bad = tmp_path / "bad.token"
    bad.write_text("wrong\n")
    code, _, err = vigil(capsys, "alerts", *url, "--token-file", str(bad))
    assert (code, err) == (1, "vigil: token rejected (401): invalid token\n")
    code, _, err = vigil(capsys, "alerts", *url)
    assert code == 1 and err.startswith(
        "vigil: no token given (401): use --token-file, $VIGIL_TOKEN"
    )
    code, _, err = vigil(capsys, "alerts", *url, "--token-file", str(tmp_path / "nope"))
    assert err == f"vigil: cannot read token file {tmp_path / 'nope'}: No such file or directory\n"
    fp = fp_of(facade, "web-1")
    code, _, err = vigil(
        capsys, "ack", fp, "--note", "x", *url, "--token-file", token_file(tmp_path, "viewer")
    )
    assert (code, err) == (
        1,
        "vigil: not allowed (403): token 'grafana' has role viewer; this needs operator or higher\n",
    )
    assert facade.alerts[fp]["ack"] is None


def test_unknown_alert_and_server_messages(
    daemon: ServerThread, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = ("--url", daemon.url, "--token-file", token_file(tmp_path, "operator"))
    code, _, err = vigil(capsys, "ack", "abc123", "--note", "x", *args)
    assert (code, err) == (1, "vigil: no alert abc123\n")
    code, _, err = vigil(capsys, "unack", "abc123", *args)
    assert (code, err) == (1, "vigil: no alert abc123\n")
    code, _, err = vigil(
        capsys,
        "silence",
        "--match",
        "host=a",
        "--until",
        "2001-01-01T00:00:00Z",
        "--reason",
        "r",
        *args,
    )
    assert (code, err) == (1, "vigil: until: 2001-01-01T00:00:00Z is in the past\n")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ("silence", "--match", "novalue", "--for", "1h", "--reason", "r"),
        ("silence", "--match", "a=~(", "--for", "1h", "--reason", "r"),
        ("silence", "--match", "a=b", "--reason", "r"),
        ("ack", "abc", "--note", "x", "--for", "soon"),
        ("ack", "abc"),
        ("alerts", "--label", "host"),
    ):
        code, _, err = vigil(capsys, *argv)
        assert code == 2, argv
        assert err.startswith("vigil: ") and err.count("\n") == 1, err
