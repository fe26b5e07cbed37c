"""The disk cache (engine/common/disk_cache.py) and what is kept in it: compiled
schema validators, compiled templates, the installed plugin names. A cache is an
optimisation only: a corrupt entry is recomputed and rewritten, an unusable
directory means no cache, and the results never differ."""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest

from engine.common import disk_cache
from engine.config import schema as sc
from engine.config import schema_cache
from engine.config.build import ConfigLoader
from engine.config.load import load_text
from engine.plugins import registry
from engine.templates import renderer as templates

ROOT = Path(__file__).resolve().parents[3]
OPTIONS: dict[str, Any] = {"use_default": False, "formats": {"date-time": lambda _v: True}}


def _clear() -> None:
    disk_cache.directory.cache_clear()
    sc._cached.cache_clear()
    sc._seen.clear()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _clear()
    yield tmp_path / "xdg" / "vigil"
    _clear()


@pytest.fixture
def no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))  # cannot hold a folder
    _clear()
    yield
    _clear()


def _entries(cache: Path, prefix: str) -> list[Path]:
    return sorted(cache.glob(f"{prefix}*"))


# -- the directory -------------------------------------------------------------------


def test_no_usable_directory_means_no_cache(no_cache: None) -> None:
    assert disk_cache.directory() is None
    assert disk_cache.read("x", "k") is None
    disk_cache.write("x", "k", b"v")  # silently nothing


def test_a_directory_others_can_write_to_is_not_used(cache: Path) -> None:
    cache.mkdir(parents=True)
    cache.chmod(0o777)
    assert disk_cache.directory() is None


def test_an_entry_reads_back_only_with_its_key_and_intact(cache: Path) -> None:
    disk_cache.write("e", "key-1", b"payload")
    assert disk_cache.read("e", "key-1") == b"payload"
    assert disk_cache.read("e", "key-2") is None
    raw = (cache / "e").read_bytes()
    (cache / "e").write_bytes(raw[:-1] + b"X")  # one byte changed: the checksum fails
    assert disk_cache.read("e", "key-1") is None
    (cache / "e").write_bytes(raw[: len(raw) // 2])  # truncated
    assert disk_cache.read("e", "key-1") is None
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]


# -- schema validators ----------------------------------------------------------------


def _definition() -> dict[str, Any]:
    return sc.schema("rules")


def _fails() -> dict[str, Any]:
    raise AssertionError("generated again instead of loaded from the cache")


def test_validator_is_generated_once_then_loaded(cache: Path) -> None:
    raw = sc._raw("rules")
    first = schema_cache.load("rules", raw, _definition, **OPTIONS)
    assert first is not None
    assert len(_entries(cache, "schema-rules-")) == 1
    second = schema_cache.load("rules", raw, _fails, **OPTIONS)
    assert second is not None
    reference = fastjsonschema.compile(sc.schema("rules"), **OPTIONS)
    good = load_text("group: g\nrules:\n  - {id: a, expr: x.y > 1}\n", "g.yaml").data
    bad = load_text("group: g\nrules:\n  - {id: A, expr: x.y > 1, for: soon}\n", "b.yaml").data
    for validator in (first, second, reference):
        validator(good)
        with pytest.raises(fastjsonschema.JsonSchemaException):
            validator(bad)
    assert "for" not in good["rules"][0]  # the fast path only checks: no defaults put in


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not-code"])
def test_corrupt_validator_entry_is_ignored_and_rewritten(cache: Path, damage: str) -> None:
    raw = sc._raw("rules")
    assert schema_cache.load("rules", raw, _definition, **OPTIONS) is not None
    (entry,) = _entries(cache, "schema-rules-")
    good = entry.read_bytes()
    if damage == "garbage":
        entry.write_bytes(b"\x00\xffnot a cache entry")
    elif damage == "truncated":
        entry.write_bytes(good[: len(good) // 3])
    else:  # intact and keyed right, but not what a validator entry holds
        k = schema_cache.key("rules", raw, {"use_default": False, "formats": ["date-time"]})
        disk_cache.write(entry.name, k, json.dumps([1, 2]).encode())
    validator = schema_cache.load("rules", raw, _definition, **OPTIONS)
    assert validator is not None
    validator(load_text("group: g\nrules: []\n", "g.yaml").data)
    assert schema_cache.load("rules", raw, _fails, **OPTIONS) is not None  # rewritten


def test_another_schema_version_replaces_the_old_entry(cache: Path) -> None:
    raw = sc._raw("rules")
    schema_cache.load("rules", raw, _definition, **OPTIONS)
    schema_cache.load("rules", raw + b" ", _definition, **OPTIONS)
    assert len(_entries(cache, "schema-rules-")) == 1


def _bad_fixture_messages() -> list[list[str]]:
    out = []
    for name in sorted(os.listdir(ROOT / "tests/testdata/bad")):
        result = ConfigLoader().load(
            "tests/testdata/context/vigil.yaml", [f"tests/testdata/bad/{name}"]
        )
        out.append([p.format() for p in result.problems])
    return out


def test_messages_are_the_same_with_and_without_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("VIGIL_TEST_SURELY_UNSET_VAR", raising=False)
    (tmp_path / "a-file").write_text("")
    runs = []
    for home in (tmp_path / "a-file", tmp_path / "xdg", tmp_path / "xdg"):  # none, cold, warm
        monkeypatch.setenv("XDG_CACHE_HOME", str(home))
        _clear()
        runs.append(_bad_fixture_messages())
    _clear()
    assert runs[0] == runs[1] == runs[2]
    assert all(runs[0])


# -- templates ------------------------------------------------------------------------


def test_template_code_is_cached_and_a_corrupt_entry_recompiled(cache: Path) -> None:
    source = "{{ labels.host | upper }} at {{ value | round(1) }}"
    ctx = {"labels": {"host": "db1"}, "value": 91.234}
    first = templates.render(templates._Compiled(templates.make_env()).get(source), ctx)
    (folder,) = _entries(cache, "jinja-")
    (entry,) = folder.iterdir()
    good = entry.read_bytes()
    entry.write_bytes(good[:20])
    again = templates.render(templates._Compiled(templates.make_env()).get(source), ctx)
    assert first == again == "DB1 at 91.2"
    assert len(entry.read_bytes()) > 20  # written again, whole


def test_cached_template_keeps_the_sandbox(cache: Path) -> None:
    source = "{% for i in range(3) %}{{ i }}{% endfor %}{{ ''.__class__ }}"
    for _ in range(2):  # compiled, then from the cache
        with pytest.raises(templates.SecurityError):
            templates.render(templates._Compiled(templates.make_env()).get(source), {})


def _render(source: str, ctx: dict[str, Any]) -> str:
    return templates.render(templates._Compiled(templates.make_env()).get(source), ctx)


def test_template_code_is_loaded_from_the_cache_after_the_first_compile(cache: Path) -> None:
    source = "{{ labels.host }}"
    ctx = {"labels": {"host": "db1"}}
    assert _render(source, ctx) == "db1"
    # the entry now holds another template's code, under `source`'s key: what the
    # next compile of `source` returns shows whether the entry was used
    base = templates._code_base()
    key = hashlib.sha256(f"{base}\0{source}".encode()).hexdigest()
    (entry,) = (cache / f"jinja-{base}").iterdir()
    other = templates.make_env().compile("cached {{ labels.host }}")
    disk_cache.write(f"jinja-{base}/{entry.name}", key, marshal.dumps(other))
    assert _render(source, ctx) == "cached db1"


def test_a_changed_template_is_compiled_afresh(cache: Path) -> None:
    ctx = {"labels": {"host": "db1"}}
    assert _render("{{ labels.host }}", ctx) == "db1"
    assert _render("{{ labels.host | upper }}", ctx) == "DB1"
    (folder,) = _entries(cache, "jinja-")
    assert len(list(folder.iterdir())) == 2


def test_code_of_another_vigil_or_jinja_is_not_used_and_pruned(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = {"labels": {"host": "db1"}}
    assert _render("{{ labels.host }}", ctx) == "db1"
    (old,) = _entries(cache, "jinja-")
    # what another version of renderer.py, sandbox.py, Jinja or Python keys its code by
    monkeypatch.setattr(templates, "_code_base", lambda: "another-version")
    assert _render("{{ labels.host }}", ctx) == "db1"
    assert [p.name for p in _entries(cache, "jinja-")] == ["jinja-another-version"]
    assert not old.exists()


def test_a_cache_folder_that_cannot_be_written_is_ignored(cache: Path) -> None:
    cache.mkdir(parents=True)
    (cache / f"jinja-{templates._code_base()}").write_text("a file where the folder goes")
    for _ in range(2):
        assert _render("{{ labels.host | upper }}", {"labels": {"host": "db1"}}) == "DB1"


# -- installed plugins ----------------------------------------------------------------


def _dist(site: Path, points: str) -> None:
    info = site / "vigil_fake_plugin-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vigil-fake-plugin\nVersion: 1.0\n")
    ep = info / "entry_points.txt"
    old = ep.stat().st_mtime_ns if ep.exists() else 0
    ep.write_text(f"[vigil.channels]\n{points}")
    os.utime(ep, ns=(old + 10**9, old + 10**9))  # a later mtime, as a reinstall gives


def _fresh_names(group: str) -> list[str]:
    registry._names.cache_clear()
    registry._points.cache_clear()
    return registry.names(group)


def test_plugin_names_follow_what_is_installed(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    _dist(site, "fake = vigil_fake:FakeChannel\n")
    sys.path.insert(0, str(site))
    scan = registry._points
    try:
        assert "fake" in _fresh_names("vigil.channels")
        assert "log" in registry.names("vigil.channels")

        def no_scan(group: str) -> dict[str, Any]:
            raise AssertionError("read the installed distributions again")

        monkeypatch.setattr(registry, "_points", no_scan)
        registry._names.cache_clear()
        assert "fake" in registry.names("vigil.channels")  # from the disk cache
        monkeypatch.setattr(registry, "_points", scan)
        _dist(site, "other = vigil_fake:OtherChannel\n")  # the plugin was upgraded
        names = _fresh_names("vigil.channels")
        assert "other" in names and "fake" not in names
    finally:
        sys.path.remove(str(site))
        _fresh_names("vigil.channels")


# -- what `vigil validate` imports ----------------------------------------------------

_PROBE = """
import sys
from engine.config.build import ConfigLoader
result = ConfigLoader().load()
assert result.ok, result.problems
print(" ".join(m for m in ("jinja2", "jsonschema", "asyncio", "httpx", "importlib.metadata")
               if m in sys.modules))
"""


def test_validating_plain_rules_needs_neither_jinja_nor_jsonschema(tmp_path: Path) -> None:
    for d in ("rules", "channels"):
        (tmp_path / d).mkdir()
    (tmp_path / "vigil.yaml").write_text("collectors:\n  - {name: app, type: push}\n")
    (tmp_path / "rules" / "example.yaml").write_text(
        "group: g\nrules:\n  - id: a\n    expr: app.depth > 5\n"
        '    annotations: {summary: "depth {{ value }} on {{ labels.queue }}"}\n'
    )
    (tmp_path / "channels" / "c.yaml").write_text(
        "channels:\n  - {name: c, type: log}\nroutes:\n  - {channels: [c]}\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    runs = [
        subprocess.run(
            [sys.executable, "-c", _PROBE],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for _ in range(2)
    ]
    # warm cache: no schema compiler, no template engine, no HTTP client; each plugin's own
    # settings parser runs (issue 13 B.13), which loads its entry point and module
    assert set(runs[1]) <= {"asyncio", "importlib.metadata"}
    assert "jinja2" not in runs[0]
