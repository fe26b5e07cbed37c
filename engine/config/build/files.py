"""Which files make up the configuration: the default vigil.yaml, folders
expanded to their YAML files, and each file told apart as vigil.yaml, a rule
file or a channel file.

Separate because it is about paths on disk, not about what the files say;
the CLI asks it for the default config path without loading anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from engine.config.load import open_regular
from engine.errors import Problem

YAML_SUFFIXES = (".yaml", ".yml")
# ./vigil.yaml, else the shipped example (deploy/vigil.yaml) when run from a checkout
DEFAULT_CONFIGS = ("vigil.yaml", os.path.join("deploy", "vigil.yaml"))


def default_config_path() -> str | None:
    env = os.environ.get("VIGIL_CONFIG")
    if env:
        return env
    return next((p for p in DEFAULT_CONFIGS if os.path.isfile(p)), None)


def expand_paths(
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


_CHANNEL_KEYS = {"channels", "routes", "inhibit", "time_intervals", "silences", "templates"}


def classify_file(path: str) -> str:
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
