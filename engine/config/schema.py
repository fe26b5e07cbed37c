"""JSON Schema validation with every error mapped back to file:line:column.

Valid files take the fast path (fastjsonschema compiles a schema into Python,
kept on disk by schema_cache); only a file that fails it is walked by jsonschema
to collect every error with its path, which we then word for a person and place
with the YAML marks. jsonschema is imported only then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema

from engine.common.durations import DURATION_RE
from engine.config import schema_cache
from engine.config.load import Document, format_path
from engine.config.secrets import redact_deep
from engine.errors import Problem

SCHEMA_NAMES = ("config", "rules", "channels", "ruletest", "report")
# engine/config/schemas is package data (in the checkout, a link to the top-level
# schemas/, the copy editors and third-party tools point at): an installed wheel has
# no checkout to look in. The checkout's own folder is the fallback for a tree where
# the link was not kept (a copy without symlinks).
_SCHEMA_DIR_CANDIDATES = (
    Path(__file__).parent / "schemas",
    Path(__file__).resolve().parent.parent.parent / "schemas",
)

# what a pattern means, in words, where the schema gives no examples
_PATH_WORDS = {
    "weekdays": "a weekday or range such as mon, mon-fri",
    "times": "a time range such as 09:00-18:00",
    "days_of_month": "a day of the month or range such as 1, 1-7",
    "months": "a month or range such as jan, jan-mar, 1-3",
    "timezone": "an IANA time zone name such as Europe/Berlin",
    "channels": "a channel name (letters, digits, _ . -)",
    "active_time": "a time interval name",
    "mute_time": "a time interval name",
    "equal": "a label name (letters, digits, _)",
    "group_by": "a label name or ...",
    "id": "an id of lowercase letters, digits and _ . - such as host_cpu_high",
    "group": "a group name of letters, digits and _ . -",
}


@cache
def _duration_pattern() -> str:
    pattern: str = schema("rules")["definitions"]["duration"]["pattern"]
    return pattern


def schema_dir() -> Path:
    for d in _SCHEMA_DIR_CANDIDATES:
        if (d / "rules.schema.json").is_file():
            return d
    raise FileNotFoundError("engine/config/schemas/ is missing from this installation")


@cache
def _raw(name: str) -> bytes:
    if name not in SCHEMA_NAMES:
        raise KeyError(name)
    return (schema_dir() / f"{name}.schema.json").read_bytes()


@cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_raw(name))
    return loaded


# The fast path only checks: defaults stay out of the data (as with jsonschema),
# and formats are not asserted (draft-07 treats them as annotations; a bad date is
# caught by the model builder with a better message).
_FAST_OPTIONS: dict[str, Any] = {
    "use_default": False,
    "formats": {"date-time": lambda _v: True},
}


@cache
def _compile(name: str) -> Callable[[Any], Any]:
    """fastjsonschema's validator of `name`, generated in this process."""
    return fastjsonschema.compile(schema(name), **_FAST_OPTIONS)


@cache
def _cached(name: str) -> Callable[[Any], Any] | None:
    return schema_cache.load(name, _raw(name), lambda: schema(name), **_FAST_OPTIONS)


def _fast(name: str) -> Callable[[Any], Any]:
    """The fast validator of `name`: from the disk cache, else compiled here."""
    return _cached(name) or _compile(name)


@cache
def _slow(name: str) -> Any:
    import jsonschema  # ~150 ms to import; only a file with errors needs it

    return jsonschema.Draft7Validator(schema(name))


# Without a usable cache, compiling a schema costs 30-300 ms, once per process; it
# pays off from a dozen documents on. Below that, jsonschema checks each one directly.
COMPILE_AFTER = 12
MAX_PROBLEMS = 100  # per document: enough to fix, bounded to explain
TRUNCATED = f"more than {MAX_PROBLEMS} schema problems; the rest are not shown"
_seen: dict[str, int] = {}


def validate(doc: Document, name: str) -> list[Problem]:
    """Every schema error of `doc` against schema `name`, placed and worded."""
    n = _seen[name] = _seen.get(name, 0) + 1
    fast = _cached(name) or (_compile(name) if n > COMPILE_AFTER else None)
    if fast is not None:
        try:
            fast(doc.data)
            return []
        except fastjsonschema.JsonSchemaException:
            pass
    problems: dict[tuple[int, int, str], Problem] = {}
    for err in _slow(name).iter_errors(doc.data):
        for p in _explain(doc, err):
            problems.setdefault((p.line, p.col, p.message), p)
            if len(problems) > MAX_PROBLEMS:
                # a hostile file (300,000 `{}` fit in the size cap) would take
                # minutes and hundreds of MB to explain in full; the first ones do
                return [*sorted(problems.values())[:MAX_PROBLEMS], doc.problem((), TRUNCATED)]
    return sorted(problems.values())


def _leaves(err: Any) -> Iterable[Any]:
    """For anyOf/oneOf, the branch errors that went deepest are the useful ones."""
    if err.validator in ("anyOf", "oneOf") and err.context:
        depth = max(len(e.absolute_path) for e in err.context)
        if depth > len(err.absolute_path):
            deepest = [e for e in err.context if len(e.absolute_path) == depth]
            for e in deepest:
                yield from _leaves(e)
            return
    yield err


def _explain(doc: Document, top: Any) -> Iterable[Problem]:
    for err in _leaves(top):
        path = tuple(err.absolute_path)
        key = path[-1] if path else None
        shown = redact_deep(key, err.instance)
        v = err.validator
        if v == "additionalProperties":
            import difflib

            allowed = sorted(err.schema.get("properties", {}))
            extra = [k for k in err.instance if k not in err.schema.get("properties", {})]
            for k in extra:
                hint = difflib.get_close_matches(k, allowed, n=1)
                did = f"; did you mean {hint[0]!r}?" if hint else ""
                yield doc.problem(
                    (*path, k),
                    f"unknown key {k!r}{did} (allowed: {', '.join(allowed)})",
                    key=True,
                )
            continue
        if v == "required":
            missing = err.message.split("'")[1] if "'" in err.message else err.message
            yield doc.problem(path, f"missing required key {missing!r}")
            continue
        if v == "type":
            want = err.validator_value
            want_s = " or ".join(want) if isinstance(want, list) else want
            msg = f"expected {_article(want_s)}, got {_kind(err.instance)} {_show(shown)}"
        elif v == "enum":
            msg = f"expected one of {', '.join(map(str, err.validator_value))}; got {_show(shown)}"
        elif v == "const":
            msg = f"expected {err.validator_value!r}; got {_show(shown)}"
        elif v == "pattern":
            msg = f"expected {_pattern_words(err, path)}; got {_show(shown)}"
        elif v in ("minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum"):
            msg = f"{_show(shown)} is invalid: {v} is {err.validator_value}"
        elif v == "not" and isinstance(err.validator_value, dict):
            req = err.validator_value.get("required")
            msg = f"use only one of {', '.join(req)}" if req else "value is not allowed here"
        elif v == "propertyNames":
            msg = f"invalid name {_show(shown)}"
        else:
            msg = _clean(err.message, err.instance, shown)
        yield doc.problem(path, msg)


def _pattern_words(err: Any, path: tuple[Any, ...]) -> str:
    pattern = err.validator_value
    if pattern == DURATION_RE.pattern or pattern == _duration_pattern():
        return "a duration such as 30s, 5m, 1h30m or 0"
    if pattern.startswith("^(?=[^1-9]*[1-9])"):
        return "a duration greater than 0 such as 15s, 5m or 1h30m"
    named = [p for p in path if isinstance(p, str)]
    if named and named[-1] in _PATH_WORDS:
        return _PATH_WORDS[named[-1]]
    examples = err.schema.get("examples")
    if examples:
        shown = [repr(e) for e in examples[:3] if isinstance(e, str)]
        if shown:
            return "a value like " + " or ".join(shown)
    return f"a value matching {pattern}"


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, default=str)
        return text if len(text) <= 60 else text[:57] + "..."
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _clean(message: str, instance: Any, shown: Any) -> str:
    if shown is not instance:
        message = message.replace(repr(instance), _show(shown))
    return message if len(message) <= 200 else message[:197] + "..."


def path_text(path: tuple[str | int, ...]) -> str:
    return format_path(path)
