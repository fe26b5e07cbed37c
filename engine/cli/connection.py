"""Where the daemon is and how to talk to it: the client side of every command
that calls the running daemon's API (`vigil alerts`, `ack`, `dashboard`, `unban`,
`explain --url` ...).

Where: --url, else $VIGIL_URL, else api.listen of the config (-c, else the default
lookup; only its `api` section is read, nothing is built). The token:
--token-file, else $VIGIL_TOKEN, else $VIGIL_TOKEN_FILE. Every failure is one line
(a ClientError, printed by engine.cli.main) and exit 1.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
from collections.abc import Mapping
from typing import Any

from engine.errors import ClientError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9595
LISTEN = re.compile(r"\[?([^\]]*)\]?:(\d{1,5})")
MAX_TOKEN_FILE = 64 * 1024


def daemon_args() -> argparse.ArgumentParser:
    """The options of every command that talks to the daemon's API (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("daemon")
    g.add_argument("--url", help="daemon URL (default: $VIGIL_URL, else api.listen of the config)")
    g.add_argument(
        "--token-file", help="file holding the API token (default: $VIGIL_TOKEN, $VIGIL_TOKEN_FILE)"
    )
    g.add_argument("-c", "--config", help="vigil.yaml to read api.listen from")
    g.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)"
    )
    return common


# -- where and who -----------------------------------------------------------------------


def daemon_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("VIGIL_URL") or _url_from_config(args.config)
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def _url_from_config(path: str | None) -> str:
    from engine.config.build.files import default_config_path
    from engine.config.load import YamlError, load_file

    host, port = DEFAULT_HOST, DEFAULT_PORT
    path = path or default_config_path()
    if path:
        try:
            data = load_file(path).data
        except YamlError as e:
            raise ClientError(f"cannot read api.listen from {e.problem.format()}") from None
        api = data.get("api") if isinstance(data, dict) else None
        listen = api.get("listen") if isinstance(api, dict) else None
        if listen is not None:
            m = LISTEN.fullmatch(str(listen))
            if not m:
                raise ClientError(f"{path}: api.listen {listen!r} is not host:port")
            host, port = m.group(1), int(m.group(2))
    # a wildcard listen address is reached through loopback
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def read_token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        return _token_file(args.token_file)
    env = os.environ.get("VIGIL_TOKEN", "").strip()
    if env:
        return env
    path = os.environ.get("VIGIL_TOKEN_FILE")
    return _token_file(path) if path else None


def _token_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_TOKEN_FILE + 1)
    except OSError as e:
        raise ClientError(f"cannot read token file {path}: {e.strerror}") from None
    token = raw.decode("utf-8", "replace").strip()
    if not token or len(raw) > MAX_TOKEN_FILE:
        raise ClientError(f"token file {path} holds no usable token")
    return token


# -- talking to the daemon ---------------------------------------------------------------


class Client:
    """One daemon, one token; every failure becomes a one-line ClientError."""

    def __init__(self, url: str, token: str | None, timeout: float = 10.0) -> None:
        # imported here, not at the top: `vigil dashboard` reuses this module through
        # http.client (dashboard_http) and must not pay httpx's ~80 ms at its start
        import httpx

        self.url = url
        self.token = token
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL as e:
            raise ClientError(f"{url!r} is not a usable daemon URL: {e}") from None
        self.http = httpx.Client(
            base_url=url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            # a proxy from the environment must not capture calls to a local daemon
            trust_env=host not in ("127.0.0.1", "::1", "localhost"),
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        return cls(daemon_url(args), read_token(args), args.timeout)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        import httpx

        try:
            r = self.http.request(method, path, params=params, json=body)
        except httpx.TimeoutException:
            raise ClientError(
                f"vigil at {self.url} did not answer within {self.http.timeout.read:g}s"
            ) from None
        except httpx.HTTPError as e:
            raise ClientError(f"cannot reach vigil at {self.url}: {reason(e)}") from None
        try:
            data = r.json()
        except ValueError:
            data = None
        return self.answer(r.status_code, data, r.text)

    def answer(self, status: int, data: Any, text: str) -> Any:
        """A response's JSON (`data`, None if it was none), or the one-line error it means."""
        if 200 <= status < 300:
            if data is None:
                raise ClientError(f"{self.url} answered {status} without JSON; is it vigil?")
            return data
        raise self.error(status, data, text)

    def error(self, status: int, data: Any, text: str) -> ClientError:
        msg = data.get("error") if isinstance(data, dict) else None
        if not isinstance(msg, str) or not msg:
            first = text.strip().splitlines()[0][:200] if text.strip() else ""
            msg = f"HTTP {status}" + (f": {first}" if first else "")
        msg = " ".join(msg.split())  # one line, whatever the server sent
        if status == 401:
            if not self.token:
                return ClientError(
                    f"no token given (401): use --token-file, $VIGIL_TOKEN or $VIGIL_TOKEN_FILE; {msg}"
                )
            return ClientError(f"token rejected (401): {msg}")
        if status == 403:
            return ClientError(f"not allowed (403): {msg}")
        if status >= 500:
            return ClientError(f"vigil at {self.url} failed ({status}): {msg}")
        return Status(status, msg, data)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Status(ClientError):
    """A 4xx other than 401/403, with the server's message."""

    def __init__(self, status: int, message: str, data: Any = None) -> None:
        self.status = status
        self.data = data
        super().__init__(message)


def reason(e: BaseException) -> str:
    """`connection refused` rather than httpx's wrapped repr."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            if seen.errno == errno.ECONNREFUSED:
                return "connection refused"
            return (seen.strerror or str(seen)).lower()
        seen = seen.__cause__ or seen.__context__
    text = str(e) or type(e).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.removeprefix("[Errno 111] ").splitlines()[0]


def path_segment(s: str) -> str:
    """A path segment: ids are hex, but whatever was typed must stay one segment."""
    from urllib.parse import quote

    return quote(s, safe="")


def resolve_id(c: Client, fp: str) -> str:
    """A unique prefix of an active alert's fingerprint stands for it, as in git."""
    try:
        c.call("GET", f"/api/v1/alerts/{path_segment(fp)}")
        return fp
    except Status as e:
        if e.status != 404:
            raise
    matches = [
        str(a["fingerprint"])
        for a in c.call("GET", "/api/v1/alerts")["alerts"]
        if str(a.get("fingerprint", "")).startswith(fp)
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ClientError(f"alert id {fp} is ambiguous: it starts {len(matches)} fingerprints")
    raise ClientError(f"no alert {fp}")
