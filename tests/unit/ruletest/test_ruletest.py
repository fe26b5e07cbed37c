"""`vigil test`: the shipped rule tests pass, every example rule is tested, and the
semantics of series, assertions and notifications hold (engine/ruletest/)."""

from __future__ import annotations

import asyncio
import glob
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli.main import main
from engine.config.load import load_file
from engine.ruletest import ruletest
from engine.ruletest.clock import EPOCH0
from engine.ruletest.results import Failure, FileResult

ROOT = Path(__file__).resolve().parents[3]
VIGIL = str(Path(sys.executable).parent / "vigil")

RULES = """
group: app
interval: 1m
rules:
  - id: queue_deep
    expr: app.queue > 100
    for: 2m
    severity: critical
    labels: {team: ops}
    annotations: {summary: "queue at {{ value }}"}
  - id: disk_full
    each: app.disks
    expr: it.percent > 90
    labels: {team: ops}
    annotations: {summary: "{{ labels.mountpoint }} full"}
  - id: over_limit
    expr: app.load.now > app.limit
    severity: info
"""

CHANNELS = """
channels:
  - {name: pager, type: log}
  - {name: chat, type: webhook, url: "${env:VIGIL_TEST_SURELY_UNSET_HOOK}"}
routes:
  - match: {severity: critical}
    channels: [pager]
    group_wait: 30s
  - channels: [chat]
"""


def write(tmp: Path, test: str, rules: str = RULES, channels: str = CHANNELS) -> str:
    (tmp / "rules.yaml").write_text(rules)
    (tmp / "channels.yaml").write_text(channels)
    path = tmp / "t.yaml"
    path.write_text(textwrap.dedent(test))
    return str(path)


def run(path: str) -> FileResult:
    return ruletest.run_file(path)


def problems(path: str) -> list[str]:
    return [p.format().split(": ", 1)[1] for p in run(path).problems]


def failures(path: str) -> list[Failure]:
    result = run(path)
    assert not result.problems, [p.format() for p in result.problems]
    return [f for c in result.cases for f in c.failures]


# -- the shipped tests --------------------------------------------------------------------


def test_shipped_rule_tests_pass_as_the_gate_runs_them() -> None:
    files = sorted(glob.glob(str(ROOT / "rules/tests/*.yaml")))
    assert files
    proc = subprocess.run(
        [VIGIL, "test", *files], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: " in proc.stdout and " passed" in proc.stdout


def test_every_example_rule_has_a_test_that_fires_it() -> None:
    rules = {
        r["id"] for f in glob.glob(str(ROOT / "rules/*.yaml")) for r in load_file(f).data["rules"]
    }
    fired: set[str] = set()
    for f in glob.glob(str(ROOT / "rules/tests/*.yaml")):
        for t in load_file(f).data["tests"]:
            for chk in t.get("alerts", []):
                fired |= {e["rule"] for e in chk["expect"] if e.get("state", "firing") == "firing"}
    assert rules - fired == set()


def test_shipped_tests_cover_routing_silence_inhibit_and_time_intervals() -> None:
    text = "".join(Path(f).read_text() for f in glob.glob(str(ROOT / "rules/tests/*.yaml")))
    for words in ("business hours", "silence", "inhibit", "maintenance window", "escalat"):
        assert words in text, words


def test_check_jsonschema_accepts_the_shipped_tests() -> None:
    tool = Path(sys.executable).with_name("check-jsonschema")
    if not tool.exists():
        pytest.skip("check-jsonschema is not installed next to this Python")
    files = sorted(glob.glob(str(ROOT / "rules/tests/*.yaml")))
    proc = subprocess.run(
        [str(tool), "--schemafile", str(ROOT / "schemas/ruletest.schema.json"), *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "check",
    [
        "test_schema_is_draft7_with_stable_id",
        "test_schema_file_is_hand_readable",
        "test_every_property_and_definition_is_described",
        "test_ref_siblings_are_annotations_only",
        "test_defaults_and_examples_are_valid",
        "test_patterns_work_in_python_and_ecmascript",
    ],
)
def test_the_schema_meets_the_bar_of_the_other_schemas(check: str) -> None:
    from tests.unit.config import test_schemas_files

    getattr(test_schemas_files, check)("ruletest")


def test_the_schema_duration_is_the_rules_schemas() -> None:
    from engine.config.schema import schema

    for d in ("duration", "positive_duration"):
        assert schema("ruletest")["definitions"][d] == schema("rules")["definitions"][d]
    assert (
        schema("ruletest")["definitions"]["date_time"]["pattern"]
        == (schema("channels")["definitions"]["date_time"]["pattern"])
    )


# -- timing and state ------------------------------------------------------------------------


def test_predict_gives_the_transitions_with_their_times(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rule_files: [rules.yaml]
        tests:
          - name: t
            series: {app.queue: "50 150x3 50"}
            alerts: [{at: 5m, expect: []}]
        """,
    )
    got = [(t.at, t.rule, t.event) for t in ruletest.predict(path) if t.rule == "queue_deep"]
    assert got == [
        (60.0, "queue_deep", "pending"),
        (180.0, "queue_deep", "firing"),
        (300.0, "queue_deep", "resolved"),
    ]


@pytest.mark.parametrize(
    "start", ["", "start: 1970-01-01T00:00:00Z", "start: 2031-05-07T13:17:09.123Z"]
)
@pytest.mark.parametrize("dt_ms", [100, 200, 250, 300, 700, 1500, 15000])
def test_durations_of_k_steps_are_reached_on_step_k_whatever_the_interval(
    tmp_path: Path, dt_ms: int, start: str
) -> None:
    """The simulated clocks are exact: `for` of k steps fires on step k, and a
    window of k steps holds exactly k samples (the oldest drops out on time),
    for a collector's series and for an `each` element's."""
    w = f"{3 * dt_ms}ms"
    rules = f"""
group: g
interval: {dt_ms}ms
rules:
  - {{id: r, expr: app.x > 1, for: {w}}}
  - {{id: more, expr: 'count_over(app.x, "{w}") > 3'}}
  - {{id: three, expr: 'count_over(app.x, "{w}") >= 3'}}
  - {{id: it_more, each: app.d, expr: 'count_over(it.x, "{w}") > 3'}}
  - {{id: it_three, each: app.d, expr: 'count_over(it.x, "{w}") >= 3'}}
"""
    path = write(
        tmp_path,
        f"""
        {start}
        rule_files: [rules.yaml]
        tests:
          - name: t
            series:
              app.x: "0 5x30"
              app.d: [{{labels: {{a: b}}, x: "5x30"}}]
            alerts: [{{at: {30 * dt_ms}ms, rules: [r], expect: [{{rule: r}}]}}]
        """,
        rules=rules,
    )
    got = [(round(t.at * 1000), t.rule, t.event) for t in ruletest.predict(path)]
    assert got == [
        (dt_ms, "r", "pending"),
        (2 * dt_ms, "three", "firing"),
        (2 * dt_ms, "it_three", "firing"),
        (4 * dt_ms, "r", "firing"),
    ]


def test_each_elements_labels_and_a_vanishing_element(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rule_files: [rules.yaml]
        tests:
          - name: t
            series:
              app.disks:
                - {labels: {mountpoint: /}, percent: "95x5"}
                - {labels: {mountpoint: /var}, percent: "95 95 _ 95"}
            alerts:
              - at: 1m
                expect:
                  - {rule: disk_full, labels: {mountpoint: /, team: ops}}
                  - {rule: disk_full, labels: {mountpoint: /var}, annotations: {summary: /var full}}
              - at: 2m
                expect:
                  - {rule: disk_full, labels: {mountpoint: /}}
                  - {rule: disk_full, state: resolved, labels: {mountpoint: /var}}
              - at: 3m
                expect:
                  - {rule: disk_full, labels: {mountpoint: /}}
                  - {rule: disk_full, labels: {mountpoint: /var}}
              - at: 6m                       # every series ended: the list is missing
                expect: []
        """,
    )
    assert failures(path) == []


def test_constants_nested_metrics_and_the_rules_filter(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rule_files: [rules.yaml]
        collectors: {app: {limit: 10, load: {now: 99}}}
        tests:
          - name: t
            collectors: {app: {limit: 20}}
            series:
              app.load.now: "15 25"
              app.queue: "500x9"
            alerts:
              - at: 0s
                rules: [over_limit]
                expect: []
              - at: 1m
                rules: [over_limit]
                expect: [{rule: over_limit, value: 25, severity: info}]
              - at: 2m                       # the series ended: the constant holds
                rules: [over_limit]
                expect: [{rule: over_limit, value: 99}]
        """,
    )
    assert failures(path) == []


def test_resolved_and_inactive_are_compared_only_when_asked_for(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rule_files: [rules.yaml]
        tests:
          - name: t
            series: {app.queue: "500x3 _ 500"}
            alerts:
              - at: 4m                        # resolved (no data): not active
                expect: []
              - at: 4m
                expect: [{rule: queue_deep, state: resolved, no_data: true}]
              - at: 5m                        # a new episode
                expect: [{rule: queue_deep, state: pending, no_data: false, value: 500}]
        """,
    )
    assert failures(path) == []


def test_a_wrong_expectation_names_the_item_line_time_and_diff(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        rule_files: [rules.yaml]
        tests:
          - name: wrong value
            series: {app.queue: "150.5x5"}
            alerts:
              - at: 3m
                expect:
                  - {rule: queue_deep, value: 150.50000001}
                  - {rule: queue_deep, state: pending}
        """,
    )
    (f,) = failures(path)
    assert (f.line, f.at, f.kind) == (10, 180.0, "alerts")
    assert f.headline().startswith(f'{path}:10: FAIL "wrong value" at 3m (2026-01-01T00:03:00Z)')
    assert f.diff == [
        "  {rule: queue_deep, state: firing, value: 150.50000001}",
        "- {rule: queue_deep, state: pending}",
    ]


# -- notifications ---------------------------------------------------------------------------


NOTES = """
rule_files: [rules.yaml]
channel_files: [channels.yaml]
tests:
  - name: routes, group_wait, windows
    series:
      app.queue: "500x5"
      app.disks:
        - {labels: {mountpoint: /}, percent: "95x5"}
    notifications:
      - at: 0s
        expect:
          - {channel: chat, status: firing, alerts: [disk_full], sent_at: 0s}
      - at: 2m29s
        expect: []
      - at: 2m30s                                # fired at 2m, group_wait 30s
        expect:
          - channel: pager
            alerts: [queue_deep]
            title_regex: "^\\\\[FIRING:1\\\\] queue_deep"
            body_regex: "queue at 500"
      - at: 30m                                  # both resolved at 6m; sent on the next
        expect:                                  # tick (every 5m from 0s and from 2m30s)
          - {channel: chat, status: resolved, sent_at: 10m}
          - {channel: pager, status: resolved, sent_at: 7m30s}
"""


def test_notifications_in_consecutive_windows(tmp_path: Path) -> None:
    assert failures(write(tmp_path, NOTES)) == []


def test_secrets_by_env_need_not_be_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_TEST_SURELY_UNSET_HOOK", raising=False)
    assert failures(write(tmp_path, NOTES)) == []


def test_a_wrong_channel_is_shown_against_the_notification_it_resembles(tmp_path: Path) -> None:
    path = write(tmp_path, NOTES.replace("- channel: pager", "- channel: chat"))
    (f,) = failures(path)
    assert f.kind == "notifications" and f.at == 150.0
    assert "notifications after 2m29s differ" in f.message
    assert f.diff[1].startswith("+ {channel: pager, alerts: [queue_deep], title: ")


def test_notification_windows_must_move_forward(tmp_path: Path) -> None:
    path = write(tmp_path, NOTES.replace("at: 2m29s", "at: 0s"))
    assert problems(path) == [
        "tests[0].notifications[1].at: notification assertions cover consecutive windows: "
        "this `at` (0s) must be later than the one before (0s, line 11)"
    ]


def test_notifications_need_channel_files(tmp_path: Path) -> None:
    path = write(tmp_path, NOTES.replace("channel_files: [channels.yaml]\n", ""))
    assert all("need `channel_files`" in p for p in problems(path))


# -- invalid test files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("test", "want"),
    [
        (
            "rule_files: [rules.yaml]\ntests:\n  - {name: a, alerts: [{at: 0s, expect: []}]}\n"
            "  - {name: a, alerts: [{at: 0s, expect: []}]}\n",
            ["tests[1].name: duplicate test name 'a' (first at line 3)"],
        ),
        (
            "rule_files: [rules.yaml]\ntests:\n  - {name: a}\n",
            ["tests[0]: test 'a' asserts nothing: add `alerts` or `notifications`"],
        ),
        (
            "rule_files: [rules.yaml]\ntests:\n  - name: a\n    series: {rate.x: '1'}\n"
            "    alerts: [{at: 0s, expect: []}]\n",
            [
                "tests[0].series.rate: 'rate' cannot be a collector name: "
                "it is an expression keyword or function"
            ],
        ),
        (
            "rule_files: [rules.yaml]\ntests:\n  - name: a\n"
            "    series: {app.q: '1', app.q.depth: '2'}\n"
            "    alerts: [{at: 0s, expect: []}]\n",
            [
                "tests[0].series.app.q.depth: 'app.q.depth' is inside 'app.q', which is a series itself"
            ],
        ),
        (
            "rule_files: [rules.yaml]\ntests:\n  - name: a\n"
            "    series: {app.disks: [{labels: {a: b}, x: '1'}]}\n"
            "    alerts: [{at: 0s, expect: [{rule: disk_full, annotations_regex: {s: '('}}]}]\n",
            [
                "tests[0].alerts[0].expect[0].annotations_regex.s: invalid regular expression "
                "'(': missing ), unterminated subpattern at position 0",
            ],
        ),
        (
            "rule_files: [rules.yaml]\ntests:\n  - name: a\n"
            "    series: {app.disks: [{labels: {a: b}, x: '1'}, 3]}\n"
            "    alerts: [{at: 0s, expect: []}]\n",
            [
                "tests[0].series.app.disks[0]: expected a number or boolean or null or string, "
                'got mapping {"labels": {"a": "b"}, "x": "1"}',
                "tests[0].series.app.disks[1]: expected an object, got integer 3",
            ],
        ),
    ],
)
def test_invalid_test_files(tmp_path: Path, test: str, want: list[str]) -> None:
    assert problems(write(tmp_path, test)) == want


def test_groups_with_different_intervals_need_an_evaluation_interval(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(
        "group: other\ninterval: 10s\nrules: [{id: o, expr: app.queue > 1}]\n"
    )
    test = (
        "rule_files: [rules.yaml, other.yaml]\ntests:\n"
        "  - {name: a, series: {app.queue: '5'}, alerts: [{at: 0s, expect: [{rule: o}]}]}\n"
    )
    assert problems(write(tmp_path, test)) == [
        "rule_files: the rule groups have different intervals (app every 1m, other every 10s): "
        "set evaluation_interval to the step every group is evaluated on"
    ]
    path = write(tmp_path, "evaluation_interval: 10s\n" + test)
    assert failures(path) == []


# -- the daemon's code path ----------------------------------------------------------------------


def test_the_app_journals_what_vigil_test_predicts(tmp_path: Path) -> None:
    """Drive the real App (its group runs and their event path) on fake clocks
    with the same series, and compare its journal events to the prediction."""
    from engine.config.build import ConfigLoader
    from engine.daemon.app import App
    from engine.rules.rule_health import PROBLEMS

    series = {"queue": [50, 150, 150, 150, 150, 50, 50], "load": {"now": 1}}
    path = write(
        tmp_path,
        """
        rule_files: [rules.yaml]
        collectors: {fixed: {limit: 10}}
        tests:
          - name: t
            series: {app.queue: "50 150x3 50x1"}
            alerts: [{at: 6m, expect: []}]
        """,
    )
    predicted = [(t.at, t.rule, t.event, dict(t.labels)) for t in ruletest.predict(path)]
    assert [e for _, r, e, _ in predicted if r == "queue_deep"] == [
        "pending",
        "firing",
        "resolved",
    ]

    (tmp_path / "vigil.yaml").write_text(
        "collectors:\n  - {name: app, type: push}\n  - {name: fixed, type: static, values: {limit: 10}}\n"
        f"rules: [{tmp_path / 'rules.yaml'}]\nchannels: []\ndata_dir: {tmp_path / 'data'}\n"
    )
    cfg = ConfigLoader().load(str(tmp_path / "vigil.yaml"))
    assert cfg.config is not None, cfg.problems
    clock = {"wall": EPOCH0, "mono": 5000.0}
    app = App(cfg.config, wall=lambda: clock["wall"], mono=lambda: clock["mono"])
    seen: list[dict[str, Any]] = []

    def submit(events: list[dict[str, Any]], *, durable: bool) -> tuple[list[Any], None]:
        seen.extend(events)  # what the app hands its journal
        return events, None

    app.durable.submit = submit  # type: ignore[method-assign]

    async def drive() -> None:
        for i, q in enumerate(series["queue"]):
            clock["wall"], clock["mono"] = EPOCH0 + 60 * i, 5000.0 + 60 * i
            app.hub.values["app"] = {"queue": q, "load": series["load"]}
            app.hub.values["fixed"] = {"limit": 10}
            app.history.record_tree("app", clock["wall"], app.hub.values["app"])
            await app.evaluation.run_group(cfg.config.groups[0])  # type: ignore[union-attr]

    asyncio.run(drive())
    # the daemon's alerts about rules themselves (here rule_no_data: `app.disks`
    # never comes) are not the rules' own: `vigil test` predicts the latter
    seen[:] = [e for e in seen if e.get("rule") not in PROBLEMS]
    got = [(e["rule"], e["event"], e["labels"]) for e in seen if "alert" in e]
    assert got == [(r, e, lab) for _, r, e, lab in predicted]
    # the same records, field by field (annotations included), except the journal's stamps
    result = ruletest.run_file(path)
    mine = [
        {k: v for k, v in e.items() if k not in ("v", "seq", "ts", "at")}
        for e in result.cases[0].events
        if "alert" in e
    ]
    assert mine == [e for e in seen if "alert" in e]


# -- the command ---------------------------------------------------------------------------------


def test_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        """
        rule_files: [rules.yaml]
        tests:
          - name: t
            series: {app.queue: "150x5"}
            alerts: [{at: 1m, expect: [{rule: queue_deep}]}]
        """,
    )
    assert main(["test", "--format", "json", path]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["passed"], doc["tests"], doc["failed"]) == (False, 1, 1)
    (f,) = doc["results"][0]["failures"]
    assert (f["line"], f["at"], f["time"]) == (6, "1m", "2026-01-01T00:01:00Z")
    assert main(["test", "--format", "github", path]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f'::error file={path},line=6,title=vigil test::FAIL "t" at 1m')
    assert "%0A- {rule: queue_deep, state: firing}%0A+ {rule: queue_deep, state: pending" in out[0]
    assert out[-1] == "0 of 1 tests passed in 1 file(s)"
    assert main(["test", "-v", str(ROOT / "rules/tests")]) == 0
    assert 'ok "cpu above 90 is pending' in capsys.readouterr().out


def test_the_collectors_a_test_provides_stand_in_for_vigil_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No vigil.yaml is read (not even one in the current folder): the series'
    collectors are `push` ones, `system` is there as in the daemon."""
    from engine.config.build import ConfigLoader

    (tmp_path / "vigil.yaml").write_text("collectors: not a list\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules.yaml").write_text(RULES)
    result = ConfigLoader().load(None, ["rules.yaml"], collector_types={"app": "push"})
    assert result.ok, result.problems
    assert result.config is not None
    got = [(c.name, c.type) for c in result.config.collectors]
    assert got == [("system", "system"), ("app", "push")]
    assert result.files == ["rules.yaml"]


def test_missing_paths_are_usage_problems(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "/nonexistent/t.yaml"]) == 2
    assert "/nonexistent/t.yaml: no such file or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["test"])
    assert e.value.code == 2


# -- the CI pieces --------------------------------------------------------------------------------


def test_the_pre_commit_manifest_is_valid_for_pre_commit() -> None:
    tool = Path(sys.executable).with_name("pre-commit")
    if not tool.exists():
        pytest.skip("pre-commit is not installed next to this Python")
    proc = subprocess.run(
        [str(tool), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert {h: (d["entry"], d["language"]) for h, d in hooks.items()} == {
        "vigil-validate": ("vigil validate", "python"),
        "vigil-test": ("vigil test", "python"),
        "vigil-validate-system": ("vigil validate", "system"),
        "vigil-test-system": ("vigil test", "system"),
    }
    assert all(d["pass_filenames"] is False for d in hooks.values())


def test_the_ci_workflow_example_is_a_valid_github_workflow() -> None:
    tool = Path(sys.executable).with_name("check-jsonschema")
    if not tool.exists():
        pytest.skip("check-jsonschema is not installed next to this Python")
    path = ROOT / "docs" / "ci-workflow.yml"
    proc = subprocess.run(
        [str(tool), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = path.read_text()
    assert "vigil validate --format github" in text
    assert "vigil test --format github rules/tests" in text
