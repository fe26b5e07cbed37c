"""The expression sandbox's growth limits: the operators as the sandbox runs them.

Every check runs BEFORE the operation builds anything, and reads the operands
by isinstance, never by exact type: collectors hand out read-only subclasses
(FrozenList, FrozenDict), and a check keyed on `type(x) is list` let
`fixed.lst * 100000000` through to a 17 GB list.

  * repetition and concatenation: the result's length at most MAX_STRING_LENGTH
    (simpleeval's bound); repeating a sequence that holds containers is refused
    (sharing one inner list n times makes comparisons cost n * len);
  * `*` of integers and `**`: results of at most MAX_INT_BITS bits, operands of
    `**` within simpleeval's MAX_POWER;
  * shifts within simpleeval's MAX_SHIFT / MAX_SHIFT_BASE;
  * an operand that is neither a number nor a str/list/tuple never reaches an
    arithmetic operator's own implementation (no foreign __mul__ or __index__);
  * constants folded at compile time: at most MAX_CONST_CELLS elements and
    characters built per expression, counted from `fold_growth` before each fold
    (`[[0]*99999, [0]*99999, ...]`, 3.6 KB of source, used to keep ~290 MB).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sized
from typing import Any, Final

from simpleeval import MAX_POWER, MAX_SHIFT, MAX_SHIFT_BASE, MAX_STRING_LENGTH

from engine.errors import ExprError

MAX_INT_BITS: Final = 32_768
MAX_STR_INT_DIGITS: Final = 4000
MAX_ROUND_DIGITS: Final = 100
# Elements and characters that folding one expression's constants may build.
# Literal text in the source is not counted (it is bounded by the source length).
MAX_CONST_CELLS: Final = MAX_STRING_LENGTH
# Below 10**MAX_STR_INT_DIGITS: an int this size converts to str in well under 1 ms.
MAX_STR_INT_BITS: Final = int(MAX_STR_INT_DIGITS * math.log2(10))

SEQ: Final = (str, bytes, list, tuple)
CONTAINERS: Final = (list, tuple, dict, set, frozenset, Mapping)
SCALARS: Final = (str, int, float, bool, type(None))
_NUMBER: Final = (int, float)  # bool is an int


def too_big(what: str) -> ExprError:
    return ExprError(f"refused: {what}")


def show(v: Any) -> str:
    """A value for a message, never formatting a huge one."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 64:
        return f"<int of {v.bit_length()} bits>"
    if isinstance(v, str):
        return repr(v) if len(v) <= 60 else repr(v[:57]) + "..."
    if type(v) in SCALARS:
        return repr(v)
    if isinstance(v, list | tuple | dict | set | frozenset):
        base = next(t for t in (list, tuple, dict, set, frozenset) if isinstance(v, t))
        return f"<{base.__name__} of {len(v)}>"
    return f"<{type(v).__name__}>"


def _unsupported(op: str, a: Any, b: Any) -> TypeError:
    # Python's own wording: failure() in engine/expr/failures.py reads "'NoneType'" in it.
    return TypeError(
        f"unsupported operand type(s) for {op}: '{type(a).__name__}' and '{type(b).__name__}'"
    )


def safe_add(a: Any, b: Any) -> Any:
    if isinstance(a, SEQ) and isinstance(b, SEQ):
        if len(a) + len(b) > MAX_STRING_LENGTH:
            raise too_big(f"the result would be longer than {MAX_STRING_LENGTH}")
    elif not (isinstance(a, _NUMBER) and isinstance(b, _NUMBER)):
        raise _unsupported("+", a, b)
    return a + b


def _repeat(seq: Any, n: Any) -> Any:
    if not isinstance(n, int):
        raise TypeError(f"can't multiply sequence by non-int of type '{type(n).__name__}'")
    if n > 1:
        if len(seq) * n > MAX_STRING_LENGTH:
            raise too_big(f"the result would be longer than {MAX_STRING_LENGTH}")
        # Sharing one inner list n times makes later comparisons cost n * len.
        if not isinstance(seq, str | bytes) and any(isinstance(x, CONTAINERS) for x in seq):
            raise too_big("repeating a list that holds lists, tuples, sets or dicts")
    return seq * int(n)


def safe_mult(a: Any, b: Any) -> Any:
    if isinstance(a, SEQ):
        return _repeat(a, b)
    if isinstance(b, SEQ):
        return _repeat(b, a)
    if isinstance(a, int) and isinstance(b, int):
        if (
            a.bit_length() + b.bit_length() > MAX_INT_BITS
            and a.bit_length() > 1
            and b.bit_length() > 1
        ):
            raise too_big(f"the product would have more than {MAX_INT_BITS} bits")
    elif not (isinstance(a, _NUMBER) and isinstance(b, _NUMBER)):
        raise _unsupported("*", a, b)
    return a * b


def safe_pow(a: Any, b: Any) -> Any:
    # simpleeval's bound on both operands, then the size of an integer result,
    # which simpleeval does not bound (1999999**1999999 has 42 million bits).
    if not (isinstance(a, _NUMBER) and isinstance(b, _NUMBER)):
        raise _unsupported("** or pow()", a, b)
    if abs(a) > MAX_POWER or abs(b) > MAX_POWER:
        raise too_big(f"{show(a)} ** {show(b)}: operands are limited to {MAX_POWER}")
    if (
        isinstance(a, int)
        and isinstance(b, int)
        and b > 1
        and abs(a) > 1
        and b * math.log2(abs(a)) > MAX_INT_BITS
    ):
        raise too_big(f"{show(a)} ** {show(b)} would have more than {MAX_INT_BITS} bits")
    return a**b


def _check_shift(a: Any, b: Any, op: str) -> None:
    if not (isinstance(a, int) and isinstance(b, int)):
        raise _unsupported(op, a, b)
    if abs(b) > MAX_SHIFT or abs(a) > MAX_SHIFT_BASE:
        raise too_big(f"{show(a)} {op} {show(b)}: shifts are limited to {MAX_SHIFT}")


def safe_lshift(a: Any, b: Any) -> Any:
    _check_shift(a, b, "<<")
    return a << b


def safe_rshift(a: Any, b: Any) -> Any:
    _check_shift(a, b, ">>")
    return a >> b


def safe_mod(a: Any, b: Any) -> Any:
    # "%999999999d" % 1 and "%s" % 10**5000 are format-string attacks.
    if isinstance(a, str | bytes):
        raise ExprError("% formatting of strings is not allowed")
    return a % b


# Operations that build a new container or string from their operands.
_BUILDERS: Final = frozenset(
    {
        list,
        tuple,
        set,
        frozenset,
        dict,
        safe_add,
        operator.or_,
        operator.and_,
        operator.xor,
        operator.sub,
    }
)


def fold_growth(f: Any, args: tuple[Any, ...]) -> int:
    """An upper bound on the elements and characters `f(*args)` builds, known
    before it runs: a repetition builds len * n, a container literal, a
    concatenation, a set or dict operation or a slice at most as many as its
    operands hold; reading (len, comparisons, indexing) builds nothing."""
    if f is safe_mult and len(args) == 2:
        a, b = args
        seq, n = (a, b) if isinstance(a, SEQ) else (b, a)
        if isinstance(seq, SEQ) and isinstance(n, int):
            return len(seq) * max(int(n), 0)
        return 0
    if f in _BUILDERS or any(isinstance(a, slice) for a in args):
        return sum(len(a) for a in args if isinstance(a, Sized))
    return 0


def built_size(value: Any) -> int:
    """What a folded scalar result holds, counted like fold_growth: str() of a
    number is longer than its operand, and an int may have MAX_INT_BITS bits."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 64
    return 0
