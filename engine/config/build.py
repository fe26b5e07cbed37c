"""From YAML files to a typed Config, with every problem of every file.

`ConfigLoader.load()` is the one path used by `vigil validate`, `vigil run` and
hot reload. Work that depends only on one file's content (parse, schema, rule
compilation) is cached by content hash, so re-validating after one file of many
changed costs the changed file plus the cheap cross-file checks.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from engine.common import matchers
from engine.common.address_policy import url_refusal
from engine.common.durations import parse_duration, parse_size
from engine.common.secret import Secret
from engine.config import catalog, partial, plugins
from engine.config import model as m
from engine.config.load import MAX_BYTES, Document, Path, YamlError, load_text, open_regular
from engine.config.schema import validate as schema_validate
from engine.config.secrets import has_ref, resolve
from engine.errors import ExprError, Problem
from engine.expr import types as expr_types
from engine.expr.compiler import compile_expr
from engine.expr.types import Provides
from engine.templates import check as template_check

YAML_SUFFIXES = (".yaml", ".yml")
# ./vigil.yaml, else the shipped example (deploy/vigil.yaml) when run from a checkout
DEFAULT_CONFIGS = ("vigil.yaml", os.path.join("deploy", "vigil.yaml"))


def default_config_path() -> str | None:
    env = os.environ.get("VIGIL_CONFIG")
    if env:
        return env
    return next((p for p in DEFAULT_CONFIGS if os.path.isfile(p)), None)


_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_MONTHS = {
    n: i + 1
    for i, n in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}


@dataclass
class LoadResult:
    config: m.Config | None
    problems: list[Problem]
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.config is not None and not self.problems


@dataclass
class _Parsed:
    """One file after parse + schema: a Document, or the problems that stopped it."""

    doc: Document | None
    problems: list[Problem]


@dataclass
class _Context:
    """What building a file depends on besides its own content."""

    collector_names: frozenset[str]
    default_interval: float
    env: Mapping[str, str] | None
    no_data: m.NoData = "ok"  # vigil.yaml's default for rules without their own
    # what each collector provides, for the checks beyond compiling (expr_types)
    provides: Mapping[str, Provides] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return (
            f"{sorted(self.collector_names)}|{self.default_interval}|{self.no_data}|"
            f"{catalog.key(self.provides)}"
        )


class ConfigLoader:
    """Loads the whole configuration; keeps per-file results for the next load."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, str, str], _Parsed] = {}
        self._groups: dict[tuple[str, str, str], tuple[m.RuleGroup | None, list[Problem]]] = {}
        self._stamps: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._raw: dict[str, bytes] = {}
        self._ids: dict[str, _RuleIds] = {}  # sha256 -> what the cross-file checks need

    # -- files -------------------------------------------------------------
    def _parse(self, path: str, kind: str) -> _Parsed:
        try:
            with open_regular(path) as f:
                st = os.fstat(f.fileno())
                if st.st_size > MAX_BYTES:  # refused before reading, let alone parsing
                    msg = f"file is {st.st_size} bytes; the limit is {MAX_BYTES}"
                    return _Parsed(None, [Problem(path, 1, 1, msg)])
                # the same inode, size and change times: the content hash we read last
                # time still holds, so a reload does not re-read unchanged files
                stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                known = self._stamps.get(path)
                if known is not None and known[0] == stamp:
                    sha = known[1]
                else:
                    raw = f.read(MAX_BYTES + 1)
                    sha = hashlib.sha256(raw).hexdigest()
                    self._stamps[path] = (stamp, sha)
                    self._raw[path] = raw
        except OSError as e:
            return _Parsed(None, [Problem(path, 0, 0, f"cannot read: {e.strerror}")])
        key = (path, sha, kind)
        hit = self._parsed.get(key)
        if hit is not None:
            self._raw.pop(path, None)
            return hit
        pending = self._raw.pop(path, None)
        if pending is not None:
            raw = pending
        else:  # hashed earlier for another kind; read again
            try:
                with open_regular(path) as f:
                    raw = f.read(MAX_BYTES + 1)
            except OSError as e:
                return _Parsed(None, [Problem(path, 0, 0, f"cannot read: {e.strerror}")])
            sha = hashlib.sha256(raw).hexdigest()
            key = (path, sha, kind)
        try:
            doc = load_text(raw, path)
        except YamlError as e:
            out = _Parsed(None, [e.problem])
        else:
            out = _Parsed(doc, schema_validate(doc, kind))
        if len(self._parsed) > 20000:  # keep the cache bounded across many reloads
            self._parsed.clear()
            self._groups.clear()
        self._parsed[key] = out
        return out

    # -- the whole configuration --------------------------------------------
    def load(
        self,
        config_path: str | None = None,
        paths: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        collector_types: Mapping[str, str] | None = None,
    ) -> LoadResult:
        """`collector_types` (name -> type) stand in for vigil.yaml: no config file is
        read and every other setting is its default (`vigil test`: the collectors
        are what the test's series provide)."""
        problems: list[Problem] = []
        files: list[str] = []
        explicit_config = config_path is not None
        if config_path is None and collector_types is None:
            config_path = default_config_path()
        base_dir = os.path.dirname(config_path) if config_path else "."

        rule_files: list[str] = []
        channel_files: list[str] = []
        if paths:
            for f in _expand(paths, problems):
                kind = _classify(f)
                if kind == "config":
                    if config_path is None or not os.path.samefile(f, config_path):
                        config_path, base_dir = f, os.path.dirname(f)
                elif kind == "rules":
                    rule_files.append(f)
                elif kind == "channels":
                    channel_files.append(f)
                else:
                    problems.append(
                        Problem(
                            f,
                            1,
                            1,
                            "cannot tell what this file is: expected a rule file "
                            "(with `group`), a channel file (with `channels`, `routes` ...) "
                            "or vigil.yaml",
                        )
                    )
                    files.append(f)

        cfg_doc: Document | None = None
        left_out: frozenset[str] = frozenset()  # collectors of entries with schema problems
        if config_path is not None:
            files.append(config_path)
            if not os.path.isfile(config_path):
                if explicit_config:
                    problems.append(Problem(config_path, 0, 0, "config file not found"))
            else:
                parsed = self._parse(config_path, "config")
                problems.extend(parsed.problems)
                cfg_doc = parsed.doc
                if parsed.doc is None:
                    return LoadResult(None, sorted(problems), files)
                if parsed.problems:  # check what is sound in it, and the files it names
                    cfg_doc, left_out = partial.config_doc(parsed.doc, parsed.problems)
        top = _build_top(cfg_doc, base_dir, problems, env)
        if collector_types is not None:
            top["collectors"] = _given_collectors(collector_types)

        if not paths:
            rule_files = list(
                _expand(top["rules_paths"], problems, quiet_missing=not explicit_config)
            )
            channel_files = list(
                _expand(top["channels_paths"], problems, quiet_missing=not explicit_config)
            )
        files.extend(rule_files)
        files.extend(channel_files)

        collectors: tuple[m.CollectorConfig, ...] = top["collectors"]
        ctx = _Context(
            frozenset(c.name for c in collectors) | left_out,
            top["default_interval"],
            env,
            top["no_data"],
            # collectors a rule test gives by type only: what they provide is the test's
            {} if collector_types is not None else catalog.catalog(collectors),
        )

        groups: list[m.RuleGroup] = []
        group_docs: list[tuple[m.RuleGroup, Document]] = []
        rule_docs: list[tuple[Document, _RuleIds]] = []
        for f in rule_files:
            parsed = self._parse(f, "rules")
            problems.extend(parsed.problems)
            if parsed.doc is None:
                continue
            if parsed.problems:  # the rest of the file still gets its expressions checked
                part = partial.rules_doc(parsed.doc, parsed.problems)
                if part is not None:
                    _build_group(part, ctx, problems)
                continue
            ids = self._ids.get(parsed.doc.sha256)
            if ids is None:
                ids = self._ids[parsed.doc.sha256] = _RuleIds.of(parsed.doc)
            rule_docs.append((parsed.doc, ids))
            gkey = (f, parsed.doc.sha256, ctx.key)
            cached = self._groups.get(gkey)
            if cached is None:
                gp: list[Problem] = []
                group = _build_group(parsed.doc, ctx, gp)
                cached = (group, gp)
                self._groups[gkey] = cached
            group_or_none, gprobs = cached
            problems.extend(gprobs)
            if group_or_none is not None:
                groups.append(group_or_none)
                group_docs.append((group_or_none, parsed.doc))

        channel_docs: list[Document] = []
        for f in channel_files:
            parsed = self._parse(f, "channels")
            problems.extend(parsed.problems)
            if parsed.doc is not None and not parsed.problems:
                channel_docs.append(parsed.doc)
            elif parsed.doc is not None:  # its sound parts are still checked
                part = partial.channels_doc(parsed.doc, parsed.problems)
                if part is not None:
                    channel_docs.append(part)
        notify = _build_notify(channel_docs, problems, env)

        _check_rule_cross_refs(rule_docs, notify, problems, check_channels=bool(channel_files))

        content_hash = hashlib.sha256()
        file_hashes: dict[str, str] = {}
        for doc in ([cfg_doc] if cfg_doc else []) + [d for _, d in group_docs] + channel_docs:
            file_hashes[doc.file] = doc.sha256
            content_hash.update(doc.file.encode() + b"\0" + doc.sha256.encode())

        if problems:
            return LoadResult(None, sorted(set(problems)), files)
        config = m.Config(
            rules_paths=top["rules_paths"],
            channels_paths=top["channels_paths"],
            data_dir=top["data_dir"],
            default_interval=top["default_interval"],
            no_data=top["no_data"],
            max_alerts_per_rule=top["max_alerts_per_rule"],
            max_alerts_total=top["max_alerts_total"],
            collectors=collectors,
            api=top["api"],
            log=top["log"],
            groups=tuple(groups),
            channels=notify.channels,
            routes=notify.routes,
            inhibits=notify.inhibits,
            silences=notify.silences,
            time_intervals=notify.time_intervals,
            templates=m.frozen_map(notify.templates),
            config_file=config_path,
            config_hash=content_hash.hexdigest()[:16],
            file_hashes=m.frozen_map(file_hashes),
        )
        return LoadResult(config, [], files)


# -- helpers: files --------------------------------------------------------------


def _expand(
    paths: Iterable[str], problems: list[Problem], quiet_missing: bool = False
) -> Iterable[str]:
    for p in paths:
        if os.path.isdir(p):
            found: list[str] = []
            for root, dirs, names in os.walk(p):
                # rule tests live beside rules but are not rules
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "tests")
                found.extend(os.path.join(root, n) for n in names if n.endswith(YAML_SUFFIXES))
            yield from sorted(found)
        elif os.path.exists(p):
            yield p  # not a regular file (a FIFO ...): reading it reports that, never blocks
        elif not quiet_missing:
            problems.append(Problem(p, 0, 0, "no such file or folder"))


_RULE_KEYS = {"group", "rules"}
_CHANNEL_KEYS = {"channels", "routes", "inhibit", "time_intervals", "silences", "templates"}


def _classify(path: str) -> str:
    """Which kind of file this is, by name first and then by its top-level keys."""
    if os.path.basename(path) in ("vigil.yaml", "vigil.yml"):
        return "config"
    try:
        with open_regular(path) as f:
            head = f.read(65536).decode("utf-8", "replace")
    except OSError:
        return "rules"  # the parse step reports the read error
    keys = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:", head, re.MULTILINE))
    if "group" in keys:
        return "rules"
    if keys & _CHANNEL_KEYS and not keys & {"collectors", "data_dir", "api", "log"}:
        return "channels"
    if keys & {"collectors", "data_dir", "api", "log", "default_interval"}:
        return "config"
    return "rules" if "rules" in keys or not keys else "unknown"


# -- vigil.yaml --------------------------------------------------------------------


def _duration(doc: Document, path: Path, value: Any, problems: list[Problem]) -> float:
    try:
        return parse_duration(value)
    except ValueError as e:
        problems.append(doc.problem(path, str(e)))
        return 0.0


def _build_top(
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
            _duration(doc, ("default_interval",), data["default_interval"], problems) or 15.0
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
            _duration(doc, (*path, "interval"), c["interval"], problems)
            if "interval" in c
            else None
        )
        before = len(problems)
        timeout = _duration(doc, (*path, "timeout"), c.get("timeout", "10s"), problems)
        settings = {
            k: _resolve_tree(doc, (*path, k), v, problems, env, urls=c["type"] != "command")
            for k, v in c.items()
            if k not in ("name", "type", "interval", "timeout", "enabled")
        }
        _check_plugin(doc, path, "vigil.collectors", c["type"], name, problems)
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
        fsync_interval = _duration(doc, ("log", "fsync_interval"), log["fsync_interval"], problems)
    out["log"] = m.LogConfig(log.get("fsync", "transitions"), fsync_interval, seg)
    return out


def _given_collectors(types: Mapping[str, str]) -> tuple[m.CollectorConfig, ...]:
    """Collectors given by name and type, with the defaults a vigil.yaml entry gets."""
    out = [m.CollectorConfig(n, t, None, 10.0) for n, t in sorted(types.items())]
    if "system" not in types:
        out.insert(0, m.CollectorConfig("system", "system", None, 10.0))
    return tuple(out)


def _check_plugin(
    doc: Document, path: Path, group: str, type_name: str, name: str, problems: list[Problem]
) -> None:
    from engine.plugins import registry

    if type_name not in registry.names(group):
        kind = "collector" if group.endswith("collectors") else "channel"
        problems.append(
            doc.problem(
                (*path, "type"),
                f"unknown {kind} type {type_name!r} for {name!r}; installed: {', '.join(registry.names(group))}",
            )
        )


# settings holding a file or folder; relative ones are relative to the YAML file
# that names them, like every other path in the configuration
_PATH_KEYS = frozenset({"path", "ca_file", "cwd"})


def _resolve_tree(
    doc: Document,
    path: Path,
    value: Any,
    problems: list[Problem],
    env: Mapping[str, str] | None,
    *,
    urls: bool = True,
) -> Any:
    """Resolve ${env:..}/${file:..} inside a settings tree; strings with one become Secrets.
    With `urls` (settings vigil itself connects with, not a command's arguments), an
    http(s) URL to a metadata / link-local address is a problem."""
    if isinstance(value, str):
        if not has_ref(value):
            if path and path[-1] in _PATH_KEYS and not os.path.isabs(value):
                return os.path.normpath(os.path.join(os.path.dirname(doc.file) or ".", value))
            refusal = url_refusal(value) if urls else None
            if refusal is not None:
                problems.append(doc.problem(path, refusal))
            return value
        try:
            return resolve(value, dict(env) if env is not None else None)
        except ValueError as e:
            problems.append(doc.problem(path, str(e)))
            return Secret("")
    if isinstance(value, dict):
        return m.frozen_map(
            {
                k: _resolve_tree(doc, (*path, k), v, problems, env, urls=urls)
                for k, v in value.items()
            }
        )
    if isinstance(value, list):
        return tuple(
            _resolve_tree(doc, (*path, i), v, problems, env, urls=urls) for i, v in enumerate(value)
        )
    return value


# -- rule files ---------------------------------------------------------------------


def _compile(
    doc: Document,
    path: Path,
    source: str,
    names: Iterable[str],
    problems: list[Problem],
    provides: Mapping[str, Provides] | None = None,
    *,
    condition: bool = True,
) -> Any:
    """The compiled expression, or None with its problems added; with `provides`,
    also what can be told before it runs (expr_types: metric names, kinds)."""
    try:
        compiled = compile_expr(source, names=frozenset(names))
    except ExprError as e:
        problems.append(_expr_problem(doc, path, source, e))
        return None
    found = expr_types.check(source, provides, condition=condition) if provides else []
    problems.extend(_expr_problem(doc, path, source, e) for e in found)
    return None if found else compiled


def _expr_problem(doc: Document, path: Path, source: str, e: ExprError) -> Problem:
    line, col = doc.mark(path)
    # a plain scalar's text starts at the mark; point into it when we can
    text = doc.data
    for p in path:
        text = text[p]
    if e.col is not None and isinstance(text, str) and "\n" not in source:
        raw_line = _line_text(doc, line)
        at = raw_line.find(source, col - 1) if raw_line else -1
        if at >= 0:
            col = at + 1 + e.col
    return Problem(doc.file, line, col, f"expression: {e.message}", _fmt(path))


def _line_text(doc: Document, line: int) -> str | None:
    lines = _file_lines(doc.file, doc.sha256)
    return lines[line - 1] if lines is not None and 0 < line <= len(lines) else None


@functools.lru_cache(maxsize=4)
def _file_lines(file: str, sha256: str) -> tuple[str, ...] | None:
    """The lines of a file, read once per version (`sha256`): a file with
    thousands of bad expressions re-read itself per error, quadratic time."""
    try:
        with open_regular(file) as raw, io.TextIOWrapper(raw, encoding="utf-8") as f:
            return tuple(f)
    except (OSError, UnicodeDecodeError):
        return None


def _fmt(path: Path) -> str:
    from engine.config.load import format_path

    return format_path(path)


def _value_source(source: str) -> str | None:
    """The operand an alert reports as its value: the non-constant side of the
    first comparison (`system.cpu_percent` in `system.cpu_percent > 90`)."""
    import ast

    try:
        node: ast.AST = ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return None
    while True:
        if isinstance(node, ast.BoolOp):
            node = node.values[0]
        elif isinstance(node, ast.UnaryOp):
            node = node.operand
        else:
            break
    if not isinstance(node, ast.Compare):
        return None
    side = node.left
    if isinstance(side, ast.Constant) and not isinstance(node.comparators[0], ast.Constant):
        side = node.comparators[0]
    return ast.get_source_segment(source.strip(), side)


def _build_group(doc: Document, ctx: _Context, problems: list[Problem]) -> m.RuleGroup | None:
    data = doc.data
    interval = ctx.default_interval
    if "interval" in data:
        interval = _duration(doc, ("interval",), data["interval"], problems)
        if interval <= 0:
            problems.append(doc.problem(("interval",), "interval must be greater than 0"))
    start = len(problems)
    rules: list[m.Rule] = []
    for i, r in enumerate(data["rules"]):
        if r is None:  # a rule with schema problems (partial.rules_doc)
            continue
        rule = _build_rule(doc, ("rules", i), r, data["group"], ctx, problems)
        if rule is not None:
            rules.append(rule)
    if len(problems) > start:
        return None
    line, col = doc.mark(("group",))
    return m.RuleGroup(
        data["group"], interval, tuple(rules), m.Source(doc.file, line, col), doc.sha256
    )


def _build_rule(
    doc: Document, path: Path, r: dict[str, Any], group: str, ctx: _Context, problems: list[Problem]
) -> m.Rule | None:
    start = len(problems)
    names = set(ctx.collector_names)
    each = None
    if "each" in r:
        each = _compile(
            doc, (*path, "each"), r["each"], names, problems, ctx.provides, condition=False
        )
        names.add("it")
    compiled = _compile(doc, (*path, "expr"), r["expr"], names, problems, ctx.provides)
    compiled_value = None
    value_src = _value_source(r["expr"]) if compiled is not None else None
    if value_src is not None:
        try:
            compiled_value = compile_expr(value_src, names=frozenset(names))
        except ExprError:
            compiled_value = None  # the whole expression compiled; its value is a nicety
    compiled_resolve = None
    if "resolve_expr" in r:
        compiled_resolve = _compile(
            doc, (*path, "resolve_expr"), r["resolve_expr"], names, problems, ctx.provides
        )
    for_ = _duration(doc, (*path, "for"), r["for"], problems) if "for" in r else 0.0
    keep = (
        _duration(doc, (*path, "keep_firing_for"), r["keep_firing_for"], problems)
        if "keep_firing_for" in r
        else 0.0
    )
    flapping = m.Flapping()
    if "flapping" in r:
        f = r["flapping"]
        flapping = m.Flapping(
            f.get("max_changes", flapping.max_changes),
            _duration(doc, (*path, "flapping", "window"), f["window"], problems)
            if "window" in f
            else flapping.window,
        )
    for key in ("labels", "annotations"):
        for k, v in r.get(key, {}).items():
            bad = template_check.check(v)
            if bad is not None:
                problems.append(doc.problem((*path, key, k), bad[0]))
    if len(problems) > start:
        return None
    line, col = doc.mark(path)
    return m.Rule(
        id=r["id"],
        group=group,
        expr=r["expr"],
        compiled=compiled,
        severity=r.get("severity", "warning"),
        for_=for_,
        consecutive=r.get("consecutive", 0),
        keep_firing_for=keep,
        resolve_expr=r.get("resolve_expr"),
        compiled_resolve=compiled_resolve,
        each=r.get("each"),
        compiled_each=each,
        compiled_value=compiled_value,
        labels=m.frozen_map({str(k): str(v) for k, v in r.get("labels", {}).items()}),
        annotations=m.frozen_map(r.get("annotations", {})),
        no_data=r.get("no_data", ctx.no_data),
        on_error=r.get("on_error", "error"),
        channels=tuple(r["channels"]) if "channels" in r else None,
        enabled=r.get("enabled", True),
        flapping=flapping,
        source=m.Source(doc.file, line, col),
        max_alerts=r.get("max_alerts"),
    )


# -- channel files ------------------------------------------------------------------


@dataclass
class _Notify:
    channels: tuple[m.Channel, ...] = ()
    routes: tuple[m.Route, ...] = ()
    inhibits: tuple[m.Inhibit, ...] = ()
    silences: tuple[m.Silence, ...] = ()
    time_intervals: tuple[m.TimeInterval, ...] = ()
    templates: dict[str, str] = field(default_factory=dict)
    channel_names: dict[str, tuple[Document, Path]] = field(default_factory=dict)


def _matchers(
    doc: Document,
    path: Path,
    eq: Mapping[str, Any],
    rx: Mapping[str, str],
    problems: list[Problem],
    rx_key: str = "match_re",
    strings: Sequence[str] = (),
    strings_key: str = "matchers",
) -> tuple[m.Matcher, ...]:
    """Matchers from an equality map (value or list of values), a regex map and
    Alertmanager-style strings (`team!=ops`), in that order; engine.common.matchers has
    the one semantics they share."""
    out: list[m.Matcher] = []
    for k, v in eq.items():
        values = v if isinstance(v, list) else [v]
        out.append(m.Matcher(k, frozenset(str(x) for x in values)))
    for k, v in rx.items():
        try:
            out.append(m.Matcher(k, regex=matchers.compile_regex(v)))
        except matchers.MatcherError as e:
            problems.append(doc.problem((*path[:-1], rx_key, k), str(e)))
    for j, text in enumerate(strings):
        try:
            out.append(matchers.parse(text))
        except matchers.MatcherError as e:
            problems.append(doc.problem((*path[:-1], strings_key, j), str(e)))
    return tuple(out)


_ROOT = m.Route(matchers=(), channels=())  # the defaults a top-level route inherits
MAX_ROUTE_DEPTH = 16  # nested `routes:` levels; deeper is a mistake, not a routing tree


def _build_routes(
    doc: Document,
    path: Path,
    items: Sequence[Mapping[str, Any]],
    parent: m.Route | None,
    out: list[tuple[m.Route, Document, Path]],
    problems: list[Problem],
    templates: Mapping[str, str],
) -> tuple[int, ...]:
    """Append the routes `items` (at `path`) and their descendants to `out` in
    pre-order (so a config without nesting keeps its indices); each child
    inherits what it does not set from `parent`. Returns their indices."""
    depth = 0 if parent is None else parent.depth + 1
    if depth > MAX_ROUTE_DEPTH:
        problems.append(doc.problem(path, f"routes nested deeper than {MAX_ROUTE_DEPTH} levels"))
        return ()
    indices: list[int] = []
    for i, r in enumerate(items):
        rpath: Path = (*path, i)
        for tk, tv in r.get("templates", {}).items():
            bad = template_check.check(tv, templates)
            if bad is not None:
                problems.append(doc.problem((*rpath, "templates", tk), bad[0]))
        base = parent or _ROOT
        escal = (
            tuple(
                m.Escalation(
                    _duration(doc, (*rpath, "escalate", j, "after"), e["after"], problems),
                    tuple(e["channels"]),
                )
                for j, e in enumerate(r["escalate"])
            )
            if "escalate" in r
            else base.escalate
        )

        def dur(key: str, r: Mapping[str, Any] = r, rpath: Path = rpath) -> float:
            # set here, or the parent's (whose own defaults are the top level's)
            if key in r:
                return _duration(doc, (*rpath, key), r[key], problems)
            return float(getattr(parent or _ROOT, key))

        line, col = doc.mark(rpath)
        node = m.Route(
            matchers=_matchers(
                doc,
                (*rpath, "match"),
                r.get("match", {}),
                r.get("match_re", {}),
                problems,
                strings=r.get("matchers", ()),
            ),
            channels=tuple(r["channels"]) if "channels" in r else base.channels,
            continue_=r.get("continue", False),
            group_by=tuple(r["group_by"]) if "group_by" in r else (base.group_by),
            group_wait=dur("group_wait"),
            group_interval=dur("group_interval"),
            repeat_interval=dur("repeat_interval"),
            active_time=tuple(r["active_time"]) if "active_time" in r else base.active_time,
            mute_time=tuple(r["mute_time"]) if "mute_time" in r else base.mute_time,
            escalate=escal,
            templates=m.frozen_map({**base.templates, **r.get("templates", {})}),
            depth=depth,
            source=m.Source(doc.file, line, col),
        )
        index = len(out)
        indices.append(index)
        out.append((node, doc, rpath))
        kids = r.get("routes", ())
        if kids:
            children = _build_routes(doc, (*rpath, "routes"), kids, node, out, problems, templates)
            out[index] = (dataclasses.replace(node, children=children), doc, rpath)
    return tuple(indices)


def _build_notify(
    docs: list[Document], problems: list[Problem], env: Mapping[str, str] | None
) -> _Notify:
    n = _Notify()
    channels: list[m.Channel] = []
    routes: list[tuple[m.Route, Document, Path]] = []
    intervals: dict[str, tuple[m.TimeInterval, Document, Path]] = {}
    inhibits: list[m.Inhibit] = []
    silences: list[m.Silence] = []
    template_defs: dict[str, tuple[Document, Path]] = {}

    for doc in docs:
        for k, v in doc.data.get("templates", {}).items():
            if k in template_defs:
                first = template_defs[k]
                problems.append(
                    doc.problem(
                        ("templates", k),
                        f"duplicate template {k!r} (first defined at {first[0].file}:{first[0].mark(first[1])[0]})",
                        key=True,
                    )
                )
                continue
            template_defs[k] = (doc, ("templates", k))
            n.templates[k] = v
    for k, (tdoc, tpath) in template_defs.items():
        bad = template_check.check(n.templates[k], n.templates)
        if bad is not None:
            problems.append(tdoc.problem(tpath, bad[0]))

    for doc in docs:
        for i, c in enumerate(doc.data.get("channels", [])):
            path: Path = ("channels", i)
            name = c["name"]
            if name in n.channel_names:
                fdoc, fpath = n.channel_names[name]
                problems.append(
                    doc.problem(
                        (*path, "name"),
                        f"duplicate channel name {name!r} (first defined at {fdoc.file}:{fdoc.mark(fpath)[0]})",
                    )
                )
                continue
            n.channel_names[name] = (doc, path)
            _check_plugin(doc, path, "vigil.channels", c["type"], name, problems)
            rl = None
            if "rate_limit" in c:
                rl = m.RateLimit(
                    c["rate_limit"]["max"],
                    _duration(doc, (*path, "rate_limit", "per"), c["rate_limit"]["per"], problems),
                )
            tpl = c.get("templates", {})
            for tk, tv in tpl.items():
                bad = template_check.check(tv, n.templates)
                if bad is not None:
                    problems.append(doc.problem((*path, "templates", tk), bad[0]))
            before = len(problems)
            settings = {
                k: _resolve_tree(doc, (*path, k), v, problems, env, urls=c["type"] != "exec")
                for k, v in c.items()
                if k not in ("name", "type", "rate_limit", "templates")
            }
            line, col = doc.mark(path)
            channel = m.Channel(
                name,
                c["type"],
                m.frozen_map(settings),
                rl,
                m.frozen_map(tpl),
                m.Source(doc.file, line, col),
            )
            if len(problems) == before:  # the plugin's own parse (secrets resolved)
                plugins.check_channel(doc, path, channel, problems)
            channels.append(channel)

        for i, t in enumerate(doc.data.get("time_intervals", [])):
            path = ("time_intervals", i)
            ti = _build_interval(doc, path, t, problems)
            if ti.name in intervals:
                fdoc, fpath = intervals[ti.name][1], intervals[ti.name][2]
                problems.append(
                    doc.problem(
                        (*path, "name"),
                        f"duplicate time interval {ti.name!r} (first defined at {fdoc.file}:{fdoc.mark(fpath)[0]})",
                    )
                )
                continue
            intervals[ti.name] = (ti, doc, path)

        _build_routes(
            doc, ("routes",), doc.data.get("routes", []), None, routes, problems, n.templates
        )

        for i, ih in enumerate(doc.data.get("inhibit", [])):
            path = ("inhibit", i)
            line, col = doc.mark(path)
            inhibits.append(
                m.Inhibit(
                    _matchers(
                        doc,
                        (*path, "source"),
                        ih.get("source", {}),
                        ih.get("source_re", {}),
                        problems,
                        "source_re",
                        ih.get("source_matchers", ()),
                        "source_matchers",
                    ),
                    _matchers(
                        doc,
                        (*path, "target"),
                        ih.get("target", {}),
                        ih.get("target_re", {}),
                        problems,
                        "target_re",
                        ih.get("target_matchers", ()),
                        "target_matchers",
                    ),
                    tuple(ih.get("equal", [])),
                    m.Source(doc.file, line, col),
                )
            )

        for i, s in enumerate(doc.data.get("silences", [])):
            path = ("silences", i)
            until = _timestamp(doc, (*path, "until"), s["until"], problems)
            starts = (
                _timestamp(doc, (*path, "starts"), s["starts"], problems) if "starts" in s else None
            )
            line, col = doc.mark(path)
            silence_matchers = _matchers(
                doc,
                (*path, "match"),
                s.get("match", {}),
                s.get("match_re", {}),
                problems,
                strings=s.get("matchers", ()),
            )
            sid = (
                "cfg-"
                + hashlib.sha256(
                    f"{doc.file}:{sorted(s.get('match', {}).items())}:{s['until']}"
                    # matchers only when given, so existing silences keep their ids
                    f"{':' + repr(s['matchers']) if s.get('matchers') else ''}".encode()
                ).hexdigest()[:12]
            )
            silences.append(
                m.Silence(
                    sid,
                    silence_matchers,
                    until,
                    s["reason"],
                    starts,
                    s.get("created_by", "config"),
                    m.Source(doc.file, line, col),
                )
            )

    names = n.channel_names
    for route, doc, path in routes:
        for j, c in enumerate(route.channels):
            if c not in names:
                problems.append(doc.problem((*path, "channels", j), _unknown("channel", c, names)))
        for j, e in enumerate(route.escalate):
            for k, c in enumerate(e.channels):
                if c not in names:
                    problems.append(
                        doc.problem(
                            (*path, "escalate", j, "channels", k), _unknown("channel", c, names)
                        )
                    )
        for key, refs in (("active_time", route.active_time), ("mute_time", route.mute_time)):
            for j, t in enumerate(refs):
                if t not in intervals:
                    problems.append(
                        doc.problem((*path, key, j), _unknown("time interval", t, intervals))
                    )

    n.channels = tuple(channels)
    n.routes = tuple(r for r, _, _ in routes)
    n.inhibits = tuple(inhibits)
    n.silences = tuple(silences)
    n.time_intervals = tuple(t for t, _, _ in intervals.values())
    return n


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    import difflib

    known_l = sorted(known)
    hint = difflib.get_close_matches(name, known_l, n=1)
    tail = (
        f"; did you mean {hint[0]!r}?"
        if hint
        else (f"; defined: {', '.join(known_l)}" if known_l else "; none are defined")
    )
    return f"unknown {kind} {name!r}{tail}"


def _timestamp(doc: Document, path: Path, value: Any, problems: list[Problem]) -> float:
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if dt.tzinfo is None:
            raise ValueError
        return dt.timestamp()
    except ValueError:
        problems.append(
            doc.problem(
                path,
                f"expected an RFC 3339 time with zone such as 2026-12-01T00:00:00Z; got {value!r}",
            )
        )
        return 0.0


def _ranges(
    doc: Document,
    path: Path,
    items: list[Any],
    names: Mapping[str, int],
    lo: int,
    hi: int,
    problems: list[Problem],
) -> frozenset[int]:
    out: set[int] = set()
    for j, item in enumerate(items):
        text = str(item).strip().lower()
        parts = re.split(r"\s*(?:-|\.\.|:)\s*", text) if not text.lstrip("-").isdigit() else [text]

        def one(p: str) -> int | None:
            if p in names:
                return names[p]
            if p.isdigit() and lo <= int(p) <= hi:
                return int(p)
            return None

        ends = [one(p) for p in parts]
        if not 1 <= len(ends) <= 2 or any(e is None for e in ends):
            problems.append(doc.problem((*path, j), f"invalid range {item!r}"))
            continue
        a, b = cast(int, ends[0]), cast(int, ends[-1])
        if b < a:
            problems.append(doc.problem((*path, j), f"range {item!r} ends before it starts"))
            continue
        out.update(range(a, b + 1))
    return frozenset(out)


def _build_interval(
    doc: Document, path: Path, t: dict[str, Any], problems: list[Problem]
) -> m.TimeInterval:
    import zoneinfo  # only time intervals need it

    tz = t.get("timezone", "UTC")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(
            doc.problem(
                (*path, "timezone"),
                f"unknown time zone {tz!r}; expected an IANA name such as Europe/Berlin",
            )
        )
    times: list[m.TimeRange] = []
    for j, tr in enumerate(t.get("times", [])):
        mt = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", str(tr))
        if not mt:
            problems.append(doc.problem((*path, "times", j), f"expected HH:MM-HH:MM; got {tr!r}"))
            continue
        h1, m1, h2, m2 = (int(x) for x in mt.groups())
        a, b = h1 * 60 + m1, h2 * 60 + m2
        if h1 > 23 or m1 > 59 or m2 > 59 or b > 1440 or b <= a:
            problems.append(
                doc.problem(
                    (*path, "times", j),
                    f"invalid time range {tr!r}: the end must be after the start, within 00:00-24:00",
                )
            )
            continue
        times.append(m.TimeRange(a, b))
    weekdays = _ranges(doc, (*path, "weekdays"), t.get("weekdays", []), _WEEKDAYS, 99, -1, problems)
    dom = _ranges(doc, (*path, "days_of_month"), t.get("days_of_month", []), {}, 1, 31, problems)
    months = _ranges(doc, (*path, "months"), t.get("months", []), _MONTHS, 1, 12, problems)
    line, col = doc.mark(path)
    return m.TimeInterval(
        t["name"], weekdays, tuple(times), dom, months, tz, m.Source(doc.file, line, col)
    )


# -- across files -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RuleIds:
    """What the cross-file checks need of one rule file, computed once per content."""

    group: str
    group_at: tuple[int, int]
    ids: tuple[tuple[str, int, int, int], ...]  # id, rule index, line, col
    channel_refs: tuple[tuple[int, int, str], ...]  # rule index, item index, name

    @classmethod
    def of(cls, doc: Document) -> _RuleIds:
        ids: list[tuple[str, int, int, int]] = []
        refs: list[tuple[int, int, str]] = []
        for i, rule in enumerate(doc.data["rules"]):
            line, col = doc.mark(("rules", i, "id"))
            ids.append((rule["id"], i, line, col))
            refs.extend((i, j, c) for j, c in enumerate(rule.get("channels", ())))
        return cls(doc.data["group"], doc.mark(("group",)), tuple(ids), tuple(refs))


def _check_rule_cross_refs(
    rule_docs: list[tuple[Document, _RuleIds]],
    notify: _Notify,
    problems: list[Problem],
    *,
    check_channels: bool,
) -> None:
    """Duplicate groups and rule ids across files (both places named) and rules'
    channel references; read from every schema-valid file, so a file with an
    expression error still takes part."""
    seen_groups: dict[str, tuple[Document, tuple[int, int]]] = {}
    seen_rules: dict[str, tuple[str, int, int]] = {}
    for doc, s in rule_docs:
        if s.group in seen_groups:
            first, at = seen_groups[s.group]
            problems.append(
                doc.problem(
                    ("group",),
                    f"duplicate group name {s.group!r} (first defined at {first.file}:{at[0]})",
                )
            )
        else:
            seen_groups[s.group] = (doc, s.group_at)
        for rid, i, line, col in s.ids:
            first_rule = seen_rules.setdefault(rid, (doc.file, line, col))
            if first_rule != (doc.file, line, col):
                ffile, fl, fc = first_rule
                problems.append(
                    Problem(
                        doc.file,
                        line,
                        col,
                        f"duplicate rule id {rid!r} (first defined at {ffile}:{fl}:{fc})",
                        f"rules[{i}].id",
                    )
                )
        if check_channels:
            for i, j, c in s.channel_refs:
                if c not in notify.channel_names:
                    problems.append(
                        doc.problem(
                            ("rules", i, "channels", j),
                            _unknown("channel", c, notify.channel_names),
                        )
                    )
