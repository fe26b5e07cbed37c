"""fastjsonschema validators kept in the disk cache, so a process loads one
instead of generating it.

Generating a validator costs 30-300 ms per schema in every process (`vigil
validate` in CI, each pre-commit run); loading its bytecode costs ~1 ms. An
entry is keyed by everything that shapes the code: the schema's bytes, the
generator's options, fastjsonschema's version and Python's bytecode magic.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import marshal
import re
import types
from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema

from engine.common import disk_cache

Validator = Callable[[Any], Any]

_MADE_BY = b"vigil schema validator 2\0"  # bump when _generate changes what it makes


def key(name: str, raw: bytes, options: Mapping[str, Any]) -> str:
    h = hashlib.sha256(_MADE_BY)
    for part in (name, repr(sorted(options.items())), fastjsonschema.VERSION):
        h.update(part.encode() + b"\0")
    h.update(importlib.util.MAGIC_NUMBER)
    h.update(raw)
    return h.hexdigest()


def load(
    name: str, raw: bytes, definition: Callable[[], dict[str, Any]], **options: Any
) -> Validator | None:
    """The validator of schema `name` (whose file holds `raw`), from the cache, or
    generated and stored there on a miss. None when there is no usable cache:
    the caller then decides whether compiling is worth it for this process.

    `options` are fastjsonschema.compile's; `formats` must be callables (they are
    passed at call time, as fastjsonschema.compile does, not baked into the code)."""
    if disk_cache.directory() is None:
        return None
    k = key(name, raw, {o: sorted(v) if o == "formats" else v for o, v in options.items()})
    entry = f"schema-{name}-{k[:32]}"
    found = _decode(disk_cache.read(entry, k))
    if found is None:
        found = _generate(definition(), options)
        disk_cache.write(entry, k, marshal.dumps(found))
        disk_cache.prune(f"schema-{name}-*", keep=entry)
    func_name, code = found
    namespace: dict[str, Any] = {"__name__": f"vigil_schema_{name}", "_pattern_args": _pattern_args}
    exec(code, namespace)  # our own generated code, from our own private directory
    if "REGEX_PATTERNS" in namespace:
        namespace["REGEX_PATTERNS"] = _Patterns(namespace["REGEX_PATTERNS"])
    func = namespace[func_name]
    formats = options.get("formats")
    if formats:
        return functools.update_wrapper(functools.partial(func, custom_formats=formats), func)
    return func  # type: ignore[no-any-return]


def _generate(definition: dict[str, Any], options: Mapping[str, Any]) -> tuple[str, Any]:
    from fastjsonschema.ref_resolver import RefResolver

    source = fastjsonschema.compile_to_code(definition, **options)
    # the name compile_to_code gives the entry function, as fastjsonschema.compile finds it
    func_name = RefResolver.from_schema(definition, store={}).get_scope_name()
    # the module's head (imports, REGEX_PATTERNS) ends where its first function starts
    head, sep, functions = source.partition("\ndef ")
    source = _lazy_regexes(head) + sep + functions
    return func_name, compile(source, f"<vigil schema validator {func_name}>", "exec")


def _lazy_regexes(head: str) -> str:
    """The generated module compiles every pattern of the schema when it runs
    (~10 ms for the channels schema), though a file uses a few of them: its
    `REGEX_PATTERNS = {key: re.compile(...)}` becomes a table of the arguments,
    which load() wraps in _Patterns, compiling each on first use."""
    tree = ast.parse(head)
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [
            "REGEX_PATTERNS"
        ]:
            for call in ast.walk(node.value):
                if isinstance(call, ast.Call) and ast.unparse(call.func) == "re.compile":
                    call.func = ast.Name("_pattern_args", ast.Load())
    return ast.unparse(tree)


def _pattern_args(*args: Any) -> tuple[Any, ...]:
    return args


class _Patterns(dict[str, "re.Pattern[str]"]):
    """REGEX_PATTERNS of a generated validator: a pattern compiles on first use."""

    def __init__(self, args: Mapping[str, tuple[Any, ...]]) -> None:
        super().__init__()
        self.args = args

    def __missing__(self, key: str) -> re.Pattern[str]:
        pattern = self[key] = re.compile(*self.args[key])
        return pattern


def _decode(payload: bytes | None) -> tuple[str, types.CodeType] | None:
    if payload is None:
        return None
    try:
        found = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    match found:
        case (str() as func_name, types.CodeType() as code):
            return func_name, code
    return None
