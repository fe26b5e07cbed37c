"""The exec channel with real child processes (python -c ...)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.channels.exec_channel import ExecChannel
from engine.common.secret import Secret
from engine.config.model import Channel as ChannelConfig
from engine.config.model import frozen_map
from engine.errors import DeliveryError
from engine.notify.base import AlertView, Notification
from engine.plugins import registry

PY = sys.executable
T0 = 1_790_000_000.0

# writes its argv, environment and stdin as one JSON file: what the program was given
RECORD = (
    "import json, os, sys; "
    "json.dump({'argv': sys.argv[1:], 'env': dict(os.environ), 'stdin': sys.stdin.read(), "
    "'cwd': os.getcwd()}, open(os.environ['OUT'], 'w'))"
)


def notification(ip: str = "1.2.3.4; rm -rf /", status: str = "firing") -> Notification:
    a = AlertView(
        fingerprint="fp1",
        rule="ssh_bruteforce",
        status=status,  # type: ignore[arg-type]
        severity="critical",
        labels={"ip": ip, "host": "gw-1"},
        annotations={"summary": "ssh brute force from " + ip},
        value=57,
        starts_at=T0,
    )
    return Notification("block", "g1", a.status, (a,), "k-1", "title", "body")


def make(argv: list[Any], timeout: str = "10s", **settings: Any) -> ExecChannel:
    cfg = ChannelConfig("block", "exec", frozen_map({"argv": argv, "timeout": timeout, **settings}))
    return ExecChannel.from_config(cfg)


def record(tmp_path: Path, *args: Any, **settings: Any) -> tuple[ExecChannel, Path]:
    out = tmp_path / "record.json"
    env = {"OUT": str(out), **settings.pop("env", {})}
    return make([PY, "-c", RECORD, *args], env=env, **settings), out


def test_entry_point() -> None:
    assert registry.load("vigil.channels", "exec") is ExecChannel
    assert ExecChannel.type_name == "exec"


def test_template_value_is_one_literal_argument(tmp_path: Path) -> None:
    marker = tmp_path / "must-survive"
    marker.write_text("")
    ch, out = record(
        tmp_path,
        "--ip={{ labels.ip }}",
        "{{ labels.ip }}",
        f"{{{{ labels.ip }}}} && touch {tmp_path}/pwned",
        "{{ status }}/{{ severity }}/{{ rule }}/{{ value }}/{{ alerts | length }}",
        "{{ annotations.summary }}",
        "{{ labels.missing }}",
        "$HOME `id` *",  # no template, no shell: passed as written
    )
    asyncio.run(ch.send(notification()))
    got = json.loads(out.read_text())
    assert got["argv"] == [
        "--ip=1.2.3.4; rm -rf /",
        "1.2.3.4; rm -rf /",
        f"1.2.3.4; rm -rf / && touch {tmp_path}/pwned",
        "firing/critical/ssh_bruteforce/57/1",
        "ssh brute force from 1.2.3.4; rm -rf /",
        "",
        "$HOME `id` *",
    ]
    assert marker.exists() and not (tmp_path / "pwned").exists()


def test_environment_and_stdin_carry_the_alert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_TEST_DAEMON_SECRET", "hunter2")  # the daemon's own: not passed
    ch, out = record(tmp_path, env={"EXTRA": "yes", "TOKEN": Secret("s3cret")}, cwd=str(tmp_path))
    asyncio.run(ch.send(notification()))
    got = json.loads(out.read_text())
    env = got["env"]
    assert env["VIGIL_STATUS"] == "firing"
    assert env["VIGIL_RULE"] == "ssh_bruteforce"
    assert env["VIGIL_SEVERITY"] == "critical"
    assert env["VIGIL_FINGERPRINT"] == "fp1"
    assert json.loads(env["VIGIL_LABELS_JSON"]) == {"ip": "1.2.3.4; rm -rf /", "host": "gw-1"}
    body = json.loads(env["VIGIL_ALERTS_JSON"])
    assert body["status"] == "firing" and body["alerts"][0]["fingerprint"] == "fp1"
    assert json.loads(got["stdin"]) == body
    assert env["EXTRA"] == "yes" and env["TOKEN"] == "s3cret"  # revealed: it goes to the program
    assert "PATH" in env
    assert "VIGIL_TEST_DAEMON_SECRET" not in env
    assert os.path.samefile(got["cwd"], tmp_path)


def test_resolved_notification_runs_too(tmp_path: Path) -> None:
    ch, out = record(tmp_path, "{{ status }}", "{{ labels.ip }}")
    asyncio.run(ch.send(notification("5.6.7.8", status="resolved")))
    assert json.loads(out.read_text())["argv"] == ["resolved", "5.6.7.8"]


def test_nonzero_exit_is_not_retryable_with_stderr_line() -> None:
    code = "import sys; sys.stderr.write('cannot block: ' + 'x' * 500 + '\\nsecond line\\n'); sys.exit(3)"
    ch = make([PY, "-c", code])
    with pytest.raises(DeliveryError) as ei:
        asyncio.run(ch.send(notification()))
    msg = str(ei.value)
    assert ei.value.retryable is False
    assert "exit status 3: cannot block: xxx" in msg
    assert "second line" not in msg
    assert len(msg.split("exit status 3: ", 1)[1]) <= 201  # 200 chars and an ellipsis


def test_tempfail_exit_asks_for_retry() -> None:
    ch = make([PY, "-c", "import sys; sys.exit(75)"])
    with pytest.raises(DeliveryError) as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is True


def test_secret_is_scrubbed_from_stderr() -> None:
    code = "import os, sys; sys.stderr.write('bad token ' + os.environ['TOKEN']); sys.exit(1)"
    ch = make([PY, "-c", code], env={"TOKEN": Secret("s3cret-value")})
    with pytest.raises(DeliveryError) as ei:
        asyncio.run(ch.send(notification()))
    assert "s3cret-value" not in str(ei.value) and "bad token ***" in str(ei.value)


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # the child starts a grandchild that would outlive a kill of the child alone
    code = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(pidfile)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    ch = make([PY, "-c", code], timeout="1s")
    t = time.monotonic()
    with pytest.raises(DeliveryError, match="timed out after 1s") as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is True
    assert time.monotonic() - t < 5
    pid = int(pidfile.read_text())
    for _ in range(50):  # SIGKILL is asynchronous; the init process reaps it
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        if _zombie(pid):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"grandchild {pid} survived the timeout")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_ignores_unread_stdin_and_caps_output() -> None:
    # never reads stdin, floods stdout and stderr well past the pipe buffers
    code = "import sys; sys.stdout.write('o' * 2_000_000); sys.stderr.write('e' * 2_000_000)"
    ch = make([PY, "-c", code])
    big = notification(ip="9" * 300_000)  # stdin payload larger than a pipe buffer
    asyncio.run(ch.send(big))


def test_missing_program_is_not_retryable() -> None:
    ch = make(["/nonexistent/block-ip", "{{ labels.ip }}"])
    with pytest.raises(DeliveryError, match="cannot run /nonexistent/block-ip") as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is False


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{{ labels.__class__.__mro__ }}", "SecurityError"),  # no escape from the sandbox
        ("{{ range(10**9) | list }}", "range"),  # capped work
        ("{{ value / 0 }}", "ZeroDivisionError"),  # the data meets the template
    ],
)
def test_render_error_is_not_retryable(template: str, error: str) -> None:
    ch = make([PY, "-c", "pass", template])
    with pytest.raises(DeliveryError, match=rf"argv\[3\]: .*{error}") as ei:
        asyncio.run(ch.send(notification()))
    assert ei.value.retryable is False


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"argv": []}, "argv: expected a non-empty list"),
        ({"argv": ["x", 5]}, r"argv\[1\]: expected a string"),
        ({"argv": ["x", "{{ labels.ip "]}, r"argv\[1\]: template syntax error"),
        ({"argv": ["x"], "env": {"N": 1}}, "env.N: expected a string"),
        ({"argv": ["x"], "timeout": "soon"}, "timeout: expected a duration"),
        ({"argv": ["x"], "shell": True}, "unknown setting 'shell'"),
    ],
)
def test_bad_settings(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ExecChannel.from_config(ChannelConfig("x", "exec", frozen_map(settings)))
