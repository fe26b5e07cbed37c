"""The nftables side of a ban channel: `nft -f -` with a batch on stdin, argv only.

vigil owns one table (`table inet vigil` by default) and creates what is missing:

    table inet vigil {
        set banned4 { type ipv4_addr; flags interval, timeout; }
        set banned6 { type ipv6_addr; flags interval, timeout; }
        chain input { type filter hook input priority -10; policy accept;
                      ip saddr @banned4 drop; ip6 saddr @banned6 drop; }
    }

Nothing outside that table is touched (the chain is flushed and refilled in the
same atomic batch, so its two rules never double). The kernel drops an element
when its timeout ends; vigil only records it. Every batch is one `nft` run, so
20,000 restored bans are one process and one netlink transaction.

`command` is the argv that runs nft (default [nft]); tests run it inside a network
namespace ([ip, netns, exec, NAME, nft]).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.errors import DeliveryError
from engine.runtime.process import kill_group

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")  # nft identifiers vigil accepts
MAX_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class NftSettings:
    command: tuple[str, ...] = ("nft",)
    family: str = "inet"
    table: str = "vigil"
    chain: str = "input"
    set4: str = "banned4"
    set6: str = "banned6"
    priority: int = -10
    timeout: float = 10.0


def _seconds(t: float) -> str:
    return f"{max(1, round(t))}s"  # nft's smallest unit here; 0 would mean "never"


class Nft:
    def __init__(self, settings: NftSettings) -> None:
        self.s = settings

    def _set(self, net: str) -> str:
        return self.s.set6 if ":" in net else self.s.set4

    def setup(self) -> list[str]:
        """Create the table, the sets and the drop rules if missing (idempotent)."""
        s = self.s
        t = f"{s.family} {s.table}"
        return [
            f"add table {t}",
            f"add set {t} {s.set4} {{ type ipv4_addr; flags interval, timeout; }}",
            f"add set {t} {s.set6} {{ type ipv6_addr; flags interval, timeout; }}",
            f"add chain {t} {s.chain} {{ type filter hook input priority {s.priority};"
            " policy accept; }",
            f"flush chain {t} {s.chain}",
            f"add rule {t} {s.chain} ip saddr @{s.set4} drop",
            f"add rule {t} {s.chain} ip6 saddr @{s.set6} drop",
        ]

    def add(self, bans: Iterable[tuple[str, float]], *, refresh: bool) -> list[str]:
        """Elements with their timeouts, one line per set. `refresh`: an element
        still present gets the new timeout (add, delete, add: `add` alone keeps an
        existing element's old one, `delete` alone fails on a missing one)."""
        by_set: dict[str, list[str]] = {}
        for net, seconds in bans:
            by_set.setdefault(self._set(net), []).append(f"{net} timeout {_seconds(seconds)}")
        t = f"{self.s.family} {self.s.table}"
        out = []
        for name, elems in by_set.items():
            joined = ", ".join(elems)
            if refresh:
                bare = ", ".join(e.split(" ", 1)[0] for e in elems)
                out.append(f"add element {t} {name} {{ {bare} }}")
                out.append(f"delete element {t} {name} {{ {bare} }}")
            out.append(f"add element {t} {name} {{ {joined} }}")
        return out

    def delete(self, nets: Iterable[str]) -> list[str]:
        """Remove elements whether or not they are still there (add first)."""
        t = f"{self.s.family} {self.s.table}"
        out = []
        for net in nets:
            name = self._set(net)
            out.append(f"add element {t} {name} {{ {net} timeout 1s }}")
            out.append(f"delete element {t} {name} {{ {net} }}")
        return out

    def batch(self, lines: Sequence[str]) -> tuple[list[str], bytes]:
        """The command line and the stdin of one `nft -f -` running `lines`."""
        return [*self.s.command, "-f", "-"], ("\n".join(lines) + "\n").encode()

    async def run(self, lines: Sequence[str]) -> None:
        """One `nft -f -` with `lines` on stdin; DeliveryError if it fails."""
        argv, batch = self.batch(lines)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as e:
            raise DeliveryError(
                f"cannot run {argv[0]}: {e.strerror or e}", retryable=False
            ) from None
        try:
            async with asyncio.timeout(self.s.timeout):
                _, err = await proc.communicate(batch)
        except TimeoutError:
            raise DeliveryError(
                f"nft timed out after {self.s.timeout:g}s; killed", retryable=True
            ) from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    await kill_group(proc)
        if proc.returncode != 0:
            text = " ".join(err.decode("utf-8", "replace").split())[:MAX_MESSAGE]
            # a syntax or permission error repeats; the batch is all or nothing
            raise DeliveryError(f"nft exit status {proc.returncode}: {text}", retryable=False)
