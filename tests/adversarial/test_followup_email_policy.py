"""The email channel's SMTP host goes through the one address policy
(engine/common/address_policy.py), as webhook URLs and the http collector do: resolved
first, each address checked, the connection made to a checked address only (TLS
still checks the host name), and a literal metadata host refused at validate."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.daemon import VIGIL, Daemon
from tests.integration.test_email import (
    Server,
    cert,
    channel,
    notification,
    ssl_server,
)

__all__ = ["cert", "ssl_server"]  # fixtures, imported for use here

RULES = "group: g\nrules:\n  - {id: r, expr: 'fixed.limit > 1'}\n"

HOSTS = ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "2852039166"]


@pytest.mark.parametrize("host", HOSTS)
def test_validate_refuses_a_literal_metadata_smtp_host(tmp_path: Path, host: str) -> None:
    channels = (
        "channels:\n  - name: mail\n    type: email\n"
        f"    smtp_host: '{host}'\n    from: vigil@example.org\n    to: [oncall@example.org]\n"
    )
    Daemon(tmp_path, RULES, channels)
    r = subprocess.run(
        [VIGIL, "validate", "-c", str(tmp_path / "vigil.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert (
        "c.yaml:4:16: channels[0].smtp_host:" in out and "smtp_host" in out and "metadata" in out
    ), out
    assert "Traceback" not in out, out


CHILD = """
import asyncio, sys
from engine.common.secret import Secret
from engine.errors import DeliveryError
from tests.integration.test_email import channel, notification

connects = []
def audit(event, args):
    if event == "socket.connect":
        connects.append(str(args[1]))
sys.addaudithook(audit)

# a secret: `vigil validate` cannot see it, so only the check at connect time stands
ch = channel(25, smtp_host=Secret(sys.argv[1]), tls="none", username=None, password=None,
             timeout="2s")
try:
    asyncio.run(ch.send(notification()))
except DeliveryError as e:
    print("refused" if not e.retryable else "retryable", e)
print("connects", connects)
"""


@pytest.mark.parametrize("host", HOSTS)
def test_a_metadata_host_hidden_in_a_secret_gets_no_connection(host: str) -> None:
    r = subprocess.run(
        [sys.executable, "-c", CHILD, host], capture_output=True, text=True, timeout=60
    )
    out = r.stdout + r.stderr
    assert "refused" in out and "metadata" in out, out
    assert "connects []" in out, out  # no TCP handshake was even tried
    assert "Traceback" not in out, out


def test_a_name_is_resolved_checked_and_its_checked_address_used_with_tls(
    ssl_server: Server,
) -> None:
    # `localhost` may resolve to ::1 first, where nothing listens: the next checked
    # address answers; the certificate is still checked against the name
    ch = channel(ssl_server.port, tls="ssl", ca_file=ssl_server.ca_file, smtp_host="localhost")
    asyncio.run(ch.send(notification()))
    [got] = ssl_server.handler.received
    assert got.tls
