"""deploy/vigil.service: systemd accepts it, it says what docs/systemd.md promises,
and the daemon runs under its system call policy.

`systemd-analyze verify` needs ExecStart's program to exist, so it checks a copy
whose ExecStart names this checkout's `vigil` (same arguments); everything else
is the shipped file, byte for byte. The last test emulates the unit's seccomp
policy (SystemCallFilter=@system-service, MemoryDenyWriteExecute=,
RestrictAddressFamilies=, SystemCallArchitectures=native) with a filter of our
own, since there is no systemd as PID 1 to run the unit for real.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "vigil.service"
VIGIL = Path(sys.executable).parent / "vigil"
SHIPPED_EXEC_START = "/opt/vigil/.venv/bin/vigil run -c /etc/vigil/vigil.yaml"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None, reason="systemd-analyze is not installed (Debian package: systemd)"
)


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as (key, value) pairs in order; keys may repeat."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        assert not line.endswith("\\"), f"line {n}: keep directives on one line"
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, eq, value = line.partition("=")
        assert eq and current is not None, f"line {n}: not a directive: {raw!r}"
        current.append((key.strip(), value.strip()))
    return sections


SECTIONS = parse_unit(UNIT.read_text())
SERVICE = SECTIONS["Service"]


def values(key: str) -> list[str]:
    return [v for k, v in SERVICE if k == key]


def value(key: str) -> str:
    found = values(key)
    assert len(found) == 1, f"{key}= appears {len(found)} times, expected once"
    return found[0]


def checkable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's vigil, nothing else changed."""
    assert VIGIL.exists(), f"{VIGIL} missing: run deploy/setup.sh"
    text = UNIT.read_text()
    changed = text.replace(
        f"ExecStart={SHIPPED_EXEC_START}", f"ExecStart={VIGIL} run -c /etc/vigil/vigil.yaml"
    )
    assert changed.count("\n") == text.count("\n") and changed != text
    copy = tmp_path / "vigil.service"  # verify wants the unit's own name
    copy.write_text(changed)
    return copy


# -- what systemd says -------------------------------------------------------------------


@needs_analyze
def test_systemd_analyze_verify_passes_without_a_warning(tmp_path: Path) -> None:
    copy = checkable_copy(tmp_path)
    r = subprocess.run(
        [str(ANALYZE), "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 even for an unknown or unparsable directive, which it only
    # reports ("Unknown key ..., ignoring"): any output at all is a failure
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


@needs_analyze
def test_security_exposure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = checkable_copy(tmp_path)
    r = subprocess.run(
        [str(ANALYZE), "security", "--offline=true", "--no-pager", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    overall = [line for line in r.stdout.splitlines() if "Overall exposure level" in line]
    assert overall, r.stdout
    open_items = [
        line[1:].split("  ")[0].strip() for line in r.stdout.splitlines() if line.startswith("✗")
    ]
    with capsys.disabled():  # a figure to read, not to assert on
        print(f"\nsystemd-analyze security: {overall[0].strip(' →')}")
        print(f"  still open: {', '.join(open_items)}")


# -- what the unit contains ----------------------------------------------------------------


def test_lifecycle_directives() -> None:
    assert value("Type") == "notify"  # notify-reload needs systemd >= 253; Debian 12 has 252
    assert value("ExecStart") == SHIPPED_EXEC_START
    assert value("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert value("WatchdogSec") == "30"
    assert value("Restart") == "on-failure"
    assert value("RestartSec") == "2"
    assert "PYTHONFAULTHANDLER=1" in value("Environment")
    assert ("WantedBy", "multi-user.target") in SECTIONS["Install"]


def test_user_directories_and_credentials() -> None:
    assert value("DynamicUser") == "yes"
    assert value("StateDirectory") == "vigil"
    assert value("WorkingDirectory") == "/var/lib/vigil"
    assert value("ConfigurationDirectory") == "vigil"
    assert value("UMask") == "0027"
    creds = values("LoadCredential")
    assert creds, "secrets come in through LoadCredential="
    for c in creds:
        ident, _, path = c.partition(":")
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", ident) and path.startswith("/etc/vigil/"), c
    # the state directory is the only writable path; no ad-hoc exceptions
    assert not values("ReadWritePaths")


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",  # "yes" would hide a /home file system from `disks`
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallFilter": "@system-service",
    "SystemCallArchitectures": "native",
    "SystemCallErrorNumber": "EPERM",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
}


@pytest.mark.parametrize("key", sorted(HARDENING))
def test_hardening_directive(key: str) -> None:
    assert value(key) == HARDENING[key]


def test_address_families_and_proc_stay_usable_for_the_system_collector() -> None:
    assert set(value("RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # /proc/stat, /proc/meminfo ... and other users' /proc/PID must stay readable
    assert values("ProcSubset") in ([], ["all"])
    assert values("ProtectProc") in ([], ["default"])


def test_every_non_obvious_line_is_explained() -> None:
    """A comment right above each of these says why it is there."""
    lines = UNIT.read_text().splitlines()
    for key in (
        "Type",
        "ExecReload",
        "WatchdogSec",
        "Environment",
        "DynamicUser",
        "StateDirectory",
        "LoadCredential",
        "ProtectHome",
        "ProtectProc",
        "MemoryDenyWriteExecute",
        "SystemCallErrorNumber",
        "CapabilityBoundingSet",
        "RestrictAddressFamilies",
    ):
        i = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
        j = i - 1
        while j >= 0 and lines[j] and not lines[j].startswith("#"):
            j -= 1  # directives grouped under one comment
        assert j >= 0 and lines[j].startswith("#"), f"{key}= has no comment above it"


# -- the daemon under the unit's system call policy -----------------------------------------

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
# what systemd allows even outside the list (systemd.exec(5), SystemCallFilter=)
IMPLICIT = {"execve", "exit", "exit_group", "getrlimit", "rt_sigreturn", "sigreturn"}


def syscall_group(name: str, seen: set[str] | None = None) -> set[str]:
    """The system calls of a `@group`, as the installed systemd defines it."""
    seen = set() if seen is None else seen
    assert ANALYZE is not None
    out = subprocess.run(
        [ANALYZE, "syscall-filter", name], capture_output=True, text=True, check=True
    ).stdout
    calls: set[str] = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if item.startswith("@"):
            if item not in seen:
                seen.add(item)
                calls |= syscall_group(item, seen)
        else:
            calls.add(item)
    return calls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@needs_analyze
@pytest.mark.skipif(
    platform.machine() != "x86_64" or not UNISTD.exists(),
    reason="the emulated filter knows x86-64 system call numbers only (linux-libc-dev)",
)
def test_daemon_runs_under_the_units_syscall_policy(tmp_path: Path) -> None:
    numbers = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"#define __NR_(\w+)\s+(\d+)", UNISTD.read_text())
    }
    allowed = sorted(
        {numbers[c] for c in syscall_group(value("SystemCallFilter")) | IMPLICIT if c in numbers}
    )
    assert numbers["openat"] in allowed and numbers["reboot"] not in allowed

    (tmp_path / "rules").mkdir()
    (tmp_path / "channels").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        "group: g\ninterval: 200ms\nrules:\n"
        "  - {id: always, expr: system.cpu_count > 0, severity: info}\n"
    )
    (tmp_path / "vigil.yaml").write_text(
        "rules: [rules]\ndata_dir: data\n"
        "collectors:\n"
        "  - {name: system, type: system, interval: 200ms, processes: [python3, init]}\n"
        f"api: {{listen: '127.0.0.1:{free_port()}'}}\n"
    )
    env = {
        **os.environ,
        "VIGIL_TEST_SYSCALLS": ",".join(map(str, allowed)),
        "VIGIL_TEST_FAMILIES": value("RestrictAddressFamilies"),
    }
    proc = subprocess.Popen(
        [sys.executable, __file__, "run", "-c", str(tmp_path / "vigil.yaml")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    journal = tmp_path / "data" / "alerts.jsonl"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and '"firing"' in journal.read_text():
                break
            time.sleep(0.1)
        time.sleep(1.0)  # a few more collections and evaluations
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # a system call outside @system-service kills the process (SIGSYS, -31): the
    # unit would turn it into EPERM, which would only hide it here
    assert proc.returncode == 0, f"exit {proc.returncode}\n{err[-3000:]}"
    assert "sandbox: W+X mapping refused, AF_NETLINK refused" in err, err[-3000:]
    events = [json.loads(line)["event"] for line in journal.read_text().splitlines()]
    assert events[0] == "started" and "firing" in events and events[-1] == "stopped", events


# -- the child side of the last test: install the filter, then become `vigil` ---------------

ARCH_X86_64 = 0xC000003E
X32_BIT = 0x40000000
RET_ALLOW, RET_KILL_PROCESS, RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
LD_ABS, JEQ, JGE, JSET, JA, AND, RET = 0x20, 0x15, 0x35, 0x45, 0x05, 0x54, 0x06
NR_MMAP, NR_MPROTECT, NR_SHMAT, NR_SOCKET, NR_PKEY_MPROTECT = 9, 10, 30, 41, 329
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
FAMILIES = {"AF_UNIX": socket.AF_UNIX, "AF_INET": socket.AF_INET, "AF_INET6": socket.AF_INET6}


Target = int | str  # a jump: an offset, or the label of a later instruction


def seccomp_program(allowed: list[int], families: list[int]) -> list[tuple[int, int, int, int]]:
    """Classic BPF equivalent to what systemd installs for the unit (x86-64):
    offsets into struct seccomp_data are nr 0, arch 4, args[i] 16 + 8 i."""
    prog: list[tuple[int, Target, Target, Target, str]] = []  # code, jt, jf, k, label

    def ins(code: int, k: Target = 0, jt: Target = 0, jf: Target = 0, label: str = "") -> None:
        prog.append((code, jt, jf, k, label))

    ins(LD_ABS, 4)
    ins(JEQ, ARCH_X86_64, 1, 0)
    ins(RET, RET_KILL_PROCESS)  # SystemCallArchitectures=native
    ins(LD_ABS, 0)
    ins(JGE, X32_BIT, 0, 1)
    ins(RET, RET_KILL_PROCESS)  # x32 ABI: not native
    for nr, target in (
        (NR_MMAP, "mmap"),
        (NR_MPROTECT, "mprotect"),
        (NR_PKEY_MPROTECT, "mprotect"),
        (NR_SHMAT, "shmat"),
        (NR_SOCKET, "socket"),
    ):
        ins(JEQ, nr, target, 0)
    ins(JA, "list")
    # MemoryDenyWriteExecute=: no W+X mmap, no mprotect to executable, no SHM_EXEC
    ins(LD_ABS, 16 + 8 * 2, label="mmap")
    ins(AND, PROT_WRITE | PROT_EXEC)
    ins(JEQ, PROT_WRITE | PROT_EXEC, "eperm", "allow")
    ins(LD_ABS, 16 + 8 * 2, label="mprotect")
    ins(JSET, PROT_EXEC, "eperm", "allow")
    ins(LD_ABS, 16 + 8 * 2, label="shmat")
    ins(JSET, SHM_EXEC, "eperm", "allow")
    # RestrictAddressFamilies=: socket() of any other family fails with EAFNOSUPPORT
    ins(LD_ABS, 16, label="socket")
    for fam in families:
        ins(JEQ, fam, "allow", 0)
    ins(RET, RET_ERRNO | errno.EAFNOSUPPORT)
    ins(RET, RET_ERRNO | errno.EPERM, label="eperm")
    ins(RET, RET_ALLOW, label="allow")
    # SystemCallFilter=: the allow list (jumps are 8 bits, so each entry returns itself)
    for i, nr in enumerate(allowed):
        ins(JEQ, nr, 0, 1, label="list" if i == 0 else "")
        ins(RET, RET_ALLOW)
    ins(RET, RET_KILL_PROCESS)

    labels = {label: i for i, (*_, label) in enumerate(prog) if label}
    out = []
    for i, (code, jt, jf, k, _) in enumerate(prog):

        def rel(t: Target, i: int = i) -> int:
            return labels[t] - i - 1 if isinstance(t, str) else t

        out.append((code, rel(jt), rel(jf), rel(k)))
    assert all(0 <= jt < 256 and 0 <= jf < 256 for _, jt, jf, _ in out)  # forward only
    return out


def install_seccomp(program: list[tuple[int, int, int, int]]) -> None:
    class SockFilter(ctypes.Structure):
        _fields_ = (
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        )

    class SockFprog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter)))

    filters = (SockFilter * len(program))(*(SockFilter(*ins) for ins in program))
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:  # NoNewPrivileges=yes
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    fprog = SockFprog(len(program), filters)
    if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def _sandboxed_vigil(argv: list[str]) -> int:
    import mmap

    allowed = [int(n) for n in os.environ.pop("VIGIL_TEST_SYSCALLS").split(",")]
    families = [int(FAMILIES[f]) for f in os.environ.pop("VIGIL_TEST_FAMILIES").split()]
    install_seccomp(seccomp_program(allowed, families))
    # prove the filter is in force before trusting a clean run
    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        raise SystemExit("sandbox: a W+X mapping was allowed")
    except PermissionError:
        pass
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW).close()
        raise SystemExit("sandbox: AF_NETLINK was allowed")
    except OSError as e:
        assert e.errno == errno.EAFNOSUPPORT, e
    # ctypes callbacks (watchdog's inotify does not need them, a plugin might)
    # work without W+X memory: libffi >= 3.4 uses static trampolines
    callback = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 7)
    assert callback() == 7
    print("sandbox: W+X mapping refused, AF_NETLINK refused", file=sys.stderr, flush=True)
    from engine.cli.main import main

    return main(argv)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(_sandboxed_vigil(sys.argv[1:]))
