"""Hostile text from monitored data and from operators: a lone surrogate ("\\ud800",
valid in JSON, impossible in UTF-8) in a collector's value, in an `each` label
and in an ack note once made every send of the channel fail with
UnicodeEncodeError; the retries opened the breaker for every other alert, GET
/api/v1/alerts answered 500 and the acked alert's resolve was never sent.
Now text is made valid at the boundary (engine/common/boundary.py) and a send that
fails for a reason retrying cannot fix fails once without opening the breaker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.common.boundary import clean
from engine.delivery.retry import Breaker, RetryPolicy, deliver
from engine.errors import DeliveryError
from tests.adversarial._api_live import HealthProbe, wait_ready
from tests.adversarial.hook_channel import CHANNELS
from tests.integration.daemon import Daemon
from tests.integration.receivers import Receiver

pytestmark = pytest.mark.slow

RULES = """
group: app
interval: 100ms
rules:
  - id: host_bad
    each: app.hosts
    expr: it.errors > 0
    severity: critical
    annotations: {summary: "{{ labels.host }} says {{ it.msg }}"}
  - id: queue_deep
    expr: app.queue > fixed.limit
    severity: warning
"""

TOKEN = "data-text-operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BAD = "\ud800"


def wait(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if cond():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def sent(rx: Receiver) -> list[tuple[str, str]]:
    out = []
    for r in rx.requests:
        if r.path == "/hook" and r.ok:
            for a in r.json()["alerts"]:
                out.append((a["rule"], a["status"]))
    return out


def test_lone_surrogates_in_data_and_notes_kill_no_channel(tmp_path: Path) -> None:
    with Receiver() as rx:
        d = Daemon(
            tmp_path, RULES, CHANNELS.format(url=rx.url), tokens={"ops": (TOKEN, "operator")}
        )
        hosts: list[dict[str, Any]] = [
            {"labels": {"host": f"web{BAD}1"}, "errors": 3, "msg": f"disk {BAD} full"}
        ]
        d.set_values({"queue": 1, "hosts": hosts})
        d.start()
        try:
            wait_ready(d)
            with httpx.Client(base_url=d.url, timeout=10) as c:
                with HealthProbe(d) as health:  # /health within 1 s throughout the attack
                    wait(lambda: ("host_bad", "firing") in sent(rx), "host_bad firing delivered")
                    body = next(r for r in rx.requests if r.path == "/hook").json()
                    assert body["alerts"][0]["labels"]["host"] == "web\ufffd1"
                    # GET /api/v1/alerts answers, and the channel still works for others
                    r = c.get("/api/v1/alerts", headers=AUTH)
                    assert r.status_code == 200, r.text
                    (fp,) = [
                        a["fingerprint"] for a in r.json()["alerts"] if a["rule"] == "host_bad"
                    ]
                    d.set_values({"queue": 50, "hosts": hosts})
                    wait(
                        lambda: ("queue_deep", "firing") in sent(rx), "queue_deep firing delivered"
                    )
                    # an ack whose note holds a lone surrogate (raw JSON escape on the wire)
                    r = c.post(
                        f"/api/v1/alerts/{fp}/ack",
                        content=b'{"note": "looking \\ud800 at it"}',
                        headers={**AUTH, "content-type": "application/json"},
                    )
                    assert r.status_code == 200, r.text
                    assert c.get("/api/v1/alerts", headers=AUTH).status_code == 200
                    # the acked alert's resolve goes out
                    hosts[0]["errors"] = 0
                    d.set_values({"queue": 1, "hosts": hosts})
                    wait(
                        lambda: ("host_bad", "resolved") in sent(rx), "host_bad resolved delivered"
                    )
                    wait(lambda: ("queue_deep", "resolved") in sent(rx), "queue_deep resolved")
                health.check()
        finally:
            d.stop()
        evs = d.events()
        assert not [e for e in evs if e["event"] == "notify_failed"], evs
        ack = next(e for e in evs if e["event"] == "acknowledged")
        assert ack["note"] == "looking \ufffd at it"
        assert "Traceback" not in d.log(), d.log()[-3000:]


def test_the_boundary_makes_text_valid_and_keeps_clean_values_as_they_are() -> None:
    value = {"a": [1, 2.5, None, True], "s": "ok", "t": "Überlast"}
    out, cut = clean(value)
    assert out is value and cut is None  # nothing to do: nothing copied
    out, cut = clean({"s": f"x{BAD}y", f"k{BAD}": [f"{BAD}"]})
    assert out == {"s": "x\ufffdy", "k\ufffd": ["\ufffd"]}
    assert cut is None  # replacing is not cutting
    for v in (out["s"], *out):
        v.encode("utf-8")


def test_a_permanent_failure_fails_once_and_never_opens_the_breaker() -> None:
    breaker = Breaker(threshold=2, cooldown=60)
    calls = 0

    async def bad() -> None:
        nonlocal calls
        calls += 1
        raise DeliveryError("cannot encode the notification", retryable=False)

    async def good() -> None:
        return None

    async def main() -> None:
        outcomes = [  # five alerts that cannot be encoded
            await deliver(bad, RetryPolicy(max_attempts=6), breaker, sleep=_no_sleep)
            for _ in range(5)
        ]
        assert breaker.state == "closed"
        assert all(not o.ok and o.attempts == 1 and o.permanent for o in outcomes)
        o = await deliver(good, RetryPolicy(), breaker, sleep=_no_sleep)
        assert o.ok  # the channel's other alerts still go out

    asyncio.run(main())
    assert calls == 5


async def _no_sleep(_: float) -> None:
    return None
