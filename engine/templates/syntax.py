"""The loader's template check, without Jinja where the text needs none.

Nearly every annotation is text with blocks like `{{ labels.host }}` or
`{{ value | round(1) }}`. Text made only of such blocks is valid Jinja syntax, so
it needs no full parse (~0.5 ms a template: a lot for 10,000 rules); one without
filters does not even need Jinja imported (~80 ms, a lot for `vigil validate`).
Anything else takes engine.templates.renderer.check (the real sandbox's parse),
through engine.templates.check.
"""

from __future__ import annotations

import re
from collections.abc import Collection

_LIT = r"""(?:-?\d+(?:\.\d+)?|'[^'\\{}]*'|"[^"\\{}]*"|true|false|none)"""
_FILTER = rf"\|\s*([A-Za-z_]\w*)(?:\(\s*(?:{_LIT}(?:\s*,\s*{_LIT})*)?\s*\))?\s*"
# `not` is the one name that starts an expression rather than being one
_SIMPLE = re.compile(
    rf"\{{\{{-?\s*(?!not\b)[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\s*((?:{_FILTER})*)-?\}}\}}"
)
_FILTER_NAME = re.compile(_FILTER)
# Jinja compiles a template to Python source and that in one `compile()` call,
# which holds the GIL: 100,000 `{{ 1 }}` (700 KB) stalled the daemon's loop for
# 2.5 s on reload. Real templates are a few KB; an HTML body fits easily.
MAX_TEMPLATE = 64 * 1024


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def simple_ok(text: str, filters: Collection[str]) -> bool:
    """True when `text` is only plain text and `{{ name.path | filter(literal) }}`
    blocks whose filters are all in `filters`."""
    for m in _SIMPLE.finditer(text):
        for f in _FILTER_NAME.finditer(m.group(1)):
            if f.group(1) not in filters:
                return False
    rest = _SIMPLE.sub("", text)
    return not is_template(rest) and "}}" not in rest and "%}" not in rest and "#}" not in rest
