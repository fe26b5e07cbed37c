"""engine/notify/wire.py without a server: URLs taken apart, request heads, headers."""

from __future__ import annotations

import base64

import httptools
import pytest

from engine.notify import wire


def parsed_request(data: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes]:
    """(method, target, headers, body) as a server's parser reads `data`."""

    class Sink:
        url = b""
        body = b""
        done = False

        def __init__(self) -> None:
            self.headers: list[tuple[bytes, bytes]] = []

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name, value))

        def on_body(self, body: bytes) -> None:
            self.body += body

        def on_message_complete(self) -> None:
            self.done = True

    sink = Sink()
    parser = httptools.HttpRequestParser(sink)
    parser.feed_data(data)
    assert sink.done, "the request is not complete"
    return parser.get_method(), sink.url, sink.headers, sink.body


def test_parse_url_parts() -> None:
    t = wire.parse_url("https://User:p%40ss@Hooks.Example.org:8443/a/b?x=1&y=2#frag")
    assert (t.scheme, t.host, t.port) == ("https", "hooks.example.org", 8443)
    assert t.target == "/a/b?x=1&y=2"  # no fragment on the wire
    assert t.host_header == "hooks.example.org:8443"
    assert t.userinfo == ("User", "p@ss")
    assert t.key == ("https", "hooks.example.org", 8443)


def test_parse_url_defaults_and_literals() -> None:
    assert wire.parse_url("http://h.example").target == "/"
    assert wire.parse_url("http://h.example:80/x").host_header == "h.example"
    assert wire.parse_url("https://h.example/").port == 443
    v6 = wire.parse_url("http://[::1]:9093/api/v2/alerts")
    assert (v6.host, v6.port, v6.host_header) == ("::1", 9093, "[::1]:9093")
    assert wire.parse_url("http://127.0.0.1:1/").userinfo is None


def test_parse_url_escapes_what_a_request_line_cannot_carry() -> None:
    t = wire.parse_url("http://h.example/a b/ü?q=ä b&k=%2F")
    assert t.target == "/a%20b/%C3%BC?q=%C3%A4%20b&k=%2F"  # existing escapes stay
    assert wire.parse_url("http://bücher.example/").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    "url",
    ["http://", "http:///path", "http://h:port/", "http://h:70000/", "http://[::1/", "http://a b/"],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(wire.InvalidURL):
        wire.parse_url(url)


@pytest.mark.parametrize("url", ["ftp://h/x", "not a url", "file:///etc/passwd", "//h/x"])
def test_other_schemes(url: str) -> None:
    with pytest.raises(wire.UnsupportedScheme, match="only http:// and https:// URLs"):
        wire.parse_url(url)


def test_encode_request_head_and_body() -> None:
    t = wire.parse_url("http://h.example:8080/hook?k=1")
    body = b'{"a":1}'
    data = wire.encode_request(
        "POST",
        t,
        [("User-Agent", "vigil/test"), ("Content-Type", "application/json"), ("X-Key", "v")],
        body,
    )
    method, target, headers, got = parsed_request(data)
    assert (method, target, got) == (b"POST", b"/hook?k=1", body)
    assert headers == [
        (b"Host", b"h.example:8080"),
        (b"User-Agent", b"vigil/test"),
        (b"Content-Type", b"application/json"),
        (b"X-Key", b"v"),
        (b"Content-Length", b"7"),
    ]


def test_later_headers_replace_earlier_ones_in_any_case() -> None:
    t = wire.parse_url("http://h.example/")
    data = wire.encode_request(
        "PUT",
        t,
        [
            ("Content-Type", "application/json"),
            ("content-type", "text/plain"),
            ("Content-Length", "999"),  # never the caller's: the body's own length
            ("Transfer-Encoding", "chunked"),
        ],
        b"abc",
    )
    _, _, headers, body = parsed_request(data)
    assert (b"content-type", b"text/plain") in headers
    assert [v for n, v in headers if n.lower() == b"content-type"] == [b"text/plain"]
    assert [v for n, v in headers if n.lower() == b"content-length"] == [b"3"]
    assert not [n for n, _ in headers if n.lower() == b"transfer-encoding"]
    assert body == b"abc"


def test_basic_auth_and_empty_post() -> None:
    t = wire.parse_url("https://h.example/x")
    data = wire.encode_request("POST", t, [], b"", auth=("AC123", "tok:en"))
    _, _, headers, body = parsed_request(data)
    auth = dict(headers)[b"Authorization"]
    assert base64.b64decode(auth.removeprefix(b"Basic ")) == b"AC123:tok:en"
    assert dict(headers)[b"Content-Length"] == b"0" and body == b""
    get = wire.encode_request("GET", t, [], b"")
    assert b"Content-Length" not in dict(parsed_request(get)[2])


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb", "a\rb", "a\0b"])
def test_a_line_break_in_a_header_value_is_refused(value: str) -> None:
    t = wire.parse_url("http://h.example/")
    with pytest.raises(wire.InvalidHeader) as info:
        wire.encode_request("POST", t, [("X-Token", value)], b"")
    assert "X-Token" in str(info.value)
    assert value not in str(info.value)  # a value may be a secret


@pytest.mark.parametrize("name", ["X Bad", "X:Bad", "", "X\r\nY"])
def test_a_header_name_that_is_not_a_token_is_refused(name: str) -> None:
    with pytest.raises(wire.InvalidHeader):
        wire.encode_request("POST", wire.parse_url("http://h.example/"), [(name, "v")], b"")


def test_a_method_that_is_not_a_token_is_refused() -> None:
    with pytest.raises(wire.InvalidHeader):
        wire.encode_request("POST /x HTTP/1.1\r\n", wire.parse_url("http://h/"), [], b"")


def test_headers_mapping() -> None:
    h = wire.Headers(
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
