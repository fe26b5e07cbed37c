"""Sandboxed templates: defaults, overrides, caps and the safe fallback."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager

import jinja2
import pytest
from jinja2.exceptions import SecurityError

from engine.config.model import Channel, Config, Route
from engine.notify.base import AlertView
from engine.templates import budget as template_budget
from engine.templates import renderer as T

T0 = 1_795_000_000.0


def view(fp: str, status: str = "firing", **labels: str) -> AlertView:
    return AlertView(
        fingerprint=fp,
        rule="host_cpu_high",
        status=status,  # type: ignore[arg-type]
        severity="warning",
        labels={"team": "infra", **labels},
        annotations={
            "summary": f"CPU high on {labels.get('host', '?')}",
            "runbook": "https://wiki/cpu",
        },
        value=93.2,
        starts_at=T0,
        ends_at=T0 + 60 if status == "resolved" else None,
    )


@contextmanager
def fast(limit: float = 0.2) -> Iterator[None]:
    """The block used less than `limit` seconds of CPU (wall time would make the
    test depend on how busy the machine is). Without automatic garbage collection
    meanwhile: late in a full run the test process holds hundreds of MB, and a
    collection falling inside the block walks pytest's heap, not the render's
    work (a deep recursion bomb took 0.41 s of CPU that way in one CI run)."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.thread_time()
        yield
        took = time.thread_time() - t0
    finally:
        gc.enable()
    assert took < limit


def render(src: str, **ctx: object) -> str:
    return T.render(T.make_env().from_string(src), ctx)


# -- the sandbox -------------------------------------------------------------------------


def test_attribute_escape_is_refused_not_rendered_empty() -> None:
    with fast(), pytest.raises(SecurityError):
        render("{{ ''.__class__.__mro__ }}")
    with pytest.raises(SecurityError):
        render("{{ labels.__init__.__globals__ }}", labels={})


def test_string_repetition_is_capped() -> None:
    with fast(), pytest.raises(SecurityError):
        render("{{ 'a' * 10**8 }}")
    assert render("{{ 'ab' * 3 }}") == "ababab"


def test_range_is_capped() -> None:
    with fast(), pytest.raises(SecurityError):
        render("{% for i in range(10**9) %}x{% endfor %}")
    assert render("{% for i in range(3) %}{{ i }}{% endfor %}") == "012"


@pytest.mark.parametrize(
    "src",
    [
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{% set s = 'x' * 60000 %}{% filter upper %}{% for i in range(9000) %}{{ s }}{% endfor %}{% endfilter %}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{{ 'a'.center(10**9) }}",
        "{{ 'abc' | indent(10**9) }}",
        "{{ ('x' * 60000) | replace('x', 'yy') }}",
        "{{ [1] | slice(10**8) | list }}",
        "{{ 7 ** 100000 }}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    ],
)
def test_work_and_size_caps(src: str) -> None:
    with fast(0.3), pytest.raises(T.RENDER_ERRORS):
        render(src)


def test_output_is_capped() -> None:
    with fast(), pytest.raises(SecurityError):
        render("{% for i in range(5000) %}{{ 'x' * 60 }}{% endfor %}")


def test_normal_templates_still_work() -> None:
    out = render(
        "{{ value | round(1) }} {{ labels.host | upper }} {{ 1234567 | humanize }} "
        "{{ 90 | humanize_duration }} {{ 0.25 | humanize_percentage }} {{ '%.1f' % value }} "
        "{% for k, v in labels | dictsort %}{{ k }}={{ v }}{% if not loop.last %},{% endif %}{% endfor %}",
        value=93.234,
        labels={"host": "web1", "dc": "x"},
    )
    assert out == "93.2 WEB1 1.235M 1m30s 25% 93.2 dc=x,host=web1"


def test_check_still_validates() -> None:
    assert T.check("plain") is None
    assert T.check("{{ value | round(1) }}") is None
    assert T.check("{{ x | humanize }}") is None
    assert T.check("{{ x | nope }}") is not None
    assert T.check("{% include 'x' %}", {}) == ("unknown template 'x'", 1)
    assert T.check("{% include 'x' %}", {"x": "y"}) is None
    bad = T.check("{% if %}")
    assert bad is not None and bad[0].startswith("template syntax error")


@pytest.mark.parametrize(
    "text",
    ["{{ value }}", "a {{ labels.host }} b", "{{ x | nope }}", "{{ not }}", "{{ x }", "{% if %}"],
)
def test_the_loaders_check_without_jinja_agrees_with_the_full_check(text: str) -> None:
    """engine/templates/check.py answers the simple shapes through syntax.py."""
    from engine.templates import check as template_check

    assert template_check.check(text) == T.check(text)
    assert (T.check(text) is None) == (text in ("{{ value }}", "a {{ labels.host }} b"))


# -- annotations ---------------------------------------------------------------------------


def test_render_annotations() -> None:
    errors: list[str] = []
    out = T.render_annotations(
        {
            "summary": "CPU at {{ value | round(1) }}% on {{ labels.host }}",
            "rule": "{{ rule }}/{{ severity }}",
            "plain": "no template",
            "bad": "{{ ''.__class__ }}",
        },
        {"host": "web1"},
        93.25,
        rule="host_cpu_high",
        severity="warning",
        errors=errors,
    )
    assert out["summary"] == "CPU at 93.2% on web1"
    assert out["rule"] == "host_cpu_high/warning"
    assert out["plain"] == "no template"
    assert out["bad"].startswith("<error expanding template: SecurityError")
    assert len(errors) == 1 and errors[0].startswith("annotation bad:")


# -- notification text ---------------------------------------------------------------------


def renderer(**kw: object) -> T.Renderer:
    config = Config(**kw)  # type: ignore[arg-type]
    types = {c.name: c.type for c in config.channels}
    return T.Renderer(config, types)


def test_default_title_and_body() -> None:
    r = renderer(channels=(Channel("ops", "webhook"),))
    alerts = (view("a", host="web1"), view("b", host="web2"), view("c", "resolved", host="web3"))
    out = r.render(channel="ops", route=None, status="firing", alerts=alerts)
    assert out.error is None
    assert out.title == "[FIRING:2] host_cpu_high (team=infra)"
    assert "FIRING host_cpu_high [warning]: CPU high on web1" in out.body
    assert "value: 93.2" in out.body and "host=web1, team=infra" in out.body
    assert "runbook: https://wiki/cpu" in out.body
    assert "since: 2026-11-18" in out.body
    assert "RESOLVED host_cpu_high" in out.body and "until 2026-11-18" in out.body
    assert out.html is None
    resolved = r.render(channel="ops", route=None, status="resolved", alerts=alerts[2:])
    assert resolved.title == "[RESOLVED] host_cpu_high (host=web3 team=infra)"


def test_type_defaults() -> None:
    r = renderer(
        channels=(Channel("mail", "email"), Channel("s", "slack"), Channel("sms", "twilio"))
    )
    alerts = (view("a", host="web1"),)
    mail = r.render(channel="mail", route=None, status="firing", alerts=alerts)
    assert mail.html is not None and "<table" in mail.html and mail.title in mail.html
    assert r.render(channel="s", route=None, status="firing", alerts=alerts).body.startswith(
        "*FIRING*"
    )
    assert r.render(channel="sms", route=None, status="firing", alerts=alerts).body == (
        "FIRING host_cpu_high: CPU high on web1"
    )


def test_override_order() -> None:
    base = {
        "templates": {"slack_title": "type {{ rule }}", "short": "named {{ severity }}"},
        "channels": (
            Channel("plain", "slack"),
            Channel("own", "slack", templates={"title": "channel {% include 'short' %}"}),
        ),
    }
    r = renderer(**base)
    alerts = (view("a"),)
    assert r.render(channel="plain", route=None, status="firing", alerts=alerts).title == (
        "type host_cpu_high"
    )
    assert r.render(channel="own", route=None, status="firing", alerts=alerts).title == (
        "channel named warning"
    )
    route = Route((), ("own",), templates={"title": "route {{ alerts | length }}"})
    assert r.render(channel="own", route=route, status="firing", alerts=alerts).title == "route 1"


def test_failing_template_falls_back() -> None:
    r = renderer(
        channels=(Channel("ops", "webhook", templates={"title": "{{ ''.__class__.__mro__ }}"}),)
    )
    with fast():
        out = r.render(channel="ops", route=None, status="firing", alerts=(view("a", host="h"),))
    assert out.error is not None and "SecurityError" in out.error
    assert out.title == "[FIRING:1] host_cpu_high"
    assert "FIRING host_cpu_high [warning] host=h, team=infra" in out.body


def test_slow_template_falls_back_fast() -> None:
    r = renderer(
        channels=(
            Channel(
                "ops",
                "webhook",
                templates={"body": "{% for i in range(10**9) %}x{% endfor %}"},
            ),
        )
    )
    with fast():
        out = r.render(channel="ops", route=None, status="firing", alerts=(view("a"),))
    assert out.error is not None


def test_undefined_names_render_empty() -> None:
    assert render("[{{ nothing.here }}]") == "[]"
    with pytest.raises(jinja2.TemplateSyntaxError):
        render("{% for %}")


def test_large_groups_stay_within_the_caps() -> None:
    r = renderer(channels=(Channel("ops", "webhook"), Channel("mail", "email")))
    alerts = tuple(view(f"a{i}", host=f"web{i}") for i in range(2000))
    with fast(0.5):
        out = r.render(channel="ops", route=None, status="firing", alerts=alerts)
        mail = r.render(channel="mail", route=None, status="firing", alerts=alerts)
    assert out.error is None and mail.error is None
    assert out.title.startswith("[FIRING:2000] host_cpu_high")
    assert out.body.endswith("... and 1970 more") and out.body.count("FIRING") == T.LIST_MAX
    assert mail.html is not None and "and 1970 more" in mail.html
    _, body = T.fallback_text("firing", alerts, "boom")
    assert body.count("\n") < T.LIST_MAX + 5


def test_warm_compiles_what_each_route_and_escalation_will_render() -> None:
    from engine.config.model import Escalation

    route_title = "{{ alerts|length }} for the pager {{ channel }}"
    esc_title = "escalated {{ escalation_level }}: {{ channel }}"
    r = renderer(
        channels=(
            Channel("ops", "slack"),
            Channel("boss", "email", templates={"title": esc_title}),
        ),
        routes=(
            Route(
                (),
                ("ops",),
                templates={"title": route_title},
                escalate=(Escalation(60, ("boss",)),),
            ),
        ),
    )
    compiled = r._compiled.cache
    assert route_title not in compiled and esc_title not in compiled
    r.warm()
    assert route_title in compiled and esc_title in compiled
    assert T.defaults("slack")["body"] in compiled  # the channel's own default, off any route


def test_garbage_collection_during_a_render_does_not_count_against_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full collection can take 100 ms on a big heap and may start during any
    render: that is not the template's work (seen as a flaky refusal under load)."""
    import gc

    heap = [[i, [i]] for i in range(300_000)]  # enough that a full collection takes a while

    class Collects:
        def __str__(self) -> str:
            gc.collect()
            return "ok"

    t0 = time.thread_time()
    gc.collect()
    took = time.thread_time() - t0
    # the budget is made in the budget module
    monkeypatch.setattr(template_budget, "RENDER_SECONDS", took / 4)  # well under one collection
    env = T.make_env()
    text = "{{ x }}" + "{{ 1 + 1 }}" * 40  # steps enough for the deadline to be read
    assert T.render(env.from_string(text), {"x": Collects()}).startswith("ok2")
    del heap
