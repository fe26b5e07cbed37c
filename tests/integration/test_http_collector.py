"""The http collector against a real local HTTP(S) server (uvicorn + Starlette).

No patching of httpx: every probe is a real request over a real socket.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from engine.collectors import http as http_collector
from engine.collectors.http import HttpCollector
from engine.common.secret import Secret
from engine.config.model import CollectorConfig, frozen_map
from engine.errors import CollectorError

HITS: list[str] = []


async def ok(request: Request) -> Response:
    HITS.append(request.url.path)
    return PlainTextResponse("status: ok")


async def health_json(request: Request) -> Response:
    return JSONResponse({"status": "ok", "checks": [{"name": "db", "latency": 3}]})


async def fail(request: Request) -> Response:
    return PlainTextResponse("down", status_code=503)


async def slow(request: Request) -> Response:
    await asyncio.sleep(3)
    return PlainTextResponse("late")


async def big(request: Request) -> Response:
    return PlainTextResponse("a" * (2 * 1024 * 1024))


async def echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "token": request.headers.get("x-token"),
            "body": body.decode(),
            "port": request.client.port if request.client else None,
        }
    )


async def to_metadata(request: Request) -> Response:
    return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)


async def to_ok(request: Request) -> Response:
    return RedirectResponse("/ok", status_code=302)


APP = Starlette(
    routes=[
        Route("/ok", ok),
        Route("/json", health_json),
        Route("/fail", fail),
        Route("/slow", slow),
        Route("/big", big),
        Route("/echo", echo, methods=["GET", "POST"]),
        Route("/to-metadata", to_metadata),
        Route("/to-ok", to_ok),
    ]
)


def serve(**ssl: str) -> Iterator[str]:
    """Run APP on 127.0.0.1 on a free port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        APP,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        **ssl,  # type: ignore[arg-type]
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.01)
    scheme = "https" if ssl else "http"
    yield f"{scheme}://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    yield from serve()


def self_signed(tmp: Path, days: int) -> tuple[Path, Path] | None:
    """A certificate for 127.0.0.1 valid for `days`: with `cryptography` if it is
    installed, else with the openssl binary; None when neither is there."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    if importlib.util.find_spec("cryptography") is not None:
        import datetime
        import ipaddress

        # imported by name: an optional test dependency, without stubs when absent
        x509 = importlib.import_module("cryptography.x509")
        hashes = importlib.import_module("cryptography.hazmat.primitives.hashes")
        serialization = importlib.import_module("cryptography.hazmat.primitives.serialization")
        ec = importlib.import_module("cryptography.hazmat.primitives.asymmetric.ec")
        NameOID = x509.oid.NameOID

        pk = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.UTC)
        c = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(pk.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            # key identifiers: Python 3.13's strict verification wants them
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(pk.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(pk.public_key()), critical=False
            )
            .sign(pk, hashes.SHA256())
        )
        cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            pk.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert, key
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days),
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    made = self_signed(tmp_path_factory.mktemp("tls"), days=30)
    if made is None:
        pytest.skip("neither the cryptography package nor an openssl binary is available")
    cert, key = made
    for url in serve(ssl_certfile=str(cert), ssl_keyfile=str(key)):
        yield url, cert


def make(timeout: float = 5.0, **settings: Any) -> HttpCollector:
    return HttpCollector.from_config(
        CollectorConfig("api", "http", None, timeout, frozen_map(settings))
    )


def probe(timeout: float = 5.0, **settings: Any) -> dict[str, Any]:
    c = make(timeout, **settings)

    async def run() -> dict[str, Any]:
        try:
            return dict(await c.collect(time.monotonic()))
        finally:
            await c.aclose()

    return asyncio.run(run())


def test_ok_flat_sample(base: str) -> None:
    s = probe(url=f"{base}/ok", body_regex="status: (ok|fine)")
    assert s["up"] is True and s["ok"] is True and s["status"] == 200
    assert s["body_match"] is True and s["error"] is None
    assert isinstance(s["latency_ms"], float) and 0 < s["latency_ms"] < 5000
    assert s["tls_days_left"] is None and s["json_value"] is None
    assert s["targets"] == [
        {
            "labels": {"url": f"{base}/ok"},
            **{k: s[k] for k in s if k in http_collector.TARGET_METRICS},
        }
    ]
    assert (s["up_count"], s["down_count"], s["ok_count"]) == (1, 0, 1)


def test_status_and_expect_status(base: str) -> None:
    s = probe(url=f"{base}/fail")
    assert (s["up"], s["ok"], s["status"]) == (True, False, 503)
    assert s["error"] == "status 503, expected 200"
    s = probe(url=f"{base}/fail", expect_status=[200, 503])
    assert s["ok"] is True and s["error"] is None


def test_body_regex_mismatch(base: str) -> None:
    s = probe(url=f"{base}/ok", body_regex="^healthy$")
    assert (s["up"], s["ok"], s["body_match"]) == (True, False, False)
    assert s["error"] == "body does not match '^healthy$'"


def test_json_path(base: str) -> None:
    s = probe(url=f"{base}/json", json_path="$.status")
    assert s["json_value"] == "ok" and s["ok"] is True
    s = probe(url=f"{base}/json", json_path="$.checks[0]['name']")
    assert s["json_value"] == "db"
    s = probe(url=f"{base}/json", json_path="$.checks[-1].latency")
    assert s["json_value"] == 3
    s = probe(url=f"{base}/json", json_path="$.missing.deeper")
    assert (s["ok"], s["json_value"], s["error"]) == (
        False,
        None,
        "$.missing.deeper not found in the body",
    )
    s = probe(url=f"{base}/ok", json_path="$.status")
    assert (s["ok"], s["error"]) == (False, "body is not JSON")


def test_timeout_is_a_value_and_respected(base: str) -> None:
    start = time.monotonic()
    s = probe(timeout=0.5, url=f"{base}/slow")
    assert time.monotonic() - start < 2.0
    assert (s["up"], s["ok"], s["status"], s["latency_ms"]) == (False, False, None, None)
    assert s["error"] == "timed out after 0.5s"


def test_connection_refused_is_down_not_an_exception() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    s = probe(url=f"http://127.0.0.1:{port}/")
    assert (s["up"], s["ok"], s["status"]) == (False, False, None)
    assert s["error"].startswith("connect failed")
    assert (s["up_count"], s["down_count"]) == (0, 1)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/",  # 169.254.169.254 as one number
        "http://169.254.170.2/v2/credentials",
    ],
)
def test_metadata_addresses_are_refused(url: str) -> None:
    # written literally, they are refused at load (`vigil validate`), not at every probe
    with pytest.raises(ValueError, match="link-local / cloud metadata address, never contacted"):
        make(url=url)
    with pytest.raises(ValueError, match=r"targets\[1\]\.url .*never contacted"):
        make(targets=["http://127.0.0.1/", {"url": url}])


def test_redirect_to_metadata_is_refused(base: str) -> None:
    s = probe(url=f"{base}/to-metadata", follow_redirects=True)
    assert s["up"] is False
    assert s["error"] == (
        "address refused: 169.254.169.254 is a link-local / cloud metadata address, never contacted"
    )
    s = probe(url=f"{base}/to-metadata")  # not followed: just a 302
    assert (s["up"], s["status"], s["ok"]) == (True, 302, False)
    s = probe(url=f"{base}/to-ok", follow_redirects=True)
    assert (s["status"], s["ok"]) == (200, True)


def test_a_name_that_leads_to_a_refused_address_sends_nothing() -> None:
    # A name resolving to a refused address: `localhost`, with loopback refused by
    # the collector's deny_networks (the same check as for metadata addresses).
    # Not a byte, not even a TCP handshake: the listening socket's backlog stays empty.
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.setblocking(False)
    port = trap.getsockname()[1]
    try:
        s = probe(url=f"http://localhost:{port}/ok", deny_networks=["127.0.0.0/8", "::1/128"])
        assert s["up"] is False
        assert s["error"].startswith("address refused: localhost resolves to ")
        assert "is in deny_networks" in s["error"]
        with pytest.raises(BlockingIOError):
            trap.accept()  # nothing connected
    finally:
        trap.close()


def test_targets_for_each(base: str) -> None:
    s = probe(
        targets=[
            {"url": f"{base}/ok", "labels": {"service": "web"}},
            {"url": f"{base}/fail", "labels": {"service": "api", "port": 8080}},
            f"{base}/json",
            "http://127.0.0.1:1/",  # nothing listens on port 1
        ]
    )
    assert set(s) == {"targets", "up_count", "down_count", "ok_count"}
    labels = [t["labels"] for t in s["targets"]]
    assert labels == [
        {"url": f"{base}/ok", "service": "web"},
        {"url": f"{base}/fail", "service": "api", "port": "8080"},
        {"url": f"{base}/json"},
        {"url": "http://127.0.0.1:1/"},
    ]
    assert [t["ok"] for t in s["targets"]] == [True, False, True, False]
    assert (s["up_count"], s["down_count"], s["ok_count"]) == (3, 1, 2)


def test_secrets_are_sent_but_never_shown(base: str) -> None:
    s = probe(
        url=Secret(f"{base}/echo"),
        method="post",
        headers={"X-Token": Secret("s3cr3t-token")},
        body='{"ping": 1}',
        json_path="$.token",
    )
    assert s["json_value"] == "s3cr3t-token"  # it was sent
    assert s["targets"][0]["labels"] == {"url": "***"}
    s["json_value"] = s["targets"][0]["json_value"] = None  # the echo, not our doing
    assert "s3cr3t" not in repr(s) and "/echo" not in repr(s)


def test_password_in_url_is_masked_in_labels(base: str) -> None:
    s = probe(url=base.replace("http://", "http://user:hunter2@") + "/ok")
    assert s["targets"][0]["labels"]["url"] == base.replace("http://", "http://user:***@") + "/ok"


def test_max_body_bytes(base: str) -> None:
    s = probe(url=f"{base}/big", body_regex="^a+$", max_body_bytes=1024)
    assert (s["ok"], s["body_match"]) == (True, True)
    s = probe(url=f"{base}/big", json_path="$.x", max_body_bytes="1KiB")
    assert (s["ok"], s["error"]) == (False, "body larger than max_body_bytes (1024)")


def test_client_is_reused_across_collects(base: str) -> None:
    c = make(url=f"{base}/echo", json_path="$.port")

    async def run() -> list[Any]:
        try:
            return [(await c.collect(0))["json_value"] for _ in range(3)]
        finally:
            await c.aclose()

    ports = asyncio.run(run())
    assert len(set(ports)) == 1, "keep-alive: one connection for every collect"


def test_closed_collector_raises(base: str) -> None:
    c = make(url=f"{base}/ok")

    async def run() -> None:
        await c.aclose()
        with pytest.raises(CollectorError, match="closed"):
            await c.collect(0)

    asyncio.run(run())


def test_https_tls_days_left(tls: tuple[str, Path]) -> None:
    url, cert = tls
    s = probe(url=f"{url}/ok", verify_tls=False)
    assert s["ok"] is True
    assert 29.9 < s["tls_days_left"] <= 30.0
    s = probe(url=f"{url}/ok", ca_file=str(cert))  # verified against the test CA
    assert s["ok"] is True and 29.9 < s["tls_days_left"] <= 30.0
    s = probe(url=f"{url}/ok")  # the system trust store does not know it
    assert (s["up"], s["tls_days_left"]) == (False, None)
    assert "CERTIFICATE_VERIFY_FAILED" in s["error"]


def test_cert_not_after_reads_both_time_formats(tmp_path: Path) -> None:
    for days in (30, 30_000):  # UTCTime until 2049, GeneralizedTime after
        made = self_signed(tmp_path, days=days)
        if made is None:
            pytest.skip("neither the cryptography package nor an openssl binary is available")
        der = ssl.PEM_cert_to_DER_cert(made[0].read_text())
        not_after = http_collector.cert_not_after(der)
        assert not_after is not None
        assert abs(not_after - (time.time() + days * 86400)) < 120
    assert http_collector.cert_not_after(b"\x30\x03\x02\x01") is None  # garbage: no value


def test_bad_secret_header_is_a_value_without_the_secret(base: str) -> None:
    s = probe(url=f"{base}/ok", headers={"X-Token": Secret("line1\nline2")})
    assert s["up"] is False and s["error"]
    assert "line1" not in s["error"] and "line2" not in s["error"]
    s = probe(url=f"{base}/ok", headers={"X-Token": Secret("caf\u00e9")})
    assert s["error"] == "a header value is not ASCII"


def test_unreadable_ca_file_means_nothing_could_be_tried(base: str, tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="ca_file"):
        probe(url=f"{base}/ok", ca_file=str(tmp_path / "missing.pem"))
