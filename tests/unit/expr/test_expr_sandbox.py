"""engine/expr (compile_expr) as a sandbox: escapes and resource attacks.

Modelled on simpleeval's own security tests (dunder walks to __subclasses__,
func_globals / __globals__, generator gi_frame, str.format attribute access,
huge powers, shifts and repetitions) plus the attacks simpleeval's limits miss.
Every attack is either refused by compile_expr (message and column asserted) or
fails as ExprError during evaluation within 100 ms.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ExprError
from engine.expr.compiler import compile_expr
from engine.expr.scope import EvalScope, MissingData
from engine.expr.syntax import MAX_DEPTH

NAMES = frozenset({"system", "it"})
FAST = 0.1  # seconds: the budget for failing any attack at evaluation
# Refusals at load only need to be far from "hangs": parsing a 4096-character
# expression alone takes ~20 ms on a busy machine. 9**9**8 or 1999999**1999999,
# if ever computed, would take seconds to forever.
COMPILE_BUDGET = 0.5


def refuse(source: str) -> ExprError:
    t0 = time.perf_counter()
    with pytest.raises(ExprError) as info:
        compile_expr(source, names=NAMES)
    assert time.perf_counter() - t0 < COMPILE_BUDGET
    return info.value


# (source, message fragment, col)
COMPILE_REFUSALS = [
    # object-graph walks
    ("().__class__.__base__.__subclasses__()", "attribute '__class__' is not allowed", 3),
    ("[].__class__.__mro__[1].__subclasses__()", "attribute '__class__' is not allowed", 3),
    ("''.__class__.__mro__[-1].__subclasses__()", "attribute '__class__' is not allowed", 3),
    ("system.__class__", "attribute '__class__' is not allowed", 7),
    ("system.__dict__", "attribute '__dict__' is not allowed", 7),
    ("system.load.__len__()", "attribute '__len__' is not allowed", 12),
    ("(1).__class__.__bases__[0]", "attribute '__class__' is not allowed", 4),
    ("system._private", "attribute '_private' is not allowed", 7),
    ("system.func_globals", "attribute 'func_globals' is not allowed", 7),
    ("system.func_code", "attribute 'func_code' is not allowed", 7),
    ("system.gi_frame", "attribute 'gi_frame' is not allowed", 7),
    ("system.tb_frame.f_back", "attribute 'tb_frame' is not allowed", 7),
    ("system.cr_frame", "attribute 'cr_frame' is not allowed", 7),
    ("system.ag_frame", "attribute 'ag_frame' is not allowed", 7),
    ("system.mro", "attribute 'mro' is not allowed", 7),
    ("abs.__self__", "attribute '__self__' is not allowed", 4),
    ("abs.__call__(1)", "attribute '__call__' is not allowed", 4),
    ("round.__globals__", "attribute '__globals__' is not allowed", 6),
    ("__import__('os')", "name '__import__' is not allowed", 0),
    ("__builtins__", "name '__builtins__' is not allowed", 0),
    ("_", "name '_' is not allowed", 0),
    # format strings
    ("'{0.__class__}'.format(1)", "attribute 'format' is not allowed", 16),
    ("'{a.__class__}'.format_map(system)", "attribute 'format_map' is not allowed", 16),
    ("str.format('{0.__class__}', 1)", "attribute 'format' is not allowed", 4),
    ('f"{system.__class__}"', "f-strings are not allowed", 0),
    ('f"{1:>{10**9}}"', "f-strings are not allowed", 0),
    ("'%s' % system.name", "% formatting of strings is not allowed", 0),
    ("'%999999999d' % 1", "% formatting of strings is not allowed", 0),
    ("'%(a)s' % {'a': 1}", "% formatting of strings is not allowed", 0),
    # method calls: none at all
    ("'a'.ljust(10**9)", "method calls are not allowed (ljust)", 4),
    ("('a'*99999).replace('a','a'*99)", "method calls are not allowed (replace)", 12),
    ("','.join(system.load)", "method calls are not allowed (join)", 4),
    ("system.get('cpu')", "method calls are not allowed (get)", 7),
    ("system.tags.pop()", "method calls are not allowed (pop)", 12),
    ("system.load[0]()", "only the built-in functions can be called, by name", 0),
    # dangerous built-ins are simply not there
    ("eval('1')", "unknown function 'eval'", 0),
    ("exec('1')", "unknown function 'exec'", 0),
    ("open('/etc/passwd')", "unknown function 'open'", 0),
    ("getattr(system, 'x')", "unknown function 'getattr'", 0),
    ("type(1)", "unknown function 'type'", 0),
    ("globals()", "unknown function 'globals'", 0),
    ("locals()", "unknown function 'locals'", 0),
    ("vars(system)", "unknown function 'vars'", 0),
    ("compile('1', '', 'eval')", "unknown function 'compile'", 0),
    ("help()", "unknown function 'help'", 0),
    ("print(1)", "unknown function 'print'", 0),
    ("breakpoint()", "unknown function 'breakpoint'", 0),
    ("range(10**9)", "unknown function 'range'", 0),
    ("abs", "abs is a function: call it", 0),
    # statements, assignment, multiple expressions
    ("1; x=2", "only one expression is allowed", 1),
    ("system.up\nimport os", "only one expression is allowed", 10),
    ("a = 2", "assignment is not allowed; use == to compare", 2),
    ("system.cpu += 1", "assignment is not allowed", 11),
    ("x: int = 1", "assignment is not allowed", 1),
    ("(x := 2)", "assignment expressions (:=) are not allowed", 1),
    ("[y := 1, y]", "assignment expressions (:=) are not allowed", 1),
    ("import os", "statements (import) are not allowed", 0),
    ("del system", "statements (delete) are not allowed", 0),
    ("lambda: 1", "lambda is not allowed", 0),
    ("(lambda: 1)()", "lambda is not allowed", 1),
    ("(yield)", "yield is not allowed", 1),
    ("await system", "await is not allowed", 0),
    # comprehensions and generators (and their frames)
    ("[x for x in [1]]", "comprehensions are not supported", 0),
    ("[[x for x in [1]*10000] for y in [1]*10000]", "comprehensions are not supported", 0),
    ("{x: 1 for x in system.load}", "comprehensions are not supported", 0),
    ("{x for x in system.load}", "comprehensions are not supported", 0),
    ("(x for x in [1])", "generator expressions are not supported", 0),
    ("(x for x in [1]).gi_frame.f_back", "generator expressions are not supported", 0),
    ("max(x for x in system.load)", "generator expressions are not supported", 3),
    # unpacking, keywords
    ("[*system.load]", "* unpacking is not allowed", 1),
    ("max(*system.load)", "* unpacking is not allowed", 4),
    ("{**system}", "** unpacking is not allowed", 0),
    ("round(1.5, ndigits=1)", "keyword arguments are not supported", 11),
    # numbers: folded at compile time under the runtime limits
    ("1999999**1999999", "1999999 ** 1999999 would have more than 32768 bits", 0),
    ("4000000**4000000", "would have more than 32768 bits", 0),
    ("2**4000000", "would have more than 32768 bits", 0),
    ("9**9**8", "9 ** 43046721: operands are limited to 4000000", 0),
    ("10**10**10", "operands are limited to 4000000", 0),
    ("2.0**10000", "OverflowError", 0),
    ("1<<25000", "1 << 25000: shifts are limited to 10000", 0),
    ("1>>25000", "shifts are limited to 10000", 0),
    ("1 << -1", "ValueError: negative shift count", 0),
    ("(2**30000) * (2**30000)", "the product would have more than 32768 bits", 0),
    ("str(10**5000)", "str() of an integer with more than 4000 digits", 0),
    ("int('1' * 5000)", "int() of a string longer than 4000 characters", 0),
    ("round(1, -10**9)", "round() digits must be an integer within +-100", 0),
    # strings and lists
    ("'-'*100000+'1'", "the result would be longer than 100000", 0),
    ("'a'*100001", "the result would be longer than 100000", 0),
    ("'a'*100000*2", "the result would be longer than 100000", 0),
    ("[1]*100001", "the result would be longer than 100000", 0),
    ("[[1]*1000]*1000", "repeating a list that holds lists, tuples, sets or dicts", 0),
    ("[(1,)]*2", "repeating a list that holds", 0),
    # size and nesting
    ("(" * 200 + "1" + ")" * 200, "brackets are nested too deeply", MAX_DEPTH),
    ("[" * 60 + "]" * 60, "brackets are nested too deeply", MAX_DEPTH),
    ("-" * 4000 + "1", "expression is nested too deeply", 0),
    ("not " * 1000 + "True", "expression is nested too deeply", 4 * MAX_DEPTH),
    ("1" + "+1" * 2000, "expression is nested too deeply", None),
    ("1" * 4097, "expression is 4097 characters long; the limit is 4096", 4096),
    ("1\x00", "null bytes", None),
    # literals that are not data
    ("b'x' * 10", "bytes literals are not supported", 0),
    ("1j ** 2", "complex literals are not supported", 0),
    ("system.x is 1", "'is' compares only with None, True or False", 12),
]


@pytest.mark.parametrize(("source", "message", "col"), COMPILE_REFUSALS)
def test_refused_at_compile_time(source: str, message: str, col: int | None) -> None:
    e = refuse(source)
    assert message in e.message
    if col is not None:
        assert e.col == col
    else:
        assert e.col is not None


VALUES: dict[str, Any] = {
    "system": {
        "big": 10**5000,
        "s": "a",
        "long": "a" * 60_000,
        "n": 10**9,
        "b": 1999999,
        "nine": 9,
        "one": 1,
        "shift": 25_000,
        "fmt": "%999999999d",
        "digits": "1" * 5000,
        "negbig": -(10**9),
        "many": list(range(20_000)),
        "nested": [[1]],
        "flat": [1],
        "f": 1e200,
        "zero": 0,
        "obj": object(),  # collectors never send objects; if one did, no getattr on it
        "cls": {"__class__": "just a key"},
    }
}
_deep: list[Any] = []
for _ in range(100_000):
    _deep = [_deep]
VALUES["system"]["deep"] = _deep
VALUES["system"]["deep2"] = [_deep]


RUNTIME_FAILURES = [
    ("str(system.big)", "str() of an integer with more than 4000 digits"),
    ("system.s * system.n", "longer than 100000"),
    ("system.s * 100001", "longer than 100000"),
    ("system.long + system.long", "longer than 100000"),
    ("system.b ** system.b", "would have more than 32768 bits"),
    ("system.nine ** 9 ** 8", "operands are limited to 4000000"),
    ("system.big ** 2", "operands are limited to 4000000"),
    ("system.big * system.big", "the product would have more than 32768 bits"),
    ("system.f ** 2", "operands are limited to 4000000"),
    ("system.one << system.shift", "shifts are limited to 10000"),
    ("system.fmt % system.one", "% formatting of strings is not allowed"),
    ("int(system.digits)", "int() of a string longer than 4000 characters"),
    ("round(system.one, system.negbig)", "round() digits must be an integer"),
    ("min(system.many)", "min() over more than 10000 elements"),
    ("system.nested * 99999", "repeating a list that holds"),
    ("system.flat * system.n", "longer than 100000"),
    ("float(system.big)", "OverflowError"),
    ("system.one / system.zero", "ZeroDivisionError"),
    ("system.deep == system.deep2", "RecursionError"),
    ("system.obj.__class__", "attribute '__class__' is not allowed"),
    ("system.obj.real", "is an object, not a mapping"),
    ("str(system.obj)", "str() takes a number"),
]


@pytest.mark.parametrize(("source", "message"), RUNTIME_FAILURES)
def test_fails_fast_at_evaluation(source: str, message: str) -> None:
    scope = EvalScope(values=VALUES, now=0.0)
    t0 = time.perf_counter()
    with pytest.raises(ExprError) as info:
        compile_expr(source, names=NAMES).evaluate(scope)
    assert time.perf_counter() - t0 < FAST
    assert message in info.value.message


def test_subscript_is_a_data_lookup_not_getattr() -> None:
    scope = EvalScope(values=VALUES, now=0.0)
    e = compile_expr("system.cls['__class__']", names=NAMES)
    assert e.evaluate(scope) == "just a key"
    with pytest.raises(MissingData):
        compile_expr("system.cls['__dict__']", names=NAMES).evaluate(scope)


def test_huge_values_in_errors_are_never_formatted() -> None:
    # str(KeyError(10**5000)) would format the int; messages must not.
    scope = EvalScope(values={"system": {"big": 10**5000, "d": {}}}, now=0.0)
    t0 = time.perf_counter()
    with pytest.raises(MissingData) as info:
        compile_expr("system.d[system.big]", names=NAMES).evaluate(scope)
    assert "<int of 16610 bits>" in info.value.message
    with pytest.raises(ExprError) as info:
        compile_expr("system.big", names=NAMES).evaluate_bool(scope)
    assert info.value.message == "expression yielded int <int of 16610 bits>, not a boolean"
    assert time.perf_counter() - t0 < FAST


def test_threads_see_only_their_own_scope() -> None:
    e = compile_expr(
        "it.n * 2 + system.base == it.expect and system.base > -1 and it.n in system.ok",
        names=NAMES,
    )
    errors: list[str] = []
    start = threading.Barrier(16)

    def worker(k: int) -> None:
        values = {"system": {"base": k * 1000, "ok": list(range(k * 10, k * 10 + 10))}}
        start.wait()
        for i in range(2000):
            n = k * 10 + i % 10
            it = {"n": n, "expect": n * 2 + k * 1000}
            s = EvalScope(values=values, now=0.0, it=it, it_key=f"t{k}")
            if e.evaluate_bool(s) is not True:
                errors.append(f"thread {k} iteration {i}")
            if e.evaluate_bool(s.for_element({"n": n, "expect": -1}, "x")) is not False:
                errors.append(f"thread {k} iteration {i} (false case)")

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []


# Token soup: whatever compile_expr accepts must evaluate to a value or an
# ExprError, and whatever it refuses must be an ExprError: never another
# exception, never a hang.
_TOKENS = [
    "system", "it", ".", "cpu", "load", "[", "]", "(", ")", "0", "1", "-1", "2.5", "'a'",
    "10**5000", "9", "**", "*", "+", "-", "/", "//", "%", "<<", ">>", "&", "|", "^", "~",
    " and ", " or ", " not ", "==", "<", ">=", " in ", " is ", "None", "True", ",", ":",
    "{", "}", " if ", " else ", "abs", "len", "min", "max", "round", "str", "int", "float",
    "absent", "avg_over", "rate", '"5m"', "__class__", "_", "lambda", " for ", "=", ";",
]  # fmt: skip


@pytest.mark.filterwarnings("ignore::SyntaxWarning")  # CPython's own, e.g. for "1if"
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=25))
def test_token_soup_only_ever_raises_expr_error(tokens: list[str]) -> None:
    source = "".join(tokens)
    values = {"system": {"cpu": 50.0, "load": [1, 2, 3]}}
    try:
        e = compile_expr(source, names=NAMES)
    except ExprError as err:
        assert err.col is None or 0 <= err.col <= len(source)
        return
    scope = EvalScope(values=values, now=0.0, it={"cpu": 1}, it_key="k")
    t0 = time.perf_counter()
    with contextlib.suppress(ExprError):
        e.evaluate(scope)
    assert time.perf_counter() - t0 < FAST
