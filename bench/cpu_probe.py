"""Load-independent figures for the tick's punctuality under a busy logtail
collector (bench/logtail.py's punctuality run; bench/notify.py's launcher installs
it with BENCH_CPU=<file>).

Wall-clock lateness on a shared machine mostly measures the other processes. What
the daemon itself decides is (a) how much CPU its loop thread spends in one
callback (a tick waits for the callback in its way) and (b) how long the
collector's worker thread holds the GIL the loop needs. Written to the file, one
line each:

    cb <wall time> <cpu s> <name>      a loop callback over 1 ms of the loop thread's CPU
    pass <wall time> <cpu s> <process|thread>   a logtail pass in the daemon's worker
                                       thread (with a reader process: asking it, and its answer)
    clean <wall time> <cpu s>          the boundary walk of a sample, in a worker thread
    gccpu <wall time> <cpu s> gen<n>-<loop|other>   a garbage collection over 1 ms of CPU

asyncio's pure-Python loop is patched (Handle._run), as in bench/loop_probe.py.
"""

from __future__ import annotations

import asyncio
import asyncio.events
import gc
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
    """A pass as the daemon's worker thread runs it: with `isolate` (the default),
    asking the reader process and taking its answer (the reading and detection
    are the child's CPU, which bench/logtail.py reads from /proc); without, all of it."""
    from engine.collectors.logtail.isolated import ReaderProcess
    from engine.collectors.logtail.reader import Reader

    def timed(fn: Any, where: str) -> Any:
        def wrapper(self: Any, woken: bool) -> Any:
            c = time.thread_time()
            try:
                return fn(self, woken)
            finally:
                took = time.thread_time() - c
                sink.write(f"pass {time.time():.6f} {took:.6f} {where}\n")

        return wrapper

    ReaderProcess.run = timed(ReaderProcess.run, "process")  # type: ignore[method-assign]
    Reader.run = timed(Reader.run, "thread")  # type: ignore[method-assign]
