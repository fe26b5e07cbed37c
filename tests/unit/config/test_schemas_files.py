"""The JSON Schemas in schemas/.

They must be valid draft-07, usable as they are by check-jsonschema (what operators
run in CI) and by editors, and they must agree with vigil's own reading of YAML
(YAML 1.2 core schema, engine/config/load.py). Every inline document below is
validated four ways: vigil's loader + jsonschema, vigil's loader + fastjsonschema
(the loader's fast path), and the real `check-jsonschema` command on a temp file;
all must give the expected verdict.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import pytest

from engine.common.durations import DURATION_RE, parse_size
from engine.config.load import load_text

ROOT = Path(__file__).resolve().parents[3]
SCHEMA_DIR = ROOT / "schemas"
NAMES = ("config", "rules", "channels")
BASE_ID = "https://vigil.dev/schemas/"
DRAFT7 = "http://json-schema.org/draft-07/schema#"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
ANNOTATIONS = {"description", "default", "examples", "title", "$comment"}


@cache
def schema(name: str) -> dict[str, Any]:
    with open(SCHEMA_DIR / f"{name}.schema.json", encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


@cache
def validator(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(
        schema(name), format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


@cache
def fast(name: str) -> Any:
    return fastjsonschema.compile(schema(name), use_default=False)


def walk(
    node: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every dict in a schema, with its JSON path."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, (*path, i))


def is_schema_position(path: tuple[str | int, ...]) -> bool:
    """False for dicts that are data (examples, defaults, enum/const values)."""
    return not any(p in ("examples", "default", "enum", "const") for p in path)


def errors(name: str, data: Any) -> list[jsonschema.ValidationError]:
    return sorted(validator(name).iter_errors(data), key=lambda e: list(e.absolute_path))


# ------------------------------------------------------------------ the schema files


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_draft7_with_stable_id(name: str) -> None:
    s = schema(name)
    assert s["$schema"] == DRAFT7
    assert s["$id"] == f"{BASE_ID}{name}.schema.json"
    jsonschema.Draft7Validator.check_schema(s)
    assert s["type"] == "object"
    assert s["additionalProperties"] is False


@pytest.mark.parametrize("name", NAMES)
def test_schema_file_is_hand_readable(name: str) -> None:
    text = (SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8")
    assert text.endswith("}\n")
    for n, line in enumerate(text.splitlines(), 1):
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0, f"line {n} is not indented by a multiple of 2"
        assert "\t" not in line, f"line {n} has a tab"


@pytest.mark.parametrize("name", NAMES)
def test_every_property_and_definition_is_described(name: str) -> None:
    s = schema(name)
    missing = []
    for path, node in walk(s):
        # conditions (`if`, `not`) are not what an editor shows
        if not is_schema_position(path) or "if" in path or "not" in path:
            continue
        for key, sub in node.get("properties", {}).items():
            if "description" not in sub:
                missing.append("/".join(map(str, (*path, "properties", key))))
    for key, sub in s.get("definitions", {}).items():
        if "description" not in sub:
            missing.append(f"definitions/{key}")
    assert not missing


@pytest.mark.parametrize("name", NAMES)
def test_ref_siblings_are_annotations_only(name: str) -> None:
    """Draft-07 ignores every keyword beside $ref: a constraint there would be a no-op."""
    bad = [
        (path, sorted(set(node) - ANNOTATIONS - {"$ref"}))
        for path, node in walk(schema(name))
        if is_schema_position(path) and "$ref" in node and set(node) - ANNOTATIONS - {"$ref"}
    ]
    assert not bad
    defs = schema(name)["definitions"]
    for path, node in walk(schema(name)):
        if is_schema_position(path) and isinstance(node.get("$ref"), str):
            assert node["$ref"].startswith("#/definitions/"), path
            assert node["$ref"].removeprefix("#/definitions/") in defs, path


@pytest.mark.parametrize("name", NAMES)
def test_defaults_and_examples_are_valid(name: str) -> None:
    s = schema(name)
    checked = 0
    for path, node in walk(s):
        if not is_schema_position(path) or path[-1:] == ("definitions",):
            continue
        if path and path[-1] == "properties":
            continue
        values = list(node.get("examples", []))
        if "default" in node:
            values.append(node["default"])
        if not values:
            continue
        sub = {k: v for k, v in node.items() if k not in ("default", "examples")}
        sub["definitions"] = s["definitions"]
        v = jsonschema.Draft7Validator(
            sub, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
        )
        for value in values:
            errs = [e.message for e in v.iter_errors(value)]
            assert not errs, (path, value, errs)
            checked += 1
    assert checked > 5


@pytest.mark.parametrize("name", NAMES)
def test_patterns_work_in_python_and_ecmascript(name: str) -> None:
    """check-jsonschema matches patterns as ECMAScript (regress), vigil as Python."""
    regress = pytest.importorskip("regress")
    for path, node in walk(schema(name)):
        if is_schema_position(path) and isinstance(node.get("pattern"), str):
            re.compile(node["pattern"])
            regress.Regex(node["pattern"], flags="u")
        if is_schema_position(path) and isinstance(node.get("propertyNames"), dict):
            pattern = node["propertyNames"].get("pattern")
            if pattern:
                re.compile(pattern)
                regress.Regex(pattern, flags="u")


DURATION_SAMPLES = [
    "0", "0s", "30s", "5m", "1h30m", "2d", "1w", "250ms", "1.5h", "1h30m15s", "00s", "0.0s",
    "", "s", "5", "5 m", "5M", "-5m", "1h 30m", "12:30", "1.h", ".5h", "5mm", "1y", "0m0s",
    "1e3s", "PT5M",
]  # fmt: skip


def test_duration_pattern_is_the_engines() -> None:
    for name in NAMES:
        defs = schema(name)["definitions"]
        duration = defs.get("duration")
        positive = defs.get("positive_duration")
        if duration:
            pattern = duration["pattern"]
            for text in DURATION_SAMPLES:
                assert bool(re.search(pattern, text)) == bool(DURATION_RE.match(text)), text
        assert positive
        for text in DURATION_SAMPLES:
            ok = bool(re.search(positive["pattern"], text))
            assert ok == (
                bool(DURATION_RE.match(text)) and re.search(r"[1-9]", text) is not None
            ), text


HTTP_CHANNELS = {
    "webhook", "slack", "discord", "teams", "mattermost", "telegram", "pagerduty",
    "opsgenie", "twilio", "pushover", "alertmanager",
}  # fmt: skip


SIZES_OK = ["64MiB", "1GB", "512k", "64", "64 MiB", "64KiB", "1mb", "1Ti", "010"]
SIZES_BAD = ["0", "0MiB", "", "lots", "1.5MiB", "-1", "64 iB", "64XB"]


def test_size_pattern_is_a_subset_of_parse_size() -> None:
    """What the schema accepts, engine.common.durations.parse_size reads as more than 0 bytes."""
    pattern = schema("config")["definitions"]["size"]["pattern"]
    for text in SIZES_OK:
        assert re.search(pattern, text), text
        assert parse_size(text) > 0, text
    for text in SIZES_BAD:
        assert not re.search(pattern, text), text


def _types_in(definition: dict[str, Any]) -> dict[str, str]:
    """type name -> the definition its if/then selects."""
    out = {}
    for branch in definition["allOf"]:
        assert branch["if"]["required"] == ["type"]
        assert branch["if"]["type"] == "object"
        type_name = branch["if"]["properties"]["type"]["const"]
        out[type_name] = branch["then"]["$ref"].removeprefix("#/definitions/")
    return out


@pytest.mark.parametrize(
    ("name", "definition", "group"),
    [("config", "collector", "vigil.collectors"), ("channels", "channel", "vigil.channels")],
)
def test_plugin_types_match_entry_points(name: str, definition: str, group: str) -> None:
    """Every built-in registered in pyproject.toml has settings in the schema, and back."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        registered = set(tomllib.load(f)["project"]["entry-points"][group])
    s = schema(name)
    parent = s["definitions"][definition]
    types = _types_in(parent)
    assert set(types) == registered
    assert set(parent["properties"]["type"]["examples"]) == registered
    common = set(parent["properties"])
    for type_name, target in types.items():
        d = s["definitions"][target]
        assert d["additionalProperties"] is False, target
        assert d["properties"]["type"]["const"] == type_name
        own = set(d["properties"])
        # common keys are listed (so additionalProperties lets them through) ...
        if definition == "channel" and type_name not in HTTP_CHANNELS:
            assert common - own == {"deny_networks", "allow_networks", "proxy"}, target
        else:
            assert common <= own, target
        # ... but carry no constraints there: they are checked once, by the parent
        for key in common & own:
            if key != "type":
                assert set(d["properties"][key]) == {"description"}, (target, key)


# ------------------------------------------------------------------ documents


@dataclass(frozen=True)
class Case:
    schema: str
    id: str
    text: str
    valid: bool

    @property
    def filename(self) -> str:
        return f"{self.schema}-{self.id}.yaml"


CONFIG_FULL = """\
rules: [rules, /etc/vigil/rules.d]
channels: [channels]
data_dir: /var/lib/vigil
default_interval: 15s
collectors:
  - {name: system, type: system, processes: [nginx, postgres], disks: [/, /var]}
  - {name: api, type: http, url: "https://example.org/health", interval: 10s, timeout: 5s,
     expect_status: 200, body_regex: "ok", json_path: "$.status"}
  - name: sites
    type: http
    method: HEAD
    targets:
      - {url: "https://eu.example.org/", labels: {site: eu}}
      - {url: "https://us.example.org/", labels: {site: us}}
    headers: {Authorization: "Bearer ${env:PROBE_TOKEN}"}
    expect_status: [200, 204]
    verify_tls: false
    follow_redirects: true
    max_body_bytes: 65536
  - {name: queue, type: command, argv: [/usr/local/bin/queue-depth, --json], parse: json,
     env: {QUEUE: main}, cwd: /tmp}
  - {name: app, type: file, path: /var/lib/app/metrics.json, format: json}
  - {name: biz, type: push, ttl: 5m}
  - {name: fixed, type: static, values: {answer: 42, ok: true}}
api:
  listen: 127.0.0.1:9595
  tokens:
    - {name: ops, sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
       role: operator}
    - {name: ci, sha256: "${file:/etc/vigil/ci.sha256}", role: viewer}
  max_body_bytes: 1048576
log:
  fsync: transitions
  fsync_interval: 1s
  segment_bytes: 64MiB
  retention: 30d
"""

RULES_FULL = """\
group: host
interval: 15s
rules:
  - id: host_cpu_high
    expr: system.cpu_percent > 90
    for: 2m
    keep_firing_for: 1m
    resolve_expr: system.cpu_percent < 80
    severity: warning
    labels: {team: infra}
    annotations:
      summary: "CPU at {{ value | round(1) }}% on {{ labels.host }}"
      runbook: https://wiki.example.org/cpu
    no_data: ok
    on_error: error
    channels: [ops-slack]
    enabled: true
    flapping: {max_changes: 6, window: 10m}
    description: CPU is busy for a while.
  - id: disk.full
    expr: it.used_percent > 95
    each: system.disks
    consecutive: 3
    severity: critical
  - {id: always-on, expr: "true", for: 0}
"""

CHANNELS_FULL = """\
channels:
  - name: ops-slack
    type: slack
    url: ${env:SLACK_WEBHOOK_URL}
    channel: "#ops"
    username: vigil
    icon_emoji: ":rotating_light:"
    templates: {title: "[{{ severity|upper }}] {{ annotations.summary }}"}
    deny_networks: [169.254.0.0/16, "fd00::/8"]
  - name: oncall
    type: pagerduty
    routing_key: ${file:/etc/vigil/pagerduty.key}
    base_url: http://127.0.0.1:8080
    source: web-1
    client: vigil
    client_url: https://vigil.example.org/
  - name: audit-hook
    type: webhook
    url: https://hooks.example.org/vigil
    secret: ${env:HOOK_SECRET}
    headers: {X-Team: ops}
    method: PUT
    rate_limit: {max: 30, per: 1m}
    timeout: 10s
    allow_networks: [203.0.113.0/24, 10.1.2.3]
  - {name: console, type: log, level: warning, stream: stderr}
  - {name: archive, type: file, path: /var/log/vigil/notify.jsonl}
  - {name: fake, type: memory}
  - {name: chat, type: discord, url: "${env:DISCORD_URL}", username: vigil}
  - {name: msteams, type: teams, url: "${env:TEAMS_URL}"}
  - {name: mm, type: mattermost, url: "${env:MM_URL}", channel: town-square, username: vigil}
  - {name: tg, type: telegram, bot_token: "${env:TG_TOKEN}", chat_id: -1001234567890,
     base_url: "http://127.0.0.1:8081", parse_mode: HTML}
  - name: mail
    type: email
    smtp_host: smtp.example.org
    smtp_port: 587
    tls: starttls
    username: vigil
    password: ${env:SMTP_PASSWORD}
    from: "vigil <vigil@example.org>"
    to: [oncall@example.org, "${env:EXTRA_RECIPIENT}"]
    cc: [boss@example.org]
    verify_tls: true
    ca_file: /etc/ssl/certs/internal.pem
  - name: genie
    type: opsgenie
    api_key: ${env:OPSGENIE_API_KEY}
    base_url: https://api.eu.opsgenie.com
    responders: [{type: team, name: ops}, {type: user, name: jane@example.org}]
    tags: [vigil]
  - name: manager-sms
    type: twilio
    account_sid: ${env:TWILIO_SID}
    auth_token: ${env:TWILIO_TOKEN}
    from: "+15551234567"
    to: ["+15557654321"]
  - name: phone
    type: pushover
    token: ${env:PUSHOVER_TOKEN}
    user: ${env:PUSHOVER_USER}
    priorities: {info: -2, warning: 0, critical: 1, emergency: 2}
  - {name: am, type: alertmanager, urls: ["http://am-1:9093", "http://am-2:9093"],
     resolve_timeout: 5m}
  - {name: am-one, type: alertmanager, url: "http://127.0.0.1:9093",
     headers: {Authorization: "Bearer ${env:AM_TOKEN}"}}
  - name: block-ip
    type: exec
    argv: [/usr/local/bin/block-ip, "{{ labels.ip }}"]
    timeout: 30s
    env: {FIREWALL: nft}
    cwd: /
routes:
  - match: {severity: [critical, emergency]}
    channels: [oncall, ops-slack]
    group_by: [rule, host]
    group_wait: 10s
    group_interval: 5m
    repeat_interval: 4h
    active_time: [business_hours]
    escalate:
      - {after: 15m, channels: [manager-sms]}
  - match_re: {host: "web-[0-9]+"}
    channels: [ops-slack]
    continue: true
    group_by: ["..."]
    mute_time: [night]
    templates: {body: "{{ alerts | length }} alerts"}
  - channels: [ops-slack]
inhibit:
  - {source: {severity: critical}, target: {severity: warning}, equal: [host]}
  - {source_re: {rule: "disk_.*"}, target: {rule: [host_io_slow]}}
time_intervals:
  - {name: business_hours, weekdays: [mon-fri], times: ["09:00-18:00"], timezone: Europe/Berlin}
  - {name: night, times: ["00:00-06:00", "22:00-24:00"]}
  - {name: year_end, weekdays: [saturday, sun], days_of_month: [1, "24-31"], months: [dec, 1, jan-feb]}
silences:
  - {match: {rule: host_cpu_high, host: build-7}, until: "2026-12-01T00:00:00Z", reason: "load test"}
  - match_re: {host: "build-.*"}
    starts: 2026-11-30T22:00:00+01:00
    until: 2026-12-01T06:00:00Z
    reason: nightly rebuild
    created_by: jane
templates:
  slack_title: "[{{ severity|upper }}] {{ annotations.summary }}"
"""


def rule(extra: str) -> str:
    return "group: g\nrules:\n  - id: r\n    expr: system.up == 0\n" + extra


def chan(body: str) -> str:
    return "channels:\n  - " + body + "\n"


def coll(body: str) -> str:
    return "collectors:\n  - " + body + "\n"


CASES = [
    # ---- vigil.yaml
    Case("config", "full", CONFIG_FULL, True),
    Case("config", "empty-mapping", "{}\n", True),
    Case("config", "typo-top-level", "rule: [rules]\n", False),
    Case("config", "rules-not-a-list", "rules: rules\n", False),
    Case("config", "interval-without-unit", "default_interval: 15\n", False),
    Case("config", "interval-zero", "default_interval: 0s\n", False),
    Case("config", "sexagesimal-interval", "default_interval: 1:30\n", False),
    Case("config", "listen-ipv6", "api: {listen: '[::1]:9595'}\n", True),
    Case("config", "listen-no-port", "api: {listen: localhost}\n", False),
    Case("config", "listen-int", "api: {listen: 9595}\n", False),
    Case("config", "token-bad-digest", "api: {tokens: [{name: a, sha256: abc, role: admin}]}\n", False),
    Case("config", "token-bad-role", "api: {tokens: [{name: a, sha256: '" + "a" * 64 + "', role: root}]}\n", False),
    Case("config", "token-missing-role", "api: {tokens: [{name: a, sha256: '" + "a" * 64 + "'}]}\n", False),
    Case("config", "api-typo", "api: {listn: 127.0.0.1:9595}\n", False),
    Case("config", "fsync-bad", "log: {fsync: sometimes}\n", False),
    Case("config", "segment-bytes-int", "log: {segment_bytes: 1048576}\n", True),
    Case("config", "segment-bytes-gb", "log: {segment_bytes: 1GB}\n", True),
    Case("config", "segment-bytes-bad", "log: {segment_bytes: lots}\n", False),
    Case("config", "collector-no-type", coll("{name: x}"), False),
    Case("config", "collector-bad-name", coll("{name: My-API, type: http, url: 'https://x'}"), False),
    Case("config", "collector-reserved-name", coll("{name: rate, type: static, values: {}}"), False),
    Case("config", "collector-it-name", coll("{name: it, type: push}"), False),
    Case("config", "collector-typo", coll("{name: api, type: http, url: 'https://x', timout: 5s}"), False),
    Case("config", "collector-system-key-on-http", coll("{name: api, type: http, url: 'https://x', processes: [a]}"), False),
    Case("config", "http-url-and-targets", coll("{name: a, type: http, url: 'https://x', targets: [{url: 'https://y'}]}"), False),
    Case("config", "http-neither-url-nor-targets", coll("{name: a, type: http}"), False),
    Case("config", "http-url-ref", coll("{name: a, type: http, url: '${env:HEALTH_URL}'}"), True),
    Case("config", "http-url-without-scheme", coll("{name: a, type: http, url: example.org/health}"), False),
    Case("config", "http-method-bad", coll("{name: a, type: http, url: 'https://x', method: DELETE}"), False),
    Case("config", "http-status-bad", coll("{name: a, type: http, url: 'https://x', expect_status: 99}"), False),
    Case("config", "http-verify-tls-no", coll("{name: a, type: http, url: 'https://x', verify_tls: no}"), False),
    Case("config", "http-target-typo", coll("{name: a, type: http, targets: [{url: 'https://x', label: {a: b}}]}"), False),
    Case("config", "command-empty-argv", coll("{name: c, type: command, argv: []}"), False),
    Case("config", "command-no-argv", coll("{name: c, type: command}"), False),
    Case("config", "command-number-arg", coll("{name: c, type: command, argv: [/bin/x, 5]}"), False),
    Case("config", "command-parse-bad", coll("{name: c, type: command, argv: [x], parse: yaml}"), False),
    Case("config", "file-no-path", coll("{name: f, type: file}"), False),
    Case("config", "file-format-bad", coll("{name: f, type: file, path: /x, format: csv}"), False),
    Case("config", "push-ttl-bad", coll("{name: p, type: push, ttl: forever}"), False),
    Case("config", "static-no-values", coll("{name: s, type: static}"), False),
    Case("config", "unknown-collector-type", coll("{name: prom, type: prometheus, interval: 30s, url: 'http://p:9090', query: up}"), True),
    Case("config", "unknown-collector-bad-common", coll("{name: prom, type: prometheus, interval: 30}"), False),
    Case("config", "collector-not-a-mapping", coll("system"), False),
    Case("config", "collector-fractional-interval", coll("{name: s, type: system, interval: 1.5m}"), True),
    Case("config", "http-status-string", coll("{name: a, type: http, url: 'https://x', expect_status: [200, '204']}"), False),
    Case("config", "http-extras", coll("{name: a, type: http, url: 'https://x', method: POST, body: '{\"q\": 1}', ca_file: /etc/ca.pem, proxy: 'http://proxy:3128', max_body_bytes: 64KiB}"), True),
    Case("config", "http-body-size-zero", coll("{name: a, type: http, url: 'https://x', max_body_bytes: 0}"), False),
    Case("config", "file-max-age", coll("{name: f, type: file, path: /x.prom, format: prometheus, max_age: 5m}"), True),
    Case("config", "listen-any", "api: {listen: 0.0.0.0:9595}\n", True),
    # ---- rule files
    Case("rules", "full", RULES_FULL, True),
    Case("rules", "minimal", rule(""), True),
    Case("rules", "no-group", "rules: []\n", False),
    Case("rules", "no-rules", "group: g\n", False),
    Case("rules", "empty-rules", "group: g\nrules: []\n", True),
    Case("rules", "bad-group-name", "group: my group\nrules: []\n", False),
    Case("rules", "top-level-typo", "group: g\nintervall: 15s\nrules: []\n", False),
    Case("rules", "enabled-no", rule("    enabled: no\n"), False),
    Case("rules", "enabled-false", rule("    enabled: false\n"), True),
    Case("rules", "consecutive-octal-looking", rule("    consecutive: 010\n"), True),
    Case("rules", "consecutive-zero", rule("    consecutive: 0\n"), False),
    Case("rules", "for-sexagesimal", rule("    for: 12:30\n"), False),
    Case("rules", "for-bare-number", rule("    for: 30\n"), False),
    Case("rules", "for-zero", rule("    for: 0\n"), True),
    Case("rules", "for-compound", rule("    for: 1h30m\n"), True),
    Case("rules", "for-and-consecutive", rule("    for: 2m\n    consecutive: 3\n"), False),
    Case("rules", "rule-typo", rule("    severty: critical\n"), False),
    Case("rules", "bad-severity", rule("    severity: high\n"), False),
    Case("rules", "bad-id", rule("").replace("id: r", "id: Host CPU"), False),
    Case("rules", "no-expr", "group: g\nrules:\n  - id: r\n", False),
    Case("rules", "empty-expr", rule("").replace("system.up == 0", "''"), False),
    Case("rules", "boolean-expr", rule("").replace("system.up == 0", "true"), False),
    Case("rules", "label-number-value", rule("    labels: {code: 500}\n"), False),
    Case("rules", "label-bad-name", rule("    labels: {team-name: x}\n"), False),
    Case("rules", "label-no-value", rule("    labels: {team: no}\n"), True),
    Case("rules", "no-data-bad", rule("    no_data: ignore\n"), False),
    Case("rules", "on-error-off", rule("    on_error: off\n"), False),
    Case("rules", "flapping-one-change", rule("    flapping: {max_changes: 1}\n"), False),
    Case("rules", "flapping-typo", rule("    flapping: {max_change: 4}\n"), False),
    Case("rules", "channels-empty", rule("    channels: []\n"), False),
    # ---- channel files
    Case("channels", "full", CHANNELS_FULL, True),
    Case("channels", "empty-mapping", "{}\n", True),
    Case("channels", "top-level-typo", "route: []\n", False),
    Case("channels", "slack-missing-url", chan("{name: ops-slack, type: slack}"), False),
    Case("channels", "slack-channel-comment", chan("name: s\n    type: slack\n    url: https://x\n    channel: #ops"), False),
    Case("channels", "slack-typo", chan("{name: s, type: slack, url: 'https://x', icon_emoij: ':x:'}"), False),
    Case("channels", "slack-networks", chan("{name: s, type: slack, url: 'https://x', deny_networks: [10.0.0.0/33]}"), False),
    Case("channels", "unknown-type-common-keys", chan("{name: n, type: ntfy, rate_limit: {max: 5, per: 1m}, timeout: 5s}"), True),
    Case("channels", "unknown-type-own-keys", chan("{name: n, type: ntfy, topic: alerts, server: 'https://ntfy.sh'}"), True),
    Case("channels", "unknown-type-bad-common", chan("{name: n, type: ntfy, rate_limit: {max: 0, per: 1m}}"), False),
    Case("channels", "missing-type", chan("{name: n}"), False),
    Case("channels", "bad-name", chan("{name: 'ops slack', type: memory}"), False),
    Case("channels", "memory-extra", chan("{name: m, type: memory, url: 'https://x'}"), False),
    Case("channels", "log-networks", chan("{name: l, type: log, deny_networks: [10.0.0.0/8]}"), False),
    Case("channels", "slack-proxy", chan("{name: s, type: slack, url: 'https://x', proxy: 'http://proxy.corp:3128'}"), True),
    Case("channels", "slack-proxy-path", chan("{name: s, type: slack, url: 'https://x', proxy: 'http://proxy.corp:3128/x'}"), False),
    Case("channels", "log-proxy", chan("{name: l, type: log, proxy: none}"), False),
    Case("channels", "log-level-bad", chan("{name: l, type: log, level: debug}"), False),
    Case("channels", "webhook-method-bad", chan("{name: w, type: webhook, url: 'https://x', method: GET}"), False),
    Case("channels", "webhook-header-name-bad", chan("{name: w, type: webhook, url: 'https://x', headers: {'X Bad': y}}"), False),
    Case("channels", "telegram-string-chat", chan("{name: t, type: telegram, bot_token: '${env:T}', chat_id: '@alerts'}"), True),
    Case("channels", "telegram-no-chat", chan("{name: t, type: telegram, bot_token: '${env:T}'}"), False),
    Case("channels", "email-no-to", chan("{name: e, type: email, smtp_host: h, from: a@b.c}"), False),
    Case("channels", "email-empty-to", chan("{name: e, type: email, smtp_host: h, from: a@b.c, to: []}"), False),
    Case("channels", "email-bad-address", chan("{name: e, type: email, smtp_host: h, from: a@b.c, to: [nobody]}"), False),
    Case("channels", "email-user-without-password", chan("{name: e, type: email, smtp_host: h, from: a@b.c, to: [x@y.z], username: u}"), False),
    Case("channels", "email-tls-bad", chan("{name: e, type: email, smtp_host: h, from: a@b.c, to: [x@y.z], tls: yes}"), False),
    Case("channels", "email-port-range", chan("{name: e, type: email, smtp_host: h, from: a@b.c, to: [x@y.z], smtp_port: 70000}"), False),
    Case("channels", "twilio-unquoted-number", chan("{name: t, type: twilio, account_sid: a, auth_token: b, from: '+15551234567', to: [+15557654321]}"), False),
    Case("channels", "pushover-priority-range", chan("{name: p, type: pushover, token: a, user: b, priorities: {critical: 3}}"), False),
    Case("channels", "pushover-priority-key", chan("{name: p, type: pushover, token: a, user: b, priorities: {urgent: 1}}"), False),
    Case("channels", "alertmanager-neither", chan("{name: a, type: alertmanager}"), False),
    Case("channels", "alertmanager-both", chan("{name: a, type: alertmanager, url: 'http://a', urls: ['http://b']}"), False),
    Case("channels", "opsgenie-responder-typo", chan("{name: o, type: opsgenie, api_key: k, responders: [{type: team, nam: ops}]}"), False),
    Case("channels", "exec-no-argv", chan("{name: x, type: exec}"), False),
    Case("channels", "rate-limit-no-per", chan("{name: m, type: memory, rate_limit: {max: 3}}"), False),
    Case("channels", "route-no-channels", "routes:\n  - match: {severity: critical}\n", False),
    Case("channels", "route-empty-channels", "routes:\n  - channels: []\n", False),
    Case("channels", "route-typo", "routes:\n  - channels: [a]\n    continu: true\n", False),
    Case("channels", "route-continue-string", "routes:\n  - channels: [a]\n    continue: yes\n", False),
    Case("channels", "route-match-number", "routes:\n  - channels: [a]\n    match: {code: 500}\n", False),
    Case("channels", "route-group-by-all-plus", "routes:\n  - channels: [a]\n    group_by: ['...', host]\n", False),
    Case("channels", "route-escalate-no-after", "routes:\n  - channels: [a]\n    escalate: [{channels: [b]}]\n", False),
    Case("channels", "inhibit-no-target", "inhibit:\n  - {source: {severity: critical}}\n", False),
    Case("channels", "inhibit-empty-source", "inhibit:\n  - {source: {}, target: {severity: warning}}\n", False),
    Case("channels", "time-bad-weekday", "time_intervals:\n  - {name: t, weekdays: [Monday]}\n", False),
    Case("channels", "time-bad-times", "time_intervals:\n  - {name: t, times: ['9:00-18:00']}\n", False),
    Case("channels", "time-end-of-day", "time_intervals:\n  - {name: t, times: ['18:00-24:00']}\n", True),
    Case("channels", "time-day-32", "time_intervals:\n  - {name: t, days_of_month: [32]}\n", False),
    Case("channels", "time-month-13", "time_intervals:\n  - {name: t, months: ['13']}\n", False),
    Case("channels", "time-no-name", "time_intervals:\n  - {weekdays: [mon]}\n", False),
    Case("channels", "silence-no-matcher", "silences:\n  - {until: '2026-12-01T00:00:00Z', reason: x}\n", False),
    Case("channels", "silence-no-until", "silences:\n  - {match: {a: b}, reason: x}\n", False),
    Case("channels", "silence-date-only", "silences:\n  - {match: {a: b}, until: 2026-12-01, reason: x}\n", False),
    Case("channels", "silence-empty-reason", "silences:\n  - {match: {a: b}, until: '2026-12-01T00:00:00Z', reason: ''}\n", False),
    Case("channels", "silence-unquoted-timestamp", "silences:\n  - {match: {a: b}, until: 2026-12-01T00:00:00Z, reason: x}\n", True),
    Case("channels", "webhook-no-url", chan("{name: w, type: webhook, secret: '${env:S}'}"), False),
    Case("channels", "telegram-empty-chat", chan("{name: t, type: telegram, bot_token: '${env:T}', chat_id: ''}"), False),
    Case("channels", "channel-template-typo", chan("{name: m, type: memory, templates: {subject: x}}"), False),
    Case("channels", "route-match-empty-list", "routes:\n  - channels: [a]\n    match: {severity: []}\n", False),
    Case("channels", "route-match-empty", "routes:\n  - channels: [a]\n    match: {}\n", False),
    Case("channels", "time-wraps-midnight", "time_intervals:\n  - {name: t, times: ['24:00-01:00']}\n", False),
    Case("channels", "silence-both-matchers", "silences:\n  - {match: {a: b}, match_re: {c: 'd.*'}, until: '2026-12-01T00:00:00Z', reason: x}\n", True),
    Case("channels", "silence-empty-match", "silences:\n  - {match: {}, until: '2026-12-01T00:00:00Z', reason: x}\n", False),
    Case("channels", "templates-not-string", "templates:\n  slack_title: {a: b}\n", False),
]  # fmt: skip


def test_case_ids_are_unique() -> None:
    assert len({c.filename for c in CASES}) == len(CASES)


def parse(case: Case) -> Any:
    return load_text(case.text, case.filename).data


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.filename)
def test_document_with_jsonschema_and_fastjsonschema(case: Case) -> None:
    data = parse(case)
    errs = errors(case.schema, data)
    assert (not errs) == case.valid, [f"{e.json_path}: {e.message}" for e in errs]
    try:
        fast(case.schema)(data)
        fast_ok = True
    except fastjsonschema.JsonSchemaValueException:
        fast_ok = False
    assert fast_ok == case.valid


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Run the real check-jsonschema once per schema over every case; filename -> errors."""
    if not CHECK_JSONSCHEMA.exists():
        pytest.skip("check-jsonschema is not installed next to this Python")
    out: dict[str, list[dict[str, Any]]] = {}
    tmp = tmp_path_factory.mktemp("schema-cases")
    for name in NAMES:
        files = []
        for case in (c for c in CASES if c.schema == name):
            path = tmp / case.filename
            path.write_text(case.text, encoding="utf-8")
            files.append(str(path))
            out[case.filename] = []
        proc = subprocess.run(
            [
                str(CHECK_JSONSCHEMA),
                "--schemafile",
                str(SCHEMA_DIR / f"{name}.schema.json"),
                "--output-format",
                "json",
                *files,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        report = json.loads(proc.stdout)
        assert not report.get("parse_errors"), report["parse_errors"]
        assert proc.returncode == (0 if report["status"] == "ok" else 1), proc.stderr
        for err in report.get("errors", []):
            out[Path(err["filename"]).name].append(err)
    return out


def test_check_jsonschema_accepts_the_schemas_themselves() -> None:
    """Its metaschema check also compiles every pattern as an ECMAScript regex."""
    if not CHECK_JSONSCHEMA.exists():
        pytest.skip("check-jsonschema is not installed next to this Python")
    files = [str(SCHEMA_DIR / f"{name}.schema.json") for name in NAMES]
    proc = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--check-metaschema", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.filename)
def test_check_jsonschema_agrees(case: Case, cli_results: dict[str, list[dict[str, Any]]]) -> None:
    cli_errors = cli_results[case.filename]
    assert (not cli_errors) == case.valid, cli_errors
    # and it reports the same problems as jsonschema on vigil's reading of the file;
    # check-jsonschema also checks `format: date-time`, which jsonschema skips without
    # rfc3339-validator: the pattern beside it catches the same mistakes
    ours = sorted((e.json_path, e.message) for e in errors(case.schema, parse(case)))
    theirs = sorted(
        (e["path"], e["message"])
        for e in cli_errors
        if not e["message"].endswith("is not a 'date-time'")
    )
    assert theirs == ours


# ------------------------------------------------------------------ useful errors


def only_error(name: str, text: str) -> jsonschema.ValidationError:
    errs = errors(name, load_text(text, "x.yaml").data)
    assert len(errs) == 1, [f"{e.json_path}: {e.message}" for e in errs]
    return errs[0]


def test_slack_missing_url_points_at_the_slack_definition(
    cli_results: dict[str, list[dict[str, Any]]],
) -> None:
    case = next(c for c in CASES if c.id == "slack-missing-url")
    err = only_error("channels", case.text)
    assert err.message == "'url' is a required property"
    assert err.json_path == "$.channels[0]"
    assert err.validator == "required"
    assert err.schema is schema("channels")["definitions"]["channel_slack"]
    assert err.context == []  # no oneOf/anyOf soup underneath
    (cli,) = cli_results[case.filename]
    assert cli["message"] == "'url' is a required property"
    assert cli["path"] == "$.channels[0]"
    assert cli["has_sub_errors"] is False


def test_collector_typo_names_the_key_and_the_type() -> None:
    err = only_error("config", coll("{name: api, type: http, url: 'https://x', timout: 5s}"))
    assert err.validator == "additionalProperties"
    assert "'timout' was unexpected" in err.message
    assert err.schema is schema("config")["definitions"]["collector_http"]


def test_for_with_consecutive_is_one_clear_error() -> None:
    err = only_error("rules", rule("    for: 2m\n    consecutive: 3\n"))
    assert err.validator == "not"
    assert err.json_path == "$.rules[0]"
    assert "for" in err.validator_value["description"]
    assert "consecutive" in err.validator_value["description"]


def test_missing_matcher_says_which_key() -> None:
    err = only_error("channels", "silences:\n  - {until: '2026-12-01T00:00:00Z', reason: x}\n")
    assert err.message == "'match' is a required property"
    err = only_error("channels", chan("{name: a, type: alertmanager}"))
    assert err.message == "'url' is a required property"


def test_non_mapping_entry_is_one_error() -> None:
    err = only_error("config", coll("system"))
    assert err.message == "'system' is not of type 'object'"
    err = only_error("channels", "channels: [slack]\n")
    assert err.message == "'slack' is not of type 'object'"


def test_yaml_1_1_surprises_read_as_yaml_1_2() -> None:
    """What vigil's loader (and check-jsonschema) make of the classic YAML 1.1 traps."""
    data = load_text(rule("    enabled: no\n    consecutive: 010\n    for: 12:30\n"), "x.yaml").data
    r = data["rules"][0]
    assert r["enabled"] == "no"
    assert r["consecutive"] == 10
    assert r["for"] == "12:30"
