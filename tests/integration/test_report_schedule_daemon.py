"""Scheduled reports end to end: `vigil run` with `reports:` (a test-only `every: 2s`),
a real SMTP server (aiosmtpd) and a real webhook receiver. The report arrives by
email with the HTML report as its HTML part and the summary as its text part, at
the webhook as the summary, and is journaled (`report_sent`, `notified`)."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from engine.journal.format import parse_ts
from tests.integration.daemon import Daemon, free_port
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.slow

# one rule, firing in the first test: the report has an incident to count
RULES = "group: app\ninterval: 100ms\nrules: [{id: deep, expr: app.queue > fixed.limit}]\n"

CHANNELS = """
channels:
  - {{name: mail, type: email, smtp_host: 127.0.0.1, smtp_port: {smtp}, tls: none,
     from: vigil@example.org, to: [oncall@example.org]}}
  - {{name: hook, type: webhook, url: "{url}/hook"}}
"""


@dataclass
class Inbox:
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield inbox, port
    finally:
        ctl.stop()


@pytest.mark.timeout(90)
def test_a_scheduled_report_arrives_by_email_and_webhook(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    with Receiver() as rx:
        d = Daemon(
            tmp_path,
            RULES,
            CHANNELS.format(smtp=port, url=rx.url),
            "reports:\n  - {name: quick, every: 2s, channels: [mail, hook], top: 3}\n",
        )
        d.set_values({"queue": 50})  # an alert fires: the report has an incident to count
        d.start()
        try:
            evs = d.wait_for(
                lambda evs: any(
                    e["event"] == "report_sent" and sorted(e["sent"]) == ["hook", "mail"]
                    for e in evs
                ),
                timeout=30,
                what="a report sent to both channels",
            )
            hooks = rx.wait_for(
                lambda rs: any(r.path == "/hook" and r.json().get("kind") == "report" for r in rs),
                10,
            )
        finally:
            assert d.stop() == 0
    sent = next(e for e in evs if e["event"] == "report_sent")
    assert sent["report"] == "quick" and sent["due"] - sent["since"] == 2.0
    assert sent["due"] % 2 == 0 and sent["failed"] == []
    told = [e for e in evs if e["event"] == "notified" and e.get("kind") == "report"]
    assert {e["channel"] for e in told} >= {"mail", "hook"}

    body = next(r.json() for r in hooks if r.path == "/hook" and r.json().get("kind") == "report")
    assert body["title"].startswith("vigil report quick: ")
    assert "incidents" in body["body"] and "MTTA" in body["body"]
    assert body["alerts"] == []

    reports = [m for m in inbox.messages if str(m["Subject"]).startswith("vigil report quick")]
    assert reports, [m["Subject"] for m in inbox.messages]
    m = reports[0]
    html = m.get_body(("html",))
    text = m.get_body(("plain",))
    assert html is not None and text is not None
    page = html.get_content()
    assert page.lstrip().lower().startswith("<!doctype html>") and "<svg" in page
    assert "incidents" in text.get_content()


def _ts(e: dict[str, object]) -> float:
    ts = e["ts"]
    return float(ts) if isinstance(ts, int | float) else parse_ts(str(ts))


@pytest.mark.timeout(180)
def test_a_report_missed_while_down_is_sent_once_at_start(tmp_path: Path) -> None:
    with Receiver() as rx:
        d = Daemon(
            tmp_path,
            RULES,
            f'channels:\n  - {{name: hook, type: webhook, url: "{rx.url}/hook"}}\n',
            "reports:\n  - {name: quick, every: 10s, channels: [hook]}\n",
        )
        d.start()
        try:
            d.wait_for(
                lambda evs: any(e["event"] == "report_sent" for e in evs), 40, "a first report"
            )
        finally:
            assert d.stop() == 0
        last = max(e["due"] for e in d.events() if e["event"] == "report_sent")
        # down over two due times (last + 10, last + 20); back just after the second,
        # so the next due time (last + 30) is seconds away when the daemon plans
        time.sleep(max(0.0, last + 20.3 - time.time()))
        d.start()
        try:
            evs = d.wait_for(
                lambda evs: any(e["event"] == "report_sent" and e["due"] > last for e in evs),
                40,
                "the report missed while down",
            )
        finally:
            assert d.stop() == 0
    started = _ts([e for e in evs if e["event"] == "started"][-1])
    assert started < last + 30, "the restart took too long for this test to tell"
    after = [e for e in evs if e["event"] == "report_sent" and e["due"] > last]
    # the due times that passed while the daemon was down: only the latest is sent
    assert [e["due"] for e in after if e["due"] <= started] == [last + 20], after


@pytest.mark.timeout(120)
def test_a_report_added_by_a_reload_is_scheduled(tmp_path: Path) -> None:
    with Receiver() as rx:
        d = Daemon(
            tmp_path, RULES, f'channels:\n  - {{name: hook, type: webhook, url: "{rx.url}/hook"}}\n'
        )
        d.start()
        try:
            config = tmp_path / "vigil.yaml"
            config.write_text(
                config.read_text() + "reports:\n  - {name: added, every: 2s, channels: [hook]}\n"
            )
            d.wait_for(
                lambda evs: sum(e["event"] == "config_loaded" for e in evs) >= 2, 30, "the reload"
            )
            evs = d.wait_for(
                lambda evs: any(e["event"] == "report_sent" for e in evs), 30, "a report"
            )
        finally:
            assert d.stop() == 0
    assert next(e["report"] for e in evs if e["event"] == "report_sent") == "added"
