"""Jinja2 templates for annotations and notification text, rendered in the
sandbox of engine/templates/sandbox.py under the budget of budget.py.

One sandboxed environment per template set: named templates (`templates:` in
channel files) are reachable from others through `{% include "name" %}`. A
notification whose template fails (or is cut off by the sandbox's caps)
renders `fallback_text` instead, which is plain Python and cannot fail.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import marshal
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any

import jinja2
import jinja2.meta
from jinja2.exceptions import SecurityError as SecurityError
from jinja2.sandbox import (
    SandboxedEnvironment,
)

from engine.common import disk_cache
from engine.templates import sandbox as template_sandbox
from engine.templates.budget import (
    MAX_OUTPUT,
    MAX_RANGE,
    RENDER_ERRORS,
    RENDER_SECONDS,
    one_budget,
    render,
)
from engine.templates.sandbox import CappedEnvironment, make_env
from engine.templates.syntax import is_template, simple_ok

if TYPE_CHECKING:
    from engine.config.model import Config, Route
    from engine.notify.base import AlertView

__all__ = [
    "MAX_OUTPUT",
    "MAX_RANGE",
    "RENDER_ERRORS",
    "RENDER_SECONDS",
    "CappedEnvironment",
    "Rendered",
    "Renderer",
    "check",
    "fallback_text",
    "is_template",
    "make_env",
    "render",
    "render_annotations",
]

_CHECK_ENV = make_env()


def check(text: str, known: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """A syntax or reference problem in `text` as (message, 1-based line), or None."""
    if not is_template(text):
        return None
    # the shape nearly every annotation has needs no full parse (syntax.simple_ok)
    if simple_ok(text, _CHECK_ENV.filters):
        return None
    try:
        _CHECK_ENV.compile(text)  # compiling also catches unknown filters and tests
        ast = _CHECK_ENV.parse(text)
    except jinja2.TemplateSyntaxError as e:
        return f"template syntax error: {e.message}", e.lineno or 1
    for ref in jinja2.meta.find_referenced_templates(ast):
        if ref is not None and (known is None or ref not in known):
            return f"unknown template {ref!r}", 1
    return None


# -- rendering -------------------------------------------------------------------------


def error_text(e: BaseException) -> str:
    """A short, single-line description of a template failure."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}"[:300] if msg else type(e).__name__


class _Compiled:
    """Compiled templates of one environment, by source text."""

    def __init__(self, env: SandboxedEnvironment, size: int = 4096) -> None:
        self.env = env
        self.size = size
        self.cache: dict[str, jinja2.Template] = {}

    def get(self, source: str) -> jinja2.Template:
        t = self.cache.get(source)
        if t is None:
            if len(self.cache) >= self.size:
                self.cache.clear()  # rule sets are bounded; a full reset is simplest
            env = self.env
            code = _compile(env, source)
            # globals as a plain dict, not Jinja's ChainMap over env.globals: each
            # render copies them into its context, and copying a ChainMap took
            # half of rendering a one-line annotation (env.globals is complete by now)
            t = self.cache[source] = env.template_class.from_code(
                env, code, dict(env.make_globals(None)), None
            )
        return t


# Compiling a template costs ~0.7 ms (Jinja's parse and code generation, then
# Python's compile), in every process: `vigil test` on a few hundred rules spends
# more on it than on simulating them. The code is kept in the disk cache, keyed
# by the source and by what shapes the code: Jinja's version, Python's bytecode
# magic, this module and sandbox.py (the rewriting of the parsed
# template and the options live there). Every
# environment make_env() builds compiles a source to the same code: named
# templates are looked up when rendering.
# Jinja's own FileSystemBytecodeCache was measured in its place (issue 15):
# a hit costs twice as much (its entry is a pickle header and a marshal stream
# read from the file object), so the disk cache stays.


@functools.cache
def _code_base() -> str | None:
    try:
        # the sandbox's rewriting of the parsed template lives in sandbox.py
        own = Path(__file__).read_bytes() + Path(template_sandbox.__file__).read_bytes()
    except OSError:
        return None
    h = hashlib.sha256(b"jinja template\0" + jinja2.__version__.encode() + b"\0")
    h.update(importlib.util.MAGIC_NUMBER)
    h.update(own)
    return h.hexdigest()[:16]


def _compile(env: SandboxedEnvironment, source: str) -> CodeType:
    """`env.compile(source)`, through the disk cache; raises TemplateSyntaxError."""
    base = _code_base() if disk_cache.directory() is not None else None
    if base is None:
        code: CodeType = env.compile(source)
        return code
    key = hashlib.sha256(f"{base}\0{source}".encode("utf-8", "surrogatepass")).hexdigest()
    entry = f"jinja-{base}/{key[:32]}"
    payload = disk_cache.read(entry, key)
    if payload is not None:
        try:
            cached = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            cached = None
        if isinstance(cached, CodeType):
            return cached
    code = env.compile(source)
    disk_cache.write(entry, key, marshal.dumps(code))
    _prune_once(f"jinja-{base}")
    return code


@functools.cache
def _prune_once(keep: str) -> None:
    disk_cache.prune("jinja-*", keep=keep)  # what other versions of this module compiled


_ANNOTATIONS = _Compiled(make_env())


@functools.lru_cache(maxsize=8)
def _compiled_for(named: tuple[tuple[str, str], ...]) -> _Compiled:
    """The environment and compiled templates of one set of named templates,
    shared by every Renderer of the process: a Pipeline per config (reload, each
    `vigil test` case) then compiles the default templates once, not each time."""
    return _Compiled(make_env(dict(named)))


def render_annotations(
    annotations: Mapping[str, str],
    labels: Mapping[str, str],
    value: Any,
    *,
    rule: str = "",
    severity: str = "",
    errors: list[str] | None = None,
    it: Any = None,
) -> dict[str, str]:
    """Rendered annotations of one alert. Context: `labels`, `value`, `rule`,
    `severity`, and `it`, the element of an `each` rule (when known). A failing annotation renders as `<error expanding template: ...>`
    (as Prometheus does) and its error is appended to `errors`."""
    out: dict[str, str] = {}
    ctx: dict[str, Any] | None = None
    for k, text in annotations.items():
        if not is_template(text):
            out[k] = text
            continue
        if ctx is None:
            ctx = {"labels": dict(labels), "value": value, "rule": rule, "severity": severity}
            if it is not None:
                ctx["it"] = it
        try:
            out[k] = render(_ANNOTATIONS.get(text), ctx)
        except RENDER_ERRORS as e:
            msg = error_text(e)
            out[k] = f"<error expanding template: {msg}>"
            if errors is not None:
                errors.append(f"annotation {k}: {msg}")
    return out


# -- notification text -------------------------------------------------------------------

# Defaults are Jinja too (rendered by the same sandbox), so they double as examples.
# They list at most LIST_MAX alerts (`list_max` in the context) and say how many
# more there are, so a group of thousands stays well inside MAX_OUTPUT.
LIST_MAX = 30
_MORE = "{% if alerts|length > list_max %}... and {{ alerts|length - list_max }} more\n{% endif %}"
_LABEL_LIST = (
    "{% for k, v in a.labels|dictsort %}{{ k }}={{ v }}{% if not loop.last %}, {% endif %}"
    "{% endfor %}"
)
DEFAULT_TITLE = (
    "{% if kind == 'escalation' %}[ESCALATION {{ escalation_level }}] {% endif %}"
    "[{{ status|upper }}{% if status == 'firing' %}:{{ firing|length }}{% endif %}] "
    "{{ rules[:5]|join(', ') }}{% if rules|length > 5 %}, ...{% endif %}"
    "{% if common_labels %} ({% for k, v in common_labels|dictsort %}{{ k }}={{ v }}"
    "{% if not loop.last %} {% endif %}{% endfor %}){% endif %}"
)
DEFAULT_BODY = (
    "{% for a in alerts[:list_max] %}"
    "{{ a.status|upper }} {{ a.rule }} [{{ a.severity }}]"
    "{% if a.annotations.summary %}: {{ a.annotations.summary }}{% endif %}\n"
    "  value: {{ a.value }}\n"
    "  labels: " + _LABEL_LIST + "\n"
    "  since: {{ a.starts_at }}{% if a.ends_at %} until {{ a.ends_at }}{% endif %}\n"
    "{% if a.annotations.description %}  {{ a.annotations.description }}\n{% endif %}"
    "{% if a.annotations.runbook %}  runbook: {{ a.annotations.runbook }}\n{% endif %}"
    "{% if a.acknowledged %}  acknowledged by {{ a.acknowledged.by }}"
    "{% if a.acknowledged.note %}: {{ a.acknowledged.note }}{% endif %}\n{% endif %}"
    "{% endfor %}" + _MORE
)
SLACK_BODY = (
    "{% for a in alerts[:list_max] %}"
    "*{{ a.status|upper }}* `{{ a.rule }}` [{{ a.severity }}]"
    "{% if a.annotations.summary %}: {{ a.annotations.summary }}{% endif %}\n"
    "> value: {{ a.value }} | " + _LABEL_LIST + " | since {{ a.starts_at }}"
    "{% if a.ends_at %} until {{ a.ends_at }}{% endif %}\n"
    "{% if a.annotations.runbook %}> <{{ a.annotations.runbook }}|runbook>\n{% endif %}"
    "{% endfor %}" + _MORE
)
MARKDOWN_BODY = (
    "{% for a in alerts[:list_max] %}"
    "**{{ a.status|upper }}** `{{ a.rule }}` [{{ a.severity }}]"
    "{% if a.annotations.summary %}: {{ a.annotations.summary }}{% endif %}\n"
    "- value: {{ a.value }}\n- labels: " + _LABEL_LIST + "\n"
    "- since: {{ a.starts_at }}{% if a.ends_at %} until {{ a.ends_at }}{% endif %}\n"
    "{% if a.annotations.runbook %}- [runbook]({{ a.annotations.runbook }})\n{% endif %}"
    "{% endfor %}" + _MORE
)
SHORT_BODY = (  # SMS and push: one line per alert
    "{% for a in alerts[:list_max] %}{{ a.status|upper }} {{ a.rule }}"
    "{% if a.annotations.summary %}: {{ a.annotations.summary }}{% endif %}\n{% endfor %}" + _MORE
)
DEFAULT_HTML = (
    "<h3>{{ title|e }}</h3><table border='1' cellpadding='4' cellspacing='0'>"
    "<tr><th>status</th><th>rule</th><th>severity</th><th>summary</th><th>value</th>"
    "<th>labels</th><th>since</th></tr>"
    "{% for a in alerts[:list_max] %}<tr><td>{{ a.status|upper }}</td><td>{{ a.rule|e }}</td>"
    "<td>{{ a.severity|e }}</td><td>{{ a.annotations.summary|e }}"
    "{% if a.annotations.runbook %} (<a href='{{ a.annotations.runbook|e }}'>runbook</a>)"
    "{% endif %}</td><td>{{ a.value|e }}</td><td>"
    "{% for k, v in a.labels|dictsort %}{{ k|e }}={{ v|e }}<br>{% endfor %}</td>"
    "<td>{{ a.starts_at }}{% if a.ends_at %} – {{ a.ends_at }}{% endif %}</td></tr>"
    "{% endfor %}</table>"
    "{% if alerts|length > list_max %}<p>... and {{ alerts|length - list_max }} more</p>{% endif %}"
)
_TYPE_BODY = {
    "slack": SLACK_BODY,
    "mattermost": MARKDOWN_BODY,
    "discord": MARKDOWN_BODY,
    "teams": MARKDOWN_BODY,
    "twilio": SHORT_BODY,
    "pushover": SHORT_BODY,
}
_TYPE_HTML = {"email": DEFAULT_HTML}


def defaults(channel_type: str) -> dict[str, str]:
    """The built-in templates of a channel type: title, body and (email) html."""
    out = {"title": DEFAULT_TITLE, "body": _TYPE_BODY.get(channel_type, DEFAULT_BODY)}
    if channel_type in _TYPE_HTML:
        out["html"] = _TYPE_HTML[channel_type]
    return out


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    body: str
    html: str | None
    error: str | None = None  # set when the templates failed and the fallback was used


def notification_context(
    *,
    channel: str,
    channel_type: str,
    status: str,
    alerts: Sequence[AlertView],
    group_key: str = "",
    group_labels: Mapping[str, str] | None = None,
    kind: str = "alerts",
    escalation_level: int = 0,
) -> dict[str, Any]:
    """What notification templates see. Besides the group (`alerts`, `firing`,
    `resolved`, `common_labels`, ...) the first alert's fields are at the top
    level (`rule`, `severity`, `labels`, `annotations`, `value`), so templates
    written for one alert read naturally."""
    dicts = [a.as_dict() for a in alerts]
    first = dicts[0] if dicts else {}
    common: dict[str, str] = dict(alerts[0].labels) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a.labels.get(k) == v}
    common_ann: dict[str, str] = dict(alerts[0].annotations) if alerts else {}
    for a in alerts[1:]:
        common_ann = {k: v for k, v in common_ann.items() if a.annotations.get(k) == v}
    return {
        "channel": channel,
        "channel_type": channel_type,
        "status": status,
        "kind": kind,
        "escalation_level": escalation_level,
        "group_key": group_key,
        "group_labels": dict(group_labels or {}),
        "common_labels": common,
        "common_annotations": common_ann,
        "alerts": dicts,
        "firing": [d for d in dicts if d["status"] == "firing"],
        "resolved": [d for d in dicts if d["status"] == "resolved"],
        "rules": sorted({a.rule for a in alerts}),
        "rule": first.get("rule", ""),
        "severity": first.get("severity", ""),
        "labels": first.get("labels", {}),
        "annotations": first.get("annotations", {}),
        "value": first.get("value"),
        "starts_at": first.get("starts_at"),
        "fingerprint": first.get("fingerprint", ""),
        "list_max": LIST_MAX,
    }


def fallback_text(status: str, alerts: Iterable[AlertView], error: str | None) -> tuple[str, str]:
    """Title and body that need no template: rule, severity, labels and status."""
    views = list(alerts)
    rules = sorted({a.rule for a in views})
    firing = sum(1 for a in views if a.status == "firing")
    head = f"[{status.upper()}{':' + str(firing) if status == 'firing' else ''}]"
    title = f"{head} {', '.join(rules[:10])}"[:300]
    lines = []
    for a in views[:LIST_MAX]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items()))
        lines.append(f"{a.status.upper()} {a.rule} [{a.severity}] {labels}"[:1000])
    if len(views) > LIST_MAX:
        lines.append(f"... and {len(views) - LIST_MAX} more")
    if error:
        lines.append("(the notification template failed; this is the fallback text)")
    return title, "\n".join(lines) + "\n"


class Renderer:
    """Notification title/body/html for one Config.

    Which template applies, most specific first: the route's `templates`, the
    channel's `templates`, the config's named `<type>_title` / `<type>_body` /
    `<type>_html`, the built-in default of the channel type. Named templates are
    includable from all of them.
    """

    def __init__(self, config: Config, channel_types: Mapping[str, str]) -> None:
        self.config = config
        self.channel_types = dict(channel_types)
        self._compiled = _compiled_for(tuple(sorted(config.templates.items())))

    def warm(self) -> None:
        """Compile every channel's templates now (a few ms each), at start or
        reload, rather than on the event loop in the middle of the first burst."""
        pairs: list[tuple[str, Route | None]] = [(c, None) for c in self.channel_types]
        for r in self.config.routes:  # escalation levels render with their route's templates
            pairs += [(c, r) for c in (*r.channels, *(c for e in r.escalate for c in e.channels))]
        for channel, route in pairs:
            for source in self.sources(channel, route).values():
                with contextlib.suppress(*RENDER_ERRORS):
                    self._compiled.get(source)

    def sources(self, channel: str, route: Route | None) -> dict[str, str]:
        """field -> template source for a channel on a route."""
        ctype = self.channel_types.get(channel, "")
        out = defaults(ctype)
        for fld in ("title", "body", "html"):
            named = self.config.templates.get(f"{ctype}_{fld}")
            if named is not None:
                out[fld] = named
        ch = self.config.channel(channel)
        for layer in (ch.templates if ch else {}, route.templates if route else {}):
            for fld in ("title", "body", "html"):
                if fld in layer:
                    out[fld] = layer[fld]
        return out

    def render(
        self,
        *,
        channel: str,
        route: Route | None,
        status: str,
        alerts: Sequence[AlertView],
        group_key: str = "",
        group_labels: Mapping[str, str] | None = None,
        kind: str = "alerts",
        escalation_level: int = 0,
    ) -> Rendered:
        ctx = notification_context(
            channel=channel,
            channel_type=self.channel_types.get(channel, ""),
            status=status,
            alerts=alerts,
            group_key=group_key,
            group_labels=group_labels,
            kind=kind,
            escalation_level=escalation_level,
        )
        try:
            # compiled before the budget starts: compiling is not the template's work
            compiled = {k: self._compiled.get(v) for k, v in self.sources(channel, route).items()}
            out: dict[str, str] = {}
            with one_budget():
                for fld in ("title", "body", "html"):  # title first: html may show it
                    if fld in compiled:
                        out[fld] = render(compiled[fld], ctx).strip("\n")
                        ctx[fld] = out[fld]
            return Rendered(out.get("title", ""), out.get("body", ""), out.get("html"))
        except RENDER_ERRORS as e:
            err = error_text(e)
            title, body = fallback_text(status, alerts, err)
            return Rendered(title, body, None, err)
