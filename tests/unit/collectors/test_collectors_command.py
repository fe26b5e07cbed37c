"""The command collector with real child processes (python -c ...)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.collectors.command import CommandCollector
from engine.common.secret import Secret
from engine.config.model import CollectorConfig, frozen_map
from engine.errors import CollectorError

PY = sys.executable


def make(argv: list[Any], timeout: float = 10.0, **settings: Any) -> CommandCollector:
    return CommandCollector.from_config(
        CollectorConfig("cmd", "command", None, timeout, frozen_map({"argv": argv, **settings}))
    )


def raw_collect(c: CommandCollector) -> dict[str, Any]:
    return dict(asyncio.run(c.collect(0)))


def collect(c: CommandCollector) -> dict[str, Any]:
    """The values of a run that exited 0 (every sample has exit_code)."""
    out = raw_collect(c)
    assert out.pop("exit_code") == 0, out
    return out


def py(code: str, *args: Any, **settings: Any) -> CommandCollector:
    return make([PY, "-c", code, *args], **settings)


def test_parse_number() -> None:
    assert collect(py("print(42)", parse="number")) == {"value": 42}
    assert collect(py("print(' 3.25 ')", parse="number")) == {"value": 3.25}


def test_parse_number_rejects_text() -> None:
    with pytest.raises(CollectorError, match="stdout is not a number: 'forty-two'"):
        collect(py("print('forty-two')", parse="number"))


def test_parse_json_object() -> None:
    c = py(
        "import json; print(json.dumps({'depth': 7, 'queues': [{'labels': {'q': 'a'}, 'n': 1}]}))",
        parse="json",
    )
    assert collect(c) == {"depth": 7, "queues": [{"labels": {"q": "a"}, "n": 1}]}


@pytest.mark.parametrize(
    ("out", "message"), [("[1, 2]", "JSON a list, expected an object"), ("{nope", "not JSON")]
)
def test_parse_json_needs_an_object(out: str, message: str) -> None:
    with pytest.raises(CollectorError, match=message):
        collect(py(f"print({out!r})", parse="json"))


def test_parse_lines() -> None:
    c = py("print('# queue stats\\nready 12\\n\\nunacked  3.5\\n')", parse="lines")
    assert collect(c) == {"ready": 12, "unacked": 3.5}


def test_parse_lines_names_the_bad_line() -> None:
    with pytest.raises(CollectorError, match="stdout line 2: expected `name number`, got 'b two'"):
        collect(py("print('a 1\\nb two')", parse="lines"))


def test_no_shell_arguments_are_passed_literally(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = ["; echo pwned", f"$(touch {marker})", "`id`", "| cat", "*"]
    c = py("import json, sys; print(json.dumps({'argv': sys.argv[1:]}))", *evil, parse="json")
    assert collect(c) == {"argv": evil}
    assert not marker.exists()


def test_nonzero_exit_is_a_metric_not_a_failure() -> None:
    # issue 13.20: `cmd.exit_code != 0` is a rule, as Monit's `if status != 0`
    c = py("import sys; sys.stderr.write('queue unreachable\\ndetails...\\n'); sys.exit(3)")
    assert raw_collect(c) == {"exit_code": 3, "stderr": "queue unreachable"}
    c = py("import sys; print('{\"q\": 7}'); sys.exit(2)")
    assert raw_collect(c) == {"q": 7, "exit_code": 2, "stderr": ""}
    c = py("print('not json'); raise SystemExit(1)")  # a failing check's output is free
    assert raw_collect(c) == {"exit_code": 1, "stderr": ""}
    assert raw_collect(py("print('{\"q\": 1}')")) == {"q": 1, "exit_code": 0}


def test_killed_by_a_signal_is_a_failure() -> None:
    c = py("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    with pytest.raises(CollectorError) as e:
        collect(c)
    assert str(e.value) == "killed by signal 9"


def test_long_stderr_is_truncated() -> None:
    c = py("import sys; sys.stderr.write('x' * 100000); sys.exit(1)")
    assert len(raw_collect(c)["stderr"]) < 250


def test_timeout_kills_the_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # the child starts a grandchild, records both pids, and both would sleep on
    code = (
        "import os, subprocess, sys, time\n"
        f"g = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{g.pid}}')\n"
        "time.sleep(60)\n"
    )
    c = py(code, timeout=1.0)
    start = time.monotonic()
    with pytest.raises(CollectorError, match=r"timed out after 1s"):
        collect(c)
    assert time.monotonic() - start < 5
    child, grandchild = (int(p) for p in pids.read_text().split())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (alive(child) or alive(grandchild)):
        time.sleep(0.05)
    assert not alive(child) and not alive(grandchild)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_output_is_capped() -> None:
    c = py("import sys; sys.stdout.write('1' * (2 * 1024 * 1024))")
    with pytest.raises(CollectorError, match="output larger than 1048576 bytes"):
        collect(c)


def test_env_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_DAEMON_SECRET", "do-not-pass")
    code = (
        "import json, os; print(json.dumps({'cwd': os.getcwd(), 'mine': os.environ.get('MINE'),"
        " 'token': os.environ.get('TOKEN'), 'daemon': os.environ.get('VIGIL_DAEMON_SECRET'),"
        " 'has_path': 'PATH' in os.environ}))"
    )
    c = py(code, parse="json", env={"MINE": "1", "TOKEN": Secret("t0k")}, cwd=str(tmp_path))
    assert collect(c) == {
        "cwd": str(tmp_path),
        "mine": "1",
        "token": "t0k",
        "daemon": None,
        "has_path": True,
    }


def test_missing_program() -> None:
    with pytest.raises(CollectorError, match="cannot run /no/such/program: No such file"):
        collect(make(["/no/such/program"]))


def test_secret_program_is_not_shown() -> None:
    with pytest.raises(CollectorError) as e:
        collect(make([Secret("/no/such/s3cret")]))
    assert "s3cret" not in str(e.value)


def test_aclose_kills_a_running_command() -> None:
    c = py("import time; time.sleep(60)")

    async def run() -> None:
        task = asyncio.create_task(c.collect(0))
        await asyncio.sleep(0.3)
        proc = next(iter(c._running))
        await c.aclose()
        assert proc.returncode is not None
        with pytest.raises(CollectorError, match="killed by signal 9"):
            await task

    asyncio.run(run())


def test_cancel_kills_the_command() -> None:
    c = py("import time; time.sleep(60)")

    async def run() -> int | None:
        task = asyncio.create_task(c.collect(0))
        await asyncio.sleep(0.3)
        proc = next(iter(c._running))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return proc.returncode

    assert asyncio.run(run()) is not None
