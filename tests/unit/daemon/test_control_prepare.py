"""The API's alert listing over a real App: views built ahead within the loop's time budget."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.config.model import Config
from engine.daemon.app import App
from engine.daemon.control import Control


def _alert(i: int, value: float = 1.0) -> dict[str, Any]:
    return {
        "rule": "r",
        "labels": {"host": f"h{i}"},
        "state": "firing",
        "severity": "warning",
        "value": value,
        "ack": None,
        "escalation": 0,
        "notified": {},
        "flapping": False,
        "firing_since": 1.0e9,
        "pending_since": 1.0e9,
        "starts_at": 1.0e9,
    }


def _listing(c: Control) -> list[dict[str, Any]]:
    empty: dict[str, str] = {}
    return list(
        c.list_alerts(
            state=None, severity=None, rule=None, labels=empty, silenced=None, acknowledged=None
        )
    )


def test_prepare_builds_the_views_in_steps_and_keeps_up_with_changes() -> None:
    async def main() -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
        app = App(Config(), wall=lambda: 1.0e9 + 60)
        alerts = app.state["alerts"]
        for i in range(3000):
            alerts[f"fp{i}"] = _alert(i)
            app.alert_versions[f"fp{i}"] = 1
        control = Control(app, app)
        steps = 0

        async def meanwhile() -> None:
            # the loop runs while views are built: alerts change and go
            nonlocal steps
            while True:
                await asyncio.sleep(0)
                steps += 1
                if steps == 2:
                    alerts["fp2999"] = _alert(2999, value=7.0)  # changed before it is built
                    app.alert_versions["fp2999"] = 2
                    del alerts["fp2998"]
                    app.alert_versions.pop("fp2998")

        other = asyncio.create_task(meanwhile())
        await control.prepare_alerts()
        ran = steps
        other.cancel()
        fresh = Control(app, app)  # builds every view at once, in list_alerts
        return ran, _listing(control), _listing(fresh)

    ran, prepared, fresh = asyncio.run(main())
    assert ran >= 2  # 3,000 views are not built in one step
    assert prepared == fresh and len(prepared) == 2999
    assert next(v for v in prepared if v["fingerprint"] == "fp2999")["value"] == 7.0
