"""Which HTTP proxy a channel's request goes through (transport.py asks).

    check_proxy_url  an http://[user:password@]host[:port] proxy URL, or ValueError
    Proxies          the channel's `proxy` setting (a URL, or "none"), else the
                     environment's HTTPS_PROXY / HTTP_PROXY by the target's scheme
                     unless NO_PROXY names the host (read once, when the channel
                     is built, as curl and Python's urllib read them)

Through a proxy, the proxy's own address is what is connected to, so it is what
the address policy checks; the proxy resolves the target's name itself.
"""

from __future__ import annotations

import base64
import contextlib
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

__all__ = ["DIRECT", "Proxies", "Proxy", "basic_auth", "check_proxy_url"]

DIRECT = "none"  # the `proxy` setting that ignores the environment's proxy


@dataclass(frozen=True, slots=True)
class Proxy:
    url: str  # http://host:port, without userinfo
    host: str  # lower case, no brackets
    port: int
    headers: Mapping[str, str] | None  # Proxy-Authorization from the URL's userinfo


def check_proxy_url(text: str) -> Proxy:
    """ValueError for anything but http://host[:port] (with optional user:password@)."""
    try:
        parts = urlsplit(text)
        port = parts.port or 80
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ValueError("expected an http:// proxy URL with a host")
    if parts.path not in ("", "/") or parts.query:
        raise ValueError("expected a proxy URL without path or query")
    host = parts.hostname
    shown = f"[{host}]" if ":" in host else host
    headers = None
    if parts.username or parts.password:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        headers = {"Proxy-Authorization": basic_auth(user, password)}
    return Proxy(f"http://{shown}:{port}", host, port, headers)


class Proxies:
    """Which proxy each request goes through.

    `setting` is the channel's `proxy`: a URL (every request of the channel goes
    there), "none" (never a proxy), or None: the environment's HTTPS_PROXY /
    HTTP_PROXY (by the target's scheme) unless NO_PROXY names the host, as curl
    and Python's urllib read them. The environment is read once, when the channel
    is built; a malformed environment proxy is ignored rather than failing every send.
    """

    def __init__(self, setting: str | None, environ: Mapping[str, str] | None = None) -> None:
        self._fixed: Proxy | None = None
        self._env: dict[str, str] = {}
        self._by_scheme: dict[str, Proxy] = {}
        self._bypass: dict[tuple[str, int], bool] = {}
        if setting == DIRECT:
            return
        if setting is not None:
            self._fixed = check_proxy_url(setting)
            return
        found = (
            urllib.request.getproxies_environment()
            if environ is None
            else {k.lower().removesuffix("_proxy"): v for k, v in environ.items() if v}
        )
        self._env = found
        for scheme in ("http", "https"):
            with contextlib.suppress(ValueError):
                if found.get(scheme):
                    self._by_scheme[scheme] = check_proxy_url(found[scheme])

    @property
    def used(self) -> bool:
        return self._fixed is not None or bool(self._by_scheme)

    def secrets(self) -> tuple[str, ...]:
        """Proxy passwords, to be kept out of error messages."""
        out = []
        for p in (self._fixed, *self._by_scheme.values()):
            if p is not None and p.headers:
                out.append(p.headers["Proxy-Authorization"])
        return tuple(out)

    def choose(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a request to scheme://host:port, or None: direct."""
        if self._fixed is not None:
            return self._fixed
        proxy = self._by_scheme.get(scheme)
        if proxy is None or self._bypassed(host, port):
            return None
        return proxy

    def _bypassed(self, host: str, port: int) -> bool:
        if not self._env.get("no"):
            return False
        known = self._bypass.get((host, port))
        if known is None:  # a channel sends to the same few hosts: matched once each
            known = self._bypass[(host, port)] = self._match_no_proxy(host, port)
        return known

    def _match_no_proxy(self, host: str, port: int) -> bool:
        name = f"[{host}]" if ":" in host else host
        # in the module, not in typeshed: the NO_PROXY matching urllib itself uses
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
        return bool(bypass(f"{name}:{port}", self._env))


def basic_auth(user: str, password: str) -> str:
    # not aiohttp.encode_basic_auth: it refuses a ":" in the user, as Basic auth
    # itself does not (the user ends at the first ":")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
