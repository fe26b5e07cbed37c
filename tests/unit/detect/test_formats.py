"""Log formats: real-looking lines give their fields; malformed lines give None, never raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detect import formats

NGINX = (
    '203.0.113.7 - alice [07/Dec/2026:01:02:03 +0000] "GET /products/42?ref=home&x=%27 HTTP/1.1" '
    '200 5123 "https://shop.example.org/" "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Firefox/115.0"'
)


def test_nginx_combined_gives_every_field() -> None:
    assert formats.BUILTIN["nginx"].parse(NGINX) == {
        "ip": "203.0.113.7",
        "user": "alice",
        "time": "07/Dec/2026:01:02:03 +0000",
        "method": "GET",
        "path": "/products/42",
        "query": "ref=home&x=%27",
        "status": "200",
        "bytes": "5123",
        "referer": "https://shop.example.org/",
        "ua": "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Firefox/115.0",
    }


def test_apache_escaped_quotes_and_ipv6() -> None:
    line = (
        '2001:db8::1 - - [07/Dec/2026:01:02:03 +0100] "POST /login HTTP/2.0" 401 - '
        '"-" "evil \\"quoted\\" agent"'
    )
    f = formats.BUILTIN["apache"].parse(line)
    assert f is not None
    assert (f["ip"], f["method"], f["path"], f["query"], f["status"], f["bytes"]) == (
        "2001:db8::1",
        "POST",
        "/login",
        "",
        "401",
        "-",
    )
    assert f["ua"] == 'evil \\"quoted\\" agent'


def test_common_format_has_empty_referer_and_ua() -> None:
    f = formats.BUILTIN["combined"].parse(
        '198.51.100.1 - - [07/Dec/2026:01:02:03 +0000] "GET / HTTP/1.0" 304 0'
    )
    assert f is not None and f["referer"] == "" and f["ua"] == "" and f["status"] == "304"


@pytest.mark.parametrize(
    ("request_text", "method", "path", "query"),
    [
        ("-", "", "-", ""),  # nginx logs a client that sent nothing as "-"
        ("GET /a b c?q=1 HTTP/1.1", "GET", "/a b c", "q=1"),  # raw spaces in the target
        ("GET /only", "GET", "/only", ""),  # HTTP/0.9 style, no protocol
        ("\\x16\\x03\\x01\\x02\\x00", "", "\\x16\\x03\\x01\\x02\\x00", ""),  # TLS on the HTTP port
    ],
)
def test_odd_requests_still_parse(request_text: str, method: str, path: str, query: str) -> None:
    line = f'192.0.2.1 - - [07/Dec/2026:01:02:03 +0000] "{request_text}" 400 150 "-" "-"'
    f = formats.BUILTIN["nginx"].parse(line)
    assert f is not None
    assert (f["method"], f["path"], f["query"]) == (method, path, query)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "garbage",
        '203.0.113.7 - - [07/Dec/2026:01:02:03 +0000] "GET / HTTP/1.1" abc 5',
        '203.0.113.7 - - 07/Dec/2026 "GET / HTTP/1.1" 200 5',
        NGINX[:40],
    ],
)
def test_malformed_web_lines_give_none(line: str) -> None:
    assert formats.BUILTIN["nginx"].parse(line) is None


SSHD = [
    (
        "Dec  7 01:02:03 host sshd[811]: Failed password for root from 203.0.113.9 port 52114 ssh2",
        {"ip": "203.0.113.9", "user": "root", "outcome": "failed", "method": "password"},
    ),
    (
        "Dec  7 01:02:03 host sshd[811]: Failed password for invalid user oracle from 203.0.113.9 "
        "port 52114 ssh2",
        {"ip": "203.0.113.9", "user": "oracle", "outcome": "failed", "method": "password"},
    ),
    (
        "Dec  7 01:02:03 host sshd[811]: Invalid user test from 2001:db8::5 port 40022",
        {"ip": "2001:db8::5", "user": "test", "outcome": "invalid_user", "method": ""},
    ),
    (
        "2026-12-07T01:02:03.123456+00:00 host sshd-session[99]: Accepted publickey for deploy "
        "from 192.0.2.10 port 50000 ssh2: ED25519 SHA256:abc",
        {"ip": "192.0.2.10", "user": "deploy", "outcome": "accepted", "method": "publickey"},
    ),
    (
        "Dec  7 01:02:03 host sshd[5]: pam_unix(sshd:auth): authentication failure; logname= "
        "uid=0 euid=0 tty=ssh ruser= rhost=198.51.100.4  user=admin",
        {"ip": "198.51.100.4", "user": "admin", "outcome": "failed", "method": "pam"},
    ),
]


@pytest.mark.parametrize(("line", "fields"), SSHD)
def test_sshd_lines(line: str, fields: dict[str, str]) -> None:
    assert formats.BUILTIN["sshd"].parse(line) == fields


@pytest.mark.parametrize(
    "line",
    [
        "Dec  7 01:02:03 host sshd[811]: Connection closed by 203.0.113.9 port 52114",
        "Dec  7 01:02:03 host CRON[1]: pam_unix(cron:session): session opened for user root",
        "sshd",
    ],
)
def test_other_sshd_and_syslog_lines_give_none(line: str) -> None:
    assert formats.BUILTIN["sshd"].parse(line) is None


def test_json_dotted_paths_and_scalars() -> None:
    fmt = formats.from_setting(
        {
            "type": "json",
            "fields": {
                "ip": "client.ip",
                "user": "auth.user.name",
                "status": "http.status",
                "ok": "auth.ok",
                "path": "http.path",
                "missing": "a.b.c",
                "obj": "http",
            },
        }
    )
    line = (
        '{"client": {"ip": "192.0.2.3"}, "auth": {"user": {"name": "bob"}, "ok": false}, '
        '"http": {"status": 403, "path": "/admin"}}'
    )
    assert fmt.parse(line) == {
        "ip": "192.0.2.3",
        "user": "bob",
        "status": "403",
        "ok": "false",
        "path": "/admin",
    }
    assert fmt.fields == {"ip", "user", "status", "ok", "path", "missing", "obj"}


@pytest.mark.parametrize("line", ["", "not json", "[1, 2]", '{"a": ', '"text"', "{}{}"])
def test_json_non_objects_give_none(line: str) -> None:
    fmt = formats.from_setting({"type": "json", "fields": {"ip": "ip"}})
    assert fmt.parse(line) is None


def test_generic_host_and_named_fields() -> None:
    fmt = formats.from_setting(
        {
            "type": "pattern",
            "patterns": [
                r"Login failed for <F-USER>\S+</F-USER> from <HOST>",
                r"blocked (?P<reason>\w+) from <ADDR>",
            ],
        }
    )
    assert fmt.fields == {"ip", "user", "reason"}
    assert fmt.parse("app: Login failed for bob from 192.0.2.7 (2 tries)") == {
        "ip": "192.0.2.7",
        "user": "bob",
    }
    assert fmt.parse("blocked spam from 2001:db8::9") == {"ip": "2001:db8::9", "reason": "spam"}
    assert fmt.parse("Login ok for bob from 192.0.2.7") is None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("syslog", "format: unknown format 'syslog'"),
        ({"type": "pattern", "patterns": ["(?=look)<HOST>"]}, "format.patterns[0]: not an RE2"),
        ({"type": "pattern", "patterns": ["no host here"]}, "format.patterns[0]: has no <HOST>"),
        ({"type": "pattern", "patterns": []}, "format.patterns: expected at least one"),
        ({"type": "json", "fields": {"ip": "a..b"}}, "format.fields.ip: expected a dotted path"),
        ({"type": "json"}, "format.fields: expected a mapping"),
        ({"type": "xml"}, "format.type: expected json or pattern"),
        ({"type": "json", "fields": {"ip": "ip"}, "extra": 1}, "format: unknown setting 'extra'"),
    ],
)
def test_bad_format_settings_say_where(setting: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        formats.from_setting(setting)


ALL_FORMATS = [
    *formats.BUILTIN.values(),
    formats.from_setting({"type": "json", "fields": {"ip": "a.b", "u": "c"}}),
    formats.from_setting({"type": "pattern", "patterns": [r"from <HOST> user (?P<user>.*)"]}),
]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_no_format_raises_on_arbitrary_bytes(data: bytes) -> None:
    line = data.decode("utf-8", "replace")
    for fmt in ALL_FORMATS:
        got = fmt.parse(line)
        assert got is None or all(isinstance(v, str) for v in got.values())


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(' "[]\\-/?{}:.0123456789abcGETHTP'), max_size=200),
)
def test_no_format_raises_on_near_miss_text(text: str) -> None:
    # the alphabet of the formats' own delimiters reaches their regexes' corners
    for fmt in ALL_FORMATS:
        fmt.parse(text)
        fmt.parse("203.0.113.7 - - [x] " + text)
