"""The YAML reader: positions, the YAML 1.2 core scalars, and what it refuses."""

from __future__ import annotations

import pytest

from engine.config.load import YamlError, load_text


def err(text: str | bytes, **kw: int) -> str:
    with pytest.raises(YamlError) as e:
        load_text(text, "f.yaml", **kw)
    return e.value.problem.format()


def test_core_schema_scalars_match_yaml_1_2() -> None:
    doc = load_text(
        "a: no\nb: 010\nc: 12:30\nd: 2026-12-01T00:00:00Z\ne: 1e3\nf: '1'\ng: 0x1F\n"
        "h: True\ni: ~\nj: yes\nk: 0o17\nl: -1.5\nm: .inf\n",
        "f.yaml",
    )
    assert doc.data == {
        "a": "no",
        "b": 10,
        "c": "12:30",
        "d": "2026-12-01T00:00:00Z",
        "e": 1000.0,
        "f": "1",
        "g": 31,
        "h": True,
        "i": None,
        "j": "yes",
        "k": 15,
        "l": -1.5,
        "m": float("inf"),
    }


def test_marks_of_values_and_keys() -> None:
    doc = load_text("group: g\nrules:\n  - id: a\n    for: 5m\n", "f.yaml")
    assert doc.marks[("rules", 0, "for")] == (4, 10)
    assert doc.key_marks[("rules", 0, "for")] == (4, 5)
    assert doc.mark(("rules", 0, "missing")) == (3, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: 1\nb:\n  c: 1\n  c: 2\n", "f.yaml:4:3: duplicate key 'c' (first defined at line 3)"),
        ("a: &x 1\nb: *x\n", "f.yaml:1:4: anchor &x is not allowed; write the value out"),
        ("&a [*a]", "f.yaml:1:1: anchor &a is not allowed; write the value out"),
        (
            "a: !!python/object/apply:os.system [ls]\n",
            "f.yaml:1:4: tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
        ),
        ("a: !custom x\n", "f.yaml:1:4: tag !custom is not allowed"),
        ("- 1\n- 2\n", "f.yaml:1:1: top level is a list; expected a mapping"),
        ("just text\n", "f.yaml:1:1: top level is a string; expected a mapping"),
        ("", "f.yaml:1:1: file is empty; expected a mapping"),
        ("# only a comment\n", "f.yaml:1:1: file is empty; expected a mapping"),
        (
            "a: [1, 2\n",
            "f.yaml:2:1: YAML syntax error: while parsing a flow sequence did not find expected ',' or ']'",
        ),
        ("a: 1\n---\nb: 2\n", "f.yaml:2:1: only one YAML document per file is allowed"),
        (b"a: \xff\n", "f.yaml:1:4: file is not valid UTF-8"),
        ("a:\n  b: \x07\n", "f.yaml:2:6: character U+0007 is not allowed in YAML"),
    ],
)
def test_refusals_name_line_and_column(text: str | bytes, expected: str) -> None:
    assert err(text) == expected


def test_size_cap_is_checked_before_parsing() -> None:
    assert (
        err("a: " + "x" * 200 + "\n", max_bytes=100)
        == "f.yaml:1:1: file is 204 bytes; the limit is 100"
    )


def test_depth_cap() -> None:
    text = "a: " + "[" * 40 + "]" * 40 + "\n"
    assert err(text, max_depth=32).startswith("f.yaml:1:")
    assert "nesting is deeper than 32 levels" in err(text, max_depth=32)


def test_alias_bomb_is_refused_at_the_first_anchor() -> None:
    bomb = 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n'
    assert err(bomb) == "f.yaml:1:4: anchor &a is not allowed; write the value out"
