"""Every `vigil` command. Thin: parse arguments, call the library, print.

Each command lives in engine/cli/<name>.py with `register(subparsers)`;
handlers return the exit code. Bad input never ends in a traceback: a
VigilError becomes one line on stderr.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
from collections.abc import Sequence

from engine import __version__
from engine.errors import VigilError

COMMANDS = (
    "run",
    "validate",
    "test",
    "schema",
    "notify_test",
    "client",
    "log",
    "explain",
    "unban",
    "dashboard",
    "logtest",
    "report",
)


# the module of each subcommand: `vigil validate` imports only what validate needs
# (CI runs it on every commit; the client's httpx alone costs ~150 ms to import)
_MODULE_OF = {
    "notify-test": "notify_test",
    **{
        c: "client"
        for c in ("alerts", "ack", "unack", "silence", "silences", "expire", "status", "reload")
    },
    **{
        c: c
        for c in (
            "run",
            "validate",
            "test",
            "schema",
            "log",
            "explain",
            "dashboard",
            "logtest",
            "report",
        )
    },
    "unban": "unban",
    "bans": "unban",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # usage errors exit 2 with one line, as promised
        self.exit(2, f"vigil: {message} (see --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of the one module `only` registers."""
    parser = _Parser(prog="vigil", description="YAML-driven alerting daemon")
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in (only,) if only else COMMANDS:
        try:
            mod = importlib.import_module(f"engine.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"engine.cli.{name}":
                raise
            continue
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    first = args_list[0] if args_list else None
    if first != "run" and argv is None:
        # A command is a short process that allocates much and frees little in
        # cycles: the default thresholds run ~90 young collections that find next
        # to nothing (~30 ms of `vigil test`). The daemon paces its own (gc_pacing).
        gc.set_threshold(100_000, 50, 100)
    parser = build_parser(_MODULE_OF.get(first) if first else None)
    args = parser.parse_args(args_list)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        code: int = func(args)
    except VigilError as e:
        print(f"vigil: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
