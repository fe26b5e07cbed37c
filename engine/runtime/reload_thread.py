"""Run a configuration load off the event loop, in a thread that can never hold
the daemon hostage.

asyncio.to_thread uses the loop's default executor, and asyncio.run() joins
that executor at exit: a load stuck in a read (a FIFO, a hung network mount)
would then keep SIGTERM from ever ending the process. A daemon thread is not
joined; and the caller gets an answer within `timeout` whatever the thread does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

from engine.errors import VigilError

T = TypeVar("T")

LOAD_TIMEOUT = 30.0  # seconds a configuration load may take before it is given up


class LoadTimeout(VigilError):
    """The load did not finish in time; its thread is abandoned (still running)."""


async def run_bounded(fn: Callable[[], T], timeout: float = LOAD_TIMEOUT) -> T:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: object) -> None:
        if fut.done():
            return  # given up on already
        if ok:
            fut.set_result(value)  # type: ignore[arg-type]
        else:
            assert isinstance(value, BaseException)
            fut.set_exception(value)

    def work() -> None:
        try:
            result: object = fn()
            ok = True
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            result, ok = e, False
        with contextlib.suppress(RuntimeError):  # the loop closed: the daemon stopped
            loop.call_soon_threadsafe(settle, ok, result)

    threading.Thread(target=work, name="vigil-config-load", daemon=True).start()
    try:
        return await asyncio.wait_for(asyncio.shield(fut), timeout)
    except TimeoutError:
        raise LoadTimeout(f"loading the configuration took over {timeout:g} s") from None
