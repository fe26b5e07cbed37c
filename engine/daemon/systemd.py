"""systemd integration: the sd_notify datagram protocol, without python-systemd.

The protocol is one AF_UNIX datagram per notification, newline-separated
`KEY=VALUE` fields, sent to the socket named by `$NOTIFY_SOCKET` (a filesystem
path, or an abstract socket written with a leading "@"). Without that variable
we are not under a Type=notify unit and every call here is a no-op.

Who calls what (engine/daemon/app.py, reload.py, status.py):

- `ready()` once the configuration is loaded and the journal replayed: with
  Type=notify, `systemctl start` returns only then, and dependants start.
- `reloading()` ... `ready()` around a reload (SIGHUP / API / file change), so
  `systemctl reload` and `systemctl status` see the reload.
- `stopping()` at the start of shutdown.
- `status(text)` for the one line `systemctl status` shows.
- `watchdog_loop()` as a task on the event loop: it pings from the loop itself,
  so a stalled loop (a blocking call, a deadlock) stops the pings and systemd
  kills and restarts the daemon after WatchdogSec.

Sending never raises into the daemon: a lost notification must not take
alerting down. The first failure of a streak is logged as a warning.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

__all__ = ["Notifier", "watchdog_loop"]

log = logging.getLogger("vigil.systemd")

# a notify socket that nobody reads (full queue) must not stall the event loop
SEND_TIMEOUT = 1.0


class Notifier:
    """Sends sd_notify messages to `address` (None: every call is a no-op).

    `watchdog_usec` / `watchdog_pid` are $WATCHDOG_USEC / $WATCHDOG_PID as systemd
    set them; use `from_env()` rather than passing them by hand.
    """

    def __init__(
        self,
        address: str | None,
        *,
        watchdog_usec: int | None = None,
        watchdog_pid: int | None = None,
    ) -> None:
        self.address = _sockaddr(address) if address else None
        self._watchdog_usec = watchdog_usec
        self._watchdog_pid = watchdog_pid
        self._sock: socket.socket | None = None
        self._failing = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """From $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID (default: os.environ).

        The variables are left in place: the programs that exec channels and
        command collectors run get a clean environment of their own anyway.
        """
        env = os.environ if environ is None else environ
        return cls(
            env.get("NOTIFY_SOCKET") or None,
            watchdog_usec=_positive_int(env.get("WATCHDOG_USEC")),
            watchdog_pid=_positive_int(env.get("WATCHDOG_PID")),
        )

    @property
    def enabled(self) -> bool:
        return self.address is not None

    # -- the messages ------------------------------------------------------------

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        # MONOTONIC_USEC ties the reload to this moment: systemd >= 253 requires it
        # with Type=notify-reload; older versions ignore the unknown field
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for `seconds` more before systemd gives up on a start or stop (for
        a long journal replay): EXTEND_TIMEOUT_USEC, systemd >= 236."""
        return self.send(f"EXTEND_TIMEOUT_USEC={max(1, round(seconds * 1e6))}")

    def watchdog_interval(self) -> float | None:
        """Seconds between pings: half of WatchdogSec, as sd_watchdog_enabled(3)
        advises; None when systemd expects no pings from this process."""
        if self.address is None or self._watchdog_usec is None:
            return None
        # WATCHDOG_PID names the process systemd watches; a child that inherited
        # the variables must not ping on its parent's behalf
        if self._watchdog_pid is not None and self._watchdog_pid != os.getpid():
            return None
        return self._watchdog_usec / 2e6

    # -- sending ---------------------------------------------------------------------

    def send(self, *fields: str) -> bool:
        """Send one datagram of `fields`; True if it went out. Never raises."""
        if self.address is None or not fields:
            return False
        data = "\n".join(fields).encode("utf-8", "replace")
        try:
            if self._sock is None:
                # SOCK_CLOEXEC (Python's default): the socket never leaks into children
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.settimeout(SEND_TIMEOUT)
            if fields[0].startswith(("WATCHDOG=", "STATUS=")):
                # periodic: a full socket queue must not stall the event loop for the
                # send timeout; the next ping or status line follows soon anyway
                self._sock.sendto(data, socket.MSG_DONTWAIT, self.address)
            else:
                self._sock.sendto(data, self.address)
        except OSError as e:
            if not self._failing:
                log.warning("cannot notify systemd at %s: %s", self._shown(), e)
            self._failing = True
            return False
        if self._failing:
            log.info("notifying systemd at %s works again", self._shown())
            self._failing = False
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _shown(self) -> str:
        a = self.address or ""
        return "@" + a[1:] if a.startswith("\0") else a

    def __repr__(self) -> str:
        return f"Notifier({self._shown() or None!r})"


async def watchdog_loop(notifier: Notifier, stop: asyncio.Event) -> None:
    """Send WATCHDOG=1 every `notifier.watchdog_interval()` seconds until `stop`.

    Run it as a task on the daemon's loop: the pings come from the loop, so a
    loop that stops turning stops them, which is what the watchdog is for.
    Returns at once when no watchdog is configured.
    """
    interval = notifier.watchdog_interval()
    if interval is None:
        return
    while not stop.is_set():
        notifier.watchdog()
        try:
            async with asyncio.timeout(interval):
                await stop.wait()
        except TimeoutError:
            pass


def _sockaddr(address: str) -> str | None:
    if address.startswith("@"):
        return "\0" + address[1:]  # Linux abstract namespace
    if address.startswith("/"):
        return address
    # e.g. "vsock:..." (systemd >= 254 in VMs): not a socket we can reach here
    log.warning("NOTIFY_SOCKET=%r is not a path or an abstract socket; not notifying", address)
    return None


def _status(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    # one field per line in the protocol: a newline would start a bogus field
    return ("STATUS=" + " ".join(text.splitlines()),)


def _positive_int(value: str | None) -> int | None:
    try:
        n = int(value) if value else 0
    except ValueError:
        return None
    return n if n > 0 else None
