"""A real `vigil run` reacts to a write: with the collector and its rule group both
on a 10 s interval, an SQL injection line appended to a followed log fires its
`each` alert within about a second (the write wakes a logtail pass, and its new
pattern hits wake an evaluation of the group that reads the collector). Before,
the line waited for the next collection and then for the next group tick
(0 to 20 s). A collector rebuilt by a reload is woken by writes to its new file."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.integration.daemon import Daemon

RULES = """
group: web
interval: 10s
rules:
  - id: web_sqli
    each: web.keys
    expr: it.hits.sqli >= 1
    severity: critical
"""

COLLECTOR = (
    "  - {{name: web, type: logtail, paths: [{log}], interval: 10s, start: end,\n"
    "     format: nginx, key: ip, packs: [sqli]}}\n"
)

BOUND = 1.5  # seconds; well under the 10 s interval, with room for a loaded machine


def attack(ip: str) -> str:
    return (
        f'{ip} - - [07/Dec/2026:01:30:00 +0000] "GET /item?id=1%27%20OR%20%271%27%3D%271 '
        'HTTP/1.1" 200 512 "-" "curl/8.5.0"\n'
    )


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=5).status_code == 200
    except httpx.TransportError:  # the API is not listening yet
        return False


def start(tmp_path: Path, log: Path) -> Daemon:
    d = Daemon(tmp_path, RULES)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        cfg.read_text().replace("collectors:\n", "collectors:\n" + COLLECTOR.format(log=log))
    )
    d.start()
    deadline = time.monotonic() + 30
    while not ready(d.url):
        assert time.monotonic() < deadline, "the daemon did not get ready"
        time.sleep(0.05)
    time.sleep(1.0)  # the first ticks are over: only a reaction is early now
    return d


def fire(d: Daemon, log: Path, ips: list[str]) -> list[float]:
    """Seconds from appending each address's attack line to its alert's `firing`."""
    took = []
    for ip in ips:
        t0 = time.monotonic()
        with log.open("a") as f:
            f.write(attack(ip))
        d.wait_for(
            lambda evs, ip=ip: any(
                e["event"] == "firing" and e.get("labels", {}).get("ip") == ip for e in evs
            ),
            15,
            f"the alert for {ip}",
        )
        took.append(time.monotonic() - t0)
    return took


def test_a_line_appended_to_a_followed_log_fires_its_alert_long_before_the_interval(
    tmp_path: Path,
) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    d = start(tmp_path, log)
    try:
        took = fire(d, log, ["203.0.113.9", "203.0.113.10", "203.0.113.11"])
        assert max(took) < BOUND, took
    finally:
        d.stop()


def test_a_collector_changed_by_a_reload_is_woken_by_writes_to_its_new_file(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "old.log", tmp_path / "new.log"
    old.write_text("")
    new.write_text("")
    d = start(tmp_path, old)
    try:
        cfg = tmp_path / "vigil.yaml"
        cfg.write_text(cfg.read_text().replace(f"paths: [{old}]", f"paths: [{new}]"))
        d.wait_for(
            lambda evs: sum(e["event"] == "config_loaded" for e in evs) >= 2, 30, "the reload"
        )
        time.sleep(1.0)  # the new collector's first read is over
        took = fire(d, new, ["198.51.100.20", "198.51.100.21"])
        assert max(took) < BOUND, took
    finally:
        d.stop()
