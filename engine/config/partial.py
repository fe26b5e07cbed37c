"""The parts of a schema-invalid file that can still be checked.

One run of `vigil validate` reports every problem of every file: a schema error
in one rule must not hide another rule's expression error, one bad collector
entry must not make the good ones "unknown collector" in every rule, and a bad
`api:` block must not hide the rule files `rules:` names. So a file with schema
problems is not dropped whole: the parts the problems are in are left out (a
list entry becomes None, so the others keep their index and their marks), and
the rest is built as usual, for its problems only: a configuration with any
problem is never used.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.config.load import Document, Path, format_path
from engine.config.schema import TRUNCATED
from engine.errors import Problem


class _Bad:
    """Which paths of one file hold a schema problem, or lie under one. A problem
    of the whole file (a missing top-level key) makes no part bad by itself."""

    def __init__(self, problems: list[Problem]) -> None:
        self.paths = {p.path for p in problems}
        # a key missing from a mapping says nothing against the keys it has
        self.ancestors = {p.path for p in problems if not p.message.startswith("missing required")}

    def __call__(self, path: Path) -> bool:
        p = format_path(path)
        if any(q == p or q.startswith((p + ".", p + "[")) for q in self.paths):
            return True
        return any(q and p.startswith((q + ".", q + "[")) for q in self.ancestors)

    def at(self, path: Path) -> bool:
        """A problem at `path` itself or above it, not only inside it."""
        p = format_path(path)
        return p in self.ancestors or any(
            q and p.startswith((q + ".", q + "[")) for q in self.ancestors
        )


def _truncated(problems: list[Problem]) -> bool:
    """Past schema.MAX_PROBLEMS the other problems are not known, so no part of the
    file can be trusted to be good: nothing more of it is checked."""
    return any(p.message == TRUNCATED for p in problems)


def rules_doc(doc: Document, problems: list[Problem]) -> Document | None:
    """`doc` (a rule file) without its bad parts; None when nothing is left to check."""
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        return None
    if _truncated(problems):
        return None
    bad = _Bad(problems)
    out: dict[str, Any] = {k: v for k, v in data.items() if not bad((k,)) or k == "rules"}
    if not isinstance(out.get("group"), str):
        out["group"] = "?"  # only names the rules' group; this group is never used
    out["rules"] = [_rule(bad, ("rules", i), r) for i, r in enumerate(data["rules"])]
    return replace(doc, data=out)


def _rule(bad: _Bad, path: Path, r: Any) -> dict[str, Any] | None:
    if not isinstance(r, dict):
        return None
    out = {k: v for k, v in r.items() if not bad((*path, k))}
    if not isinstance(out.get("expr"), str) or ("each" in r and "each" not in out):
        return None  # nothing to compile, or `it` would be unknown
    out.setdefault("id", "?")
    return out


def config_doc(doc: Document, problems: list[Problem]) -> tuple[Document | None, frozenset[str]]:
    """`doc` (vigil.yaml) without its bad parts, and the names of the collectors
    left out (rules may use them: that is not a second problem)."""
    data = doc.data
    if not isinstance(data, dict) or _truncated(problems):
        return None, frozenset()
    bad = _Bad(problems)
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k == "collectors" and isinstance(v, list):
            continue
        if not bad((k,)):
            out[k] = v
        elif k in ("rules", "channels"):
            out[k] = []  # which files it meant is not known: check none, report none missing
    names: set[str] = set()
    entries: list[Any] = []
    for i, c in enumerate(data.get("collectors") or []):
        if isinstance(c, dict) and bad(("collectors", i)):
            if isinstance(c.get("name"), str):
                names.add(c["name"])
            entries.append(None)
        else:
            entries.append(c if isinstance(c, dict) else None)
    if isinstance(data.get("collectors"), list):
        out["collectors"] = entries
    return replace(doc, data=out), frozenset(names)


def channels_doc(doc: Document, problems: list[Problem]) -> Document | None:
    """`doc` (a channel file) without its bad parts. A bad channel entry stays as a
    stand-in of the same name (a `log` channel, never used): rules and routes that
    name it are not told it is unknown. A list with a bad entry is left out whole
    (routes go with time_intervals, which they name)."""
    data = doc.data
    if not isinstance(data, dict) or _truncated(problems):
        return None
    bad = _Bad(problems)
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k == "channels" and isinstance(v, list):
            out[k] = [_channel(bad, i, c) for i, c in enumerate(v)]
        elif k == "templates" and isinstance(v, dict) and not bad.at((k,)):
            out[k] = {tk: tv for tk, tv in v.items() if not bad((k, tk))}
        elif not bad((k,)):
            out[k] = v
    if "time_intervals" in data and "time_intervals" not in out:
        out.pop("routes", None)
    return replace(doc, data=out)


def _channel(bad: _Bad, i: int, c: Any) -> dict[str, Any]:
    if not bad(("channels", i)):
        return dict(c)
    name = c.get("name") if isinstance(c, dict) else None
    return {"name": name if isinstance(name, str) else f"?{i}", "type": "log"}
