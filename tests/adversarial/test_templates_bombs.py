"""14.E.16 and 13.21: template memory and CPU bombs, and templates that change
what later templates see.

Each bomb renders in a child process capped by RLIMIT_AS (sandbox_bounded.py):
a regression dies there with MemoryError instead of swapping the host. The
child measures what each render allocated (tracemalloc peak) and the CPU it
used; the bombs of the issue took +300 MB to +858 MB, or 16 s of CPU.
"""

from __future__ import annotations

from typing import Any

from tests.adversarial.sandbox_bounded import run_bounded

PEAK = 8 << 20  # bytes one refused render may allocate
CPU = 0.5  # seconds of CPU one refused render may use (RENDER_SECONDS is 0.1)

BOMBS: list[str] = [
    # the issue's
    "{{ '{:>{}}'.format('x', 300000000) }}",
    "{{ '%*s' % (300000000, 'x') }}",
    "{{ '%*s'|format(300000000, 'x') }}",
    "{{ '%-*s'|format(300000000, 'x') }}",
    "{% set ns = namespace(v='x') %}{% for i in range(40) %}{% set ns.v = ns.v ~ ns.v %}"
    "{% endfor %}{{ ns.v|length }}",
    "{{ lipsum(300000) }}",
    # the same, reached another way
    "{{ '{:>{w}}'.format('x', w=300000000) }}",
    "{{ '{0:{1}}'.format('x', 300000000) }}",
    "{{ '{:{}{}}'.format('x', '>', 300000000) }}",
    "{{ '{:.{}f}'.format(1.5, 300000000) }}",
    "{{ '{a:>{b}}'.format_map({'a': 'x', 'b': 300000000}) }}",
    "{{ '%.*f' % (300000000, 1.5) }}",
    "{{ '%(a)s%(a)s%(a)s%(a)s%(a)s' % {'a': 'x' * 60000} }}",
    "{{ '{a}{a}{a}{a}{a}'.format(a='x' * 60000) }}",
    "{{ lipsum(5, min=100000, max=100000) }}",
    "{% set ns = namespace(v='x' * 1000) %}{% for i in range(9000) %}"
    "{% set ns.v = ns.v ~ 'x' * 1000 %}{% endfor %}",
    "{{ range(10000)|join('x' * 10000) }}",
    "{{ (['x' * 60000] * 60000)|join }}",
    "{{ ['x' * 30000] + ['x' * 30000] + ['x' * 30000] }}",
    "{{ range(10000)|map('center', 60000)|list|length }}",
    "{% for i in range(10000) %}{% set x = 'x' * 60000 %}{% endfor %}",
    "{{ ('x' * 60000).replace('x', 'xx') }}",
    "{{ ('http://example.com ' * 3000)|urlize(target='x' * 60000) }}",
    "{{ ('a' * 16000)|wordwrap(1, wrapstring='x' * 60000) }}",
    "{{ range(10000)|map('string')|map('list')|sum(start=[])|length }}",
    "{{ ('a' * 65000)|wordwrap(1) }}",
    "{{ ('x' * 60000).join('abcdefghij' * 1000) }}",
    "{{ ('x ' * 30000)|groupby(1, 'y' * 60000)|string }}",
    "{{ range(10000)|list|tojson('y' * 60000) }}",
    "{{ range(10000)|list|replace(1, 'y' * 60000) }}",
    "{{ ('x ' * 30000)|sort(1, true, 'y' * 60000) }}",
    "{{ range(9999)|slice(10000, 'y' * 60000)|list }}",
    "{% set ns = namespace(v=range(9999)|slice(10000, 'y' * 60000)|list) %}{{ ns }}",
    "{{ ('a' * 6000).translate({97: 'x' * 60000}) }}",
    "{{ 'x'.encode().center(300000000) }}",
    "{{ ('a' * 60000).encode().replace('a'.encode(), ('x' * 1000).encode()) }}",
    "{% set ns = namespace(v=10**1000) %}{% for i in range(30) %}{% set ns.v = ns.v * ns.v %}"
    "{% endfor %}{{ ns.v }}",
]


def test_bombs_are_refused_before_they_grow() -> None:
    results = run_bounded(
        f"""
        import time
        from engine.templates.renderer import render_annotations

        out = {{}}
        for source in {BOMBS!r}:
            errors = []
            tracemalloc.start()
            t0 = time.thread_time()
            got = render_annotations(
                {{"summary": source, "after": "{{{{ labels.team }}}}"}},
                {{"team": "infra"}}, 1.0, errors=errors)
            cpu = time.thread_time() - t0
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out[source] = [got["summary"], got["after"], errors, peak, cpu]
        print(json.dumps(out))
        """,
        timeout=300,
    )
    failures = []
    for source in BOMBS:
        text, after, errors, peak, cpu = results[source]
        if not text.startswith("<error expanding template: SecurityError"):
            failures.append(f"{source}: rendered {text[:80]!r}")
        elif peak > PEAK or cpu > CPU:
            failures.append(f"{source}: {peak} bytes, {cpu:.2f} s of CPU")
        elif after != "infra" or len(errors) != 1:
            failures.append(f"{source}: {after!r} {errors}")
    assert not failures, failures


def test_a_refused_notification_template_sends_the_fallback() -> None:
    results: dict[str, Any] = run_bounded(
        f"""
        import time
        from engine.config.model import Channel, Config
        from engine.notify.base import AlertView
        from engine.templates.renderer import Renderer

        alert = AlertView(
            fingerprint="f", rule="disk_full", status="firing", severity="critical",
            labels={{"host": "db1"}}, annotations={{}}, value=97.0,
            starts_at=1_795_000_000.0, ends_at=None,
        )
        out = {{}}
        for source in {BOMBS!r}:
            config = Config(channels=(Channel("ops", "webhook", templates={{"body": source}}),))
            r = Renderer(config, {{"ops": "webhook"}})
            tracemalloc.start()
            t0 = time.thread_time()
            got = r.render(channel="ops", route=None, status="firing", alerts=(alert,))
            cpu = time.thread_time() - t0
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            out[source] = [got.title, got.body, got.error, peak, cpu]
        print(json.dumps(out))
        """,
        timeout=300,
    )
    failures = []
    for source in BOMBS:
        title, body, error, peak, cpu = results[source]
        fallback = (
            title == "[FIRING:1] disk_full"
            and body.startswith("FIRING disk_full [critical] host=db1")
            and "the notification template failed; this is the fallback text" in body
        )
        if not fallback or not (error or "").startswith("SecurityError"):
            failures.append(f"{source}: {title!r} {body[:80]!r} {error!r}")
        elif peak > PEAK or cpu > CPU:
            failures.append(f"{source}: {peak} bytes, {cpu:.2f} s of CPU")
    assert not failures, failures


def test_sensible_templates_still_render() -> None:
    results = run_bounded(
        """
        from engine.templates.renderer import render_annotations

        got = render_annotations(
            {
                "a": "{{ '{:>8}|{:.2f}'.format(labels.team, value) }}",
                "b": "{{ '%-6s|%5.1f' % (labels.team, value) }}",
                "c": "{{ '%s=%d'|format('n', 3) }}",
                "d": "{{ lipsum(1, false, 3, 4)|wordcount <= 4 }}",
                "e": "{{ labels.team ~ '-' ~ value }}",
                "f": "{{ range(3)|join(',') }}",
                "g": "{{ '{a}/{b}'.format_map({'a': 1, 'b': 2}) }}",
            },
            {"team": "infra"}, 93.25,
        )
        print(json.dumps(got))
        """
    )
    assert results == {
        "a": "   infra|93.25",
        "b": "infra | 93.2",
        "c": "n=3",
        "d": "True",
        "e": "infra-93.25",
        "f": "0,1,2",
        "g": "1/2",
    }


MUTATIONS: list[str] = [
    "{{ labels.update({'team': 'x'}) }}",
    "{{ labels.pop('team') }}",
    "{{ labels.setdefault('extra', 'x') }}",
    "{{ labels.clear() }}",
    "{% set _ = labels.update(team='x') %}",
    "{{ labels|attr('update') }}",
]


def test_templates_cannot_change_what_later_templates_see() -> None:
    # 13.21: each mutation sits in the first annotation; the second reads labels.
    results = run_bounded(
        f"""
        from engine.templates.renderer import render_annotations

        labels = {{"team": "infra"}}
        out = {{}}
        for source in {MUTATIONS!r}:
            got = render_annotations(
                {{"first": source, "second": "{{{{ labels|dictsort }}}}"}}, labels, 1.0)
            out[source] = [got["first"], got["second"], dict(labels)]
        print(json.dumps(out))
        """
    )
    for source in MUTATIONS:
        first, second, labels = results[source]
        assert second == "[('team', 'infra')]", (source, first, second)
        assert labels == {"team": "infra"}, source
        assert first == "" or first.startswith("<error expanding template: SecurityError"), (
            source,
            first,
        )


def test_notification_templates_cannot_change_the_alerts() -> None:
    results = run_bounded(
        """
        from engine.config.model import Channel, Config
        from engine.notify.base import AlertView
        from engine.templates.renderer import Renderer

        alert = AlertView(
            fingerprint="f", rule="disk_full", status="firing", severity="critical",
            labels={"host": "db1"}, annotations={}, value=97.0,
            starts_at=1_795_000_000.0, ends_at=None,
        )
        config = Config(channels=(Channel("ops", "webhook", templates={
            "title": "{{ alerts.append(alerts[0]) }}{{ alerts[0].labels.update(host='x') }}",
            "body": "{{ alerts|length }} {{ alerts[0].labels.host }} {{ labels.host }}",
        }),))
        r = Renderer(config, {"ops": "webhook"})
        got = r.render(channel="ops", route=None, status="firing", alerts=(alert,))
        print(json.dumps([got.error, dict(alert.labels)]))
        """
    )
    error, labels = results
    assert error is not None and error.startswith("SecurityError"), error
    assert labels == {"host": "db1"}
