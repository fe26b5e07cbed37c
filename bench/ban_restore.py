"""Ban restore benchmark: N active bans (default 20,000) put back into nftables at
start, from the journal's book, in one `nft -f -` batch.

Run from the repository root, as root:  .venv/bin/python bench/ban_restore.py [--bans N]

It creates a network namespace (`ip netns add vigil-bench-XXXX`, deleted at the
end), so the host's firewall is never touched, and runs the ban channel's own
restore path (BanChannel.restore, then the first send's ready step) with
`nft_command: [ip, netns, exec, NS, nft]` over a book of N bans: three quarters
IPv4 addresses, a quarter IPv6 /64s, each with its own remaining time. Printed:
the wall time from restore to the set holding them (what the daemon's start
waits for), that the kernel's sets hold N elements, and the time of the same
restore into sets that already hold them (a restart without a reboot).

Target: <= 1 s for 20,000 bans (fail2ban users report hours). No asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.channels.ban.channel import BanChannel
from engine.channels.ban.settings import parse


def book(n: int, now: float) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    v4 = int(ipaddress.IPv4Address("10.0.0.1"))
    v6 = int(ipaddress.IPv6Address("2001:db8::"))
    for i in range(n):
        if i % 4 == 3:
            net = f"{ipaddress.IPv6Address(v6 + (i << 64))}/64"
        else:
            net = str(ipaddress.IPv4Address(v4 + i))
        until = now + 600 + i % 3600
        out[net] = {"key": net, "rule": "bench", "until": until, "offences": 1 + i % 4,
                    "last": now - 60, "forget_at": until + 86400}  # fmt: skip
    return out


async def restore(ns: str, records: dict[str, dict[str, Any]]) -> float:
    ch = BanChannel("bench", parse({"nft_command": ["ip", "netns", "exec", ns, "nft"]}))
    t0 = time.perf_counter()
    ch.restore(records)
    await ch.ready()
    took = time.perf_counter() - t0
    await ch.aclose()
    return took


def count(ns: str, set_name: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-j", "list", "set", "inet", "vigil", set_name],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    for item in json.loads(out.stdout)["nftables"]:
        if "set" in item:
            return len(item["set"].get("elem", []))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bans", type=int, default=20_000)
    args = ap.parse_args()
    if os.geteuid() != 0 or shutil.which("nft") is None:
        print("ban_restore: needs root and nft (Debian's nftables)", file=sys.stderr)
        return 2
    ns = f"vigil-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=30)
    try:
        records = book(args.bans, time.time())
        cold = asyncio.run(restore(ns, records))
        held = count(ns, "banned4") + count(ns, "banned6")
        warm = asyncio.run(restore(ns, records))
        print(f"bans restored:            {args.bans:,} (the sets hold {held:,})")
        print(f"restore into empty sets:  {cold * 1000:.0f} ms  (target <= 1000 ms)")
        print(f"restore into full sets:   {warm * 1000:.0f} ms  (a restart without a reboot)")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
