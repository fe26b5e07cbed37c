"""What each configured collector is known to provide, for engine/expr/types.py.

The names come from the collector type's own `metric_names` hook (built-in and
third-party alike); the kinds of the built-in types' values are listed here,
where the validator needs them, rather than in each collector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.config import model as m
from engine.expr.types import ANY, Provides, kind_of
from engine.plugins import registry

_NUMBER = "number"
_SYSTEM_KINDS: Mapping[str, str] = {
    "cpu_percent_per_core": "list",
    "disks": "list",
    "net": "list",
    "processes": "list",
    "disk_io": ANY,
}  # every other system metric is a number
_HTTP_KINDS: Mapping[str, str] = {
    "up": "bool",
    "ok": "bool",
    "body_match": ANY,  # None without body_regex
    "status": _NUMBER,  # or None when there was no answer: still never a string
    "latency_ms": _NUMBER,
    "tls_days_left": _NUMBER,
    "json_value": ANY,
    "error": ANY,
    "targets": "list",
    "up_count": _NUMBER,
    "down_count": _NUMBER,
    "ok_count": _NUMBER,
}


KINDS = ("number", "string", "bool", "list", "map", "any")


def check_declared(value: object) -> None:
    """A `metrics:` setting (file, command): a list of names, or names with their
    kinds; ValueError otherwise."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str) or v not in KINDS:
                raise ValueError(f"metrics.{k}: expected one of {', '.join(KINDS)}; got {v!r}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            if not isinstance(v, str) or not v:
                raise ValueError(f"metrics[{i}]: expected a metric name")
    else:
        raise ValueError("metrics: expected a list of names, or names with their kinds")


def catalog(collectors: Sequence[m.CollectorConfig]) -> dict[str, Provides]:
    out: dict[str, Provides] = {}
    for cc in collectors:
        try:
            names = metric_names(cc)
        except Exception:  # noqa: BLE001 - a plugin's hook: its settings were parsed already
            names = None
        kinds: dict[str, str] = {}
        if names is not None:
            if cc.type == "system":
                kinds = {n: _SYSTEM_KINDS.get(n, _NUMBER) for n in names}
            elif cc.type == "http":
                kinds = {n: _HTTP_KINDS.get(n, ANY) for n in names}
            elif isinstance(cc.settings.get("metrics"), Mapping):  # declared with kinds
                kinds = {str(k): str(v) for k, v in cc.settings["metrics"].items()}
            elif cc.type == "static":
                values = cc.settings.get("values", {})
                if isinstance(values, Mapping):
                    kinds = {str(k): kind_of(v) for k, v in values.items()}
        out[cc.name] = Provides(cc.type, names, kinds)
    return out


def key(cat: Mapping[str, Provides]) -> str:
    """A short text that changes when anything the checks depend on changes."""
    return repr(
        sorted(
            (n, p.type, sorted(p.names) if p.names is not None else None, sorted(p.kinds.items()))
            for n, p in cat.items()
        )
    )


def metric_names(config: m.CollectorConfig) -> frozenset[str] | None:
    """The metric names `config` will provide, or None when they are not known
    until it collects (unknown types and types without the hook included)."""
    try:
        cls = registry.load(registry.COLLECTORS, config.type)
    except KeyError:  # an unknown type: the loader reports it elsewhere
        return None
    hook = getattr(cls, "metric_names", None)
    if hook is None:
        return None
    names = hook(config)
    return frozenset(names) if names is not None else None
