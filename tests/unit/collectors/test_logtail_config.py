"""logtail settings: a bad one is one `file:line:col: field: message` line at load."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.build import ConfigLoader

HEAD = "rules: [rules]\nchannels: []\ndata_dir: data\ncollectors:\n"


def problems(tmp_path: Path, collector: str) -> list[str]:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "r.yaml").write_text("group: g\nrules: []\n")
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(HEAD + collector)
    result = ConfigLoader().load(str(cfg))
    return [p.format().replace(str(tmp_path) + "/", "") for p in result.problems]


def test_a_good_logtail_collector_loads(tmp_path: Path) -> None:
    ok = (
        "  - name: logs\n    type: logtail\n"
        "    paths: [/var/log/nginx/access.log, /var/log/app/*.log]\n"
        "    start: end\n    max_line_bytes: 4KiB\n    recent_lines: 10\n    interval: 1s\n"
    )
    assert problems(tmp_path, ok) == []


@pytest.mark.parametrize(
    ("yaml", "want"),
    [
        (
            "  - {name: logs, type: logtail, paths: [/x.log], colour: red}\n",
            "vigil.yaml:5:50: collectors[0].colour: unknown key 'colour' (allowed: allow, "
            "allow_networks, batch_bytes, enabled, evidence, format, idle, interval, isolate, journald, key, "
            "max_distinct, max_keys, max_line_bytes, max_pass_bytes, max_reported, name, packs, "
            "paths, patterns, react, recent_lines, save_interval, start, timeout, type, window, windows)",
        ),
        (
            "  - {name: logs, type: logtail, paths: [/x.log], start: middle}\n",
            "vigil.yaml:5:57: collectors[0].start: expected one of saved, end, beginning; "
            "got 'middle'",
        ),
        (
            "  - {name: logs, type: logtail, paths: [x.log]}\n",
            "vigil.yaml:5:41: collectors[0].paths[0]: expected a value matching ^/; got 'x.log'",
        ),
        (
            "  - {name: logs, type: logtail, paths: [/x.log], max_line_bytes: 2MiB}\n",
            "vigil.yaml:5:66: collectors[0].max_line_bytes: at most 1048576 bytes (1MiB)",
        ),
        (
            "  - {name: logs, type: logtail}\n",
            "vigil.yaml:5:5: collectors[0]: paths: required (the files to follow), unless "
            "journald is set",
        ),
        (
            "  - {name: logs, type: logtail, journald: {unit: [ssh.service]}}\n",
            "vigil.yaml:5:44: collectors[0].journald.unit: unknown key 'unit'; did you mean "
            "'units'? (allowed: directory, matches, units)",
        ),
        (
            "  - {name: logs, type: logtail, journald: {matches: [sshd]}}\n",
            "vigil.yaml:5:54: collectors[0].journald.matches[0]: expected a value matching "
            "^[A-Z0-9_]+=; got 'sshd'",
        ),
        (
            "  - {name: logs, type: logtail, journald: true}\n",
            "vigil.yaml:5:43: collectors[0].journald: expected an object, got boolean True",
        ),
    ],
)
def test_a_bad_setting_is_one_line_with_its_place(tmp_path: Path, yaml: str, want: str) -> None:
    assert problems(tmp_path, yaml) == [want]


def test_detection_keys_add_keys_and_totals_to_what_rules_can_read(tmp_path: Path) -> None:
    from engine.collectors.logtail.collector import LogtailCollector
    from engine.config.model import CollectorConfig

    plain = CollectorConfig("web", "logtail", 1.0, 5.0, {"paths": ("/x.log",)})
    detects = CollectorConfig(
        "web", "logtail", 1.0, 5.0, {"paths": ("/x.log",), "format": "nginx", "packs": ("sqli",)}
    )
    assert "keys" not in (LogtailCollector.metric_names(plain) or ())
    assert {"keys", "totals"} <= (LogtailCollector.metric_names(detects) or frozenset())
    # a rule reading web.keys loads only where the collector detects
    rule = "group: g\nrules:\n  - {id: r, each: web.keys, expr: it.hits.sqli > 2}\n"
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(rule)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(HEAD + "  - {name: web, type: logtail, paths: [/x.log], format: nginx}\n")
    assert ConfigLoader().load(str(cfg)).problems == []


def test_a_path_inside_a_setting_is_data_not_a_file(tmp_path: Path) -> None:
    """Only a plugin's own `path`/`ca_file`/`cwd` settings are files made absolute
    against the YAML file's folder; a window's `where: {path: ...}` stays as written."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text("group: g\nrules: []\n")
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        HEAD
        + "  - {name: web, type: logtail, paths: [/x.log], format: nginx,\n"
        + '     windows: {admin: {kind: count, window: 1m, where: {path: "robots.txt"}}}}\n'
        + "  - {name: f, type: file, path: values.json}\n"
    )
    result = ConfigLoader().load(str(cfg))
    assert result.problems == []
    assert result.config is not None
    by_name = {c.name: c for c in result.config.collectors}
    assert by_name["web"].settings["windows"]["admin"]["where"]["path"] == "robots.txt"
    assert by_name["f"].settings["path"] == str(tmp_path / "values.json")


@pytest.mark.parametrize(
    "yaml",
    [
        "  - {name: auth, type: logtail, journald: {}}\n",
        "  - {name: auth, type: logtail, journald: {units: [ssh.service, 'user@1000.service']}}\n",
        "  - {name: auth, type: logtail, paths: [/var/log/auth.log],\n"
        "     journald: {matches: [SYSLOG_IDENTIFIER=sshd], directory: /var/log/journal}}\n",
    ],
)
def test_journald_alone_or_beside_files_loads(tmp_path: Path, yaml: str) -> None:
    assert problems(tmp_path, yaml) == []


def test_a_journald_entry_reads_as_syslog_text_whatever_its_bytes() -> None:
    from engine.collectors.logtail.journald import _text

    assert _text({"MESSAGE": "Failed password", "SYSLOG_IDENTIFIER": "sshd", "_PID": "7"}) == (
        "sshd[7]: Failed password"
    )
    # journalctl prints a MESSAGE that is not UTF-8 as its byte values
    binary = {"MESSAGE": [0x61, 0xFF, 0x62], "SYSLOG_IDENTIFIER": "app"}
    assert _text(binary) == "app: a\ufffdb"
    assert _text({"MESSAGE": None}) == ""
    assert _text({"MESSAGE": "kernel line", "SYSLOG_PID": "1"}) == "kernel line"
