"""Parsing and detection speed: a generated nginx access log through formats +
the full pattern pack + per-key windows, in one process on one core.

    .venv/bin/python bench/detect.py [--lines 1000000] [--keep FILE]

The log: LINES lines of realistic benign traffic (10,000 client addresses with a
few heavy ones, pages with ids, encoded search queries, static assets, APIs,
200/304/301/404/500, 40 browser and bot user agents, referers) with 1 % attacks
from 300 other addresses (SQLi, XSS, traversal, command injection, scanner user
agents, probes; raw, percent-encoded and double-encoded). It is written to a
temporary file first, then read back in 1 MiB-sized batches as the follower
hands them over (engine/detect/sink.py), with the simulated clock moving one
second per 100,000 lines and `values()` taken once per simulated second, as the
collector does once per pass.

Printed: lines/s (CPU time of the process, process_time, so the other load on the
machine barely moves it; the target is >= 100,000 lines/s), detection on the
generated attacks (lines hit / attack lines) and false positives (benign lines
hit), and where installed, `fail2ban-regex` on the same file with its
nginx-botsearch filter and with a filter made of this pack's URL regexes, with
the ratio. FAIL2BAN_REGEX=path overrides the lookup on PATH (fail2ban's package
starts a firewall-touching service on install, so deploy/setup.sh does not install
it). No asserts: figures for a person.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from engine.detect import packs, patterns, settings  # noqa: E402
from engine.detect.sink import DetectSink  # noqa: E402
from tests.unit.detect.corpus import ATTACKS  # noqa: E402

SETTINGS = {
    "format": "nginx",
    "packs": sorted(packs.PACKS),
    "window": "10m",
    "max_keys": 50_000,
    "windows": {
        "requests_1m": {"kind": "count", "window": "1m"},
        "rps_1m": {"kind": "rate", "window": "1m"},
        "errors_5m": {"kind": "count", "window": "5m", "where": {"status": ["401", "403", "404"]}},
        "paths_5m": {"kind": "distinct", "field": "path", "window": "5m"},
        "probes": {"kind": "bucket", "capacity": 10, "leak": 0.1, "lines": "hit"},
    },
}

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Mobile Safari/537.36",
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/2.0",
    "kube-probe/1.29",
    "Prometheus/2.48.0",
    "-",
]
WORDS = [
    "red",
    "shoes",
    "winter",
    "jacket",
    "o'neill",
    "sale",
    "size",
    "42",
    "kids",
    "café",
    "naïve",
]
WORDS += ["+", "&", "=", "%"]
SCANNER_UAS = [
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0)",
    "Mozilla/5.0 zgrab/0.x",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
    "WPScan v3.8.25 (https://wpscan.com/wordpress-security-scanner)",
]


ATTACK_TARGETS = [t for targets in ATTACKS.values() for t in targets]


def benign_target(r: random.Random) -> tuple[str, str]:
    """A path (and the status it usually gets)."""
    k = r.random()
    if k < 0.35:
        ext = r.choice(("js", "css", "png", "jpg", "woff2", "svg", "ico"))
        return (
            f"/static/{r.choice(('app', 'vendor', 'main', 'logo', 'hero'))}.{r.randrange(10**6):x}.{ext}",
            "200",
        )
    if k < 0.55:
        return f"/products/{r.randrange(50000)}?ref={r.choice(('home', 'search', 'mail'))}", "200"
    if k < 0.65:
        q = "+".join(
            r.choice(WORDS)
            .replace("+", "%2B")
            .replace("&", "%26")
            .replace("=", "%3D")
            .replace("%", "%25")
            if w
            else "x"
            for w in range(r.randrange(1, 4))
        )
        return f"/search?q={q}&page={r.randrange(1, 20)}&sort=price-asc", "200"
    if k < 0.8:
        return (
            f"/api/v2/{r.choice(('cart', 'orders', 'users', 'stock'))}/{r.randrange(10**5)}?"
            f"fields=id,name,price&ts={r.randrange(10**9)}",
            r.choice(("200", "200", "201", "204", "401")),
        )
    if k < 0.9:
        return r.choice(
            (
                "/",
                "/about",
                "/contact",
                "/blog/2026/12/how-to-choose-shoes",
                "/account/orders",
                "/checkout",
                "/favicon.ico",
                "/robots.txt",
            )
        ), "200"
    if k < 0.95:
        return f"/old/{r.randrange(1000)}.html", r.choice(("404", "301"))
    return f"/category/{r.choice(('men', 'women', 'kids'))}/{r.randrange(300)}", r.choice(
        ("304", "500", "200")
    )


def generate(path: str, n: int, seed: int = 7) -> int:
    r = random.Random(seed)
    uas = [b.format(v=v) for b in BROWSERS for v in range(110, 116)] + BOTS
    clients = [
        f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"
        for _ in range(10_000)
    ]
    attackers = [f"198.51.{r.randrange(256)}.{r.randrange(1, 255)}" for _ in range(300)]
    attacks = 0
    with open(path, "w", encoding="utf-8") as out:
        for i in range(n):
            ts = f"07/Dec/2026:{(i // 3600000) % 24:02d}:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d} +0000"
            if r.random() < 0.01:
                attacks += 1
                ip = r.choice(attackers)
                if r.random() < 0.15:
                    target, ua, status = benign_target(r)[0], r.choice(SCANNER_UAS), "404"
                else:
                    target, ua = r.choice(ATTACK_TARGETS), r.choice(uas[:30])
                    status = r.choice(("400", "403", "404", "200", "500"))
            else:
                ip = (
                    clients[min(int(r.paretovariate(1.2)) - 1, 9999)]
                    if r.random() < 0.3
                    else r.choice(clients)
                )
                target, status = benign_target(r)
                ua = r.choice(uas)
            method = "POST" if target.startswith("/api") and r.random() < 0.3 else "GET"
            ref = r.choice(("-", "https://shop.example.org/", "https://www.google.com/"))
            out.write(
                f'{ip} - - [{ts}] "{method} {target} HTTP/1.1" {status} {r.randrange(100, 90000)} '
                f'"{ref}" "{ua}"\n'
            )
    return attacks


def run(path: str, sink: DetectSink) -> tuple[float, float, int]:
    """(CPU seconds in the sink, CPU seconds in all, lines): reading the file is the
    follower's work, so the sink's share is timed apart from it."""
    lines_per_second = 100_000
    now, done, next_values = 1_000_000.0, 0, lines_per_second
    batch: list[str] = []
    size = 0
    in_sink = 0.0
    clock = time.process_time
    t0 = clock()
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            batch.append(raw.rstrip("\n"))
            size += len(raw)
            if size >= 1024 * 1024:
                t = clock()
                sink.feed(batch, now, path, 0)
                done += len(batch)
                now = 1_000_000.0 + done / lines_per_second
                if done >= next_values:
                    sink.values(now)
                    next_values += lines_per_second
                in_sink += clock() - t
                batch, size = [], 0
    t = clock()
    sink.feed(batch, now, path, 0)
    done += len(batch)
    sink.values(now)
    in_sink += clock() - t
    return in_sink, clock() - t0, done


def quality(path: str, sink: DetectSink) -> tuple[int, int, int, int]:
    """(attack lines, attack lines hit, benign lines, benign lines hit): attacks are
    the lines from the attackers' addresses (198.51.x.x), which send nothing else."""
    fmt, matcher = sink.settings.format, patterns.Matcher(sink.settings.patterns)
    a = ah = b = bh = 0
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            fields = fmt.parse(line)
            hit = bool(fields is not None and matcher.match(fields, line))
            if line.startswith("198.51."):
                a, ah = a + 1, ah + hit
            else:
                b, bh = b + 1, bh + hit
    return a, ah, b, bh


def fail2ban(path: str, lines: int, ours: float) -> None:
    """fail2ban-regex on the same file, CPU time of the child (as ours is CPU time)."""
    exe = os.environ.get("FAIL2BAN_REGEX") or shutil.which("fail2ban-regex")
    if not exe:
        print(
            "fail2ban-regex: the baseline is not installed (apt install fail2ban, or "
            "FAIL2BAN_REGEX=path/to/fail2ban-regex FAIL2BAN_FILTERS=path/to/filter.d)"
        )
        return
    filters = os.environ.get("FAIL2BAN_FILTERS", "/etc/fail2ban/filter.d")
    # the same URL regexes as this pack, as fail2ban failregex lines (no URL decoding:
    # fail2ban has none, so it also finds fewer of the encoded attacks)
    url_regexes = [
        p.regex for ps in packs.PACKS.values() for p in ps if p.field == "url" and p.regex
    ]
    custom = os.path.join(os.path.dirname(path), "vigil-pack.conf")
    with open(custom, "w", encoding="utf-8") as f:
        rules = [
            '^<HOST> \\S+ \\S+ \\[\\] "[A-Z]+ [^"]*(?i:' + rx.replace("%", "%%") + ")"
            for rx in url_regexes
        ]
        f.write("[Definition]\nfailregex = " + "\n            ".join(rules) + "\n")
        f.write("datepattern = ^[^\\[]*\\[({DATE})\n")
    for name, filt in (
        ("nginx-botsearch, 1 regex", os.path.join(filters, "nginx-botsearch.conf")),
        (f"this pack's {len(rules)} URL regexes", custom),
    ):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run([exe, path, filt], capture_output=True, text=True, timeout=7200)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        summary = next(
            (ln.strip() for ln in proc.stdout.splitlines() if ln.startswith("Lines:")),
            f"exit {proc.returncode}: {proc.stderr.strip()[-200:]}",
        )
        rate = lines / cpu
        print(f"fail2ban-regex ({name}): {cpu:.1f} s CPU, {rate:,.0f} lines/s; {summary}")
        print(f"  vigil detect (full pack) / fail2ban-regex: {ours / rate:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--keep", help="write the generated log here and keep it")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vigil-detect-")
    path = args.keep or os.path.join(tmp, "access.log")
    try:
        attacks = generate(path, args.lines)
        mib = os.path.getsize(path) / 2**20
        sink = DetectSink(settings.parse(SETTINGS))
        cpu, total, done = run(path, sink)
        rate = done / cpu
        print(
            f"log: {done:,} lines, {mib:.0f} MiB, {attacks:,} attack lines; "
            f"{len(sink.settings.patterns)} patterns in {len(sink.settings.packs)} packs, "
            f"{len(sink.settings.windows)} windows"
        )
        print(
            f"vigil detect (parse + patterns + windows + values): {cpu:.2f} s CPU, "
            f"{rate:,.0f} lines/s on one core "
            f"(target >= 100,000: {'met' if rate >= 100_000 else f'missed by {100_000 / rate:.2f}x'})"
        )
        print(
            f"  with reading the file and splitting lines too: {total:.2f} s CPU, "
            f"{done / total:,.0f} lines/s"
        )
        totals = sink.values(1_000_000.0 + done / 100_000)["totals"]
        print(
            f"keys tracked {totals['keys']}, dropped {totals['keys_dropped']}; hits by pack {totals['hits']}"
        )
        a, ah, b, bh = quality(path, sink)
        print(
            f"attack lines hit: {ah:,}/{a:,} ({100 * ah / max(a, 1):.1f} %); "
            f"benign lines hit: {bh:,}/{b:,} ({100 * bh / max(b, 1):.3f} %)"
        )
        if not args.no_baseline:
            fail2ban(path, done, rate)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
