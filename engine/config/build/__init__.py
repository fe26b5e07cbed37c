"""From YAML files to a typed Config, with every problem of every file.

`ConfigLoader.load()` is the one path used by `vigil validate`, `vigil run` and
hot reload. Work that depends only on one file's content (parse, schema, rule
compilation) is cached by content hash, so re-validating after one file of many
changed costs the changed file plus the cheap cross-file checks.

This module is the orchestration and the per-file caches; each kind of file is
built in its own module: `files` (which files, and what kind each is), `top`
(vigil.yaml), `rules` (rule files and the checks across them), `notify`
(channel files), with `common` holding what they share.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from engine.config import catalog, partial
from engine.config import model as m
from engine.config.build.files import classify_file, default_config_path, expand_paths
from engine.config.build.notify import build_notify
from engine.config.build.reports import build_reports
from engine.config.build.rules import RuleContext, RuleIds, build_group, check_rule_cross_refs
from engine.config.build.top import build_top, given_collectors
from engine.config.load import MAX_BYTES, Document, YamlError, load_text, open_regular
from engine.config.schema import validate as schema_validate
from engine.errors import Problem


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


class ConfigLoader:
    """Loads the whole configuration; keeps per-file results for the next load."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[str, str, str], _Parsed] = {}
        self._groups: dict[tuple[str, str, str], tuple[m.RuleGroup | None, list[Problem]]] = {}
        self._stamps: dict[str, tuple[tuple[int, int, int, int], str]] = {}
        self._raw: dict[str, bytes] = {}
        self._ids: dict[str, RuleIds] = {}  # sha256 -> what the cross-file checks need

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
            for f in expand_paths(paths, problems):
                kind = classify_file(f)
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
        top = build_top(cfg_doc, base_dir, problems, env)
        if collector_types is not None:
            top["collectors"] = given_collectors(collector_types)

        if not paths:
            rule_files = list(
                expand_paths(top["rules_paths"], problems, quiet_missing=not explicit_config)
            )
            channel_files = list(
                expand_paths(top["channels_paths"], problems, quiet_missing=not explicit_config)
            )
        files.extend(rule_files)
        files.extend(channel_files)

        collectors: tuple[m.CollectorConfig, ...] = top["collectors"]
        ctx = RuleContext(
            frozenset(c.name for c in collectors) | left_out,
            top["default_interval"],
            env,
            top["no_data"],
            # collectors a rule test gives by type only: what they provide is the test's
            {} if collector_types is not None else catalog.catalog(collectors),
        )

        groups: list[m.RuleGroup] = []
        group_docs: list[tuple[m.RuleGroup, Document]] = []
        rule_docs: list[tuple[Document, RuleIds]] = []
        for f in rule_files:
            parsed = self._parse(f, "rules")
            problems.extend(parsed.problems)
            if parsed.doc is None:
                continue
            if parsed.problems:  # the rest of the file still gets its expressions checked
                part = partial.rules_doc(parsed.doc, parsed.problems)
                if part is not None:
                    build_group(part, ctx, problems)
                continue
            ids = self._ids.get(parsed.doc.sha256)
            if ids is None:
                ids = self._ids[parsed.doc.sha256] = RuleIds.of(parsed.doc)
            rule_docs.append((parsed.doc, ids))
            gkey = (f, parsed.doc.sha256, ctx.key)
            cached = self._groups.get(gkey)
            if cached is None:
                gp: list[Problem] = []
                group = build_group(parsed.doc, ctx, gp)
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
        notify = build_notify(channel_docs, problems, env)
        reports = build_reports(
            cfg_doc, notify.channel_names, {t.name for t in notify.time_intervals}, problems
        )

        check_rule_cross_refs(
            rule_docs, notify.channel_names, problems, check_channels=bool(channel_files)
        )

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
            reports=reports,
            templates=m.frozen_map(notify.templates),
            config_file=config_path,
            config_hash=content_hash.hexdigest()[:16],
            file_hashes=m.frozen_map(file_hashes),
        )
        return LoadResult(config, [], files)
