"""Load-independent figures for the tick's punctuality under a busy logtail
collector (bench/logtail.py's punctuality run; bench/notify.py's launcher installs
it with BENCH_CPU=<file>).

Wall-clock lateness on a shared machine mostly measures the other processes. What
the daemon itself decides is (a) how much CPU its loop thread spends in one
callback (a tick waits for the callback in its way) and (b) how long the
collector's reader thread holds the GIL the loop needs. Written to the file, one
line each:

    cb <wall time> <cpu s> <name>      a loop callback over 1 ms of the loop thread's CPU
    pass <wall time> <cpu s> <read cpu s> <lines>   a logtail pass in the reader thread
                                       (all of it, and its reading and detection part)
    clean <wall time> <cpu s>          the boundary walk of a sample, in a worker thread
    gccpu <wall time> <cpu s> gen<n>-<loop|other>   a garbage collection over 1 ms of CPU
    ccall <cpu s> <name>               with BENCH_GIL=1: the reader thread's longest C
                                       calls (written at each new longest per kind; a C call
                                       keeps the GIL whatever the switch interval; the profiler slows the thread's Python
                                       code, not the C calls it times)

asyncio's pure-Python loop is patched (Handle._run), as in bench/loop_probe.py.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
import os
import sys
import threading
import time
from typing import Any, TextIO

from loop_probe import _name

THRESHOLD = 0.001


def install(sink: TextIO) -> None:
    run = asyncio.events.Handle._run
    loop_thread = threading.get_ident()

    def timed_run(self: Any) -> None:
        if threading.get_ident() != loop_thread:
            run(self)
            return
        c = time.thread_time()
        try:
            run(self)
        finally:
            took = time.thread_time() - c
            if took > THRESHOLD:
                sink.write(f"cb {time.time():.6f} {took:.6f} {_name(self).replace(' ', '')}\n")

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
    _reader(sink)
    _boundary(sink)
    _collections(sink, loop_thread)


def _collections(sink: TextIO, loop_thread: int) -> None:
    """Garbage collections over 1 ms of their thread's CPU: a collection holds the
    GIL in one piece, in whichever thread allocated past the threshold."""
    started: dict[int, float] = {}

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        me = threading.get_ident()
        if phase == "start":
            started[me] = time.thread_time()
        elif me in started and (took := time.thread_time() - started.pop(me)) > THRESHOLD:
            where = "loop" if me == loop_thread else "other"
            sink.write(f"gccpu {time.time():.6f} {took:.6f} gen{info['generation']}-{where}\n")

    gc.callbacks.append(on_gc)


def _boundary(sink: TextIO) -> None:
    """The boundary walk of each sample (engine/daemon/collecting.py), in a worker
    thread: its CPU competes for the GIL like the reader's."""
    from engine.daemon import collecting

    inner = collecting.clean

    def timed(value: Any, **kw: Any) -> Any:
        c = time.thread_time()
        try:
            return inner(value, **kw)
        finally:
            sink.write(f"clean {time.time():.6f} {time.thread_time() - c:.6f}\n")

    collecting.clean = timed  # type: ignore[assignment]


def _reader(sink: TextIO) -> None:
    from engine.collectors.logtail.collector import LogtailCollector

    longest: dict[str, float] = {}
    profile = _c_calls(longest, sink) if os.environ.get("BENCH_GIL") else None

    def timed(fn: Any) -> Any:
        def wrapper(self: LogtailCollector) -> Any:
            if profile is not None:
                sys.setprofile(profile)
            c = time.thread_time()
            lines = self._tailer.lines()
            try:
                return fn(self)
            finally:
                took = time.thread_time() - c
                if profile is not None:
                    sys.setprofile(None)
                got = self._tailer.lines() - lines
                sink.write(f"pass {time.time():.6f} {took:.6f} {read[0]:.6f} {got}\n")

        return wrapper

    read = [0.0]
    inner_read = LogtailCollector._read

    def timed_read(self: LogtailCollector) -> None:
        c = time.thread_time()
        try:
            inner_read(self)
        finally:
            read[0] = time.thread_time() - c

    LogtailCollector._read = timed_read  # type: ignore[method-assign]
    LogtailCollector._pass = timed(LogtailCollector._pass)  # type: ignore[method-assign]
    LogtailCollector._woken_pass = timed(LogtailCollector._woken_pass)  # type: ignore[method-assign]


def _c_calls(longest: dict[str, float], sink: TextIO) -> Any:
    started: list[float] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "c_call":
            started.append(time.thread_time())
        elif event in ("c_return", "c_exception") and started:
            took = time.thread_time() - started.pop()
            name = f"{getattr(arg, '__qualname__', arg)}@{frame.f_code.co_qualname}"
            if took > longest.get(name, 0.0):
                longest[name] = took
                if took > 0.0002:  # a new longest of its kind
                    sink.write(f"ccall {took:.6f} {name.replace(' ', '')}\n")

    return profile
