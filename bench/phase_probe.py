"""Where the daemon's loop thread spends its CPU, by phase, in 50 ms buckets of wall
time (bench/notify.py's launcher installs it with BENCH_PHASES=<file>; the buckets
are written there at exit as JSON lines {"t": bucket start, "phase": cpu seconds};
with BENCH_PHASES_PROFILE=<file> also a cProfile of the loop thread for the first
second after the burst's first transition is rendered).

Each phase wraps one synchronous engine function (or each step of a generator)
and counts the loop thread's CPU time inside it; `total` is all of the thread's CPU
time, so `total` minus the phases is asyncio, sockets and everything unwrapped."""

from __future__ import annotations

import atexit
import functools
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

BUCKET = 0.05
_buckets: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
_depth = [0]


def _account(phase: str, cpu: float) -> None:
    bucket = _buckets[int(time.time() / BUCKET)]
    bucket[phase] += cpu
    if cpu > bucket[phase + " max"]:
        bucket[phase + " max"] = cpu  # the longest single call or step


def _wrap(owner: Any, name: str, phase: str) -> None:
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def timed(*a: Any, **kw: Any) -> Any:
        if _depth[0]:
            return fn(*a, **kw)  # nested in another phase: counted there
        _depth[0] += 1
        c0 = time.thread_time()
        try:
            return fn(*a, **kw)
        finally:
            _depth[0] -= 1
            _account(phase, time.thread_time() - c0)

    static = isinstance(getattr(owner, "__dict__", {}).get(name), staticmethod)
    setattr(owner, name, staticmethod(timed) if static else timed)


def _wrap_gen(owner: Any, name: str, phase: str) -> None:
    fn = getattr(owner, name)

    @functools.wraps(fn)
    def timed(*a: Any, **kw: Any) -> Iterator[Any]:
        it = fn(*a, **kw)
        while True:
            c0 = time.thread_time()
            _depth[0] += 1
            try:
                x = next(it)
            except StopIteration:
                return
            finally:
                _depth[0] -= 1
                _account(phase, time.thread_time() - c0)
            yield x

    setattr(owner, name, timed)


def _wrap_async(owner: Any, name: str, phase: str) -> None:
    """The CPU of an async function's own steps (between its awaits)."""
    fn: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(fn)
    async def timed(*a: Any, **kw: Any) -> Any:
        coro = fn(*a, **kw)
        send: Any = None
        exc: BaseException | None = None
        while True:
            nested = _depth[0] > 0
            c0 = time.thread_time()
            _depth[0] += 1
            try:
                fut = coro.throw(exc) if exc is not None else coro.send(send)
            except StopIteration as e:
                return e.value
            finally:
                _depth[0] -= 1
                if not nested:
                    _account(phase, time.thread_time() - c0)
            exc = None
            try:
                send = await _Yield(fut)
            except BaseException as e:  # handed on to the coroutine
                exc, send = e, None

    setattr(owner, name, timed)


class _Yield:
    """Await exactly what the wrapped coroutine yielded (a future, or None)."""

    def __init__(self, fut: Any) -> None:
        self.fut = fut

    def __await__(self) -> Any:
        return (yield self.fut)


def install(out: str) -> None:
    from engine.daemon import durable, emit
    from engine.delivery import dispatch, sender_process
    from engine.journal import journal
    from engine.notify import pipeline
    from engine.rules import evaluator

    loop_thread = threading.get_ident()
    _wrap_gen(evaluator.Evaluator, "steps", "evaluate")
    _wrap(emit, "journal_events", "journal_events")
    _wrap(journal.Journal, "submit", "journal_submit")
    _wrap(durable.DurableState, "fold", "fold_state")
    _wrap(emit, "log_transitions", "log")
    _wrap(pipeline.Pipeline, "ingest", "pipe_ingest")
    _wrap(pipeline.Pipeline, "settle", "pipe_settle")
    _wrap(pipeline.Pipeline, "due", "pipe_due")
    _wrap(pipeline.Pipeline, "delivered", "pipe_delivered")
    # the daemon's channels send from its sender process: here only the hand-over
    # (pickling the puts, unpickling the outcomes) and the outcomes' journaling
    _wrap(sender_process.SenderProcess, "_flush", "send_put")
    _wrap(sender_process.FrameProtocol, "data_received", "outcomes_in")
    _wrap(dispatch.Dispatcher, "_outcome", "report")
    _wrap_async(dispatch.Dispatcher, "_journal", "emit_outcomes")

    def dump() -> None:
        with open(out, "w") as f:
            for b in sorted(_buckets):
                f.write(json.dumps({"t": b * BUCKET, **_buckets[b]}) + "\n")

    clock = time.pthread_getcpuclockid(loop_thread)
    gc_at = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if threading.get_ident() != loop_thread:
            return
        if phase == "start":
            gc_at[0] = time.thread_time()
        else:
            _account(f"gc{info['generation']}", time.thread_time() - gc_at[0])

    import gc

    gc.callbacks.append(on_gc)

    def sample() -> None:  # the loop thread's whole CPU time, from another thread
        last = time.clock_gettime(clock)
        while True:
            time.sleep(BUCKET / 10)
            now = time.clock_gettime(clock)
            _account("total", now - last)
            last = now

    threading.Thread(target=sample, daemon=True).start()
    atexit.register(dump)
    if os.environ.get("BENCH_PHASES_PROFILE"):
        _profile_burst(emit, os.environ["BENCH_PHASES_PROFILE"])


def _profile_burst(path: Any, out: str) -> None:
    """cProfile the loop thread from the first transition journaled for 1 s."""
    import asyncio
    import cProfile

    inner = path.journal_events
    started = [False]

    def first(*a: Any, **kw: Any) -> Any:
        if not started[0]:
            started[0] = True
            prof = cProfile.Profile()
            prof.enable()

            def stop() -> None:
                prof.disable()
                prof.dump_stats(out)

            asyncio.get_running_loop().call_later(1.0, stop)
        return inner(*a, **kw)

    path.journal_events = first
