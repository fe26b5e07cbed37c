"""15.7: channels through a real HTTP proxy. Debian's tinyproxy (deploy/setup.sh
installs it) runs on loopback with a temporary config; webhook and Slack
channels, built through their entry points as the daemon builds them, deliver
to local receivers through it: the per-channel `proxy` setting, HTTP_PROXY from
the environment, NO_PROXY and `proxy: none` bypassing it, HTTPS through
CONNECT, and the address policy applied to what is actually connected to.

Proof that a request went through the proxy: tinyproxy's own log names it
(`Request (file descriptor N): POST http://...` or `CONNECT host:port`), and
the receiver sees the `Via: 1.1 tinyproxy` header tinyproxy adds.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.config.model import Channel as ChannelConfig
from engine.config.model import frozen_map
from engine.errors import DeliveryError
from engine.notify.base import AlertView, Notification
from engine.plugins import registry

try:
    from tests.integration.receivers import Receiver, Recorded, free_port
except ImportError:  # pragma: no cover - tests/integration run without its __init__.py
    from receivers import Receiver, Recorded, free_port  # type: ignore[no-redef,import-not-found]

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(shutil.which("tinyproxy") is None, reason="tinyproxy not installed"),
]


@dataclass
class Tinyproxy:
    url: str
    log: Path

    def lines(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [ln for ln in text.splitlines() if "Request (file descriptor" in ln]

    def wait_lines(self, n: int, timeout: float = 10.0) -> list[str]:
        """tinyproxy writes its log line as it handles the request: wait for it."""
        deadline = time.monotonic() + timeout
        while len(self.lines()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.lines()


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    port = free_port()
    log = tmp_path / "tinyproxy.log"
    conf = tmp_path / "tinyproxy.conf"
    # no ConnectPort line: CONNECT to any port (the test's TLS server has a free one)
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 50\n"
        f'LogFile "{log}"\nLogLevel Info\nPidFile "{tmp_path / "tinyproxy.pid"}"\n'
        "Allow 127.0.0.1\n"
    )
    proc = subprocess.Popen(
        ["tinyproxy", "-d", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tinyproxy did not start: {log.read_text()}") from None
                time.sleep(0.05)
        yield Tinyproxy(f"http://127.0.0.1:{port}", log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


ALERT = AlertView(
    fingerprint="fp-1",
    rule="host_cpu_high",
    status="firing",
    severity="critical",
    labels={"rule": "host_cpu_high", "host": "web-1"},
    annotations={"summary": "CPU high on web-1"},
    value=93.2,
    starts_at=1_795_000_000.0,
)
N = Notification(
    channel="test",
    group_key="{}:{}",
    status="firing",
    alerts=(ALERT,),
    key="idem-proxy-1",
    title="[CRITICAL] CPU high",
    body="CPU high on web-1",
)


def channel(type_name: str, **settings: Any) -> Any:
    cls = registry.load("vigil.channels", type_name)
    return cls.from_config(ChannelConfig(f"t-{type_name}", type_name, frozen_map(settings)))


def deliver(ch: Any) -> DeliveryError | None:
    async def main() -> DeliveryError | None:
        try:
            await ch.send(N)
        except DeliveryError as e:
            return e
        finally:
            await ch.aclose()
        return None

    return asyncio.run(main())


def via_proxy(r: Recorded) -> bool:
    return "tinyproxy" in r.headers.get("via", "")


def test_webhook_and_slack_deliver_through_the_channel_proxy(
    tinyproxy: Tinyproxy, rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert deliver(channel("webhook", url=f"{rx.url}/hooks/w1", proxy=tinyproxy.url)) is None
    assert deliver(channel("slack", url=f"{rx.url}/services/T0/B0/x", proxy=tinyproxy.url)) is None
    hook, slack = rx.requests
    assert hook.path == "/hooks/w1" and hook.json()["alerts"][0]["labels"]["host"] == "web-1"
    assert slack.path == "/services/T0/B0/x" and "attachments" in slack.json()
    assert via_proxy(hook) and via_proxy(slack)
    lines = tinyproxy.wait_lines(2)
    assert any(f"POST {rx.url}/hooks/w1" in ln for ln in lines), lines
    assert any(f"POST {rx.url}/services/T0/B0/x" in ln for ln in lines), lines


def test_the_environment_proxy_and_no_proxy(
    tinyproxy: Tinyproxy, rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTPS_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", tinyproxy.url)
    monkeypatch.setenv("NO_PROXY", "")
    # the environment is read when the channel is built (at start or reload)
    assert deliver(channel("webhook", url=f"{rx.url}/via-env")) is None
    assert deliver(channel("slack", url=f"{rx.url}/slack-via-env")) is None
    assert len(tinyproxy.wait_lines(2)) == 2
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert deliver(channel("webhook", url=f"{rx.url}/bypassed")) is None
    monkeypatch.setenv("NO_PROXY", "")
    assert deliver(channel("slack", url=f"{rx.url}/direct", proxy="none")) is None
    reqs = {r.path: r for r in rx.requests}
    assert via_proxy(reqs["/via-env"]) and via_proxy(reqs["/slack-via-env"])
    assert not via_proxy(reqs["/bypassed"]) and not via_proxy(reqs["/direct"])
    time.sleep(0.3)
    lines = tinyproxy.lines()
    assert len(lines) == 2 and not any("/bypassed" in ln or "/direct" in ln for ln in lines)


def test_https_goes_through_connect(tinyproxy: Tinyproxy, tmp_path: Path) -> None:
    # the receiver is plain HTTP; a TLS server of test_wire stands for an https
    # service, with a transport trusting its certificate (certifi would not)
    import ssl

    try:
        from tests.integration.test_http_collector import self_signed
        from tests.integration.test_wire import Server, bare, post, server_tls
    except ImportError:  # pragma: no cover
        from test_http_collector import self_signed  # type: ignore[no-redef,import-not-found]
        from test_wire import Server, bare, post, server_tls  # type: ignore[no-redef,import-not-found]
    from engine.httpclient import proxies

    cert = self_signed(tmp_path, days=1)
    if cert is None:
        pytest.skip("no way to make a certificate here")

    async def main() -> None:
        async with Server(tls=server_tls(cert)) as s:
            t = bare(tls=ssl.create_default_context(cafile=str(cert[0])))
            t.proxies = proxies.Proxies(tinyproxy.url)
            for _ in range(2):
                r = await post(t, f"https://localhost:{s.port}/hook")
                assert (r.status, r.body) == (200, b"ok")
            assert s.accepted == 1  # one tunnel, kept alive
            await t.aclose()
            lines = await asyncio.to_thread(tinyproxy.wait_lines, 1)
            assert any(f"CONNECT localhost:{s.port}" in ln for ln in lines), lines

    asyncio.run(main())


def test_the_address_policy_holds_through_a_proxy(tinyproxy: Tinyproxy, rx: Receiver) -> None:
    # a literal target address the policy refuses never reaches the proxy
    # (a literal metadata address is refused already when the channel is built)
    err = deliver(
        channel(
            "webhook", url="http://10.9.9.9/x", proxy=tinyproxy.url, allow_networks=["127.0.0.0/8"]
        )
    )
    assert err is not None and not err.retryable and "10.9.9.9 is not in allow_networks" in str(err)
    # the proxy is what is connected to, so its address is what the policy checks
    err = deliver(
        channel("webhook", url=f"{rx.url}/x", proxy=tinyproxy.url, deny_networks=["127.0.0.0/8"])
    )
    assert err is not None and "deny_networks" in str(err)
    time.sleep(0.3)
    assert tinyproxy.lines() == [] and rx.requests == []


def test_a_proxy_password_never_shows_in_errors(rx: Receiver) -> None:
    port = free_port()  # nothing listens: the connect fails
    err = deliver(
        channel("webhook", url=f"{rx.url}/x", proxy=f"http://u:pr0xy-s3cret@127.0.0.1:{port}")
    )
    assert err is not None and err.retryable and "connect failed" in str(err)
    assert "pr0xy-s3cret" not in str(err)


def test_a_bad_proxy_setting_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match=r"proxy: .*expected an http:// proxy URL"):
        channel("webhook", url="http://h.example/x", proxy="socks5://p.corp:1080")


DAEMON_CHANNELS = """
channels:
  - {{name: hook, type: webhook, url: "{url}/hook"}}
  - {{name: direct, type: webhook, url: "{url}/direct", proxy: none}}
routes:
  - channels: [hook, direct]
    group_by: [rule]
    group_wait: 0s
    repeat_interval: 1h
"""


@pytest.mark.slow
def test_the_daemon_sends_through_the_proxy_of_its_environment(
    tinyproxy: Tinyproxy, rx: Receiver, tmp_path: Path
) -> None:
    # as a unit's Environment=HTTP_PROXY=... would: the sender process inherits it
    try:
        from tests.integration.daemon import Daemon
        from tests.integration.test_notify_e2e import RULES
    except ImportError:  # pragma: no cover
        from daemon import Daemon  # type: ignore[no-redef,import-not-found]
        from test_notify_e2e import RULES  # type: ignore[no-redef,import-not-found]

    d = Daemon(tmp_path, RULES, DAEMON_CHANNELS.format(url=rx.url))
    d.set_values({"queue": 1})
    proxy_env = {"HTTP_PROXY": tinyproxy.url, "http_proxy": tinyproxy.url}
    d.start(env={**proxy_env, "NO_PROXY": "", "no_proxy": "", "HTTPS_PROXY": "", "https_proxy": ""})
    try:
        d.set_values({"queue": 50})
        rx.wait_for(lambda rs: {"/hook", "/direct"} <= {r.path for r in rs}, 30)
    finally:
        assert d.stop() == 0
    reqs = {r.path: r for r in rx.requests}
    assert via_proxy(reqs["/hook"]) and not via_proxy(reqs["/direct"])
    lines = tinyproxy.wait_lines(1)
    assert any(f"POST {rx.url}/hook" in ln for ln in lines), lines
    assert not any("/direct" in ln for ln in lines)
