"""The series notation of rule tests (engine/ruletest/series.py), promtool's reading."""

from __future__ import annotations

from typing import Any

import pytest

from engine.ruletest.series import MAX_STEPS, MISSING, SeriesError, parse_series

_ = MISSING


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("50", [50]),
        ("50 95x3 40", [50, 95, 95, 95, 95, 40]),
        ("1+2x3", [1, 3, 5, 7]),
        ("10-1x2", [10, 9, 8]),
        ("-5+5x2", [-5, 0, 5]),
        ("1.5x2", [1.5, 1.5, 1.5]),
        ("0.1+0.1x2", [0.1, 0.2, 0.3]),  # decimal steps: exactly 0.3, not 0.30000000000000004
        ("1e3 2.5e-1", [1000.0, 0.25]),
        ("_", [_]),
        ("_x3", [_, _, _]),  # promtool: `_xn` is n missing samples
        ("1 _ 2", [1, _, 2]),
        ("true falsex2", [True, False, False, False]),
        ("  7   8\t9\n10 ", [7, 8, 9, 10]),
        ("95x0", [95]),
    ],
)
def test_notation(text: str, values: list[Any]) -> None:
    assert parse_series(text) == values


def test_ints_stay_ints_and_floats_stay_floats() -> None:
    ints, floats = parse_series("95 1+1x1"), parse_series("95.0 1.0+1x1")
    assert [type(v) for v in ints] == [int, int, int]
    assert [type(v) for v in floats] == [float, float, float]


@pytest.mark.parametrize(
    ("value", "values"),
    [
        ([50, "95x2", None, True], [50, 95, 95, 95, _, True]),
        ([1.5, "_x2"], [1.5, _, _]),
        (7, [7]),
        (False, [False]),
        (None, [_]),
    ],
)
def test_yaml_forms(value: Any, values: list[Any]) -> None:
    assert parse_series(value) == values


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("50 9y", 3, "bad series term '9y'"),
        ("50 95x", 3, "a repeat needs a count"),
        ("1+2", 0, "a step needs a count, as in 1+2x5"),
        ("1 2 x3", 4, "bad series term 'x3'"),
        ("truex", 0, "a repeat needs a count"),
        ("nan", 0, "bad series term 'nan'"),
        ("", 0, "the series is empty"),
        ("   ", 0, "the series is empty"),
    ],
)
def test_errors_point_at_the_term(text: str, offset: int, words: str) -> None:
    with pytest.raises(SeriesError) as e:
        parse_series(text)
    assert e.value.offset == offset
    assert words in e.value.message


def test_list_errors_name_the_item() -> None:
    with pytest.raises(SeriesError) as e:
        parse_series([1, 2, "3 4z"])
    assert (e.value.index, e.value.offset) == (2, 2)
    with pytest.raises(SeriesError) as e:
        parse_series([1, {"a": 1}])
    assert e.value.index == 1 and "got a dict" in e.value.message


def test_a_typo_cannot_eat_the_memory() -> None:
    with pytest.raises(SeriesError, match="repeats more than"):
        parse_series(f"1x{MAX_STEPS + 1}")
    with pytest.raises(SeriesError, match="longer than"):
        parse_series(" ".join([f"1x{MAX_STEPS // 2}"] * 3))
    assert len(parse_series(f"1x{MAX_STEPS - 1}")) == MAX_STEPS


def test_missing_is_one_object_with_a_readable_repr() -> None:
    assert parse_series("_ _")[0] is parse_series("_")[0] is MISSING
    assert repr(MISSING) == "_"
