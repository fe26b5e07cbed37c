"""The dialogs of `vigil dashboard`: acknowledge, silence, filter, and a text
viewer (help, explain, an alert's journal). Each checks what was typed before
it closes (a bad matcher or duration says why on the dialog's last line), so
the daemon only ever gets well-formed requests; enter submits, escape cancels."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from engine.cli.dashboard_model import parse_filter
from engine.common import matchers
from engine.common.durations import parse_duration

DIALOG_CSS = """
Dialog, TextDialog { align: center middle; }
Dialog > Vertical { width: 76; max-width: 100%; height: auto; border: round $accent;
                    background: $surface; padding: 0 1; }
Dialog Input { margin: 0 0 1 0; }
Dialog Label { color: $text-muted; }
Dialog .title { text-style: bold; margin-bottom: 1; }
Dialog .error { color: $error; }
TextDialog > VerticalScroll { width: 100%; height: 100%; border: round $accent;
                              background: $surface; padding: 0 1; }
"""


def _duration(text: str) -> str | None:
    """None if `text` is a positive duration (or empty), else why not."""
    if not text:
        return None
    try:
        if parse_duration(text) <= 0:
            return "a duration longer than 0s"
    except ValueError as e:
        return str(e)
    return None


def _input(value: str, id: str) -> Input:
    # one line each (compact), so the largest dialog fits 80x24 with room to spare
    return Input(value=value, id=id, compact=True, select_on_focus=False)


class Dialog(ModalScreen[Any]):
    """A title, some inputs, an error line; enter in the last input submits."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "cancel")]
    title_text = ""

    def fields(self) -> list[tuple[str, Input]]:
        """(what it asks, the input) in order."""
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        with Vertical():
            # the title holds label values: never read as markup
            yield Static(self.title_text, markup=False, classes="title")
            for label, field in self.fields():
                yield Label(label, markup=False)
                yield field
            yield Static("", classes="error", markup=False)
            yield Label("enter: next field, then submit   escape: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        i = inputs.index(event.input)
        if i + 1 < len(inputs):
            inputs[i + 1].focus()
            return
        problem, result = self.check([w.value.strip() for w in inputs])
        if problem:
            self.query_one(".error", Static).update(problem)
            return
        self.dismiss(result)

    def check(self, values: list[str]) -> tuple[str | None, Any]:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)


class AckDialog(Dialog):
    def __init__(self, alert: str) -> None:
        super().__init__()
        self.title_text = f"acknowledge {alert}"

    def fields(self) -> list[tuple[str, Input]]:
        return [
            ("note (required): why, what is being done", _input("", "note")),
            ("for how long, e.g. 2h (empty: until it resolves)", _input("", "for")),
        ]

    def check(self, values: list[str]) -> tuple[str | None, Any]:
        note, for_ = values
        if not note:
            return "a note is required: everyone sees it", None
        problem = _duration(for_)
        return (f"for: {problem}", None) if problem else (None, (note, for_))


class SilenceDialog(Dialog):
    title_text = "silence the alerts that match"

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def fields(self) -> list[tuple[str, Input]]:
        return [
            ('matchers, e.g. rule=disk_full host=~"db-.*"', _input(self.start, "matchers")),
            ("for how long, e.g. 1h, 30m, 2d", _input("1h", "for")),
            ("reason (required)", _input("", "reason")),
        ]

    def check(self, values: list[str]) -> tuple[str | None, Any]:
        text, for_, reason = values
        try:
            ms = parse_filter(text)
        except matchers.MatcherError as e:
            return str(e), None
        if not ms:
            return "at least one matcher", None
        problem = _duration(for_) if for_ else "a duration, e.g. 1h"
        if problem:
            return f"for: {problem}", None
        if not reason:
            return "a reason is required", None
        return None, (ms, for_, reason)


class FilterDialog(Dialog):
    title_text = 'filter: e.g. team=web severity!=info rule=~"disk.*"'

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def fields(self) -> list[tuple[str, Input]]:
        return [("matchers (empty: every alert)", _input(self.start, "filter"))]

    def check(self, values: list[str]) -> tuple[str | None, Any]:
        try:
            return None, parse_filter(values[0])
        except matchers.MatcherError as e:
            return str(e), None


class TextDialog(ModalScreen[None]):
    """Text to read and scroll; escape, q or enter closes it."""

    DEFAULT_CSS = DIALOG_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "close", "close"),
    ]

    def __init__(self, title: str, text: str) -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = self.title_text
            v.border_subtitle = "escape closes"
            yield Static(self.text, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
