"""Sandboxed Jinja2 templates for annotations and notification text.

One SandboxedEnvironment per template set: named templates (`templates:` in
channel files) are reachable from others through `{% include "name" %}`.
"""

from __future__ import annotations

from collections.abc import Mapping

import jinja2
import jinja2.meta
from jinja2.sandbox import SandboxedEnvironment


def make_env(named: Mapping[str, str] | None = None) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=jinja2.DictLoader(dict(named or {})),
        autoescape=False,
        undefined=jinja2.ChainableUndefined,
        keep_trailing_newline=False,
    )


_CHECK_ENV = make_env()


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def check(text: str, known: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """A syntax or reference problem in `text` as (message, 1-based line), or None."""
    if not is_template(text):
        return None
    try:
        ast = _CHECK_ENV.parse(text)
    except jinja2.TemplateSyntaxError as e:
        return f"template syntax error: {e.message}", e.lineno or 1
    for ref in jinja2.meta.find_referenced_templates(ast):
        if ref is not None and (known is None or ref not in known):
            return f"unknown template {ref!r}", 1
    return None
