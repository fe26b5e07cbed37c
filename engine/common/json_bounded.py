"""JSON from outside, parsed with a bounded depth.

json.loads raises RecursionError on a value nested ~1,000 levels deep, which
would fail the whole file, command output or request body for one deep value.
Here such a document is parsed again with every container deeper than
`max_depth` replaced by null: the rest of the document keeps its values, and
the boundary (engine/common/boundary.py) then cuts the deep part with its usual
marker and log line. The common case costs one json.loads.
"""

from __future__ import annotations

import json
import re
from typing import Any

from engine.common.boundary import MAX_DEPTH

__all__ = ["loads"]

# strings (skipped whole: brackets inside them are text) and brackets
_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)


def loads(data: str | bytes, max_depth: int = MAX_DEPTH + 2) -> Any:
    """json.loads(data), with containers deeper than `max_depth` read as null.
    Raises what json.loads raises for anything else (ValueError and subclasses)."""
    try:
        return json.loads(data)
    except RecursionError:
        pass
    if isinstance(data, bytes):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    pruned = _prune(data, max_depth)
    try:
        return json.loads(pruned)
    except RecursionError:  # not JSON in a way the scan misread: say so as JSON errors do
        raise json.JSONDecodeError("nested too deeply", pruned, 0) from None


def _prune(text: str, max_depth: int) -> str:
    """`text` with each container opened past `max_depth` replaced by null. Text
    that is not JSON comes out as broken as it went in, for json.loads to say so."""
    pieces: list[str] = []
    depth = 0
    last = 0
    cut_from = -1
    for m in _TOKENS.finditer(text):
        c = text[m.start()]
        if c == '"':
            continue
        if c in "[{":
            depth += 1
            if depth == max_depth + 1:
                cut_from = m.start()
        else:
            if depth == max_depth + 1 and cut_from >= 0:
                pieces.append(text[last:cut_from])
                pieces.append("null")
                last = m.end()
                cut_from = -1
            depth -= 1
    if cut_from >= 0:  # never closed: not JSON, and json.loads will say so
        pieces.append(text[last:cut_from] + "null")
    else:
        pieces.append(text[last:])
    return "".join(pieces)
