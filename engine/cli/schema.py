"""`vigil schema [config|rules|channels|ruletest]`: print a JSON Schema."""

from __future__ import annotations

import argparse
import json
from typing import Any

from engine.config.schema import SCHEMA_NAMES, schema


def register(sub: Any) -> None:
    p = sub.add_parser("schema", help="print a JSON Schema")
    p.add_argument("name", choices=SCHEMA_NAMES)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(schema(args.name), indent=2))
    return 0
