"""engine/httpclient/transport.py without a server: URLs taken apart, the headers a
request may carry, response headers, which proxy a URL goes through. (What
aiohttp then puts on the wire is tested against a real server in
tests/integration/test_wire.py.)"""

from __future__ import annotations

import pytest

from engine.httpclient import proxies, transport


def test_parse_url_parts() -> None:
    t = transport.parse_url("https://User:p%40ss@Hooks.Example.org:8443/a/b?x=1&y=2#frag")
    assert (t.scheme, t.host, t.port) == ("https", "hooks.example.org", 8443)
    assert t.target == "/a/b?x=1&y=2"  # no fragment on the wire
    assert t.userinfo == ("User", "p@ss")
    assert str(t.url) == "https://hooks.example.org:8443/a/b?x=1&y=2"  # no userinfo


def test_parse_url_defaults_and_literals() -> None:
    assert transport.parse_url("http://h.example").target == "/"
    assert str(transport.parse_url("http://h.example:80/x").url) == "http://h.example/x"
    assert transport.parse_url("https://h.example/").port == 443
    v6 = transport.parse_url("http://[::1]:9093/api/v2/alerts")
    assert (v6.host, v6.port, str(v6.url)) == ("::1", 9093, "http://[::1]:9093/api/v2/alerts")
    assert transport.parse_url("http://127.0.0.1:1/").userinfo is None


def test_parse_url_escapes_what_a_request_line_cannot_carry() -> None:
    t = transport.parse_url("http://h.example/a b/ü?q=ä b&k=%2F")
    assert t.target == "/a%20b/%C3%BC?q=%C3%A4%20b&k=%2F"  # existing escapes stay
    assert t.url == "http://h.example" + t.target  # aiohttp is given it escaped
    assert transport.parse_url("http://bücher.example/").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "url",
    ["http://", "http:///path", "http://h:port/", "http://h:70000/", "http://[::1/", "http://a b/"],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(transport.InvalidURL):
        transport.parse_url(url)


@pytest.mark.parametrize("url", ["ftp://h/x", "not a url", "file:///etc/passwd", "//h/x"])
def test_other_schemes(url: str) -> None:
    with pytest.raises(transport.UnsupportedScheme, match="only http:// and https:// URLs"):
        transport.parse_url(url)


def test_later_headers_replace_earlier_ones_in_any_case() -> None:
    h = transport.check_headers(
        "PUT",
        [
            ("Content-Type", "application/json"),
            ("content-type", "text/plain"),
            ("Content-Length", "999"),  # never the caller's: the body's own length
            ("Transfer-Encoding", "chunked"),
        ],
    )
    assert list(h.items()) == [("content-type", "text/plain")]


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\0b"])
def test_a_line_break_in_a_header_value_is_refused(value: str) -> None:
    with pytest.raises(transport.InvalidHeader) as info:
        transport.check_headers("POST", [("X-Token", value)])
    assert "X-Token" in str(info.value)
    assert value not in str(info.value)  # a value may be a secret


@pytest.mark.parametrize("name", ["X Bad", "X:Bad", "", "X\r\nY"])
def test_a_header_name_that_is_not_a_token_is_refused(name: str) -> None:
    with pytest.raises(transport.InvalidHeader):
        transport.check_headers("POST", [(name, "v")])


def test_a_method_that_is_not_a_token_is_refused() -> None:
    with pytest.raises(transport.InvalidHeader):
        transport.check_headers("POST /x HTTP/1.1\r\n", [])


def test_headers_mapping() -> None:
    h = transport.Headers(
        [
            (b"Retry-After", b"7"),
            (b"Set-Cookie", b"a=1"),
            (b"set-cookie", b"b=2"),
            (b"X-L", b"\xe9"),
        ]
    )
    assert h.get("retry-after") == "7" and h["RETRY-AFTER"] == "7"
    assert h["set-cookie"] == "a=1, b=2"
    assert h["x-l"] == "é"  # latin-1, never a decoding error
    assert h.get("location") is None and "location" not in h
    assert sorted(h) == ["retry-after", "set-cookie", "x-l"] and len(h) == 3


# --- proxies ------------------------------------------------------------------------


def proxied(p: proxies.Proxies, url: str) -> str | None:
    t = transport.parse_url(url)
    chosen = p.choose(t.scheme, t.host, t.port)
    return None if chosen is None else str(chosen.url)


def test_the_environment_proxy_by_scheme_and_no_proxy() -> None:
    p = proxies.Proxies(
        None,
        {
            "HTTPS_PROXY": "http://proxy.corp:3128",
            "HTTP_PROXY": "http://plain.corp:8080",
            "NO_PROXY": "internal.example,.svc.local,10.1.2.3",
        },
    )
    assert proxied(p, "https://hooks.slack.com/services/x") == "http://proxy.corp:3128"
    assert proxied(p, "http://hooks.example/x") == "http://plain.corp:8080"
    assert proxied(p, "https://internal.example/x") is None
    assert proxied(p, "https://api.svc.local:8443/x") is None  # a domain suffix
    assert proxied(p, "http://10.1.2.3:9000/x") is None
    assert proxied(p, "https://notinternal.example.org/x") == "http://proxy.corp:3128"


def test_no_proxy_star_and_no_environment() -> None:
    star = proxies.Proxies(None, {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"})
    assert proxied(star, "https://h.example/") is None
    assert not proxies.Proxies(None, {}).used


def test_the_channel_setting_wins_over_the_environment() -> None:
    env = {"HTTPS_PROXY": "http://env.corp:3128", "NO_PROXY": "h.example"}
    fixed = proxies.Proxies("http://u:s%3Acret@mine.corp:8080", env)
    assert proxied(fixed, "https://h.example/") == "http://mine.corp:8080"  # NO_PROXY is env's
    chosen = fixed.choose("https", "h.example", 443)
    assert chosen is not None and chosen.headers == {"Proxy-Authorization": "Basic dTpzOmNyZXQ="}
    assert fixed.secrets() == ("Basic dTpzOmNyZXQ=",)
    assert proxied(proxies.Proxies("none", env), "https://x.example/") is None


@pytest.mark.parametrize(
    "url", ["https://p.corp:3128", "socks5://p:1080", "http://p.corp/path", "http://:3128", "p:1"]
)
def test_proxy_urls_refused(url: str) -> None:
    with pytest.raises(ValueError):
        proxies.check_proxy_url(url)
