"""`vigil validate` judges what it can know before anything runs (issue 13 B.11, B.12):
metric names of collectors that declare them (system, http, static, and file /
command with a `metrics:` list), with a did-you-mean; operations between known
kinds that fail on every evaluation; rule conditions that can never be a boolean.
What is only known at run time (a file without `metrics:`, `it.x`, json_value)
still passes. The real CLI on files in a temp folder."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from tests.integration.daemon import VIGIL

CONFIG = """\
rules: [rules]
channels: []
collectors:
  - {name: system, type: system}
  - {name: app, type: file, path: /nonexistent/app.json, metrics: [queue, errors]}
  - {name: free, type: file, path: /nonexistent/free.json}
  - {name: job, type: command, argv: [/bin/true], parse: number}
  - {name: fixed, type: static, values: {limit: 3, label: x}}
  - {name: api, type: http, url: "http://127.0.0.1:9/health"}
  - name: typed
    type: file
    path: /nonexistent/typed.json
    metrics: {queue: number, state: string, ready: bool}
"""


def validate(root: Path, rules: str) -> tuple[int, list[str]]:
    (root / "rules").mkdir(exist_ok=True)
    (root / "vigil.yaml").write_text(CONFIG)
    (root / "rules" / "r.yaml").write_text(textwrap.dedent(rules))
    out = subprocess.run([VIGIL, "validate"], cwd=root, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in out.stderr, out.stderr
    return out.returncode, out.stderr.splitlines()[:-1]


def test_unknown_metric_names_are_rejected_with_a_did_you_mean(tmp_path: Path) -> None:
    code, lines = validate(
        tmp_path,
        """\
        group: g
        rules:
          - {id: a, expr: system.cpu_prcent > 1}
          - {id: b, expr: app.queu > 1}
          - {id: c, expr: api.stauts == 200}
          - {id: d, expr: fixed.limt > 1}
          - {id: e, expr: "system['mem_percnt'] > 1"}
          - {id: f, expr: job.valeu > 1}
          - {id: g, expr: app.nothing_like_it > 1}
        """,
    )
    assert code == 1
    assert lines == [
        "rules/r.yaml:3:26: rules[0].expr: expression: system (system collector) has no "
        "metric 'cpu_prcent'; did you mean 'cpu_percent'?",
        "rules/r.yaml:4:23: rules[1].expr: expression: app (file collector) has no metric "
        "'queu'; did you mean 'queue'?",
        "rules/r.yaml:5:23: rules[2].expr: expression: api (http collector) has no metric "
        "'stauts'; did you mean 'status'?",
        "rules/r.yaml:6:25: rules[3].expr: expression: fixed (static collector) has no "
        "metric 'limt'; did you mean 'limit'?",
        "rules/r.yaml:7:20: rules[4].expr: expression: system (system collector) has no "
        "metric 'mem_percnt'; did you mean 'mem_percent'?",
        "rules/r.yaml:8:23: rules[5].expr: expression: job (command collector) has no "
        "metric 'valeu'; did you mean 'value'?",
        "rules/r.yaml:9:23: rules[6].expr: expression: app (file collector) has no metric "
        "'nothing_like_it'; it provides errors, queue",
    ]


def test_type_errors_and_non_boolean_conditions_are_rejected(tmp_path: Path) -> None:
    code, lines = validate(
        tmp_path,
        """\
        group: g
        rules:
          - {id: a, expr: fixed.limit > "a"}
          - {id: b, expr: system.cpu_percent * 2}
          - {id: c, expr: api.status > "200"}
          - {id: d, expr: fixed.label - 1 > 0}
          - {id: e, expr: system.cpu_percent > 1, resolve_expr: system.cpu_percent + 1}
          - {id: f, expr: fixed.label}
          - {id: g, expr: typed.queue > "a"}
          - {id: h, expr: typed.state > 1 or typed.ready}
          - {id: i, expr: typed.queue > 1 and typed.state == "x" and typed.ready}
        """,
    )
    assert code == 1
    assert lines == [
        "rules/r.yaml:3:19: rules[0].expr: expression: cannot compare a number with a string "
        "(fails on every evaluation)",
        "rules/r.yaml:4:19: rules[1].expr: expression: the result is a number, not a boolean: "
        "a rule's condition must be true or false; compare it (e.g. `... > 90`)",
        "rules/r.yaml:5:19: rules[2].expr: expression: cannot compare a number with a string "
        "(fails on every evaluation)",
        "rules/r.yaml:6:19: rules[3].expr: expression: arithmetic on a string: it fails on "
        "every evaluation",
        "rules/r.yaml:7:57: rules[4].resolve_expr: expression: the result is a number, not a "
        "boolean: a rule's condition must be true or false; compare it (e.g. `... > 90`)",
        "rules/r.yaml:8:19: rules[5].expr: expression: the result is a string, not a boolean: "
        "a rule's condition must be true or false; compare it (e.g. `... > 90`)",
        "rules/r.yaml:9:19: rules[6].expr: expression: cannot compare a number with a string "
        "(fails on every evaluation)",
        "rules/r.yaml:10:19: rules[7].expr: expression: cannot compare a string with a number "
        "(fails on every evaluation)",
    ]


def test_what_is_known_only_at_run_time_passes(tmp_path: Path) -> None:
    code, lines = validate(
        tmp_path,
        """\
        group: g
        rules:
          - {id: a, expr: free.anything > "a" or free.x * 2 > 1}
          - {id: b, each: system.disks, expr: it.percent > 90}
          - {id: c, expr: api.json_value > 3 and api.up and not absent(api.status)}
          - {id: d, expr: "avg_over(system.load1, '5m') > 2 and job.exit_code != 0"}
          - {id: e, expr: fixed.label == "x" and fixed.limit * 2 > 5 and "x" < "y"}
          - {id: f, expr: "app.queue > 1 if fixed.limit > 1 else app.errors > 2"}
        """,
    )
    assert (code, lines) == (0, []), lines
