"""One API request: who calls, its JSON body and query, each field checked.

ServerState is what every endpoint reads; Call is one request to one endpoint
(its caller, body within the size limit, audited writes); Fields takes a body's
fields one by one and refuses the rest; parse_* and the query helpers turn
client text into values or a 4xx ApiError naming the field. Separate from the
endpoints so each handler only says which fields it takes.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry
from starlette.requests import Request

from engine.api.auth import Principal
from engine.api.facade import DaemonFacade
from engine.api.responses import ApiError
from engine.api.tickets import Tickets
from engine.common import json_bounded, matchers
from engine.common.boundary import clean
from engine.common.durations import parse_duration
from engine.common.records import ApiAlert
from engine.config.model import ApiConfig
from engine.runtime.budget import Budget
from engine.runtime.fanout import Subscription

T = TypeVar("T")

MAX_TEXT = 1000  # note, reason: a sentence or two, not a document
MAX_NAME = 200  # by, label names, names echoed in messages
MAX_MATCHERS = 64
MAX_DURATION = 10 * 365 * 86400.0  # acks and silences: "forever" is a config file's job
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass
class ServerState:
    """What every endpoint reads; `api` is replaced on reload (update_api_config)."""

    facade: DaemonFacade
    api: ApiConfig
    registry: CollectorRegistry
    budget: Budget  # the loop's time budget (engine/runtime/budget.py)
    # the last alert list and its encoding: comparing two lists costs a tenth of
    # encoding one, and between evaluations pollers keep asking for the same list
    last_alerts: tuple[list[ApiAlert], bytes] | None = None
    tickets: Tickets = field(default_factory=Tickets)  # for the event stream (tickets.py)
    # token digest -> its live event streams (stream_routes.py bounds them per token)
    streams: dict[str, set[Subscription]] = field(default_factory=dict)


@dataclass
class Call:
    request: Request
    state: ServerState
    who: Principal | None

    @property
    def facade(self) -> DaemonFacade:
        return self.state.facade

    @property
    def name(self) -> str:
        """The caller's token name, for `by` and audits."""
        return self.who.name if self.who is not None else "anonymous"

    def param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    async def body(self) -> dict[str, Any]:
        """The JSON object body ({} when empty), within api.max_body_bytes."""
        limit = self.state.api.max_body_bytes
        declared = self.request.headers.get("content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                raise ApiError(400, f"Content-Length {declared[:40]!r} is not a number") from None
            if n > limit:  # refuse before reading a byte of it
                raise ApiError(413, f"request body is {n} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.request.stream():
            size += len(chunk)
            if size > limit:  # chunked or lying Content-Length: stop reading
                raise ApiError(413, f"request body is larger than the limit of {limit} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            return {}
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise ApiError(422, f"expected a JSON object, got {_json_type(data)}")
        cleaned, _cut = clean(
            data
        )  # valid text (no lone surrogate), bounded: engine/common/boundary.py
        return cleaned  # type: ignore[no-any-return]

    async def fields(self) -> Fields:
        return Fields(await self.body())

    async def audit(self, action: str, details: Mapping[str, Any]) -> None:
        await self.facade.audit(action, by=self.name, details=details)

    async def write(
        self,
        action: str,
        details: Mapping[str, Any],
        op: Callable[[], Awaitable[T]],
        not_found: str,
    ) -> T:
        """Run a facade write and audit it with its outcome; KeyError → 404,
        ValueError → 422 (its message is meant for the client)."""
        try:
            result = await op()
        except KeyError:
            await self.audit(action, {**details, "result": "not_found"})
            raise ApiError(404, not_found) from None
        except ValueError as e:
            await self.audit(action, {**details, "result": "rejected", "error": str(e)})
            raise ApiError(422, str(e)) from None
        await self.audit(action, {**details, "result": "ok"})
        return result


def parse_json(raw: bytes) -> Any:
    """A request body's JSON, or ApiError 400 saying what is wrong with it. Every
    way json.loads can fail is a client's mistake, never a 500 with a traceback."""
    try:
        # a value nested past the boundary's depth is null (cut there), not a 400
        data = json_bounded.loads(raw)
    except UnicodeDecodeError:
        raise ApiError(400, "malformed JSON: the body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise ApiError(
            400, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    except ValueError:  # the only other: an integer past Python's conversion limit
        digits = sys.get_int_max_str_digits()
        raise ApiError(400, f"malformed JSON: a number has more than {digits} digits") from None
    return data


def _json_type(v: Any) -> str:
    if isinstance(v, list):
        return "an array"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if v is None:
        return "null"
    return "an object"


class Fields:
    """The fields of a JSON body, taken one by one; `done()` refuses the rest."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.taken: list[str] = []

    def get(self, name: str) -> Any:
        self.taken.append(name)
        return self.data.get(name)

    def text(self, name: str, *, required: bool = False, max_len: int = MAX_TEXT) -> str | None:
        v = self.get(name)
        if v is None:
            if required:
                raise ApiError(422, f"{name}: required")
            return None
        if not isinstance(v, str):
            raise ApiError(422, f"{name}: expected a string, got {_json_type(v)}")
        if required and not v.strip():
            raise ApiError(422, f"{name}: must not be empty")
        if len(v) > max_len:
            raise ApiError(422, f"{name}: longer than {max_len} characters")
        return v

    def time(self, name: str) -> float | None:
        v = self.get(name)
        return None if v is None else parse_time(name, v)

    def duration(self, name: str) -> float | None:
        v = self.get(name)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, str | int | float):
            raise ApiError(422, f"{name}: expected a duration such as 30m or 2h")
        try:
            d = parse_duration(v)
        except ValueError as e:
            raise ApiError(422, f"{name}: {e}") from None
        if d <= 0:
            raise ApiError(422, f"{name}: must be longer than 0s")
        if d > MAX_DURATION:  # also keeps now + d a representable time
            raise ApiError(422, f"{name}: at most {MAX_DURATION // 86400:.0f}d")
        return d

    def expiry(self, now: float, *, required: bool) -> float | None:
        """`until` (RFC 3339) or `for` (duration from now), not both."""
        if self.data.get("until") is not None and self.data.get("for") is not None:
            raise ApiError(422, "until, for: give one of them, not both")
        until, dur = self.time("until"), self.duration("for")
        if dur is not None:
            return now + dur
        if until is not None:
            if until <= now:
                raise ApiError(422, f"until: {self.data['until']} is in the past")
            return until
        if required:
            raise ApiError(422, 'until or for: required (for example "for": "2h")')
        return None

    def done(self) -> None:
        extra = [k for k in self.data if k not in self.taken]
        if extra:
            known = ", ".join(self.taken) or "none"
            raise ApiError(422, f"{str(extra[0])[:MAX_NAME]}: unknown field (expected: {known})")


def parse_time(name: str, value: Any) -> float:
    """Epoch seconds of an RFC 3339 time with a timezone."""
    example = "an RFC 3339 time such as 2026-12-01T00:00:00Z"
    if not isinstance(value, str):
        raise ApiError(422, f"{name}: expected {example}")
    try:
        dt = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ApiError(422, f"{name}: {value[:60]!r} is not {example}") from None
    if dt.tzinfo is None:  # a time without a zone means different things to client and server
        raise ApiError(422, f"{name}: {value[:60]!r} has no timezone; add Z or an offset")
    return dt.timestamp()


def parse_matchers(value: Any) -> list[dict[str, Any]]:
    """API matchers, checked and in record form: each is {"label", "value"} or
    {"label", "regex"}, with "negate": true for != and !~, or an Alertmanager-style
    string ("team!=ops", 'service=~"db.*"'). Regexes are RE2 (linear time)."""
    shape = 'a non-empty list of {"label", "value"|"regex", "negate"?} or "label!=value" strings'
    if not isinstance(value, list) or not value:
        raise ApiError(422, f"matchers: expected {shape}")
    if len(value) > MAX_MATCHERS:
        raise ApiError(422, f"matchers: at most {MAX_MATCHERS}")
    out: list[dict[str, Any]] = []
    for i, m in enumerate(value):
        where = f"matchers[{i}]"
        if isinstance(m, str):
            if len(m) > MAX_TEXT:
                raise ApiError(422, f"{where}: longer than {MAX_TEXT} characters")
        elif isinstance(m, dict):
            for k in m:
                if k not in ("label", "value", "regex", "negate"):
                    raise ApiError(422, f"{where}.{str(k)[:MAX_NAME]}: unknown field")
            label = m.get("label")
            if not isinstance(label, str) or not label or len(label) > MAX_NAME:
                raise ApiError(422, f"{where}.label: expected a label name")
            if ("value" in m) == ("regex" in m):
                raise ApiError(422, f"{where}: give either value or regex")
            key = "value" if "value" in m else "regex"
            if not isinstance(m[key], str) or len(m[key]) > MAX_TEXT:
                raise ApiError(422, f"{where}.{key}: expected a string")
        else:
            raise ApiError(422, f"{where}: expected an object or a string, got {_json_type(m)}")
        try:
            out.append(matchers.to_record(matchers.from_record(m)))
        except matchers.MatcherError as e:
            raise ApiError(422, f"{where}: {e}") from None
    return out


def query_bool(name: str, raw: str | None) -> bool | None:
    if raw is None:
        return None
    v = _BOOLS.get(raw.lower())
    if v is None:
        raise ApiError(422, f"{name}: expected true or false, got {raw[:40]!r}")
    return v


def one_of(name: str, raw: str | None, allowed: tuple[str, ...]) -> str | None:
    if raw is not None and raw not in allowed:
        raise ApiError(422, f"{name}: expected one of {', '.join(allowed)}, got {raw[:40]!r}")
    return raw
