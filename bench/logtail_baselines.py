"""The baselines of bench/logtail.py: fail2ban-regex and CrowdSec, from Debian's
packages unpacked into .cache/baselines/ by deploy/baselines.sh (never installed:
fail2ban's package starts a service that edits the firewall). Run here when
missing, unless fail2ban-regex is on PATH already.

CrowdSec runs in its one-shot file mode (`crowdsec -dsn file://... -type nginx`)
with the nginx parser and the nginx/http scenarios of Debian's hub snapshot,
sending its alerts to a local API of its own (its agent needs one even here).
It reads about a thousand lines per CPU second on this log, so it gets the first
`--crowdsec-lines` lines of the same file, and its rate is per line of those.
"""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "baselines"


def _ready() -> bool:
    """.cache/baselines/ made (by deploy/baselines.sh, run now if needed)."""
    if (CACHE / "bin" / "crowdsec").exists():
        return True
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        print("baselines: no apt-get/dpkg-deb here to fetch fail2ban and crowdsec")
        return False
    got = subprocess.run(
        [str(ROOT / "deploy" / "baselines.sh")], capture_output=True, text=True, timeout=600
    )
    if got.returncode != 0:
        print(f"baselines: deploy/baselines.sh failed: {got.stderr.strip()[-300:]}")
    return got.returncode == 0


def fail2ban_env() -> None:
    """Point bench/detect.py's fail2ban() at the unpacked fail2ban-regex."""
    if os.environ.get("FAIL2BAN_REGEX") or shutil.which("fail2ban-regex") or not _ready():
        return
    os.environ["FAIL2BAN_REGEX"] = str(CACHE / "bin" / "fail2ban-regex")
    os.environ.setdefault("FAIL2BAN_FILTERS", str(CACHE / "filter.d"))


def _alerts(db: Path) -> dict[str, int]:
    if not db.exists():
        return {}
    with sqlite3.connect(db) as c:
        return dict(c.execute("select scenario, count(*) from alerts group by scenario"))


def crowdsec(path: str, lines: int, ours: float, first: int) -> None:
    if not _ready():
        print("crowdsec: not compared (see above)")
        return
    part = path + ".crowdsec"
    with open(path, "rb") as src, open(part, "wb") as dst:
        for i, line in enumerate(src):
            if i >= first:
                break
            dst.write(line)
    n = min(first, lines)
    db = CACHE / "crowdsec" / "data" / "crowdsec.db"
    before = _alerts(db)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [str(CACHE / "bin" / "crowdsec"), "-dsn", f"file://{part}", "-type", "nginx"],
        capture_output=True, text=True, timeout=7200, cwd=CACHE / "crowdsec",
    )  # fmt: skip
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    os.unlink(part)
    cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    if proc.returncode != 0:
        print(f"crowdsec: exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
        return
    after = _alerts(db)
    new = {k: v - before.get(k, 0) for k, v in after.items() if v > before.get(k, 0)}
    rate = n / cpu
    print(
        f"crowdsec 1.4.6 -dsn file:// -type nginx (nginx + http scenarios, first {n:,} lines): "
        f"{cpu:.1f} s CPU, {rate:,.0f} lines/s; alerts {sum(new.values())} {new}"
    )
    print(f"  vigil detect (full pack) / crowdsec: {ours / rate:.1f}x")
