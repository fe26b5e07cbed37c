"""Operations against a real `vigil run` process: the systemd notify protocol, API
authentication and roles, durability of acks and silences across kill -9, and the
CLI client as a subprocess (SPEC.md §4-§6)."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.daemon import VIGIL, Daemon, free_port
from tests.integration.test_reload import (
    ADMIN,
    OPERATOR,
    RULES,
    TOKENS,
    VIEWER,
    client,
    last_seq,
    matching,
    save_by_rename,
    since,
    wait_event,
    wait_ready,
)

pytestmark = pytest.mark.slow

TWO_RULES = (
    RULES
    + """\
  - id: disk_full
    expr: app.disk > 90
    severity: warning
    labels: {mount: /var}
"""
)


# -- 3. systemd notify ----------------------------------------------------------------------


class NotifySocket:
    """What systemd does for Type=notify: a datagram socket named in $NOTIFY_SOCKET.
    Each message is kept with its arrival time and, for the first READY=1, the
    journal as it was at that moment."""

    def __init__(self, path: Path, journal_events: Any) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.journal_at_first_ready: list[dict[str, Any]] | None = None
        self._journal_events = journal_events
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            if "READY" in fields and self.journal_at_first_ready is None:
                self.journal_at_first_ready = self._journal_events()
            self.messages.append((time.monotonic(), fields))

    def keys(self) -> list[str]:
        """The message kinds in order (STATUS-only messages as STATUS)."""
        out = []
        for _, m in self.messages:
            kind = next((k for k in m if k != "STATUS" and k != "MONOTONIC_USEC"), "STATUS")
            out.append(kind)
        return out

    def wait(self, key: str, after: int = 0, timeout: float = 10.0) -> int:
        """Index of the first message with `key` at or after index `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, (_, m) in enumerate(self.messages[after:], after):
                if key in m:
                    return i
            time.sleep(0.02)
        raise AssertionError(f"no {key} after message {after}: {self.keys()}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_systemd_notify_protocol(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    d.set_values({"queue": 50})
    # a first run leaves a journal (and a firing alert) for the second one to replay
    d.start()
    wait_event(d, 0, "firing", rule="queue_deep")
    assert d.stop() == 0

    sock = NotifySocket(tmp_path / "notify.sock", d.events)
    try:
        seq = last_seq(d)
        t_start = time.monotonic()
        d.start(env={"NOTIFY_SOCKET": str(sock.path), "WATCHDOG_USEC": "400000"})
        ready = sock.wait("READY")
        # READY=1 only once the journal is replayed and the run has begun
        assert sock.journal_at_first_ready is not None
        assert matching(since(sock.journal_at_first_ready, seq), "started")
        assert "STOPPING" not in sock.keys()[:ready] and "RELOADING" not in sock.keys()[:ready]
        assert "rules" in sock.messages[ready][1].get("STATUS", "")
        with httpx.Client(base_url=d.url, trust_env=False) as c:
            assert c.get("/ready").status_code == 200
        # the replayed firing alert is not announced again
        assert matching(since(d.events(), seq), "firing") == []

        # WATCHDOG=1 every WATCHDOG_USEC / 2 (0.2 s), from the event loop
        time.sleep(1.2)
        pings = [t for t, m in sock.messages if m.get("WATCHDOG") == "1"]
        assert len(pings) >= 4, sock.keys()
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert max(gaps) < 0.4, gaps  # never as long as WatchdogSec

        # RELOADING=1 with MONOTONIC_USEC, then READY=1, around a SIGHUP reload
        n = len(sock.messages)
        assert d.proc is not None
        t_hup = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        d.proc.send_signal(signal.SIGHUP)
        reloading = sock.wait("RELOADING", after=n)
        msg = sock.messages[reloading][1]
        assert msg["RELOADING"] == "1"
        assert 0 <= int(msg["MONOTONIC_USEC"]) - t_hup < 5_000_000
        again = sock.wait("READY", after=reloading)
        assert sock.messages[again][1]["READY"] == "1"
        wait_event(d, seq, "config_loaded", by="SIGHUP")

        # STOPPING=1 at SIGTERM, and nothing after the process is gone
        n = len(sock.messages)
        assert d.stop() == 0
        stopping = sock.wait("STOPPING", after=n)
        assert sock.messages[stopping][1]["STOPPING"] == "1"
        assert "READY" not in sock.keys()[stopping:]
        print(
            f"systemd: READY {sock.messages[ready][0] - t_start:.2f}s after exec, "
            f"{len(pings)} watchdog pings in 1.2s, messages {sock.keys()[:3]}..."
        )
    finally:
        sock.close()
        if d.proc is not None and d.proc.poll() is None:
            d.stop()
    assert "Traceback" not in d.log()


# -- 4. API auth against the real daemon ----------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("ops"), TWO_RULES, tokens=TOKENS)
    d.set_values({"queue": 50, "disk": 95})
    d.start()
    wait_ready(d)
    wait_event(d, 0, "firing", rule="queue_deep")
    wait_event(d, 0, "firing", rule="disk_full")
    try:
        yield d
    finally:
        if d.proc is not None and d.proc.poll() is None:
            assert d.stop() == 0
        log = d.log()
        assert "Traceback" not in log, log[-3000:]


def fp_of(d: Daemon, rule: str) -> str:
    with client(d) as c:
        (a,) = c.get("/api/v1/alerts", params={"rule": rule}).json()["alerts"]
    return str(a["fingerprint"])


def test_api_auth_roles_limits_and_audit(api: Daemon) -> None:
    fp = fp_of(api, "queue_deep")
    seq = last_seq(api)
    ack = f"/api/v1/alerts/{fp}/ack"
    with httpx.Client(base_url=api.url, timeout=10, trust_env=False) as c:
        # no token, a wrong token, a token of the wrong scheme: 401 with a challenge
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {VIEWER}"}):
            for method, path in (("GET", "/api/v1/alerts"), ("POST", ack), ("GET", "/metrics")):
                r = c.request(method, path, headers=headers, json={"note": "x"})
                assert r.status_code == 401, (headers, path, r.text)
                assert r.headers["www-authenticate"].startswith('Bearer realm="vigil"')
                assert r.json()["error"]
        # /health and /ready need none
        assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200

    # a viewer reads, and is refused every write (403, audited as denied)
    with client(api, VIEWER) as c:
        assert c.get("/api/v1/alerts").status_code == 200
        assert c.get("/api/v1/rules").status_code == 200
        for method, path, body in (
            ("POST", ack, {"note": "mine"}),
            ("POST", "/api/v1/silences", {"matchers": [{"label": "rule", "value": "x"}]}),
            ("POST", "/api/v1/reload", {}),
        ):
            r = c.request(method, path, json=body)
            assert r.status_code == 403, r.text
            assert "token 'dash' has role viewer" in r.json()["error"]
    denied = matching(since(api.events(), seq), "audit", action="denied")
    assert [(e["by"], e["path"]) for e in denied] == [
        ("dash", ack),
        ("dash", "/api/v1/silences"),
        ("dash", "/api/v1/reload"),
    ]

    # an operator acks, unacks, acks again and silences
    with client(api, OPERATOR) as c:
        r = c.post(ack, json={"note": "on it", "for": "2h"})
        assert r.status_code == 200, r.text
        assert r.json()["acknowledged"]["by"] == "oncall"
        r = c.post(f"/api/v1/alerts/{fp}/unack")
        assert r.status_code == 200 and r.json()["acknowledged"] is None
        r = c.post(ack, json={"note": "really on it"})
        assert r.status_code == 200
        r = c.post(
            "/api/v1/silences",
            json={"matchers": [{"label": "mount", "value": "/var"}], "for": "1h", "reason": "fsck"},
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
        assert r.json()["created_by"] == "oncall"
        # the listing (cached per alert by the daemon) shows both at once
        listed = {a["rule"]: a for a in c.get("/api/v1/alerts").json()["alerts"]}
        assert listed["queue_deep"]["acknowledged"]["note"] == "really on it"
        assert sid in listed["disk_full"]["silenced_by"] and not listed["queue_deep"]["silenced"]
        silenced = c.get("/api/v1/alerts", params={"silenced": "true"}).json()["alerts"]
        assert [a["rule"] for a in silenced] == ["disk_full"]
        # it cannot reload (admin only)
        assert c.post("/api/v1/reload").status_code == 403

        # bodies: too large (declared, and streamed without a length), malformed, wrong
        big = b'{"note": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        r = c.post(ack, content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "limit is 1048576" in r.json()["error"]
        r = c.post(ack, content=iter([b"x" * 65536] * 20))
        assert r.status_code == 413 and "larger than the limit" in r.json()["error"]
        r = c.post(ack, content=b'{"note": ', headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"].startswith("malformed JSON")
        r = c.post(ack, content=b'{"note": "\xff"}', headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and "not UTF-8" in r.json()["error"]
        r = c.post(ack, json=["note"])
        assert r.status_code == 422 and "expected a JSON object" in r.json()["error"]
        r = c.post(ack, json={"note": "x", "colour": "red"})
        assert r.status_code == 422 and "colour: unknown field" in r.json()["error"]
        r = c.post("/api/v1/alerts/0000000000000000/ack", json={"note": "x"})
        assert r.status_code == 404 and "no alert" in r.json()["error"]

    # every write is an audit event naming the token's name, never the token
    evs = since(api.events(), seq)
    audits = [(e["action"], e["by"], e.get("result")) for e in matching(evs, "audit")]
    assert ("ack", "oncall", "ok") in audits and ("unack", "oncall", "ok") in audits
    assert ("silence_create", "oncall", "ok") in audits
    assert ("ack", "oncall", "not_found") in audits
    assert ("denied", "oncall", None) in audits  # the reload attempt
    assert [e["by"] for e in matching(evs, "acknowledged")] == ["oncall", "oncall"]
    assert matching(evs, "silence_created")[0]["id"] == sid
    raw = "".join(p.read_text() for p in (api.root / "data").glob("alerts*.jsonl"))
    assert all(tok not in raw for tok, _ in TOKENS.values())


# -- 5. the CLI client as a subprocess -------------------------------------------------------


def _cli(argv: tuple[str, ...], token: str | None, url: str | None) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["COLUMNS"] = "250"
    if token is not None:
        env["VIGIL_TOKEN"] = token
    args = [VIGIL, *argv] + (["--url", url] if url else [])
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _result(p: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=30)
    assert "Traceback" not in err, err
    return p.returncode, out, err


def vigil(*argv: str, token: str | None = VIEWER, url: str | None = None) -> tuple[int, str, str]:
    """`vigil ARGV` as a subprocess, the token in $VIGIL_TOKEN."""
    return _result(_cli(argv, token, url))


def vigil_many(
    calls: list[tuple[tuple[str, ...], str | None]], url: str
) -> list[tuple[int, str, str]]:
    """Several independent `vigil` calls at once (each costs its start-up time)."""
    procs = [_cli(argv, token, url) for argv, token in calls]
    return [_result(p) for p in procs]


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vigil: "), err
    return lines[0]


def test_cli_against_the_running_daemon(api: Daemon) -> None:
    url = api.url
    fp = fp_of(api, "disk_full")
    seq = last_seq(api)

    code, out, err = vigil("alerts", url=url)
    assert code == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["fingerprint", "severity", "state", "rule"]
    assert any(line.split()[:4] == [fp, "warning", "firing", "disk_full"] for line in lines)
    assert "2 active alert(s)" in out

    code, out, _ = vigil("alerts", "--format", "json", "--rule", "disk_full", url=url)
    assert code == 0 and [a["fingerprint"] for a in json.loads(out)] == [fp]

    # ack by a unique prefix, then unack, as the operator
    code, out, err = vigil(
        "ack", fp[:8], "--note", "looking", "--for", "30m", token=OPERATOR, url=url
    )
    assert code == 0, err
    assert out.startswith(f"acknowledged {fp} (disk_full mount=/var) until ")
    code, out, err = vigil("unack", fp, token=OPERATOR, url=url)
    assert (code, out.strip()) == (0, f"unacknowledged {fp} (disk_full mount=/var)"), err

    code, out, err = vigil(
        "silence", "--match", "rule=disk_full", "--match", "mount=~/v.*", "--for", "2h",
        "--reason", "resizing", token=OPERATOR, url=url,
    )  # fmt: skip
    assert code == 0, err
    m = re.match(r"silence (\w+) created: rule=disk_full, mount=~/v\.\* until ", out)
    assert m, out
    sid = m.group(1)
    code, out, _ = vigil("silences", "--format", "json", url=url)
    assert code == 0 and sid in {s["id"] for s in json.loads(out)}
    code, out, _ = vigil("silences", url=url)
    assert code == 0 and sid in out and "resizing" in out

    code, out, _ = vigil("status", url=url)
    assert code == 0 and out.startswith("vigil ") and "config_hash:" in out
    assert "last reload: ok at " in out and "ready: True" in out

    # reload: admin only; a rejected configuration prints its problems, exit 1
    code, out, err = vigil("reload", token=ADMIN, url=url)
    assert (code, out.strip(), err) == (0, "configuration reloaded", "")
    code, _, err = vigil("reload", token=OPERATOR, url=url)
    assert code == 1
    assert one_line_error(err).startswith("vigil: not allowed (403): token 'oncall' has role")
    path = api.root / "rules" / "r.yaml"
    good = path.read_text()
    mark = last_seq(api)
    save_by_rename(path, good.replace("for: 0s", "for: soon"))
    wait_event(api, mark, "config_rejected", by="file change")
    code, out, err = vigil("reload", token=ADMIN, url=url)
    assert code == 1 and out == ""
    problem, summary = err.strip().splitlines()
    assert re.search(r"rules/r\.yaml:6:10: rules\[0\]\.for: expected a duration", problem)
    assert summary.startswith("vigil: configuration rejected (1 problem(s))")
    mark = last_seq(api)
    save_by_rename(path, good)
    wait_event(api, mark, "config_loaded", by="file change")

    # the writes were audited with the token names
    audits = {(e["action"], e["by"]) for e in matching(since(api.events(), seq), "audit")}
    assert {("ack", "oncall"), ("unack", "oncall"), ("silence_create", "oncall")} <= audits
    assert {("reload", "deployer"), ("denied", "oncall")} <= audits

    # errors: one line each, exit 1, no traceback
    down = f"http://127.0.0.1:{free_port()}"
    wrong = [
        (("ack", "feedface", "--note", "x"), OPERATOR),
        (("alerts",), "not-a-token"),
        (("alerts",), None),
    ]
    (c1, _, e1), (c2, _, e2), (c3, _, e3) = vigil_many(wrong, url)
    assert c1 == 1 and one_line_error(e1) == "vigil: no alert feedface"
    assert c2 == 1 and one_line_error(e2) == "vigil: token rejected (401): invalid token"
    assert c3 == 1 and "no token given (401)" in one_line_error(e3)
    argvs: list[tuple[str, ...]] = [("alerts",), ("status",), ("silences",), ("reload",)]
    argvs += [("unack", "abc"), ("ack", "abc", "--note", "n"), ("silence", "--match", "a=b",
              "--for", "1h", "--reason", "r")]  # fmt: skip
    for code, _, err in vigil_many([(a, ADMIN) for a in argvs], down):
        assert code == 1
        assert one_line_error(err) == f"vigil: cannot reach vigil at {down}: connection refused"


# -- 4. durability: last, since it kills the module's daemon ---------------------------------


def test_ack_and_silence_survive_kill9(api: Daemon) -> None:
    fp = fp_of(api, "queue_deep")
    with client(api, OPERATOR) as c:
        r = c.post(f"/api/v1/alerts/{fp}/ack", json={"note": "before the crash"})
        assert r.status_code == 200
        r = c.post(
            "/api/v1/silences",
            json={
                "matchers": [{"label": "rule", "value": "disk_full"}],
                "for": "3h",
                "reason": "r",
            },
        )
        sid = r.json()["id"]
    # acknowledged means durable: the answer came after the fsync
    api.kill9()
    api.start()
    wait_ready(api)
    with client(api) as c:
        alert = c.get(f"/api/v1/alerts/{fp}").json()
        assert alert["state"] == "firing"
        assert alert["acknowledged"]["note"] == "before the crash"
        assert alert["acknowledged"]["by"] == "oncall"
        silences = {s["id"]: s for s in c.get("/api/v1/silences").json()["silences"]}
        assert silences[sid]["state"] == "active" and silences[sid]["created_by"] == "oncall"
        (disk,) = c.get("/api/v1/alerts", params={"rule": "disk_full"}).json()["alerts"]
        assert disk["silenced"] is True and sid in disk["silenced_by"]
    # the restarted daemon did not announce the firing alerts again
    restarted = [i for i, e in enumerate(api.events()) if e["event"] == "started"][-1]
    assert matching(api.events()[restarted:], "firing") == []
