"""Writes benign_access.log and benign_auth.log here: three hours of a small shop's
ordinary traffic (seeded, so the files are reproducible), the benign corpora of
the security packs (tests/unit/detect/security_corpus.py).

    .venv/bin/python tests/testdata/security/make_benign.py

Web: bench/detect.py's benign targets and user agents from 600 clients (a few
heavy ones), plus what a real site also sees and must not alert on: staff using
/admin/ in business hours from the office, people mistyping a password twice,
crawlers asking for moved pages, the tricky-but-benign targets of
tests/unit/detect/corpus.py. Auth: key and password logins of the staff, a few
typos, a deploy robot.
"""

from __future__ import annotations

import os
import random
import sys
from datetime import UTC, datetime, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, ROOT)

from bench.detect import BOTS, BROWSERS, benign_target  # noqa: E402
from tests.unit.detect.corpus import BENIGN  # noqa: E402

START = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)  # a Tuesday, 09:00-12:00 UTC
SECONDS = 3 * 3600
OFFICE = "192.0.2.10"


def web(r: random.Random) -> list[str]:
    uas = [b.format(v=v) for b in BROWSERS for v in range(118, 122)] + BOTS
    clients = [f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
               for _ in range(600)]  # fmt: skip
    out: list[tuple[float, str, str, str, str, str]] = []
    for _ in range(3000):
        t = r.uniform(0, SECONDS)
        heavy = r.random() < 0.2
        ip = clients[min(int(r.paretovariate(1.5)) - 1, 599)] if heavy else r.choice(clients)
        target, status = benign_target(r)
        out.append((t, ip, "-", target, status, r.choice(uas)))
    for target in BENIGN:
        out.append((r.uniform(0, SECONDS), r.choice(clients), "-", target, "200", uas[0]))
    for i in range(40):  # staff at work
        page = r.choice(("/admin/", "/admin/orders", "/admin/users/17", "/admin/stock?page=2"))
        out.append((3600 + i * 120.0, OFFICE, "anna", page, "200", uas[1]))
    for user in ("bob", "bob", "carol", "dave"):  # mistyped, then right
        t, ip = r.uniform(0, SECONDS), r.choice(clients)
        out.append((t, ip, user, "/reports/", "401", uas[2]))
        out.append((t + 5, ip, user, "/reports/", "200", uas[2]))
    for i in range(12):  # a crawler meeting pages that moved
        out.append((r.uniform(0, SECONDS), "66.249.66.1", "-", f"/old/{i}.html", "404", BOTS[0]))
    lines = []
    for t, ip, user, target, status, ua in sorted(out):
        ts = (START + timedelta(seconds=t)).strftime("%d/%b/%Y:%H:%M:%S +0000")
        ref = r.choice(("-", "https://shop.example.org/", "https://www.google.com/"))
        size = r.randrange(200, 90_000)
        lines.append(
            f'{ip} - {user} [{ts}] "GET {target} HTTP/1.1" {status} {size} "{ref}" "{ua}"'
        )
    return lines


def auth(r: random.Random) -> list[str]:
    staff = [("anna", OFFICE), ("bob", "192.0.2.11"), ("carol", "198.51.100.23")]
    out: list[tuple[float, str]] = []
    for _ in range(60):
        user, ip = r.choice(staff)
        t = r.uniform(0, SECONDS)
        if r.random() < 0.15:  # a typo first
            out.append((t, f"Failed password for {user} from {ip} port {r.randrange(40000, 60000)} ssh2"))
            t += 4
        how = "publickey" if r.random() < 0.7 else "password"
        out.append((t, f"Accepted {how} for {user} from {ip} port {r.randrange(40000, 60000)} ssh2"))
    for i in range(36):  # the deploy robot, every five minutes
        out.append((i * 300.0, f"Accepted publickey for deploy from 10.1.2.3 port {50000 + i} ssh2"))
    lines = []
    for n, (t, msg) in enumerate(sorted(out)):
        ts = (START + timedelta(seconds=t)).isoformat(timespec="microseconds")
        lines.append(f"{ts} web1 sshd[{2000 + n}]: {msg}")
    return lines


def main() -> None:
    r = random.Random(16)
    for name, lines in (("benign_access.log", web(r)), ("benign_auth.log", auth(r))):
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
