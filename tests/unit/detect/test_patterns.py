"""Detection patterns: every pack's attacks hit (raw and encoded), benign traffic does
not, and the prefilter never hides a match the regex alone would find."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detect import formats, packs
from engine.detect.patterns import Matcher, Pattern, decode, pattern_from_setting
from tests.unit.detect.corpus import ATTACKS, BENIGN

NGINX = formats.BUILTIN["nginx"]
ALL = Matcher([p for ps in packs.PACKS.values() for p in ps])


def line(target: str, ua: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/115.0") -> str:
    return f'192.0.2.1 - - [07/Dec/2026:01:02:03 +0000] "GET {target} HTTP/1.1" 200 1 "-" "{ua}"'


def hit_packs(text: str) -> set[str]:
    fields = NGINX.parse(text)
    assert fields is not None, text
    return {ALL.patterns[i].pack for i in ALL.match(fields, text)}


@pytest.mark.parametrize(
    ("pack", "target"), [(p, t) for p, targets in ATTACKS.items() for t in targets]
)
def test_each_attack_is_found_by_its_pack(pack: str, target: str) -> None:
    assert pack in hit_packs(line(target))


@pytest.mark.parametrize("target", BENIGN)
def test_benign_traffic_hits_nothing(target: str) -> None:
    assert hit_packs(line(target)) == set()


@pytest.mark.parametrize(
    "ua",
    [
        "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None)",
        "Mozilla/5.0 zgrab/0.x",
        "WPScan v3.8.25",
        "${jndi:ldap://x.example/a}",
    ],
)
def test_scanner_and_header_injection_user_agents(ua: str) -> None:
    assert hit_packs(line("/", ua)) & {"scanners", "cmdi"}


@pytest.mark.parametrize(
    "ua",
    [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.5.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15",
        "-",
    ],
)
def test_ordinary_user_agents_hit_nothing(ua: str) -> None:
    assert hit_packs(line("/", ua)) == set()


def test_decode_once_and_twice() -> None:
    assert decode("a+b%20c") == "a b c"
    assert decode("%2527") == "'"
    assert decode("%252527") == "%27"  # only twice: what most applications decode at most
    assert decode("plain/path") == "plain/path"
    assert decode("a\\x22b\\x5C") == 'a"b\\'  # nginx's escapes in the request line


def test_a_pattern_without_tokens_runs_its_regex_in_the_prefilter() -> None:
    m = Matcher([Pattern("admin", "custom", "path", r"^/admin(/|$)")])
    fields = {"path": "/ADMIN/users"}
    assert m.match(fields, "") == (0,)
    assert m.match({"path": "/administrator"}, "") == ()


def test_tokens_gate_the_regex_and_both_must_agree() -> None:
    m = Matcher([Pattern("p", "custom", "line", r"bad\d+", ("bad",))])
    assert m.match({}, "a BAD7 line") == (0,)
    assert m.match({}, "a bad line") == ()  # token present, regex not
    assert m.match({}, "a b-a-d7 line") == ()


def test_allow_drops_a_hit_on_its_field() -> None:
    p = pattern_from_setting(
        {
            "name": "quote",
            "field": "url",
            "regex": "'",
            "any": ["'"],
            "allow": {"path": ["^/cms/editor"]},
        },
        "patterns[0]",
    )
    m = Matcher([p])
    assert m.match({"path": "/x", "query": "q=%27"}, "") == (0,)
    assert m.match({"path": "/cms/editor", "query": "q=%27"}, "") == ()


def test_a_field_the_line_lacks_is_no_hit() -> None:
    m = Matcher([Pattern("ua", "custom", "ua", None, ("nikto",))])
    assert m.match({"path": "/"}, "nikto") == ()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"name": "x", "regex": "(?<=a)b"}, r"patterns\[0\]: not an RE2 regex"),
        ({"name": "x", "regex": "(a)\\1"}, r"patterns\[0\]: not an RE2 regex"),
        ({"name": "bad name"}, r"patterns\[0\]\.name: expected a name"),
        ({"name": "x", "any": [""]}, r"patterns\[0\]\.any: expected a list of non-empty"),
        ({"name": "x", "regex": "a", "colour": 1}, r"patterns\[0\]: unknown setting 'colour'"),
        (
            {"name": "x", "any": ["a"], "allow": {"path": ["("]}},
            r"patterns\[0\]\.allow\.path\[0\]: not an RE2",
        ),
    ],
)
def test_bad_patterns_say_where(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message):
        Matcher([pattern_from_setting(raw, "patterns[0]")])


def test_a_pattern_with_neither_regex_nor_tokens_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^patterns\[0\]: needs a regex, or tokens"):
        Matcher([pattern_from_setting({"name": "x"}, "patterns[0]")])


def test_every_pack_pattern_has_an_attack_sample() -> None:
    # guards the corpus above: a pattern no sample reaches is untested
    seen: set[str] = set()
    for targets in ATTACKS.values():
        for t in targets:
            fields = NGINX.parse(line(t))
            assert fields is not None
            seen |= {ALL.patterns[i].name for i in ALL.match(fields, line(t))}
    for ua in ("sqlmap", "${jndi:x}"):
        fields = NGINX.parse(line("/", ua))
        assert fields is not None
        seen |= {ALL.patterns[i].name for i in ALL.match(fields, line("/", ua))}
    assert {p.name for ps in packs.PACKS.values() for p in ps} - seen == set()


FRAGMENTS = [
    "'", '"', "`", " ", "+", "or", "and", "1", "=", "union", "select", "/**/", "(", ")", "<",
    ">", "script", "svg", "onload", "javascript", ":", "alert", "..", "/", "\\", "%2e", "%27",
    "%252e", "%00", ";", "|", "&&", "$(", "${", "jndi", "id", "cat", "sleep", "etc", "passwd",
    "nikto", ".env", "cgi-bin", "-", "#", "x", "A",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
def test_the_prefilter_agrees_with_the_regexes_alone(text: str) -> None:
    # the tokens are a shortcut, never a different answer: a pack regex that matches
    # the decoded text must come back from the matcher (allowing for the cache too)
    import re2  # type: ignore[import-untyped]

    fields = {"path": "/" + text, "query": "", "ua": text}
    got = set(ALL.match(fields, ""))
    options = re2.Options()
    options.case_sensitive = False
    for i, p in enumerate(ALL.patterns):
        subject = decode("/" + text) if p.field == "url" else text
        if p.regex is not None:
            alone = re2.compile(p.regex, options).search(subject) is not None
        else:
            alone = any(t.lower() in subject.lower() for t in p.any)
        assert (i in got) == alone, (p.name, text)


def test_the_cache_stays_bounded() -> None:
    from engine.detect.patterns import CACHE_SIZE, CACHE_TEXT

    m = Matcher([Pattern("p", "custom", "ua", None, ("nikto",))])
    (fs,) = m._sets
    m.match({"ua": "x" * (CACHE_TEXT + 1)}, "")
    assert fs.cache == {}  # long texts are not kept
    for i in range(CACHE_SIZE + 10):
        m.match({"ua": f"agent {i}"}, "")
    assert len(fs.cache) <= CACHE_SIZE
    assert m.match({"ua": "Nikto 2"}, "") == (0,)
