"""Where an asyncio loop's long iterations go (a diagnostic for the latency benches).

`iterations(sink)` wraps asyncio's Handle._run and BaseEventLoop._run_once and,
for every loop iteration whose callbacks took over 5 ms together, writes one
line: `iter <wall time> <ms> n=<callbacks> <callback>=<ms>/<count>, ...` (the
six costliest; a task step is named by its coroutine and where its innermost
await was when it resumed).

`steps(sink)` instead samples the loop thread's stack from a second thread
every 0.5 ms and, for every single callback over 3 ms, writes the engine
frames it was seen in most. Sampling needs the GIL, so it shortens the switch
interval: the figures of such a run are slower than a plain run's.

Both patch asyncio's pure-Python event loop (CPython's default selector loop).
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import asyncio.events
import collections
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

ENGINE = Path(__file__).resolve().parent.parent / "engine"
_ENGINE_FILES = {p.name for p in ENGINE.rglob("*.py")}


def _name(handle: Any) -> str:
    cb = handle._callback
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro: Any = owner.get_coro()
        inner = coro
        while (nxt := getattr(inner, "cr_await", None)) is not None and hasattr(nxt, "cr_frame"):
            inner = nxt
        frame = getattr(inner, "cr_frame", None)
        where = f"{frame.f_code.co_qualname}:{frame.f_lineno}" if frame else "?"
        return f"task[{coro.__qualname__}@{where}]"
    return str(getattr(cb, "__qualname__", repr(cb)))[:80]


def iterations(sink: TextIO, threshold: float = 0.005) -> None:
    spent: collections.Counter[str] = collections.Counter()
    count: collections.Counter[str] = collections.Counter()
    run = asyncio.events.Handle._run

    def timed_run(self: Any) -> None:
        name, t = _name(self), time.perf_counter()
        try:
            run(self)
        finally:
            spent[name] += time.perf_counter() - t
            count[name] += 1

    once = asyncio.base_events.BaseEventLoop._run_once

    def timed_once(self: Any) -> None:
        spent.clear()
        count.clear()
        once(self)
        total = sum(spent.values())  # the callbacks' time, not the wait in select()
        if total > threshold:
            top = ", ".join(f"{k}={v * 1e3:.1f}ms/{count[k]}" for k, v in spent.most_common(6))
            sink.write(
                f"iter {time.time():.6f} {total * 1e3:.1f}ms n={sum(count.values())} {top}\n"
            )

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    asyncio.base_events.BaseEventLoop._run_once = timed_once  # type: ignore[attr-defined]


def steps(sink: TextIO, threshold: float = 0.003) -> None:
    loop_thread = threading.get_ident()
    samples: list[tuple[float, list[str]]] = []
    lock = threading.Lock()

    def sampler() -> None:
        while True:
            time.sleep(0.0005)
            frame = sys._current_frames().get(loop_thread)
            stack = []
            while frame is not None and len(stack) < 40:
                code = frame.f_code
                stack.append(f"{Path(code.co_filename).name}:{code.co_qualname}:{frame.f_lineno}")
                frame = frame.f_back
            with lock:
                samples.append((time.perf_counter(), stack))
                if len(samples) > 20000:
                    del samples[:10000]

    sys.setswitchinterval(0.0002)
    threading.Thread(target=sampler, daemon=True).start()
    run = asyncio.events.Handle._run

    def sampled_run(self: Any) -> None:
        t = time.perf_counter()
        try:
            run(self)
        finally:
            took = time.perf_counter() - t
            if took > threshold:
                with lock:
                    mine = [s for ts, s in samples if t <= ts <= t + took]
                where: collections.Counter[str] = collections.Counter()
                for stack in mine:
                    ours = [f for f in stack if f.split(":")[0] in _ENGINE_FILES][:4]
                    where[" < ".join(ours)] += 1
                sink.write(f"step {time.time():.6f} {took * 1e3:.1f}ms samples={len(mine)}\n")
                for frames, n in where.most_common(5):
                    sink.write(f"    {n} {frames}\n")

    asyncio.events.Handle._run = sampled_run  # type: ignore[method-assign]
