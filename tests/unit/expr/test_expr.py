"""engine/expr (compile_expr and its parts): compile contract, evaluation semantics, function library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

import pytest

from engine.errors import ExprError
from engine.expr.compiler import compile_expr
from engine.expr.expression import Expression
from engine.expr.functions import FUNCTIONS
from engine.expr.history import History
from engine.expr.scope import EvalScope, MissingData
from engine.expr.syntax import MAX_LENGTH

NAMES = frozenset({"system", "api", "it"})
# Thursday 2027-01-14 15:30:00 UTC
NOW = datetime(2027, 1, 14, 15, 30, tzinfo=UTC).timestamp()

VALUES: dict[str, Any] = {
    "system": {
        "cpu_percent": 93.5,
        "mem_percent": 40,
        "up": True,
        "name": "web-1",
        "nothing": None,
        "zero": 0,
        "load": [0.5, 0.7, 0.9],
        "disks": [{"mount": "/", "percent": 91.0}, {"mount": "/var", "percent": 12.0}],
        "net": {"eth0": {"rx": 10, "tx": 20}},
        "tags": ["prod", "eu"],
    },
    "api": MappingProxyType({"status": 200, "body": {"ok": True}}),
}


def scope(**kw: Any) -> EvalScope:
    kw.setdefault("values", VALUES)
    kw.setdefault("now", NOW)
    return EvalScope(**kw)


def ev(source: str, **kw: Any) -> Any:
    return compile_expr(source, names=NAMES).evaluate(scope(**kw))


def refused(source: str, names: frozenset[str] = NAMES) -> ExprError:
    with pytest.raises(ExprError) as info:
        compile_expr(source, names=names)
    return info.value


# --- compile contract -------------------------------------------------------------


def test_expression_reports_what_it_reads() -> None:
    e = compile_expr(
        'system.cpu_percent > 90 and avg_over(system.cpu_percent, "5m") > 80 '
        'and rate(api.body.count, "1m") > 1 and max_over(it.percent, "300s") > 2 '
        "and abs(system.zero) == 0",
        names=NAMES,
    )
    assert e.source.startswith("system.cpu_percent")
    assert e.names == {"system", "api", "it"}
    assert e.functions == {"avg_over", "rate", "max_over", "abs"}
    assert e.windows == (300.0, 60.0)  # deduplicated, in order of appearance
    assert e.series == ("system.cpu_percent", "api.body.count")
    assert e.it_series == (".percent",)


def test_compile_is_cached_and_expressions_compare_by_source() -> None:
    a = compile_expr("system.cpu_percent > 1", names=["system"])
    b = compile_expr("system.cpu_percent > 1", names={"system"})
    assert a is b
    c = compile_expr("system.cpu_percent > 1", names={"system", "api"})
    assert c == a and hash(c) == hash(a)
    assert c != compile_expr("system.cpu_percent > 2", names={"system"})
    assert repr(a) == "Expression('system.cpu_percent > 1')"


@pytest.mark.parametrize(
    ("source", "message", "col"),
    [
        ("nope.cpu > 1", "unknown name 'nope': no collector provides it", 0),
        ("system.cpu > 1 and disk.x", "unknown name 'disk'", 19),
        ("foo(1)", "unknown function 'foo'", 0),
        ("system(1)", "'system' is a collector, not a function", 0),
        ("abs > 1", "abs is a function: call it", 0),
        ("len()", "len() takes 1 argument, not 0", 0),
        ("round(1, 2, 3)", "round() takes 1 or 2 arguments, not 3", 0),
        ("hour(1)", "hour() takes no arguments", 0),
        ("absent()", "absent() takes one argument", 0),
        ("avg_over(system.cpu)", "avg_over() takes a metric and a window", 0),
        ("avg_over(1, '5m')", "first argument of avg_over() must be a metric", 9),
        ("avg_over(system.x + 1, '5m')", "first argument of avg_over() must be a metric", 9),
        ("rate(system.x, 60)", 'window of rate() must be a string such as "5m"', 15),
        ("rate(system.x, w)", 'window of rate() must be a string such as "5m"', 15),
        ("delta(system.x, '5 minutes')", "is not a duration", 16),
        ("changes(system.x, '0')", "window of changes() must be longer than 0", 18),
        ("system.cpu >", "syntax error", 12),
        ("system.cpu > > 1", "syntax error", 13),
        ("", "expression is empty", 0),
        ("   ", "expression is empty", 0),
        ("system.x is 1", "'is' compares only with None, True or False", 12),
        ("b'x' == 1", "bytes literals are not supported", 0),
        ("1j", "complex literals are not supported", 0),
        ("... == 1", "ellipsis literals are not supported", 0),
        ("system.x @ 2", "operator @ is not supported", 0),
        ("round(system.x, ndigits=1)", "keyword arguments are not supported", 16),
        ("[1, 2][5]", "no element 5", 0),
        ("1 / 0", "ZeroDivisionError: division by zero", 0),
        ("1 > 'a'", "TypeError", 0),
    ],
)
def test_compile_errors_say_what_and_where(source: str, message: str, col: int) -> None:
    e = refused(source)
    assert message in e.message
    assert e.col == col


def test_it_outside_each_is_refused() -> None:
    e = refused("it.percent > 90", names=frozenset({"system"}))
    assert e.message == "`it` exists only in rules with `each`"
    assert e.col == 0


def test_columns_are_characters_in_the_original_source() -> None:
    assert refused("  system.cpu > 1 and nope").col == 21  # leading blanks kept
    assert refused("'é' + nope").col == 6  # characters, not UTF-8 bytes
    assert refused("(system.cpu > 1\n and nope)").col == 21  # second line
    assert refused("'ü' + system.__x").col == 13


def test_too_long_is_refused() -> None:
    e = refused("1" * (MAX_LENGTH + 1))
    assert e.message == f"expression is {MAX_LENGTH + 1} characters long; the limit is {MAX_LENGTH}"
    assert e.col == MAX_LENGTH


def test_names_collection_accepts_any_iterable_kind() -> None:
    assert compile_expr("system.up", names=["system"]).evaluate(scope()) is True


# --- values and paths ----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("system.cpu_percent", 93.5),
        ("system.cpu_percent > 90", True),
        ("system.cpu_percent > 90 and system.mem_percent > 50", False),
        ("system.cpu_percent > 95 or system.mem_percent < 50", True),
        ("90 < system.cpu_percent <= 100", True),
        ("90 < system.cpu_percent <= 93", False),
        ("system.load[0]", 0.5),
        ("system.load[-1]", 0.9),
        ("system.load[1:]", [0.7, 0.9]),
        ("system.name[0:3] == 'web'", True),
        ("system.disks[0].percent", 91.0),
        ("system.disks[1]['mount']", "/var"),
        ("system.net.eth0.rx + system.net['eth0'].tx", 30),
        ("api.status == 200", True),  # a MappingProxyType collector
        ("api.body.ok", True),
        ("system.nothing is None", True),
        ("system.up is not False", True),
        ("not system.up", False),
        ("-system.mem_percent", -40),
        ("system.mem_percent % 7", 5),
        ("system.mem_percent // 7", 5),
        ("system.mem_percent ** 2", 1600),
        ("system.mem_percent << 2", 160),
        ("system.mem_percent & 8 | 1 ^ 3", 10),
        ("~system.mem_percent", -41),
        ("system.mem_percent / 8", 5.0),
        ("100 - system.mem_percent", 60),
        ("2 * system.mem_percent", 80),
        ("system.mem_percent * 0.5", 20.0),
        ("system.name + '!'", "web-1!"),
        ("system.name * 2", "web-1web-1"),
        ("'a' if system.up else 'b'", "a"),
        ("'a' if system.zero else 'b'", "b"),
        ("system.zero or system.name", "web-1"),  # simpleeval: `or` yields the value
        ("system.zero and system.name", 0),
        ("'prod' in system.tags", True),
        ("'dev' not in system.tags", True),
        ("system.name in ['web-1', 'web-2']", True),
        ("system.load in [[0.5, 0.7, 0.9]]", True),  # unhashable left side
        ("system.mem_percent in {40: 'x'}", True),
        ("'eth0' in system.net", True),
        ("{'a': system.mem_percent}['a']", 40),
        ("[system.mem_percent, 1][0]", 40),
        ("(system.mem_percent, 1)", (40, 1)),
        ("{system.mem_percent}", {40}),
        ("len(system.disks)", 2),
        ("abs(-system.mem_percent)", 40),
        ("min(system.load)", 0.5),
        ("max(system.load)", 0.9),
        ("max(system.mem_percent, 3, 99)", 99),
        ("round(system.cpu_percent)", 94),
        ("round(system.cpu_percent / 7, 2)", 13.36),
        ("int(system.cpu_percent)", 93),
        ("float(system.mem_percent)", 40.0),
        ("str(system.mem_percent) + '%'", "40%"),
        ("True and system.up", True),
        ("False and system.up", False),
    ],
)
def test_evaluates(source: str, expected: Any) -> None:
    got = ev(source)
    assert got == expected
    assert type(got) is type(expected)


def test_each_element_through_it() -> None:
    e = compile_expr("it.percent > 90 and it['mount'] == '/'", names=NAMES)
    disks = VALUES["system"]["disks"]
    assert [e.evaluate_bool(scope().for_element(d, f"fp{i}")) for i, d in enumerate(disks)] == [
        True,
        False,
    ]
    assert compile_expr("it", names=NAMES).evaluate(scope(it="x", it_key="k")) == "x"
    assert compile_expr("it[1]", names=NAMES).evaluate(scope(it=[1, 2], it_key="k")) == 2


def test_attribute_access_needs_a_mapping() -> None:
    for source in ("system.cpu_percent.real", "system.load.count", "it.percent"):
        with pytest.raises(ExprError) as info:
            compile_expr(source, names=NAMES).evaluate(scope(it=[1]))
        assert not isinstance(info.value, MissingData)
        assert "not a mapping" in info.value.message
    with pytest.raises(ExprError, match="cannot be subscripted"):
        ev("system.cpu_percent[0]")
    with pytest.raises(ExprError, match="cannot be subscripted"):
        ev("(system.mem_percent + 1)[0]")


@pytest.mark.parametrize(
    ("source", "message", "col"),
    [
        ("system.gpu_percent > 1", "system.gpu_percent has no value", 0),
        ("1 < system.gpu", "system.gpu has no value", 4),
        ("nodata.x > 1", "no data from collector 'nodata' (needed for nodata.x)", 0),
        ("nodata", "no data from collector 'nodata'", 0),
        ("system.disks[5].percent", "system.disks[5].percent has no value", 0),
        ("system.net.eth9.rx", "system.net.eth9.rx has no value", 0),
        ("(system.net if system.up else 1).lo", "no key 'lo'", 33),
        ("system.tags[system.mem_percent]", "no element 40", 0),
        ("it.percent", "`it` has no value", 0),
        ("it.nope", "it.nope has no value", 0),
        ("system.nothing.x", "system.nothing has no value", 0),  # through a null
        ("system.nothing[0]", "system.nothing has no value", 0),
        ("(system.nothing if system.up else 1)[0]", "no element 0: the value is None", 0),
        ('avg_over(system.cpu_percent, "5m")', "no history", 0),
    ],
)
def test_missing_values_raise_missing_data(source: str, message: str, col: int) -> None:
    e = compile_expr(source, names=NAMES | {"nodata"})
    it = {"percent": 1} if "nope" in source else None
    with pytest.raises(MissingData) as info:
        e.evaluate(scope(it=it))
    assert message in info.value.message
    assert info.value.col == col


def test_absent_is_true_exactly_when_data_is_missing() -> None:
    assert ev("absent(system.gpu)") is True
    assert ev("absent(system.cpu_percent)", values={}) is True  # collector down
    assert ev("absent(system.cpu_percent)") is False
    assert ev("absent(system.nothing)") is False  # None is a value: test with `is None`
    assert ev("absent(1)") is False
    assert ev("absent(system.gpu) or system.gpu > 1") is True
    with pytest.raises(ExprError, match="ZeroDivisionError"):  # errors are not absence
        ev("absent(1 / system.zero)")


def test_computing_with_null_is_missing_data() -> None:
    # collectors report what they cannot read here as None (latency of a target
    # that is down): the rule's no_data policy applies, not on_error
    for source in ("system.nothing > 1", "system.nothing + 1 > 2", "-system.nothing < 0"):
        with pytest.raises(MissingData):
            ev(source)


# --- errors at evaluation --------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("1 / system.zero", "ZeroDivisionError: division by zero"),
        ("system.name > 1", "TypeError: '>' not supported between instances of 'str' and 'int'"),
        ("int(system.name)", "ValueError: invalid literal for int()"),
        ("float(system.huge)", "OverflowError"),
        ("system.load + 1", "TypeError"),
        ("len(system.mem_percent)", "TypeError"),
        ("min(system.mem_percent)", "min() of one argument needs a list, not an int"),
        ("str(system.load)", "str() takes a number, a string, a boolean or None, not a list"),
        ("system.name - 1", "TypeError"),
        ("{system.load}", "TypeError: unhashable type"),
        ("system.load[system.name]", "TypeError"),
        ("system.load[::system.zero]", "ValueError: slice step cannot be zero"),
    ],
)
def test_evaluation_failures_are_expr_errors(source: str, message: str) -> None:
    values = {"system": {**VALUES["system"], "huge": 10**400}}
    with pytest.raises(ExprError) as info:
        ev(source, values=values)
    assert not isinstance(info.value, MissingData)
    assert message in info.value.message


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("system.mem_percent", "int 40"),
        ("system.zero", "int 0"),
        ("system.cpu_percent", "float 93.5"),
        ("system.name", "str 'web-1'"),
        ("system.nothing", "NoneType None"),
        ("system.load", "list <list of 3>"),
        ("system.net", "dict <dict of 1>"),
        ("system.huge", "int <int of 1329 bits>"),
        ("system.long", "str 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'..."),
    ],
)
def test_evaluate_bool_never_coerces(source: str, shown: str) -> None:
    values = {"system": {**VALUES["system"], "huge": 10**400, "long": "x" * 1000}}
    with pytest.raises(ExprError) as info:
        compile_expr(source, names=NAMES).evaluate_bool(scope(values=values))
    assert info.value.message == f"expression yielded {shown}, not a boolean"


def test_evaluate_bool_passes_booleans() -> None:
    e = compile_expr("system.up", names=NAMES)
    assert e.evaluate_bool(scope()) is True
    assert compile_expr("system.mem_percent == 40", names=NAMES).evaluate_bool(scope()) is True
    assert compile_expr("1 > 2", names=NAMES).evaluate_bool(scope()) is False


def test_constants_are_not_shared_with_the_caller() -> None:
    e = compile_expr("[1, [2]]", names=NAMES)
    first = e.evaluate(scope())
    first[1].append(3)
    first.append(4)
    assert e.evaluate(scope()) == [1, [2]]
    d = compile_expr("{'a': [1]}[system.name[0:0] + 'a']", names=NAMES)
    d.evaluate(scope()).append(2)
    assert d.evaluate(scope()) == [1]


def test_constant_subtrees_are_folded_at_compile_time() -> None:
    # A literal-only expression evaluates without any scope values.
    e = compile_expr("(3 * 4 + 1) ** 2 == 169 and 'ab' * 2 == 'abab'", names=NAMES)
    assert e.evaluate(scope(values={})) is True
    assert compile_expr("0 and system.gpu", names=NAMES).evaluate(scope()) == 0
    assert compile_expr("1 and system.up", names=NAMES).evaluate(scope()) is True


# --- the function library with history ------------------------------------------


def history() -> History:
    h = History(3600)
    for i, v in enumerate([10.0, 20.0, 30.0, 40.0]):  # 60 s apart, last one at NOW
        h.record("system.cpu_percent", NOW - 180 + i * 60, v)
    # a counter with a reset between NOW-60 and NOW
    for ts, v in [(NOW - 120, 100.0), (NOW - 60, 160.0), (NOW, 30.0)]:
        h.record("system.net.eth0.rx", ts, v)
    h.record_tree("fp-sda", NOW - 60, {"percent": 50.0})
    h.record_tree("fp-sda", NOW, {"percent": 70.0})
    h.record_tree("fp-sdb", NOW, {"percent": 5.0})
    return h


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('avg_over(system.cpu_percent, "5m")', 25.0),
        ('avg_over(system.cpu_percent, "3m")', 30.0),  # NOW-180 is outside (left-open)
        ('avg_over(system.cpu_percent, "2m")', 35.0),
        ('max_over(system.cpu_percent, "5m")', 40.0),
        ('min_over(system.cpu_percent, "2m")', 30.0),
        ('sum_over(system.cpu_percent, "1h")', 100.0),
        ('count_over(system.cpu_percent, "1m")', 1),
        ('count_over(system.gpu_percent, "1m")', 0),
        ('delta(system.cpu_percent, "5m")', 30.0),
        ('changes(system.cpu_percent, "5m")', 3),
        # 100 -> 160 is +60, then a reset to 30 counts +30: 90 over 120 s
        ('rate(system.net.eth0.rx, "5m")', 0.75),
        ('rate(system.net["eth0"].rx, "5m")', 0.75),
        ('rate(system.net.eth0.rx, "1m")', None),  # one sample: no rate
        ('avg_over(system.gpu_percent, "5m")', None),
        ('absent(avg_over(system.gpu_percent, "5m"))', True),
        ('absent(avg_over(system.cpu_percent, "5m"))', False),
        ('avg_over(system.cpu_percent, "5m") > 20 and system.cpu_percent > 90', True),
    ],
)
def test_window_functions(source: str, expected: Any) -> None:
    e = compile_expr(source, names=NAMES)
    s = scope(history=history())
    if expected is None:
        with pytest.raises(MissingData, match="not enough samples"):
            e.evaluate(s)
    else:
        assert e.evaluate(s) == pytest.approx(expected)


def test_window_functions_inside_each_use_the_element_key() -> None:
    e = compile_expr('delta(it.percent, "5m") > 10', names=NAMES)
    h = history()
    assert e.evaluate_bool(scope(history=h, it={"percent": 70.0}, it_key="fp-sda")) is True
    with pytest.raises(MissingData):  # one sample for sdb: no delta yet
        e.evaluate(scope(history=h, it={"percent": 5.0}, it_key="fp-sdb"))
    with pytest.raises(ExprError, match="no it_key"):
        e.evaluate(scope(history=h, it={"percent": 5.0}))


def test_time_functions() -> None:
    assert ev("hour()") == 15
    assert ev("weekday()") == 3  # Thursday; 0 is Monday
    assert ev("now()") == NOW
    berlin_winter = timezone(timedelta(hours=1))
    assert ev("hour()", tz=berlin_winter) == 16
    late = datetime(2027, 1, 17, 23, 30, tzinfo=UTC).timestamp()  # Sunday 23:30 UTC
    assert ev("weekday()", now=late) == 6
    assert ev("weekday()", now=late, tz=berlin_winter) == 0  # already Monday there
    assert ev("hour() >= 9 and hour() < 18 and weekday() < 5") is True
    with pytest.raises(ExprError, match="now is not a usable time"):
        ev("hour()", now=1e300)


def test_function_table_matches_spec() -> None:
    spec = {
        "avg_over",
        "max_over",
        "min_over",
        "sum_over",
        "count_over",
        "rate",
        "delta",
        "changes",
        "absent",
        "abs",
        "min",
        "max",
        "round",
        "len",
        "hour",
        "weekday",
        "now",
    }
    assert spec <= FUNCTIONS
    assert FUNCTIONS - spec == {"int", "float", "str"}


def test_expression_type_is_public() -> None:
    assert isinstance(compile_expr("1 == 1", names=()), Expression)
