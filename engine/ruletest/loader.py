"""Loads a rule test file: YAML, schema, the parser, and the rule and channel
files through `ConfigLoader` (the one config path), shared between files.

Separate because it owns the config cache and the environment placeholders
for secrets, which nothing else in the package needs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from engine.config.build import ConfigLoader, LoadResult
from engine.config.load import YamlError, load_file
from engine.config.schema import validate as schema_validate
from engine.config.secrets import PLACEHOLDER, REF
from engine.errors import Problem
from engine.ruletest.clock import MAX_TEST_STEPS, offset
from engine.ruletest.model import TestFile
from engine.ruletest.parser import Parser


class Loader:
    """Loads test files; shares one ConfigLoader and the configs it built."""

    def __init__(self) -> None:
        self.configs = ConfigLoader()
        self._built: dict[tuple[Any, ...], LoadResult] = {}

    def load(self, path: str) -> tuple[TestFile | None, list[Problem]]:
        try:
            doc = load_file(path)
        except YamlError as e:
            return None, [e.problem]
        problems = schema_validate(doc, "ruletest")
        if problems:
            return None, problems
        p = Parser(doc)
        cases = p.cases()
        rule_files = p.files("rule_files")
        channel_files = p.files("channel_files") if "channel_files" in doc.data else []
        if p.problems:
            return None, p.problems
        collectors = sorted(p.collector_names)
        result = self._config(rule_files, channel_files, collectors)
        if result.config is None:
            line, col = doc.mark(("rule_files",))
            provided = (
                f"the collectors this test provides are: {', '.join(collectors)}"
                if collectors
                else "this test provides no collectors"
            )
            note = Problem(
                path,
                line,
                col,
                f"the rule and channel files do not load (problems above); {provided} "
                "(series name them; `collectors:` adds more)",
                "rule_files",
            )
            return None, [*result.problems, note]
        config = result.config
        p.check_refs(config, bool(channel_files))
        interval = p.interval(config)
        for i, case in enumerate(cases):
            if interval > 0 and case.end / interval > MAX_TEST_STEPS:
                p.problem(
                    ("tests", i),
                    f"this test would take {case.end / interval:.0f} steps of "
                    f"{offset(interval)}; the limit is {MAX_TEST_STEPS}",
                )
        if p.problems:
            return None, p.problems
        types = {c.name: c.type for c in config.channels}
        return TestFile(path, interval, config, cases, types), []

    def _config(
        self, rule_files: list[str], channel_files: list[str], collectors: list[str]
    ) -> LoadResult:
        key = (tuple(rule_files), tuple(channel_files), tuple(collectors))
        hit = self._built.get(key)
        if hit is not None:
            return hit
        # The collectors a test provides: `push` collectors hold whatever they are
        # given, which is what the series do.
        types = {n: "system" if n == "system" else "push" for n in collectors}
        result = self.configs.load(
            None, [*rule_files, *channel_files], env=_env(channel_files), collector_types=types
        )
        self._built[key] = result
        return result


def _env(channel_files: Sequence[str]) -> dict[str, str]:
    """The environment, plus a placeholder for every `${env:NAME}` the channel files
    name and the environment lacks: nothing is sent, so secrets need not be there."""
    env = dict(os.environ)
    for f in channel_files:
        try:
            with open(f, encoding="utf-8", errors="replace") as fh:
                text = fh.read()
        except OSError:
            continue
        for m in REF.finditer(text):
            if m.group(1) == "env":
                env.setdefault(m.group(2).strip(), PLACEHOLDER)
    return env
