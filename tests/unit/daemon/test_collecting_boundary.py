"""engine/daemon/collecting.py walks every sample through the boundary (common/
boundary.clean) in a worker thread, not on the event loop: a logtail sample of 500
keys with their evidence costs milliseconds that other groups' ticks must not
wait for (issue 16). The walk itself is unchanged: what it cuts is still cut."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from engine.daemon.clock import Clock
from engine.daemon.collecting import Collecting
from engine.daemon.hub import CollectorHub
from engine.daemon.metrics import Metrics
from engine.expr.history import History


class Watched(Mapping[str, Any]):
    """A sample's mapping that remembers which thread walked it."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.walked_by: set[int] = set()

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        self.walked_by.add(threading.get_ident())
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


class OneSample:
    """A collector (fake: a unit test) whose read is the given sample."""

    timeout = 5.0

    def __init__(self, sample: Mapping[str, Any]) -> None:
        self.sample = sample

    async def collect(self, now: float) -> Mapping[str, Any]:
        return self.sample


class NoRules:
    def rules(self) -> list[Any]:
        return []


def test_samples_are_cleaned_off_the_event_loop() -> None:
    inner = Watched({"line": "bad \ud800 text", "n": 1})
    sample = {"keys": [inner], "x": "y" * 70_000}
    hub = CollectorHub()

    async def main() -> int:
        c = Collecting(NoRules(), hub, History(60), None, Metrics(), Clock())  # type: ignore[arg-type]
        c.collectors["web"] = OneSample(sample)  # type: ignore[assignment]
        await c.collect("web")
        return threading.get_ident()

    loop_thread = asyncio.run(asyncio.wait_for(main(), 10))
    assert inner.walked_by and loop_thread not in inner.walked_by
    got = hub.values["web"]
    assert got["keys"][0]["line"] == "bad \ufffd text"  # the boundary still applies
    assert len(got["x"]) < 70_000
