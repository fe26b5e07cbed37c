"""Every plugin parses its own settings at load time (issue 13 B.13).

A setting only the plugin understands (a regular expression, a JSON path, a
template inside `exec` argv, whatever a third-party plugin checks) is a
`file:line:col` problem for `vigil validate`; a reload holding one is rejected
whole (`config_rejected`, `config_invalid`, status FAILED, the old rules keep
running, the new ones never start); a fresh start exits with the problem on one
line. Never a traceback. The third-party plugins are real distributions found
through their entry points (a .dist-info folder on PYTHONPATH), as pip leaves them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.daemon import VIGIL, Daemon

pytestmark = pytest.mark.slow

PLUGIN = '''\
"""A third-party collector and channel, as a package would ship them."""


class Gauge:
    type_name = "gauge"

    def __init__(self, config):
        self.name, self.interval, self.timeout = config.name, config.interval, config.timeout

    @classmethod
    def from_config(cls, config):
        if config.settings.get("threshold", 1) <= 0:
            raise ValueError(f"threshold: must be more than 0; got {config.settings['threshold']}")
        return cls(config)

    async def collect(self, now):
        return {"value": 1}

    async def aclose(self):
        pass


class Pager:
    type_name = "pager"

    @classmethod
    def from_config(cls, config):
        return {"number": config.settings["number"]}  # a KeyError: not the contract's ValueError
'''


def third_party(root: Path) -> dict[str, str]:
    site = root / "site"
    dist = site / "vigil_thirdparty-0.1.dist-info"
    dist.mkdir(parents=True)
    (site / "vigil_thirdparty.py").write_text(PLUGIN)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vigil-thirdparty\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[vigil.collectors]\ngauge = vigil_thirdparty:Gauge\n\n"
        "[vigil.channels]\npager = vigil_thirdparty:Pager\n"
    )
    return {**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(root / "cache")}


def line_col(path: Path, text: str) -> str:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return f"{n}:{line.index(text) + 1}"
    raise AssertionError(f"{text!r} not in {path}")


def test_validate_reports_each_plugins_own_parse_errors_at_the_setting(tmp_path: Path) -> None:
    env = third_party(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "channels").mkdir()
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        textwrap.dedent("""\
        rules: [rules]
        channels: [channels]
        collectors:
          - name: api
            type: http
            url: http://127.0.0.1:9/x
            body_regex: "(unclosed"
          - {name: api2, type: http, url: "http://127.0.0.1:9/y", json_path: "$.[[["}
          - {name: meter, type: gauge, threshold: -1}
          - {name: fine, type: gauge, threshold: 5}
        """)
    )
    (tmp_path / "rules" / "r.yaml").write_text(
        "group: g\nrules:\n  - {id: api_down, expr: api.up == False}\n"
        "  - {id: meter_high, expr: fine.value > 3}\n"
    )
    chans = tmp_path / "channels" / "c.yaml"
    chans.write_text(
        textwrap.dedent("""\
        channels:
          - name: run
            type: exec
            argv: [/bin/echo, "{{ alerts | lengthh }}"]
          - {name: page, type: pager}
        routes:
          - channels: [run, page]
        """)
    )
    out = subprocess.run(
        [VIGIL, "validate", "-c", str(cfg)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.splitlines()
    argv, regex, path = line_col(chans, '"{{'), line_col(cfg, '"(u'), line_col(cfg, '"$.')
    expected = [
        f"{chans}:{argv}: channels[0].argv[1]: template syntax error: No filter named 'lengthh'.",
        f"{chans}:{line_col(chans, '{name: page')}: channels[1]: the pager channel plugin failed: "
        "KeyError: 'number'",
        f"{cfg}:{regex}: collectors[0].body_regex: not a valid regular "
        "expression: invalid regex '(unclosed': missing ): (unclosed",
        f"{cfg}:{path}: collectors[1].json_path: cannot read '.[[[' in '$.[[['; "
        "supported: $.key, $.list[0], $['key with spaces']",
        f"{cfg}:{line_col(cfg, '-1}')}: collectors[2].threshold: must be more than 0; got -1",
    ]
    assert lines[:-1] == expected, out.stderr
    assert lines[-1] == "5 problem(s) in 2 file(s)"


TOKEN = "tok-viewer-5e1d"
RULES = """\
group: app
interval: 100ms
rules:
  - {id: queue_deep, expr: app.queue > fixed.limit, for: 0s}
"""


def status_text(d: Daemon) -> str:
    out = subprocess.run(
        [VIGIL, "status", "--url", d.url],
        env={**os.environ, "VIGIL_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_reload_one_plugin_cannot_build_is_rejected_whole(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES, tokens={"dash": (TOKEN, "viewer")})
    d.set_values({"queue": 0})
    d.start()
    try:
        good_config = (tmp_path / "vigil.yaml").read_text()
        # one edit: a new rule (it would fire at once) and a collector whose body_regex
        # the http plugin cannot compile
        (tmp_path / "vigil.yaml").write_text(
            good_config.replace(
                "  - {name: fixed,",
                "  - {name: probe, type: http, url: 'http://127.0.0.1:9/', "
                "body_regex: '(unclosed'}\n  - {name: fixed,",
            )
        )
        (tmp_path / "rules" / "new.yaml").write_text(
            "group: new\ninterval: 100ms\nrules:\n  - {id: always, expr: fixed.limit > 0}\n"
        )
        seen = len(d.events())
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        evs = d.wait_for(
            lambda evs: any(e["event"] == "config_rejected" for e in evs[seen:]),
            timeout=30,
            what="config_rejected",
        )
        # the watcher may see the edit as well as the SIGHUP: each attempt is rejected alike
        rejected = next(e for e in evs[seen:] if e["event"] == "config_rejected")
        where = line_col(tmp_path / "vigil.yaml", "'(unclosed'")
        assert rejected["errors"] == [
            f"{tmp_path / 'vigil.yaml'}:{where}: collectors[2].body_regex: not a valid "
            "regular expression: invalid regex '(unclosed': missing ): (unclosed"
        ], rejected
        d.wait_for(
            lambda evs: any(e.get("rule") == "config_invalid" for e in evs[seen:]),
            what="config_invalid",
        )
        status = status_text(d)
        assert "last reload: FAILED" in status and "collectors[2].body_regex" in status, status
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=d.url, timeout=30, headers=auth) as c:
            assert c.get("/api/v1/status").json()["last_reload"]["ok"] is False
        # the old configuration runs on: its rule still fires and resolves
        d.set_values({"queue": 50})
        d.wait_for(lambda evs: "firing" in _states(evs[seen:], "queue_deep"), what="firing")
        d.set_values({"queue": 0})
        d.wait_for(lambda evs: "resolved" in _states(evs[seen:], "queue_deep"), what="resolved")
        time.sleep(0.5)  # the new group's rule, had it been applied, fires within 100 ms
        assert _states(d.events()[seen:], "always") == []
        assert not any(e["event"] == "config_loaded" for e in d.events()[seen:])
    finally:
        code = d.stop()
    assert "Traceback" not in d.log(), d.log()[-3000:]
    assert code == 0


def _states(evs: list[dict[str, object]], rule: str) -> list[object]:
    return [e["event"] for e in evs if e.get("rule") == rule and "alert" in e]


def test_a_fresh_start_with_such_a_setting_exits_with_one_clear_line(tmp_path: Path) -> None:
    d = Daemon(tmp_path, RULES)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text(
        cfg.read_text().replace(
            "  - {name: fixed,",
            "  - {name: probe, type: http, url: 'http://127.0.0.1:9/', json_path: '$.[[['}\n"
            "  - {name: fixed,",
        )
    )
    out = subprocess.run(
        [VIGIL, "run", "-c", str(cfg)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1, out.stderr
    where = line_col(cfg, "'$.[[['")
    assert out.stderr.splitlines() == [
        f"{cfg}:{where}: collectors[2].json_path: cannot read '.[[[' in '$.[[['; "
        "supported: $.key, $.list[0], $['key with spaces']",
        "vigil: configuration invalid (1 problem(s)); not starting",
    ], out.stderr
    assert json.dumps(d.events()).count('"started"') == 0


def test_a_secret_that_must_be_a_url_is_checked_without_showing_it(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "channels").mkdir()
    (tmp_path / "vigil.yaml").write_text("rules: [rules]\nchannels: [channels]\n")
    (tmp_path / "rules" / "r.yaml").write_text("group: g\nrules:\n  - {id: a, expr: 1 > 0}\n")
    chans = tmp_path / "channels" / "c.yaml"
    chans.write_text(
        "channels:\n  - {name: hook, type: webhook, url: '${env:HOOK_URL}'}\n"
        "routes:\n  - channels: [hook]\n"
    )
    out = subprocess.run(
        [VIGIL, "validate"],
        cwd=tmp_path,
        env={**os.environ, "HOOK_URL": "ftp://hunter2-token@example.org/"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert out.stderr.splitlines()[0] == (
        f"channels/c.yaml:{line_col(chans, chr(39) + '${env')}: channels[0].url: (a secret): "
        "expected an http:// or https:// URL with a host"
    )
    assert "hunter2" not in out.stderr + out.stdout
