"""A read-only data_dir, at start and turning read-only while the daemon runs, and a
data_dir lock held by a process that is not vigil. Each ends in one clear line,
never a traceback. Mounting needs root (CI runs as root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.adversarial._api_live import HealthProbe
from tests.integration.daemon import VIGIL, Daemon

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: critical
"""


TOKEN = "disk-readonly-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def mount(data: Path, options: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(data)], check=True)


@pytest.fixture
def data(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    d = tmp_path / "data"
    d.mkdir()
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False, capture_output=True)


def run_once(root: Path, timeout: float = 60.0) -> tuple[int, str]:
    """`vigil run` that is expected to refuse to start: its exit code and output."""
    out = subprocess.run(
        [VIGIL, "run", "-c", str(root / "vigil.yaml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.returncode, out.stdout + out.stderr


def wait(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):  # the API may not listen yet
            if cond():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_read_only_data_dir_at_start_is_one_line(tmp_path: Path, data: Path) -> None:
    Daemon(tmp_path, RULES)  # writes the configuration
    mount(data, "ro,size=64k")
    code, out = run_once(tmp_path)
    assert code == 1, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if "Read-only file system" in ln]
    assert len(lines) == 1 and "cannot open the journal" in lines[0], out


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Path]:
    """data/ on a small ext4 image (a loop device) mounted errors=remount-ro, so the
    kernel itself turns it read-only on a file-system error, as on a failing disk."""
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs root and mkfs.ext4 (CI runs as root)")
    d = tmp_path / "data"
    d.mkdir()
    img = tmp_path / "data.img"
    with open(img, "wb") as f:
        f.truncate(8 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(img)], check=True)
    try:
        subprocess.run(
            ["mount", "-o", "loop,errors=remount-ro", str(img), str(d)],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as e:
        pytest.skip(f"no loop device here: {e.stderr!r}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], check=False, capture_output=True)


def device_of(path: Path) -> str:
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, where, *_ = line.split()
        if where == str(path):
            return os.path.basename(dev)
    raise AssertionError(f"{path} is not mounted")


def test_data_dir_turning_read_only_while_running(tmp_path: Path, ext4: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"ops": (TOKEN, "viewer")})
    d.set_values({"queue": 1})
    d.start()
    try:
        with httpx.Client(base_url=d.url, timeout=5) as c:
            wait(lambda: c.get("/ready").status_code == 200, "ready")
            # a file-system error: the kernel remounts it read-only under the daemon
            with HealthProbe(d) as health:  # /health within 1 s throughout the attack
                Path(f"/sys/fs/ext4/{device_of(ext4)}/trigger_fs_error").write_text("test\n")
                d.set_values({"queue": 50})
                wait(lambda: c.get("/ready").status_code == 503, "not ready on a read-only disk")
                assert "Read-only file system" in c.get("/ready").json()["error"]
                # alerting goes on from memory: the firing is in the API though not on disk
                wait(
                    lambda: any(
                        a["rule"] == "queue_deep" and a["state"] == "firing"
                        for a in c.get("/api/v1/alerts", headers=AUTH).json()["alerts"]
                    ),
                    "queue_deep firing in memory",
                )
                time.sleep(1.5)  # a few ticks and retries: still one line, no traceback
            health.check()
            log = d.log()
            assert "Traceback" not in log, log[-3000:]
            failed = [ln for ln in log.splitlines() if "ERROR" in ln and "write failed" in ln]
            assert len(failed) == 1, failed
    finally:
        d.stop()
    log = d.log()
    assert "Traceback" not in log, log[-3000:]
    # what could never be written is said at the stop, not dropped silently
    assert "lost at close" in log, log[-3000:]


HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_lock_held_by_another_program_names_it_not_the_stale_pid(tmp_path: Path) -> None:
    Daemon(tmp_path, RULES)
    (tmp_path / "data").mkdir()
    lock = tmp_path / "data" / "lock"
    lock.write_text("999999\n")  # what a vigil that stopped long ago left behind
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, out = run_once(tmp_path)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    assert code == 1, out
    assert "Traceback" not in out, out
    assert f"PID {holder.pid}" in out and "999999" not in out, out
    assert "which is not vigil" in out, out
