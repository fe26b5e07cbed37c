"""`vigil logtest FILE [--pack NAME ...] [--format nginx] [--key ip] [--top N]
[--show N] [--format-output text|json]`, or `vigil logtest FILE --collector NAME
[-c vigil.yaml]`: a log through the detection packs, offline (as fail2ban-regex).

With --pack (repeatable; default every built-in pack) the file is read with
--format and keyed by --key. With --collector the detection settings of that
`logtail` collector in the configuration are used as they are: its format, key,
packs with their allowlists, own patterns, windows and allowlists, so what is
printed is what the daemon would count.

Printed: lines read, parsed, unparsed, allowed (allowlists) and unkeyed; hits per
pattern and per pack; the keys with most hits (at most --top) with their hits per
pattern and the window values; and for each its last --show matching lines with
their line numbers. Every line counts as arriving now: the windows hold the whole
file. Exit 0 (1 when the file cannot be read or a setting is bad).
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import time
from array import array
from collections.abc import Iterator, Mapping
from typing import Any

from engine.cli.tables import one_line
from engine.detect import formats, packs
from engine.detect import settings as detect
from engine.detect.sink import DetectSink

BATCH = 10_000  # lines per feed: the follower's batches are of this order too
MAX_KEYS = 1_000_000
# with --pack: what the window packs of rules/security/ count, shown per key
WEB_WINDOWS = {
    "refused": {"kind": "count", "where": {"status": ["401", "403"]}},
    "not_found": {"kind": "count", "where": {"status": ["404"]}},
}
SSHD_WINDOWS = {
    "failures": {"kind": "count", "where": {"outcome": ["failed"]}},
    "users": {
        "kind": "distinct",
        "field": "user",
        "where": {"outcome": ["failed", "invalid_user"]},
    },
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "logtest",
        help="run a log file through the detection packs offline and show the hits",
        description="Run a log file through the detection packs offline (like fail2ban-regex): "
        "hits per pattern, per pack and per key, with the matching lines.",
    )
    p.add_argument("file", metavar="FILE", help="log file ('-' for stdin)")
    p.add_argument(
        "--pack",
        dest="packs",
        action="append",
        choices=sorted(packs.PACKS),
        metavar="NAME",
        help=f"a built-in pack ({', '.join(sorted(packs.PACKS))}); repeatable; default: all",
    )
    p.add_argument(
        "--format",
        default="combined",
        choices=sorted(formats.BUILTIN),
        help="log format (default combined: nginx and apache access logs)",
    )
    p.add_argument("--key", default="ip", help="the field that names a key (default ip)")
    p.add_argument(
        "--collector",
        metavar="NAME",
        help="use the detection settings of this logtail collector of the configuration",
    )
    p.add_argument("-c", "--config", help="vigil.yaml to use with --collector")
    p.add_argument("--top", type=int, default=20, help="keys shown, most hits first (20)")
    p.add_argument("--show", type=int, default=3, help="matching lines shown per key (3)")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValueError as e:
        print(f"vigil logtest: {e}", file=sys.stderr)
        return 1
    sink = DetectSink(settings)
    now = time.time()
    starts = array("q")  # byte offset of each line: evidence offsets -> line numbers
    begun = time.perf_counter()
    try:
        for batch, start in _batches(args.file, starts):
            sink.feed(batch, now, args.file, start)
    except OSError as e:
        print(f"vigil logtest: {args.file}: {e.strerror or e}", file=sys.stderr)
        return 1
    took = time.perf_counter() - begun
    sample = sink.snapshot(now)
    for el in sample["keys"]:
        for ev in el["evidence"]:
            ev["line_number"] = bisect.bisect_right(starts, ev["offset"])
    if args.output == "json":
        print(json.dumps({"totals": sample["totals"], "keys": sample["keys"][: args.top]}))
    else:
        for line in render(sample, settings, args.top, args.show, took):
            print(one_line(line))  # log lines are hostile: no ESC or BEL to the terminal
    return 0


def _settings(args: argparse.Namespace) -> detect.DetectSettings:
    if args.collector:
        return _collector_settings(args.config, args.collector)
    sshd = args.format == "sshd"  # no URL: the packs cannot hit; failures per key can
    raw = {
        "format": args.format,
        "key": args.key,
        "packs": args.packs or ([] if sshd else sorted(packs.PACKS)),
        "windows": SSHD_WINDOWS if sshd else WEB_WINDOWS,
        "max_keys": MAX_KEYS,
        "evidence": max(args.show, 0),
        "max_reported": max(args.top, 1),
    }
    return detect.parse(raw)


def _collector_settings(config: str | None, name: str) -> detect.DetectSettings:
    from engine.config.build import ConfigLoader
    from engine.config.build.files import default_config_path

    path = config or default_config_path()
    if path is None:
        raise ValueError("no vigil.yaml here; give one with -c")
    result = ConfigLoader().load(path)
    if result.config is None or result.problems:
        first = result.problems[0].format() if result.problems else "not loadable"
        raise ValueError(f"{path}: configuration invalid: {first}")
    for c in result.config.collectors:
        if c.name == name:
            if c.type != "logtail" or detect.DETECT_KEYS.isdisjoint(c.settings):
                raise ValueError(f"collector {name!r} is no logtail collector with detection")
            return detect.parse(c.settings)
    raise ValueError(f"{path}: no collector named {name!r}")


def _batches(path: str, starts: array[int]) -> Iterator[tuple[list[str], int]]:
    """Batches of lines (invalid UTF-8 replaced, newline cut) and the byte offset
    of each batch's first line; every line's offset goes to `starts`."""
    f = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        offset, batch_start = 0, 0
        batch: list[str] = []
        for raw in f:
            if not batch:
                batch_start = offset
            starts.append(offset)
            offset += len(raw)
            batch.append(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
            if len(batch) >= BATCH:
                yield batch, batch_start
                batch = []
        if batch:
            yield batch, batch_start
    finally:
        if f is not sys.stdin.buffer:
            f.close()


def render(
    sample: Mapping[str, Any],
    settings: detect.DetectSettings,
    top: int,
    show: int,
    took: float,
) -> Iterator[str]:
    t = sample["totals"]
    rate = f", {t['lines'] / took:,.0f} lines/s" if took > 0 and t["lines"] else ""
    yield (
        f"Lines: {t['lines']} read, {t['parsed']} parsed ({settings.format.name}), "
        f"{t['unparsed']} unparsed, {t['allowed']} allowed, {t['unkeyed']} without "
        f"{settings.key}  [{took:.2f} s{rate}]"
    )
    yield ""
    yield "Hits per pattern:"
    by_pack: dict[str, list[str]] = {}
    for p in settings.patterns:
        by_pack.setdefault(p.pack, []).append(p.name)
    width = max((len(p.name) for p in settings.patterns), default=8)
    if not settings.patterns:
        yield "  (no patterns: this format's packs are windows, below)"
    for pack, names in by_pack.items():
        yield f"  {pack}: {t['hits'].get(pack, 0)}"
        for name in names:
            yield f"    {name:<{width}}  {t['patterns'].get(name, 0)}"
    counted = [el for el in sample["keys"] if _counted(el, settings)]
    keys = counted[:top]
    yield ""
    yield f"Keys with hits: {len(counted)} of {t['keys']} {settings.key} values" + (
        f" (the first {len(keys)})" if len(counted) > len(keys) else ""
    )
    for el in keys:
        total = sum(el["hits"].values())
        per = ", ".join(f"{n} {c}" for n, c in sorted(el["patterns"].items(), key=lambda x: -x[1]))
        windows = "".join(f", {w.name} {el[w.name]:g}" for w in settings.windows)
        hits = f"{total} hits ({per})" if total else "no pattern hits"
        yield f"  {el['labels'][settings.key]}  {hits}{windows}"
        for ev in el["evidence"][-show:] if show > 0 else []:
            yield f"    line {ev['line_number']}: {ev['line']}"


def _counted(el: Mapping[str, Any], settings: detect.DetectSettings) -> bool:
    """A key with a hit or a window above zero (a failed login, a 404)."""
    return any(el["hits"].values()) or any(el[w.name] for w in settings.windows)
