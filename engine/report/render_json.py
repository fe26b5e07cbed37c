"""The report as JSON (schemas/report.schema.json): keys in the order metrics.build
writes them, two-space indent, a final newline; the same report, the same bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["render_json"]


def render_json(report: Mapping[str, Any]) -> bytes:
    return (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode()
