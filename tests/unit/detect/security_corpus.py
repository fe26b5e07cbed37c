"""The security packs (rules/security/ over the collectors of deploy/security.yaml)
against an attack corpus and a benign corpus, replayed as the daemon would see them.

    .venv/bin/python -m tests.unit.detect.security_corpus     # prints the rates

Attack corpus: one address per pack, sending that pack's attack (the request
targets of corpus.py for the pattern packs; 401/403 and 404 floods, user-name
spraying and out-of-hours admin use for the window packs; sshd brute force and
user-name spraying) on a Tuesday from 02:00 UTC. Benign corpus: three hours of a
small shop's ordinary traffic and sshd logins from 09:00 UTC
(tests/testdata/security/, made by make_benign.py there).

A replay feeds the lines to the collector's own DetectSink (engine/detect/sink.py)
with the arrival time a follower would have given them (the time in the line),
and every 10 s of log time (the groups' interval) evaluates each rule's compiled
expression on each element of the sample, as the evaluator does. A pack detects
an attack when its rule fires for the attacker's address; a false positive is a
benign address any rule fires for. Pattern packs also get line rates: attack
lines the pack's patterns hit, and benign lines they hit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.config.build import ConfigLoader
from engine.config.model import Config, Rule
from engine.detect import settings as detect
from engine.detect.patterns import Matcher
from engine.detect.sink import DetectSink
from engine.expr.scope import EvalScope
from tests.unit.detect.corpus import ATTACKS

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "deploy" / "security.yaml"
DATA = ROOT / "tests" / "testdata" / "security"
ATTACK_START = datetime(2026, 12, 8, 2, 0, tzinfo=UTC).timestamp()  # a Tuesday, 02:00 UTC
STEP = 10.0  # the rule groups' interval
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SCANNER_UAS = ("sqlmap/1.7.2#stable (https://sqlmap.org)", "Mozilla/5.00 (Nikto/2.5.0)")

# pack -> (collector, rule that must fire, attacker address)
PACKS: dict[str, tuple[str, str, str]] = {
    "sqli": ("web", "web_sqli", "203.0.113.11"),
    "xss": ("web", "web_xss", "203.0.113.12"),
    "traversal": ("web", "web_path_traversal", "203.0.113.13"),
    "cmdi": ("web", "web_command_injection", "203.0.113.14"),
    "scanners": ("web", "web_scanner", "203.0.113.15"),
    "web_auth": ("web", "web_auth_failures", "203.0.113.16"),
    "web_404": ("web", "web_not_found_flood", "203.0.113.17"),
    "web_credential_stuffing": ("web", "web_credential_stuffing", "203.0.113.18"),
    "after_hours_admin": ("web", "web_admin_after_hours", "203.0.113.19"),
    "sshd_auth": ("auth", "ssh_auth_failures", "203.0.113.20"),
    "ssh_credential_stuffing": ("auth", "ssh_credential_stuffing", "203.0.113.21"),
}
PATTERN_PACKS = ("sqli", "xss", "traversal", "cmdi", "scanners")
# documented in README ("Security monitoring"): benign addresses a pack may flag
MAX_FALSE_POSITIVE_RATE = 0.0


def access(t: float, ip: str, target: str, status: int = 200, user: str = "-", ua: str = UA) -> str:
    ts = datetime.fromtimestamp(t, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'{ip} - {user} [{ts}] "GET {target} HTTP/1.1" {status} 512 "-" "{ua}"'


def sshd(t: float, n: int, message: str) -> str:
    ts = datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds")
    return f"{ts} web1 sshd[{4000 + n}]: {message}"


def attack(pack: str) -> list[tuple[float, str]]:
    """(arrival time, line) of one pack's attack, from its attacker's address."""
    _, _, ip = PACKS[pack]
    t0 = ATTACK_START
    if pack in PATTERN_PACKS:
        out = [(t0 + i * 5, access(t0 + i * 5, ip, x, 404)) for i, x in enumerate(ATTACKS[pack])]
        if pack == "scanners":  # scanner user agents on ordinary pages
            n = len(out)
            out += [
                (t0 + (n + i) * 5, access(t0 + (n + i) * 5, ip, f"/page/{i}", 200, ua=ua))
                for i, ua in enumerate(SCANNER_UAS)
            ]
        return out
    if pack == "web_auth":
        return [(t0 + i * 3, access(t0 + i * 3, ip, "/api/v2/orders", 401 + 2 * (i % 2)))
                for i in range(25)]  # fmt: skip
    if pack == "web_404":
        return [(t0 + i, access(t0 + i, ip, f"/backup-{i}.tar.gz", 404)) for i in range(40)]
    if pack == "web_credential_stuffing":
        users = ("admin", "root", "test", "guest", "info", "sales", "support", "oracle")
        return [(t0 + i * 4, access(t0 + i * 4, ip, "/reports/", 401, user=u))
                for i, u in enumerate(users)]  # fmt: skip
    if pack == "after_hours_admin":
        pages = ("/admin/", "/admin/users", "/admin/export?all=1")
        return [(t0 + i * 20, access(t0 + i * 20, ip, p, 200, user="anna"))
                for i, p in enumerate(pages)]  # fmt: skip
    if pack == "sshd_auth":
        return [(t0 + i * 2, sshd(t0 + i * 2, i,
                 f"Failed password for root from {ip} port {40000 + i} ssh2")) for i in range(15)]  # fmt: skip
    if pack == "ssh_credential_stuffing":
        users = ("admin", "test", "oracle", "ubuntu", "pi", "git", "postgres", "ftp")
        out = []
        for i, u in enumerate(users):
            t = t0 + i * 6
            out.append((t, sshd(t, 2 * i, f"Invalid user {u} from {ip} port {41000 + i}")))
            out.append((t + 1, sshd(t + 1, 2 * i + 1,
                        f"Failed password for invalid user {u} from {ip} port {41000 + i} ssh2")))  # fmt: skip
        return out
    raise KeyError(pack)


def benign(collector: str) -> list[tuple[float, str]]:
    """(arrival time, line) of the benign corpus of a collector, from its file."""
    name = "benign_access.log" if collector == "web" else "benign_auth.log"
    out = []
    for line in (DATA / name).read_text(encoding="utf-8").splitlines():
        if collector == "web":
            stamp = line[line.index("[") + 1 : line.index("]")]
            t = datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z").timestamp()
        else:
            t = datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()
        out.append((t, line))
    return out


def load() -> Config:
    result = ConfigLoader().load(str(CONFIG))
    assert not result.problems, [p.format() for p in result.problems]
    assert result.config is not None
    return result.config


def sinks(config: Config) -> dict[str, DetectSink]:
    return {
        c.name: DetectSink(detect.parse(c.settings))
        for c in config.collectors
        if c.type == "logtail"
    }


def rules_of(config: Config) -> dict[str, list[Rule]]:
    """Rules by the collector their `each` reads (`web.keys` -> web)."""
    out: dict[str, list[Rule]] = {}
    for group in config.groups:
        for rule in group.rules:
            assert rule.each is not None, rule.id
            out.setdefault(rule.each.split(".")[0], []).append(rule)
    return out


@dataclass
class Replay:
    fired: dict[str, set[str]] = field(default_factory=dict)  # rule -> keys it fired for
    last: dict[str, Any] = field(default_factory=dict)  # the last sample's keys and totals


def replay(
    sink: DetectSink, collector: str, rules: list[Rule], lines: list[tuple[float, str]]
) -> Replay:
    out = Replay()
    lines = sorted(lines)
    i, now = 0, lines[0][0] if lines else ATTACK_START
    while i < len(lines):
        now += STEP
        chunk = []
        while i < len(lines) and lines[i][0] < now:
            chunk.append(lines[i][1])
            i += 1
        sink.feed(chunk, now)
        out.last = sink.snapshot(now)
        base = EvalScope(values={collector: out.last}, now=now)
        for rule in rules:
            for el in out.last["keys"]:
                key = el["labels"][sink.settings.key]
                if rule.compiled.evaluate_bool(base.for_element(el, key)):
                    out.fired.setdefault(rule.id, set()).add(key)
    return out


@dataclass(frozen=True)
class Rates:
    pack: str
    rule: str
    detected: bool  # the rule fired for the attacker
    others: tuple[str, ...]  # other rules that fired for the attacker
    benign_keys: int
    false_positives: tuple[str, ...]  # benign addresses the rule fired for
    attack_lines: int = 0
    attack_lines_hit: int = 0
    benign_lines: int = 0
    benign_lines_hit: int = 0

    @property
    def fp_rate(self) -> float:
        return len(self.false_positives) / self.benign_keys if self.benign_keys else 0.0


def keys_of(sink: DetectSink, lines: list[tuple[float, str]]) -> set[str]:
    parse, key = sink.settings.format.parse, sink.settings.key
    return {f[key] for _, line in lines if (f := parse(line)) is not None and key in f}


def line_hits(sink: DetectSink, pack: str, lines: list[tuple[float, str]]) -> int:
    """Lines that at least one pattern of `pack` hits."""
    matcher = Matcher([p for p in sink.settings.patterns if p.pack == pack])
    parse = sink.settings.format.parse
    hit = 0
    for _, line in lines:
        f = parse(line)
        if f is not None and matcher.match(f, line):
            hit += 1
    return hit


def rates() -> list[Rates]:
    config = load()
    by_collector = rules_of(config)
    benign_runs = {}
    for collector in ("web", "auth"):
        sink = sinks(config)[collector]
        benign_runs[collector] = (
            replay(sink, collector, by_collector[collector], benign(collector)),
            sink,
        )
    out = []
    for pack, (collector, rule, ip) in PACKS.items():
        sink = sinks(config)[collector]
        lines = attack(pack)
        run = replay(sink, collector, by_collector[collector], lines)
        quiet, _ = benign_runs[collector]
        r = Rates(
            pack=pack,
            rule=rule,
            detected=ip in run.fired.get(rule, set()),
            others=tuple(sorted(r for r, ks in run.fired.items() if ip in ks and r != rule)),
            benign_keys=len(keys_of(sink, benign(collector))),
            false_positives=tuple(sorted(quiet.fired.get(rule, set()))),
        )
        if pack in PATTERN_PACKS:
            probe = sinks(config)[collector]
            blines = benign(collector)
            r = Rates(
                **{**r.__dict__,
                   "attack_lines": len(lines), "attack_lines_hit": line_hits(probe, pack, lines),
                   "benign_lines": len(blines), "benign_lines_hit": line_hits(probe, pack, blines)},
            )  # fmt: skip
        out.append(r)
    return out


def table(rows: list[Rates]) -> Iterator[str]:
    yield (
        f"{'pack':<24} {'rule':<24} {'attack':>8} {'false pos.':>14} {'FP rate':>8}"
        f" {'attack lines hit':>17} {'benign lines hit':>17}  also fired"
    )
    for r in rows:
        lines = (
            f" {r.attack_lines_hit:>8}/{r.attack_lines:<8} {r.benign_lines_hit:>8}/{r.benign_lines:<8}"
            if r.attack_lines
            else f" {'-':>17} {'-':>17}"
        )
        yield (
            f"{r.pack:<24} {r.rule:<24} {'detected' if r.detected else 'MISSED':>8}"
            f" {len(r.false_positives):>5}/{r.benign_keys:<8} {r.fp_rate:>8.2%}"
            + lines
            + f"  {', '.join(r.others) or '-'}"
        )


def main() -> int:
    rows = rates()
    for line in table(rows):
        print(line)
    bad = [r for r in rows if not r.detected or r.fp_rate > MAX_FALSE_POSITIVE_RATE]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
