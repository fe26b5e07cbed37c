"""Property: whatever bytes a file holds, the loader and `vigil validate` answer
with problems, never a traceback, and exit 0 or 1."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli.main import main
from engine.config.load import YamlError, load_text

yamlish = st.lists(
    st.sampled_from(
        [
            "group: g\n",
            "rules:\n",
            "  - id: a\n",
            "    expr: x > 1\n",
            "    for: 5m\n",
            "channels:\n",
            "  - {name: c, type: log}\n",
            "- ",
            "  ",
            ": ",
            "&a ",
            "*a ",
            "!!python/object ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "'",
            '"',
            "#",
            "\n",
            "\t",
            "\x00",
            "---\n",
            "...\n",
            "? ",
            "| \n",
            "> \n",
            "%YAML 1.1\n",
            "\ufeff",
            "é",
            "0x1",
            "no",
            "12:30",
            "~",
            "!",
            "\\",
            "${env:X}",
            "{{ value }}",
            "{% if %}",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), yamlish.map(str.encode)))
def test_loader_never_raises_anything_but_yamlerror(data: bytes) -> None:
    try:
        load_text(data, "f.yaml")
    except YamlError as e:
        assert e.problem.file == "f.yaml"


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    data=st.one_of(st.binary(max_size=300), yamlish.map(str.encode)),
    kind=st.sampled_from(["rules", "channels"]),
)
def test_validate_never_tracebacks(tmp_path: Path, data: bytes, kind: str) -> None:
    d = tmp_path / kind
    d.mkdir(exist_ok=True)
    f = d / "x.yaml"
    f.write_bytes(data)
    cfg = tmp_path / "vigil.yaml"
    cfg.write_text("rules: [rules]\nchannels: [channels]\n")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", "-c", str(cfg)])
    assert code in (0, 1)
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if code == 1:
        assert err.getvalue().strip(), "an invalid file must say why"
