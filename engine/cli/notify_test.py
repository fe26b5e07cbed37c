"""`vigil notify-test CHANNEL`: send a clearly marked test notification.

It goes through the real dispatcher (queue, retries with backoff, breaker,
the channel's own settings and templates), without a running daemon and
without touching its journal.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from engine.common.records import JournalEvent
from engine.errors import ConfigError


def register(sub: Any) -> None:
    p = sub.add_parser("notify-test", help="send a test notification through a channel")
    p.add_argument("channel", help="channel name from the channel files")
    p.add_argument(
        "-c", "--config", help="vigil.yaml (default: ./vigil.yaml, else deploy/vigil.yaml)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.daemon.app import load_or_fail
    from engine.delivery.dispatch import Dispatcher

    try:
        config, _ = load_or_fail(args.config)
    except ConfigError as e:
        for p in e.problems:
            print(p.format(), file=sys.stderr)
        return 1
    if config.channel(args.channel) is None:
        known = ", ".join(c.name for c in config.channels) or "none"
        print(f"vigil: unknown channel {args.channel!r} (channels: {known})", file=sys.stderr)
        return 2

    async def emit(events: Sequence[JournalEvent], durable: bool) -> list[dict[str, Any]]:
        return [dict(e) for e in events]  # a test is not part of the daemon's history

    async def send() -> str:
        d = Dispatcher(config, emit=emit, state={"alerts": {}, "silences": {}})
        await d.start()
        try:
            return await d.send_test(args.channel)
        finally:
            await d.aclose()

    outcome = asyncio.run(send())
    ok = ": delivered" in outcome
    print(outcome, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1
