"""One `vigil validate` run reports every problem of every file, one line each
(issue 13 B.14): a schema error does not hide the expressions of the same file,
one bad collector entry does not make the good ones unknown, an invalid vigil.yaml
does not hide the rule files it names. The real CLI, on files in a temp folder."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

from tests.integration.daemon import VIGIL

CONFIG = """\
rules: [rules/a.yaml]
channels: []
collectors:
  - {name: app, type: file, path: /nonexistent/app.json, format: json}
  - {name: fixed, type: static, values: {limit: 3}}
"""


def validate(root: Path) -> list[str]:
    out = subprocess.run(
        [VIGIL, "validate", "-c", str(root / "vigil.yaml")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[-1].endswith("file(s)"), lines
    return [line.replace(f"{root}/", "") for line in lines[:-1]]


def write(root: Path, config: str, rules: str) -> None:
    (root / "rules").mkdir(exist_ok=True)
    (root / "vigil.yaml").write_text(config)
    (root / "rules" / "a.yaml").write_text(textwrap.dedent(rules))


def test_a_schema_error_does_not_hide_the_expressions_of_the_same_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        CONFIG,
        """\
        group: g
        rules:
          - id: one
            expr: app.queue > fixd.limit
            for: 5 minutes
          - id: two
            expr: app.queue > nope.limit
          - {id: three, expr: app.queue > 1, severity: urgent}
          - {expr: app.queue > fxed.limit}
        """,
    )
    assert validate(tmp_path) == [
        "rules/a.yaml:4:23: rules[0].expr: expression: unknown name 'fixd': "
        "no collector provides it",
        "rules/a.yaml:5:10: rules[0].for: expected a duration such as 30s, 5m, 1h30m or 0; "
        "got '5 minutes'",
        "rules/a.yaml:7:23: rules[1].expr: expression: unknown name 'nope': "
        "no collector provides it",
        "rules/a.yaml:8:48: rules[2].severity: expected one of info, warning, critical, "
        "emergency; got 'urgent'",
        "rules/a.yaml:9:5: rules[3]: missing required key 'id'",
        "rules/a.yaml:9:24: rules[3].expr: expression: unknown name 'fxed': "
        "no collector provides it",
    ]


def test_one_bad_collector_entry_leaves_the_others_known(tmp_path: Path) -> None:
    write(
        tmp_path,
        CONFIG + "  - {name: broken, type: static, values: 5}\n",
        """\
        group: g
        rules:
          - {id: one, expr: app.queue > fixed.limit}
          - {id: two, expr: broken.x > 1}
          - {id: three, expr: ap.queue > 1}
        """,
    )
    lines = validate(tmp_path)
    assert lines[0] == (
        "rules/a.yaml:5:23: rules[2].expr: expression: unknown name 'ap': no collector provides it"
    )
    assert [line.split(": ")[1] for line in lines[1:]] == ["collectors[2].values"] * (
        len(lines) - 1
    ), lines


def test_an_invalid_vigil_yaml_does_not_hide_the_rule_files_it_names(tmp_path: Path) -> None:
    write(
        tmp_path,
        CONFIG + "api: {listen: 5}\ndefault_interval: soon\n",
        """\
        group: g
        rules:
          - {id: one, expr: app.queue > fixd.limit}
        """,
    )
    lines = validate(tmp_path)
    assert lines[0].startswith("rules/a.yaml:3:33: rules[0].expr: expression: "), lines
    assert "unknown name 'fixd'" in lines[0], lines
    assert [line.split(": ")[1] for line in lines[1:]] == ["api.listen", "default_interval"], lines


def test_each_problem_is_one_line_whatever_its_key_holds(tmp_path: Path) -> None:
    write(
        tmp_path,
        CONFIG,
        """\
        group: g
        rules:
          - id: one
            expr: app.queue > 1
            "odd\\tkey\\nhere": 1
            labels: {"a\\nb": x}
        """,
    )
    lines = validate(tmp_path)
    assert len(lines) == 2, lines
    assert all("\t" not in line for line in lines)
    assert lines[0].startswith("rules/a.yaml:5:5: rules[0].odd\\tkey\\nhere: unknown key "), lines
    assert lines[1].startswith("rules/a.yaml:6:13: rules[0].labels"), lines


def test_one_bad_channel_entry_leaves_the_others_known_and_checked(tmp_path: Path) -> None:
    write(
        tmp_path,
        CONFIG.replace("channels: []", "channels: [channels]"),
        """\
        group: g
        rules:
          - {id: one, expr: app.queue > 1, channels: [hook, chat, nope]}
        """,
    )
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "c.yaml").write_text(
        textwrap.dedent("""\
        channels:
          - {name: hook, type: webhook, url: "http://127.0.0.1:9/", bogus: 1}
          - {name: chat, type: exec, argv: [/bin/echo, "{{ x | nofilter }}"]}
        routes:
          - channels: [hook, chat]
        """)
    )
    lines = validate(tmp_path)
    assert lines[0].startswith("channels/c.yaml:2:61: channels[0].bogus: unknown key 'bogus'")
    assert lines[1:] == [
        "channels/c.yaml:3:48: channels[1].argv[1]: template syntax error: "
        "No filter named 'nofilter'.",
        "rules/a.yaml:3:59: rules[0].channels[2]: unknown channel 'nope'; defined: chat, hook",
    ]
