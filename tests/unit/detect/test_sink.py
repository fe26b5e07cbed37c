"""DetectSink end to end: batches of lines in, the `each` list rules read out.

The batches are what the follower hands over (path, start offset, lines); the
clock is the test's, so every window is exact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.collectors.base import check_plain
from engine.detect.settings import parse
from engine.detect.sink import DetectSink


@dataclass(frozen=True)
class Batch:
    path: str
    start: int
    end: int
    lines: list[str]


def web(
    ip: str, target: str = "/", status: str = "200", ua: str = "Mozilla/5.0", user: str = "-"
) -> str:
    return (
        f'{ip} - {user} [07/Dec/2026:01:02:03 +0000] "GET {target} HTTP/1.1" {status} 10 "-" "{ua}"'
    )


def ssh(ip: str, user: str, what: str = "Failed password for") -> str:
    return f"Dec  7 01:02:03 host sshd[811]: {what} {user} from {ip} port 52114 ssh2"


def by_key(values: dict[str, Any], key: str = "ip") -> dict[str, dict[str, Any]]:
    return {el[key]: el for el in values["keys"]}


def sink(settings: dict[str, Any], t: list[float] | None = None) -> DetectSink:
    clock = t if t is not None else [1000.0]
    return DetectSink(parse(settings), clock=lambda: clock[0])


def test_sqli_hits_per_ip_with_evidence_and_offsets() -> None:
    s = sink({"format": "nginx", "packs": ["sqli", "scanners"], "evidence": 2})
    lines = [
        web("192.0.2.1", "/caf\u00e9"),  # non-ASCII before the hits: offsets count bytes
        web("203.0.113.5", "/q?id=1%27%20or%20%271%27=%271"),
        web("203.0.113.5", "/q?id=1+union+select+1,2"),
        web("203.0.113.5", "/q?id=1;drop table users", ua="sqlmap/1.7"),
    ]
    s.lines(Batch("/var/log/nginx/access.log", 5000, 0, lines))
    keys = by_key(s.values())
    attacker = keys["203.0.113.5"]
    assert attacker["labels"] == {"ip": "203.0.113.5"}
    assert attacker["hits"]["sqli"] == 3 and attacker["hits"]["scanners"] == 1
    assert keys["192.0.2.1"]["hits"] == {"sqli": 0, "scanners": 0}
    assert [e["line"] for e in attacker["evidence"]] == lines[2:]  # the last 2 kept
    first = 5000 + len(lines[0].encode()) + 1 + len(lines[1]) + 1
    assert attacker["evidence"][0]["offset"] == first
    assert attacker["evidence"][0]["path"] == "/var/log/nginx/access.log"
    assert attacker["evidence"][1]["patterns"] == ["sqli_stacked", "scanner_ua"]
    assert next(iter(by_key(s.values()))) == "203.0.113.5"  # most hits first
    check_plain(s.values(), "web")


def test_hits_leave_with_their_window() -> None:
    t = [1000.0]
    s = sink({"format": "nginx", "packs": ["xss"], "window": "1m", "idle": "10m"}, t)
    s.lines(Batch("a", 0, 0, [web("203.0.113.5", "/?q=<script>")]))
    assert by_key(s.values())["203.0.113.5"]["hits"]["xss"] == 1
    t[0] += 120
    el = by_key(s.values())["203.0.113.5"]
    assert el["hits"]["xss"] == 0 and el["patterns"] == {}
    assert s.values()["totals"]["hits"]["xss"] == 1  # totals are since the start


def test_sshd_failures_and_credential_stuffing() -> None:
    s = sink(
        {
            "format": "sshd",
            "windows": {
                "failures_10m": {"window": "10m", "where": {"outcome": ["failed"]}},
                "users_10m": {
                    "kind": "distinct",
                    "field": "user",
                    "window": "10m",
                    "where": {"outcome": ["failed", "invalid_user"]},
                },
            },
        }
    )
    lines = [ssh("198.51.100.7", f"user{i}") for i in range(12)]
    lines += [ssh("198.51.100.7", "x", "Invalid user")]  # not a failure: an attempt
    lines += [ssh("192.0.2.2", "alice")] * 3
    lines += [ssh("192.0.2.2", "alice", "Accepted password for")]
    lines += ["Dec  7 01:02:03 host CRON[1]: session opened"]
    s.lines(Batch("/var/log/auth.log", 0, 0, lines))
    v = s.values()
    keys = by_key(v)
    assert keys["198.51.100.7"]["failures_10m"] == 12
    assert keys["198.51.100.7"]["users_10m"] == 13  # many users from one ip
    assert keys["192.0.2.2"]["failures_10m"] == 3
    assert keys["192.0.2.2"]["users_10m"] == 1  # one user mistyping a password
    assert v["totals"]["unparsed"] == 1 and v["totals"]["lines"] == len(lines)


def test_status_floods_and_distinct_paths() -> None:
    s = sink(
        {
            "format": "nginx",
            "windows": {
                "errors_5m": {"where": {"status": [401, 403, "404"]}},
                "paths_5m": {"kind": "distinct", "field": "path"},
                "requests_1m": {"window": "1m"},
            },
        }
    )
    lines = [web("203.0.113.9", f"/admin{i}.php", "404") for i in range(40)]
    lines += [web("203.0.113.9", "/login", "401"), web("192.0.2.3", "/", "200")]
    s.lines(Batch("a", 0, 0, lines))
    keys = by_key(s.values())
    assert keys["203.0.113.9"]["errors_5m"] == 41
    assert keys["203.0.113.9"]["paths_5m"] == 41
    assert keys["203.0.113.9"]["requests_1m"] == 41
    assert keys["192.0.2.3"]["errors_5m"] == 0
    assert len(keys["203.0.113.9"]["evidence"]) == 5  # filtered windows' lines are evidence


def test_bucket_on_hits_fills_then_drains() -> None:
    t = [1000.0]
    s = sink(
        {
            "format": "nginx",
            "packs": ["traversal"],
            "windows": {
                "probes": {"kind": "bucket", "capacity": 3, "leak": 0.5, "lines": ["traversal"]}
            },
        },
        t,
    )
    s.lines(Batch("a", 0, 0, [web("203.0.113.9", "/../../etc/passwd")] * 3 + [web("203.0.113.9")]))
    el = by_key(s.values())["203.0.113.9"]
    assert el["probes"] == 3.0 and el["probes_full"] is True
    t[0] += 4
    el = by_key(s.values())["203.0.113.9"]
    assert el["probes"] == 1.0 and el["probes_full"] is False


def test_allowlists_skip_lines() -> None:
    s = sink(
        {
            "format": "nginx",
            "packs": ["sqli"],
            "allow_networks": ["10.0.0.0/8", "2001:db8::/32"],
            "allow": {"ua": ["^UptimeRobot/"]},
        }
    )
    lines = [
        web("10.1.2.3", "/?q=1'+or+'1'='1"),
        web("2001:db8::7", "/?q=1'+or+'1'='1"),
        web("192.0.2.4", "/?q=1'+or+'1'='1", ua="UptimeRobot/2.0"),
        web("not-an-ip", "/?q=1'+or+'1'='1"),
    ]
    s.lines(Batch("a", 0, 0, lines))
    v = s.values()
    assert v["totals"]["allowed"] == 3
    assert [el["ip"] for el in v["keys"]] == ["not-an-ip"]


def test_allow_answers_stay_right_for_repeated_and_many_user_agents() -> None:
    """The allow decision is remembered per text (user agents repeat): the same
    answers for repeats, for more texts than are remembered, and for long ones."""
    from engine.detect.patterns import CACHE_SIZE, CACHE_TEXT

    s = sink({"format": "nginx", "allow": {"ua": ["^UptimeRobot/"]}})
    uas = [f"UptimeRobot/{i}" if i % 3 == 0 else f"Mozilla/{i}" for i in range(CACHE_SIZE + 500)]
    uas += ["UptimeRobot/" + "x" * CACHE_TEXT, "Mozilla/" + "x" * CACHE_TEXT]
    for _ in range(2):
        s.lines(Batch("a", 0, 0, [web("192.0.2.4", "/", ua=ua) for ua in uas]))
    allowed = sum(1 for ua in uas if ua.startswith("UptimeRobot/"))
    assert s.values()["totals"]["allowed"] == 2 * allowed


def test_pack_allowlist_applies_to_its_patterns_only() -> None:
    s = sink(
        {
            "format": "nginx",
            "packs": [{"name": "scanners", "allow": {"path": ["^/cgi-bin/legacy"]}}, "xss"],
        }
    )
    s.lines(
        Batch(
            "a",
            0,
            0,
            [web("192.0.2.5", "/cgi-bin/legacy/app"), web("192.0.2.5", "/cgi-bin/legacy/<script>")],
        )
    )
    el = by_key(s.values())["192.0.2.5"]
    assert el["hits"] == {"scanners": 0, "xss": 1}


def test_key_cap_drops_and_lists_at_most_max_reported() -> None:
    s = sink({"format": "nginx", "max_keys": 50, "max_reported": 10, "packs": ["xss"]})
    lines = [web(f"192.0.2.{i}") for i in range(60)] + [web("192.0.2.59", "/<script>")]
    s.lines(Batch("a", 0, 0, lines))
    v = s.values()
    assert v["totals"]["keys"] == 50 and v["totals"]["keys_dropped"] == 10
    assert len(v["keys"]) == 10 and v["totals"]["keys_unlisted"] == 40
    assert v["keys"][0]["ip"] == "192.0.2.59"


def test_idle_keys_are_forgotten() -> None:
    t = [0.0]
    s = sink({"format": "nginx", "idle": "1m"}, t)
    s.lines(Batch("a", 0, 0, [web("192.0.2.1")]))
    t[0] = 61.0
    s.lines(Batch("a", 0, 0, [web("192.0.2.2")]))
    v = s.values()
    assert [el["ip"] for el in v["keys"]] == ["192.0.2.2"]
    assert v["totals"]["keys_expired"] == 1


def test_json_app_log_keys_by_user() -> None:
    s = sink(
        {
            "format": {
                "type": "json",
                "fields": {"user": "user.id", "ip": "client", "event": "event"},
            },
            "key": "user",
            "windows": {
                "failed_1h": {"window": "1h", "where": {"event": ["login_failed"]}},
                "ips_1h": {"kind": "distinct", "field": "ip", "window": "1h"},
            },
        }
    )
    lines = [
        f'{{"user": {{"id": "u1"}}, "client": "192.0.2.{i}", "event": "login_failed"}}'
        for i in range(5)
    ]
    lines += ['{"client": "192.0.2.9", "event": "login_failed"}', "not json"]
    s.lines(Batch("a", 0, 0, lines))
    v = s.values()
    el = by_key(v, "user")["u1"]
    assert el["labels"] == {"user": "u1"} and el["failed_1h"] == 5 and el["ips_1h"] == 5
    assert v["totals"]["unkeyed"] == 1 and v["totals"]["unparsed"] == 1


def test_values_of_an_idle_sink() -> None:
    v = sink({"format": "sshd"}).values()
    assert v["keys"] == [] and v["totals"]["lines"] == 0
    check_plain(v, "auth")


FULL = {
    "format": "nginx",
    "packs": ["sqli", "xss", "traversal", "cmdi", "scanners"],
    "windows": {
        "n": {"window": "1m"},
        "r": {"kind": "rate", "window": "1m"},
        "e": {"where": {"status": ["404"]}},
        "p": {"kind": "distinct", "field": "path"},
        "b": {"kind": "bucket", "capacity": 2, "leak": 1, "lines": "hit"},
        "x": {"lines": ["xss", "sqli_union"]},
    },
}


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
            st.builds(
                web,
                st.sampled_from(["192.0.2.1", "2001:db8::1", "x"]),
                st.text(max_size=60).map(lambda t: "/" + t.replace('"', "")),
                st.sampled_from(["200", "404"]),
            ),
        ),
        max_size=20,
    )
)
def test_any_lines_never_raise_and_give_plain_values(lines: list[str]) -> None:
    s = sink(FULL)
    s.lines(Batch("a", 0, 0, lines))
    v = s.values()
    check_plain(v, "web")
    assert v["totals"]["lines"] == len(lines)


def test_a_hostile_key_is_cut_to_a_label_sized_value() -> None:
    from engine.detect.sink import KEY_CHARS

    s = sink({"format": {"type": "json", "fields": {"user": "u"}}, "key": "user"})
    s.lines(Batch("a", 0, 0, ['{"u": "%s"}' % ("A" * 100_000)] * 2))
    (el,) = s.values()["keys"]
    assert el["user"] == "A" * KEY_CHARS and el["labels"] == {"user": "A" * KEY_CHARS}


def test_an_element_is_kept_only_while_nothing_about_its_key_changed() -> None:
    # a snapshot lists an untouched key with the same score by the element it listed
    # before; a line for the key (even one that changes no window's value, at the
    # same clock reading) or a window that moves with time gives a new one
    t = [1000.0]
    users = {"kind": "distinct", "field": "user", "where": {"status": ["401"]}}
    s = sink({"format": "nginx", "evidence": 3, "windows": {"users_5m": users}}, t)
    s.lines(Batch("a", 0, 0, [web("203.0.113.9", "/login", "401", user="bob")]))
    s.lines(Batch("a", 0, 0, [web("192.0.2.3", "/login", "401", user="ann")]))
    first = by_key(s.values())
    second = by_key(s.values())
    assert second["203.0.113.9"] is first["203.0.113.9"]
    # the same user again: users_5m stays 1, but there is one more line of evidence
    s.lines(Batch("a", 100, 100, [web("203.0.113.9", "/login", "401", user="bob")]))
    third = by_key(s.values())
    assert third["203.0.113.9"]["users_5m"] == 1
    assert len(third["203.0.113.9"]["evidence"]) == 2
    assert third["192.0.2.3"] is first["192.0.2.3"]
    t[0] += 301  # the user leaves its 5-minute window: a new element says so
    fourth = by_key(s.values())
    assert fourth["192.0.2.3"]["users_5m"] == 0
    assert fourth["192.0.2.3"] is not first["192.0.2.3"]
