"""The Textual app of `vigil dashboard`: lays out the view model, reads keys.

Three views (1 alerts, 2 collectors and channels, 3 recent events) under a
one-line header; the network is read in worker threads (dashboard_feed) and
each snapshot is laid out on the screen's own thread. A table is rebuilt only
when its rows change; otherwise only the cells that differ (the ages) are set,
which keeps a refresh a second cheap (bench/dashboard.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, DataTable, Static

from engine.cli.dashboard_feed import Feed, Snapshot
from engine.cli.dashboard_model import (
    NO_GROUP,
    SORTS,
    Alert,
    EventLog,
    Group,
    alert_cells,
    build_groups,
    channel_rows,
    clock_text,
    collector_rows,
    filter_text,
    history_lines,
    labels_text,
    next_group,
    silence_matchers,
)
from engine.cli.tables import one_line
from engine.common import matchers
from engine.errors import ClientError

SERVICES_EVERY = 5
FIRST_WAIT = 1.0  # seconds
ALERT_COLUMNS = ("sev", "state", "rule", "labels", "value", "age", "marks")
SEVERITY_STYLE = {
    "emergency": "bold white on red",
    "critical": "bold red",
    "warning": "yellow",
    "info": "cyan",
}
HELP = """vigil dashboard: the daemon's alerts, refreshed every second

Views    1 alerts   2 collectors and channels   3 recent events
Move     up/down, page up/down, home/end
Alert    enter  details and journal history of the selected alert
         a  acknowledge (with a note, optionally for a time)
         u  remove the acknowledgement
         s  silence: matchers from the selected alert or group, a duration
            and a reason
         e  explain: why it fires and where its notification goes
View     /  filter, label matchers: team=web severity!=info rule=~"disk.*"
            (the labels, and rule, severity, state; empty to clear)
         g  group by the next label (rule, severity, each label, none)
         o  sort: severity, state, age (newest first)
         r  refresh now
         ?  this help        q  quit (escape closes a dialog)

Marks: A acknowledged, S silenced, I inhibited, F flapping, T stale."""


# The dialogs (engine.cli.dashboard_dialogs) are imported where they open: their
# widgets are not needed for the first frame, which is to be drawn within 300 ms.


class Dashboard(App[None]):
    CSS = """
    Screen { layout: vertical; }
    #bar { height: 1; background: $primary-background; }
    #views { height: 1fr; }
    #views > DataTable { height: 1fr; }
    #services DataTable { height: auto; max-height: 50%; margin-bottom: 1; }
    #detail { height: 2; color: $text-muted; }
    #keys { height: 1; background: $panel; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "help"),
        Binding("1", "view('alerts')", "alerts", show=False),
        Binding("2", "view('services')", "services", show=False),
        Binding("3", "view('events')", "events", show=False),
        Binding("a", "ack", "ack"),
        Binding("u", "unack", "unack"),
        Binding("s", "silence", "silence"),
        Binding("e", "explain", "explain"),
        Binding("slash,f", "filter", "filter"),
        Binding("g", "group", "group"),
        Binding("o", "sort", "sort"),
        Binding("r", "poll", "refresh"),
    ]
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        feed: Feed,
        *,
        first: tuple[threading.Thread, list[Snapshot]] | None = None,
        refresh: float = 1.0,
        group_by: str = "rule",
        sort: str = "severity",
        filters: Sequence[matchers.Matcher] = (),
    ) -> None:
        super().__init__()
        self.feed = feed
        self.first = first
        self.refresh_every = refresh
        self.group_by = group_by
        self.sort = sort
        self.filters = tuple(filters)
        self.snap: Snapshot | None = None
        self.events = EventLog()
        self.groups: list[Group] = []
        self.rows: dict[str, Alert | Group] = {}  # row key -> what the row shows
        self._polling = False
        self._polls = 0
        self._view = "alerts"  # the ContentSwitcher's, readable from the poll thread

    def compose(self) -> ComposeResult:
        yield Static("vigil: connecting", id="bar")
        with ContentSwitcher(initial="alerts", id="views"):
            yield _table("alerts", *ALERT_COLUMNS)
            with Vertical(id="services"):
                yield _table("collectors", "collector", "state", "last read", "error")
                yield _table(
                    "channels", "channel", "type", "breaker", "queue", "sent", "failed", "error"
                )
            yield _table("events", "time", "event", "alert", "detail")
        yield Static("", id="detail")
        yield Static(
            "a ack s silence e explain / filter g group o sort 1-3 views ? help q quit",
            id="keys",
        )

    def on_mount(self) -> None:
        self.query_one("#alerts", DataTable).focus()
        if self.first is not None:
            thread, got = self.first
            # the first frame waits a little for the first snapshot, not for a daemon
            # that does not answer: then the screen comes first, the snapshot later
            thread.join(FIRST_WAIT)
            if got:
                self.apply(got[0])
                self.call_after_refresh(self._first_frame)
            else:
                self._late_first(thread, got)
        self.set_interval(self.refresh_every, self.action_poll)

    @work(thread=True, exit_on_error=False)
    def _late_first(self, thread: threading.Thread, got: list[Snapshot]) -> None:
        thread.join()
        if got and self.snap is None:
            self.call_from_thread(self.apply, got[0])

    def _first_frame(self) -> None:
        """For bench/dashboard.py: when the first frame with the alerts was drawn
        (wall clock), and the CPU the process had used by then."""
        path = os.environ.get("VIGIL_DASHBOARD_FIRST_PAINT")
        if path:
            with open(path, "w") as f:
                f.write(f"{time.time():.6f} {time.process_time():.6f}\n")

    # -- refresh ---------------------------------------------------------------------------

    def action_poll(self) -> None:
        if not self._polling:  # a slow daemon: never more than one refresh under way
            self._polling = True
            self._poll()

    @work(thread=True, exit_on_error=False)
    def _poll(self) -> None:
        # the collectors and channels every refresh while they are shown, else every
        # SERVICES_EVERY refreshes (the header's summary): two calls a second saved
        self._polls += 1
        services = self._view == "services" or self._polls % SERVICES_EVERY == 0
        try:
            snap = self.feed.snapshot(services=services)
        finally:
            self._polling = False
        self.call_from_thread(self.apply, snap)

    def apply(self, snap: Snapshot) -> None:
        if self.snap is not None and snap.error is None and not snap.status:
            snap = replace(snap, status=self.snap.status, channels=self.snap.channels)
        self.snap = snap
        if snap.error is None:
            self.events.update(snap.alerts, snap.at)
        self.show()

    def show(self) -> None:
        snap = self.snap
        if snap is None:
            return
        now = time.time()
        self.groups = build_groups(
            snap.alerts, filters=self.filters, group_by=self.group_by, sort=self.sort, now=now
        )
        self._show_alerts(now)
        view = self.query_one("#views", ContentSwitcher).current
        if view == "services":
            _fill(self.query_one("#collectors", DataTable), collector_rows(snap.status, now))
            _fill(self.query_one("#channels", DataTable), channel_rows(snap.channels))
        elif view == "events":
            _fill(
                self.query_one("#events", DataTable),
                [(clock_text(e.at), e.what, e.alert, e.detail) for e in self.events.events],
            )
        self.query_one("#bar", Static).update(self._bar(snap))
        self._show_detail()

    def _bar(self, snap: Snapshot) -> Text:
        shown = sum(len(g.alerts) for g in self.groups)
        firing = sum(g.firing for g in self.groups)
        cols = snap.status.get("collectors") or {}
        down = sum(1 for c in cols.values() if isinstance(c, dict) and not c.get("up"))
        # most important first: an 80-column line cuts the rest
        bar = Text(f" {time.strftime('%H:%M:%S')} ", no_wrap=True, overflow="ellipsis")
        if snap.error:
            bar.append(snap.error, style="bold red")
            return bar
        bar.append(f"{shown} alerts ", style="bold")
        bar.append(f"{firing} firing", style="bold red" if firing else "green")
        if len(snap.alerts) != shown:
            bar.append(f" of {len(snap.alerts)}")
        if self.filters:
            bar.append(f" · {filter_text(self.filters)}", style="italic")
        if cols:
            bar.append(" · collectors ")
            bar.append(f"{len(cols) - down}/{len(cols)} up", style="bold red" if down else "")
        broken = [c for c in snap.channels if (c.get("status") or {}).get("breaker") == "open"]
        if broken:
            bar.append(f" · {len(broken)} channel(s) open", style="bold red")
        bar.append(f" · by {self.group_by or 'none'}, {self.sort}")
        return bar

    def _show_alerts(self, now: float) -> None:
        table = self.query_one("#alerts", DataTable)
        rows: list[tuple[str, tuple[Text, ...]]] = []
        self.rows = {}
        for g in self.groups:
            if self.group_by != NO_GROUP:
                key = f"group:{g.key}"
                self.rows[key] = g
                title = Text(one_line(f"▸ {self.group_by}={g.key}"), style="bold")
                info = f"{len(g.alerts)} alert(s), {g.firing} firing"
                rows.append(
                    (key, (_sev(g.worst), Text(), title, Text(info), Text(), Text(), Text()))
                )
            for a in g.alerts:
                self.rows[a.fp] = a
                cells = alert_cells(a, now, self.group_by)
                rows.append((a.fp, (_sev(a.severity), *map(_cell, cells[1:]))))
        _fill_keyed(table, rows)

    # -- the selection ---------------------------------------------------------------------

    def selected(self) -> Alert | Group | None:
        table = self.query_one("#alerts", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return self.rows.get(str(key))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "alerts":
            self._show_detail()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "alerts":
            a = self.selected()
            if isinstance(a, Alert):
                self._details(a)

    def _show_detail(self) -> None:
        a = self.selected()
        if isinstance(a, Alert):
            lines = [f"{a.rule} {{{labels_text(a.labels)}}} {a.fp}", a.summary]
            if a.ack:
                lines[1] = f"acked by {a.ack.get('by')}: {a.ack.get('note')}  {a.summary}"
            text = "\n".join(lines)
        elif isinstance(a, Group):
            text = f"{self.group_by}={a.key}: {len(a.alerts)} alert(s); s silences them all"
        else:
            text = "no alerts" + (" match the filter" if self.filters else "")
        shown = "\n".join(one_line(x) for x in text.split("\n"))
        self.query_one("#detail", Static).update(Text(shown, no_wrap=True, overflow="ellipsis"))

    def _need_alert(self) -> Alert | None:
        a = self.selected()
        if not isinstance(a, Alert):
            self.notify("select an alert (not a group) first", severity="warning")
            return None
        return a

    # -- actions ---------------------------------------------------------------------------

    def action_view(self, name: str) -> None:
        self.query_one("#views", ContentSwitcher).current = self._view = name
        if name == "services":
            self.action_poll()
        target = {"services": "#collectors"}.get(name, f"#{name}")
        self.query_one(target, DataTable).focus()
        self.show()

    def action_help(self) -> None:
        from engine.cli.dashboard_dialogs import TextDialog

        self.push_screen(TextDialog("help", HELP))

    def action_group(self) -> None:
        self.group_by = next_group(self.group_by, self.snap.alerts if self.snap else ())
        self.show()

    def action_sort(self) -> None:
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.show()

    def action_filter(self) -> None:
        def done(ms: tuple[matchers.Matcher, ...] | None) -> None:
            if ms is not None:
                self.filters = ms
                self.show()

        from engine.cli.dashboard_dialogs import FilterDialog

        self.push_screen(FilterDialog(filter_text(self.filters)), done)

    def action_ack(self) -> None:
        a = self._need_alert()
        if a is None:
            return

        def done(answer: tuple[str, str] | None) -> None:
            if answer is not None:
                note, for_ = answer
                self._write(lambda: self.feed.ack(a.fp, note, for_), f"acknowledged {a.rule}")

        from engine.cli.dashboard_dialogs import AckDialog

        self.push_screen(AckDialog(f"{a.rule} {{{labels_text(a.labels)}}}"), done)

    def action_unack(self) -> None:
        a = self._need_alert()
        if a is not None:
            self._write(lambda: self.feed.unack(a.fp), f"unacknowledged {a.rule}")

    def action_silence(self) -> None:
        sel = self.selected()
        if sel is None:
            self.notify("nothing to silence", severity="warning")
            return
        if isinstance(sel, Group):
            start = filter_text([matchers.Matcher(self.group_by, frozenset((sel.key,)))])
        else:
            start = silence_matchers(sel)

        def done(answer: tuple[tuple[matchers.Matcher, ...], str, str] | None) -> None:
            if answer is not None:
                ms, for_, reason = answer
                self._write(
                    lambda: self.feed.silence(ms, for_, reason), f"silenced {filter_text(ms)}"
                )

        from engine.cli.dashboard_dialogs import SilenceDialog

        self.push_screen(SilenceDialog(start), done)

    def action_explain(self) -> None:
        sel = self.selected()
        if isinstance(sel, Alert):
            self._explain(sel.rule, dict(sel.labels))
        elif isinstance(sel, Group) and sel.alerts:
            self._explain(sel.alerts[0].rule, dict(sel.alerts[0].labels))

    @work(thread=True, exit_on_error=False)
    def _explain(self, rule: str, labels: dict[str, str]) -> None:
        try:
            from engine.explain.text import render_text

            text = render_text(self.feed.explain(rule, labels))
        except ClientError as e:
            text = f"cannot explain {rule}: {e}"
        from engine.cli.dashboard_dialogs import TextDialog

        self.call_from_thread(self.push_screen, TextDialog(f"explain {rule}", text))

    @work(thread=True, exit_on_error=False)
    def _details(self, a: Alert) -> None:
        lines = [
            f"{a.rule} {a.severity} {a.state} since {clock_text(a.since)}",
            f"labels: {labels_text(a.labels)}",
            f"value: {a.value}   fingerprint: {a.fp}",
        ]
        lines += [f"{k}: {v}" for k, v in sorted((a.raw.get("annotations") or {}).items())]
        if a.ack:
            lines.append(f"acknowledged by {a.ack.get('by')}: {a.ack.get('note')}")
        try:
            history = self.feed.alert(a.fp).get("history") or []
            lines += ["", "journal:", *history_lines(history)]
        except ClientError as e:
            lines += ["", f"journal: {e}"]
        from engine.cli.dashboard_dialogs import TextDialog

        self.call_from_thread(self.push_screen, TextDialog(a.rule, "\n".join(lines)))

    def _write(self, call: Callable[[], Any], done: str) -> None:
        @work(thread=True, exit_on_error=False)
        def run(app: Dashboard) -> None:
            try:
                call()
            except ClientError as e:
                app.call_from_thread(app.notify, str(e), severity="error", timeout=8, markup=False)
                return
            app.call_from_thread(app.notify, done, markup=False)
            app.call_from_thread(app.action_poll)

        run(self)


def _table(id: str, *columns: str) -> DataTable[Any]:
    t: DataTable[Any] = DataTable(id=id, cursor_type="row", zebra_stripes=False)
    t.add_columns(*columns)
    return t


def _sev(severity: str) -> Text:
    return Text(severity[:4], style=SEVERITY_STYLE.get(severity, ""))


def _fill(table: DataTable[Any], rows: Sequence[tuple[str, ...]]) -> None:
    _fill_keyed(table, [(str(i), tuple(map(_cell, r))) for i, r in enumerate(rows)])


def _cell(text: str) -> Text:
    """Every cell is a Text: a str cell would be read as console markup, and a label
    value such as "[/b]" would then break the table (also, parsing markup costs CPU).
    Escaped: a log line's ESC or BEL must not reach the operator's terminal."""
    return Text(one_line(text))


def _fill_keyed(table: DataTable[Any], rows: Sequence[tuple[str, tuple[Text, ...]]]) -> None:
    """Set the table to `rows` (key, cells): only the cells that changed when the
    keys are the same and in the same order, else rebuilt with the cursor kept
    on the same key (or the same position)."""
    keys = [k for k, _ in rows]
    old = [str(k.value) for k in table.rows]
    if keys == old:
        cols = list(table.columns)
        for key, cells in rows:
            current = table.get_row(key)
            for col, new, cur in zip(cols, cells, current, strict=False):
                if new != cur:
                    table.update_cell(key, col, new)
        return
    at = table.cursor_row
    selected = old[at] if 0 <= at < len(old) else None
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if rows:
        row = keys.index(selected) if selected in keys else min(at, len(rows) - 1)
        table.move_cursor(row=max(row, 0), animate=False)
