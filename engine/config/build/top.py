"""vigil.yaml: where the rule and channel files are, the data folder, defaults
(interval, no_data, alert caps), collectors, the API listener and tokens, and
the journal's log settings.

Separate because it is the one file of its kind and is built first: what it
says (the collectors, the default interval) is what rule files are built
against.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from engine.common.durations import parse_size
from engine.config import model as m
from engine.config import plugins
from engine.config.build.common import check_plugin_type, duration_at, resolve_settings
from engine.config.load import Document, Path
from engine.errors import Problem


def build_top(
    doc: Document | None, base_dir: str, problems: list[Problem], env: Mapping[str, str] | None
) -> dict[str, Any]:
    data: dict[str, Any] = doc.data if doc is not None else {}

    def rel(p: str) -> str:
        return p if os.path.isabs(p) or base_dir in ("", ".") else os.path.join(base_dir, p)

    out: dict[str, Any] = {
        "rules_paths": tuple(rel(p) for p in data.get("rules", ["rules"])),
        "channels_paths": tuple(rel(p) for p in data.get("channels", ["channels"])),
        "data_dir": rel(data.get("data_dir", "data")),
        "default_interval": 15.0,
        "no_data": data.get("no_data", "ok"),  # the schema checked its value
        "max_alerts_per_rule": data.get("max_alerts_per_rule", 10_000),
        "max_alerts_total": data.get("max_alerts_total", 50_000),
    }
    if doc is not None and "default_interval" in data:
        out["default_interval"] = (
            duration_at(doc, ("default_interval",), data["default_interval"], problems) or 15.0
        )

    collectors: list[m.CollectorConfig] = []
    seen: dict[str, Path] = {}
    for i, c in enumerate(data.get("collectors", [])):
        assert doc is not None
        if c is None:  # an entry with schema problems (partial.config_doc)
            continue
        path: Path = ("collectors", i)
        name = c["name"]
        if name in seen:
            line = doc.mark(seen[name])[0]
            problems.append(
                doc.problem(
                    (*path, "name"),
                    f"duplicate collector name {name!r} (first defined at line {line})",
                )
            )
            continue
        seen[name] = path
        if c.get("enabled") is False:
            continue
        interval = (
            duration_at(doc, (*path, "interval"), c["interval"], problems)
            if "interval" in c
            else None
        )
        before = len(problems)
        timeout = duration_at(doc, (*path, "timeout"), c.get("timeout", "10s"), problems)
        settings = {
            k: resolve_settings(doc, (*path, k), v, problems, env, urls=c["type"] != "command")
            for k, v in c.items()
            if k not in ("name", "type", "interval", "timeout", "enabled")
        }
        check_plugin_type(doc, path, "vigil.collectors", c["type"], name, problems)
        line, col = doc.mark(path)
        cc = m.CollectorConfig(
            name,
            c["type"],
            interval,
            timeout,
            m.frozen_map(settings),
            m.Source(doc.file, line, col),
        )
        if len(problems) == before:  # the plugin's own parse, once what it gets is sound
            plugins.check_collector(doc, path, cc, problems)
        collectors.append(cc)
    if "system" not in seen:  # the host collector is always there unless configured
        collectors.insert(0, m.CollectorConfig("system", "system", None, 10.0))
    out["collectors"] = tuple(collectors)

    api = data.get("api", {})
    host, port = "127.0.0.1", 9595
    if "listen" in api:
        assert doc is not None
        listen = str(api["listen"])
        mhp = re.fullmatch(r"\[?([^\]]*)\]?:(\d{1,5})", listen)
        if not mhp or not 0 <= int(mhp.group(2)) < 65536:
            problems.append(
                doc.problem(
                    ("api", "listen"), f"expected host:port such as 127.0.0.1:9595; got {listen!r}"
                )
            )
        else:
            host, port = mhp.group(1) or "127.0.0.1", int(mhp.group(2))
    tokens = tuple(
        m.ApiToken(t["name"], t["sha256"].lower(), t.get("role", "viewer"))
        for t in api.get("tokens", [])
    )
    out["api"] = m.ApiConfig(host, port, tokens, int(api.get("max_body_bytes", 1024 * 1024)))

    log = data.get("log", {})
    seg = 64 * 1024 * 1024
    if "segment_bytes" in log:
        assert doc is not None
        try:
            seg = parse_size(log["segment_bytes"])
        except ValueError as e:
            problems.append(doc.problem(("log", "segment_bytes"), str(e)))
    fsync_interval = 1.0
    if "fsync_interval" in log and doc is not None:
        fsync_interval = duration_at(
            doc, ("log", "fsync_interval"), log["fsync_interval"], problems
        )
    out["log"] = m.LogConfig(log.get("fsync", "transitions"), fsync_interval, seg)
    return out


def given_collectors(types: Mapping[str, str]) -> tuple[m.CollectorConfig, ...]:
    """Collectors given by name and type, with the defaults a vigil.yaml entry gets."""
    out = [m.CollectorConfig(n, t, None, 10.0) for n, t in sorted(types.items())]
    if "system" not in types:
        out.insert(0, m.CollectorConfig("system", "system", None, 10.0))
    return tuple(out)
