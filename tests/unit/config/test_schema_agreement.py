"""The shipped schemas work as they are in third-party tools: check-jsonschema
accepts the shipped examples and agrees with `vigil validate` on bad fixtures,
YAML 1.1 surprises included. Secrets never reach validate's output."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.config.build import ConfigLoader

ROOT = Path(__file__).resolve().parents[3]
CHECK = str(Path(sys.executable).parent / "check-jsonschema")
CONTEXT = "tests/testdata/context/vigil.yaml"


def check_jsonschema(schema: str, *files: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHECK, "--schemafile", f"schemas/{schema}.schema.json", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_shipped_examples_pass_check_jsonschema() -> None:
    rules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "rules").glob("*.yaml"))
    channels = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "channels").glob("*.yaml"))
    for schema, files in (
        ("rules", rules),
        ("channels", channels),
        ("config", ["deploy/vigil.yaml"]),
    ):
        r = check_jsonschema(schema, *files)
        assert r.returncode == 0, r.stdout + r.stderr


# schema-level fixtures: both tools must call them invalid, at the same field
AGREE = [
    ("rules", "yaml11_enabled_no.yaml", "$.rules[0].enabled"),
    ("rules", "yaml11_sexagesimal_for.yaml", "$.rules[0].for"),
    ("rules", "bad_severity.yaml", "$.rules[0].severity"),
    ("rules", "unknown_rule_key.yaml", "$.rules[0]"),
    ("rules", "for_and_consecutive.yaml", "$.rules[0]"),
    ("rules", "three_schema_errors.yaml", "$.rules[2].labels.team"),
    ("rules", "bad_duration.yaml", "$.rules[0].for"),
    ("channels", "chan_missing_url.yaml", "$.channels[0]"),
    ("channels", "silence_without_expiry.yaml", "$.silences[0]"),
]


@pytest.mark.parametrize(("schema", "name", "where"), AGREE)
def test_check_jsonschema_agrees_on_bad_fixtures(
    schema: str, name: str, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"tests/testdata/bad/{name}"
    r = check_jsonschema(schema, path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"::{where}:" in r.stdout, r.stdout
    monkeypatch.chdir(ROOT)
    result = ConfigLoader().load(CONTEXT, [path])
    assert result.problems
    # vigil names the same field (its path without the leading "$.")
    assert any(p.path.startswith(where[2:]) for p in result.problems), result.problems


def test_yaml_1_1_integer_surprise_is_read_the_same_way(tmp_path: Path) -> None:
    # 010 is 10 for both tools (YAML 1.2), not octal 8
    f = tmp_path / "r.yaml"
    f.write_text(
        "group: g\nrules:\n  - id: a\n    expr: system.cpu_percent > 1\n    consecutive: 010\n"
    )
    assert check_jsonschema("rules", str(f)).returncode == 0
    result = ConfigLoader().load(str(ROOT / CONTEXT), [str(f)])
    assert result.config is not None
    assert result.config.groups[0].rules[0].consecutive == 10


SECRET = "s3cr3t-hunter2-token-value"


@pytest.mark.parametrize(
    "body",
    [
        # the file around the secret is wrong in different ways
        "channels:\n  - {name: h, type: webhook, url: '${env:VIGIL_SECRET}', methd: POST}\n",
        "channels:\n  - {name: h, type: webhook, url: '${env:VIGIL_SECRET}', method: FETCH}\n",
        "channels:\n  - {name: h, type: slack, url: '${env:VIGIL_SECRET}'}\n  - {name: h, type: log}\n",
        "channels:\n  - {name: h, type: pagerduty, routing_key: '${env:VIGIL_SECRET}', source: [x]}\n",
        "channels:\n  - {name: h, type: webhook, url: 'https://x/${env:VIGIL_SECRET}', secret: '${env:VIGIL_SECRET}'}\n"
        "routes:\n  - channels: [nope]\n",
        "channels:\n  - {name: h, type: webhook, url: '${env:VIGIL_SECRET}', timeout: fast}\n",
        "channels:\n  - {name: h, type: email, smtp_host: x, from: a@b.c, to: [d@e.f], password: '${env:VIGIL_SECRET}'}\n",
    ],
)
@pytest.mark.parametrize("fmt", ["text", "json", "github"])
def test_secret_never_appears_in_validate_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, fmt: str
) -> None:
    monkeypatch.setenv("VIGIL_SECRET", SECRET)
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "c.yaml").write_text(body)
    (tmp_path / "vigil.yaml").write_text("channels: [channels]\nrules: []\n")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", "-c", str(tmp_path / "vigil.yaml"), "--format", fmt])
    text = out.getvalue() + err.getvalue()
    assert code == 1, text
    assert SECRET not in text
    assert "s3cr3t" not in text
