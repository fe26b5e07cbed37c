"""`vigil logtest`, the installed command on real files: hits per pattern and per
key, with the matching lines and their numbers; a configured collector's own
settings (allowlists included); sshd failures per key; bad input is one line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.integration.daemon import VIGIL
from tests.unit.detect import security_corpus as sc

ROOT = Path(__file__).resolve().parents[2]
BENIGN = sc.DATA / "benign_access.log"


def logtest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VIGIL, "logtest", *args], capture_output=True, text=True, timeout=120)


def mixed_log(tmp_path: Path) -> Path:
    """The sqli and scanners attacks (lines 1-22), then the benign corpus."""
    log = tmp_path / "access.log"
    attacks = [line for pack in ("sqli", "scanners") for _, line in sc.attack(pack)]
    log.write_text("\n".join(attacks) + "\n" + BENIGN.read_text())
    return log


def test_hits_per_pattern_and_per_key_with_the_lines_that_hit(tmp_path: Path) -> None:
    got = logtest(str(mixed_log(tmp_path)), "--pack", "sqli", "--format", "nginx", "--show", "2")
    assert got.returncode == 0, got.stderr
    out = got.stdout.splitlines()
    benign = len(BENIGN.read_text().splitlines())
    assert out[0].startswith(f"Lines: {22 + benign} read, {22 + benign} parsed (nginx), 0 unparsed")
    assert "  sqli: 13" in out
    assert any(x.split() == ["sqli_union", "3"] for x in out)
    assert not any("scanner" in x for x in out)  # only the pack asked for
    key = next(i for i, x in enumerate(out) if x.startswith("  203.0.113.11  13 hits"))
    assert out[key + 1].startswith("    line 12: 203.0.113.11 ")
    assert out[key + 2].startswith("    line 13: 203.0.113.11 ") and "waitfor" in out[key + 2]
    # no benign address has a pattern hit
    hit = [x for x in out if x.startswith("  ") and " hits (" in x]
    assert [x.split()[0] for x in hit] == ["203.0.113.11"]


def test_a_configured_collector_is_tested_with_its_own_settings(tmp_path: Path) -> None:
    log = mixed_log(tmp_path)
    monitor = "UptimeRobot/2.0 (http://www.uptimerobot.com/)"
    with log.open("a") as f:  # allowlisted by the collector's `allow: {ua: ...}`
        for i in range(4):
            f.write(
                sc.access(sc.ATTACK_START + i, "203.0.113.40", "/x?id=1'--", 200, ua=monitor) + "\n"
            )
    cfg = ROOT / "deploy" / "security.yaml"
    got = logtest(str(log), "--collector", "web", "-c", str(cfg), "--output", "json")
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    # the four monitor lines, and the benign corpus's kube-probe health checks
    skipped = [
        x for x in log.read_text().splitlines() if '"UptimeRobot/' in x or '"kube-probe/' in x
    ]
    assert data["totals"]["allowed"] == len(skipped) > 4
    keys = {el["ip"]: el for el in data["keys"]}
    assert "203.0.113.40" not in keys
    assert keys["203.0.113.11"]["hits"]["sqli"] == 13
    assert keys["203.0.113.15"]["hits"]["scanners"] == 9
    assert keys["192.0.2.10"]["admin_ok_10m"] == 40  # the collector's own pattern and window
    assert keys["203.0.113.11"]["evidence"][-1]["line_number"] == 13


def test_sshd_failures_per_key(tmp_path: Path) -> None:
    log = tmp_path / "auth.log"
    lines = [
        line for pack in ("sshd_auth", "ssh_credential_stuffing") for _, line in sc.attack(pack)
    ]
    log.write_text("\n".join(lines) + "\n")
    got = logtest(str(log), "--format", "sshd", "--show", "1")
    assert got.returncode == 0, got.stderr
    assert "  203.0.113.20  no pattern hits, failures 15, users 1" in got.stdout
    assert "  203.0.113.21  no pattern hits, failures 8, users 8" in got.stdout


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    got = logtest(str(tmp_path / "missing.log"))
    assert got.returncode == 1
    assert got.stderr.strip() == f"vigil logtest: {tmp_path}/missing.log: No such file or directory"
    got = logtest(str(BENIGN), "--pack", "nosuch")
    assert got.returncode == 2 and len(got.stderr.strip().splitlines()) == 1, got.stderr
    got = logtest(
        str(BENIGN), "--collector", "nosuch", "-c", str(ROOT / "deploy" / "security.yaml")
    )
    assert got.returncode == 1 and "no collector named 'nosuch'" in got.stderr
    assert "Traceback" not in got.stderr
