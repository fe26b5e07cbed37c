"""The loader's template check: the cheap path of syntax.py first, the Jinja
sandbox's parse (renderer.check) only for text that needs it."""

from __future__ import annotations

from collections.abc import Mapping

from engine.templates.syntax import MAX_TEMPLATE, is_template, simple_ok


def check(text: str, known: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """A syntax or reference problem in `text` as (message, 1-based line), or None;
    see engine.templates.renderer.check."""
    if len(text) > MAX_TEMPLATE:
        return f"template is {len(text):,} characters long; at most {MAX_TEMPLATE:,}", 1
    if not is_template(text) or simple_ok(text, ()):
        return None
    from engine.templates import renderer  # Jinja: imported only when needed

    return renderer.check(text, known)
