"""14.E.17: SSRF through names. The http collector resolved names (and redirect
targets) inside httpcore and checked the peer only after the TCP handshake.

Now every connection resolves first, checks each address against the one policy
(engine/common/address_policy.py, the channels' own) and connects only to an address
that passed. A test cannot make a public name resolve to 169.254.169.254 without
a resolver hook or /etc/hosts (both off limits), so the refused address here is
loopback, refused by the collector's own `deny_networks`, reached through the
name `localhost`: the same resolve-then-check path a metadata address takes. A
trap socket listens on the refused address; the probe must leave its backlog
empty, and a `socket.connect` audit hook records every connect the child makes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.adversarial.sandbox_bounded import run_bounded

VIGIL = str(Path(sys.executable).parent / "vigil")

CHILD = """
import asyncio, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from engine.collectors.http import HttpCollector
from engine.config.model import CollectorConfig, frozen_map

connects = []
def audit(event, args):
    if event == "socket.connect":
        connects.append(list(args[1]) if isinstance(args[1], tuple) else str(args[1]))
sys.addaudithook(audit)

trap = socket.socket()
trap.bind(("127.0.0.1", 0))
trap.listen(8)
trap.setblocking(False)
TRAP = trap.getsockname()[1]

class Hop(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", LOCATIONS[self.path].format(trap=TRAP))
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass

LOCATIONS = {
    "/to-localhost": "http://localhost:{trap}/",
    "/to-metadata": "http://169.254.169.254/latest/meta-data/",
    "/to-mapped": "http://[::ffff:169.254.169.254]/",
    "/to-number": "http://2852039166/",
}
hop = ThreadingHTTPServer(("127.0.0.2", 0), Hop)  # a loopback alias: allowed
threading.Thread(target=hop.serve_forever, daemon=True).start()
HOP = f"http://127.0.0.2:{hop.server_address[1]}"

def probe(**settings):
    c = HttpCollector.from_config(CollectorConfig("p", "http", None, 5.0, frozen_map(settings)))
    async def run():
        try:
            return dict(await c.collect(time.time()))
        finally:
            await c.aclose()
    return asyncio.run(run())

DENY = ["127.0.0.1/32", "::1/128"]
out = {}
for name, settings in [
    ("name", {"url": f"http://localhost:{TRAP}/", "deny_networks": DENY}),
    ("allow", {"url": f"http://localhost:{TRAP}/", "allow_networks": ["10.0.0.0/8"]}),
] + [
    (path, {"url": HOP + path, "follow_redirects": True, "deny_networks": DENY})
    for path in LOCATIONS
]:
    connects.clear()
    s = probe(**settings)
    try:
        trap.accept()
        reached = True
    except BlockingIOError:
        reached = False
    out[name] = {"up": s["up"], "error": s["error"], "connects": list(connects),
                 "trap": reached}
print(json.dumps({"trap": TRAP, "results": out}))
"""


def test_refused_names_and_redirects_get_no_tcp_handshake() -> None:
    report = run_bounded(CHILD, timeout=120)
    trap, results = report["trap"], report["results"]
    for name, r in results.items():
        assert r["up"] is False, (name, r)
        assert r["trap"] is False, f"{name}: the refused address saw a connection"
        for addr in r["connects"]:
            assert addr[0] not in ("127.0.0.1", "::1", "169.254.169.254"), (name, r)
            assert not str(addr[0]).startswith("::ffff:169.254"), (name, r)
    name = results["name"]
    assert name["connects"] == []  # not even the first hop: nothing was allowed
    assert name["error"].startswith("address refused: localhost resolves to 127.0.0.1")
    assert "is in deny_networks (127.0.0.1/32)" in name["error"]
    assert "is not in allow_networks" in results["allow"]["error"]
    # a redirect: the first hop (127.0.0.2, allowed) is connected; the next is vetted
    for path in ("/to-localhost", "/to-metadata", "/to-mapped", "/to-number"):
        r = results[path]
        assert [a[0] for a in r["connects"]] == ["127.0.0.2"], (path, r)
        assert r["error"].startswith("address refused: "), (path, r)
    assert "localhost resolves to " in results["/to-localhost"]["error"]
    for path in ("/to-metadata", "/to-mapped", "/to-number"):
        assert "link-local / cloud metadata address, never contacted" in results[path]["error"]
    assert trap > 0


def test_the_policy_resolves_before_anything_connects() -> None:
    # The shared check itself: resolving `localhost` under a policy that refuses
    # loopback raises before any connect, and a name's metadata address refuses
    # the whole name (not just that address), as for channels.
    report = run_bounded(
        """
        import asyncio, ipaddress
        from engine.common.address_policy import AddressRefused, NetworkPolicy, never_contacted

        connects = []
        sys.addaudithook(lambda e, a: connects.append(e) if e == "socket.connect" else None)
        net = ipaddress.ip_network
        out = {}
        try:
            asyncio.run(NetworkPolicy(deny=(net("127.0.0.0/8"), net("::1/128"))).resolve(
                "localhost", 80))
        except AddressRefused as e:
            out["refused"] = str(e)
        out["ok"] = asyncio.run(NetworkPolicy().resolve("localhost", 80))
        out["forms"] = [never_contacted(ipaddress.ip_address(a)) for a in (
            "169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe", "fe80::1", "100.100.100.200", "0.0.0.0", "127.0.0.1")]
        out["connects"] = connects
        print(json.dumps(out))
        """
    )
    assert report["refused"].startswith("address refused: localhost resolves to ")
    assert set(report["ok"]) <= {"127.0.0.1", "::1"} and report["ok"]
    assert report["forms"] == [True] * 7 + [False]
    assert report["connects"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/",
        "http://[fe80::1]/",
    ],
)
def test_validate_refuses_literal_metadata_urls(tmp_path: Path, url: str) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "c.yaml").write_text(
        f"channels:\n  - name: hook\n    type: webhook\n    url: '{url}'\n"
    )
    (tmp_path / "vigil.yaml").write_text(
        "rules: [rules]\nchannels: [channels]\ndata_dir: data\ncollectors:\n"
        f"  - name: probe\n    type: http\n    url: '{url}'\n"
        f"  - name: many\n    type: http\n    targets: [{{url: 'http://127.0.0.1/'}}, {{url: '{url}'}}]\n"
        # a command's arguments are not URLs vigil connects to: not refused
        f"  - name: cmd\n    type: command\n    argv: [curl, '{url}']\n"
    )
    p = subprocess.run(
        [VIGIL, "validate", "-c", "vigil.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "Traceback" not in out
    lines = [ln for ln in out.splitlines() if "link-local / cloud metadata address" in ln]
    assert len(lines) == 3, out
    assert lines[0].startswith("channels/c.yaml:4:"), out
    assert any(ln.startswith("vigil.yaml:7:") for ln in lines), out
    assert any(ln.startswith("vigil.yaml:10:") for ln in lines), out
