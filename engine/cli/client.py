"""Commands that talk to the running daemon's API: `vigil alerts`, `ack`, `unack`,
`silence`, `silences`, `expire`, `status`, `reload`.

Where the daemon is: --url, else $VIGIL_URL, else api.listen of the config
(-c, else the default lookup; only its `api` section is read, nothing is
built). The token: --token-file, else $VIGIL_TOKEN, else $VIGIL_TOKEN_FILE.
Every failure is one line (a ClientError, printed by engine.cli.main) and exit 1.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from engine.cli.tables import Rows, evidence_lines
from engine.common import matchers
from engine.common.durations import parse_duration
from engine.config.model import SEVERITIES
from engine.errors import ClientError

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9595
LISTEN = re.compile(r"\[?([^\]]*)\]?:(\d{1,5})")
MAX_TOKEN_FILE = 64 * 1024


def daemon_args() -> argparse.ArgumentParser:
    """The options of every command that talks to the daemon's API (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("daemon")
    g.add_argument("--url", help="daemon URL (default: $VIGIL_URL, else api.listen of the config)")
    g.add_argument(
        "--token-file", help="file holding the API token (default: $VIGIL_TOKEN, $VIGIL_TOKEN_FILE)"
    )
    g.add_argument("-c", "--config", help="vigil.yaml to read api.listen from")
    g.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)"
    )
    return common


def register(sub: Any) -> None:
    common = daemon_args()
    fmt = argparse.ArgumentParser(add_help=False)
    fmt.add_argument("--format", choices=("text", "json"), default="text")

    p = sub.add_parser("alerts", parents=[common, fmt], help="list the daemon's active alerts")
    p.add_argument("--state", choices=("pending", "firing"))
    p.add_argument("--severity", choices=SEVERITIES)
    p.add_argument("--rule")
    p.add_argument(
        "--label", action="append", default=[], type=_label, metavar="K=V", help="repeatable"
    )
    p.add_argument("--evidence", type=int, default=3, metavar="N", help="log lines shown (3)")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("ack", parents=[common], help="acknowledge an alert")
    p.add_argument("id", metavar="ID", help="alert fingerprint (a unique prefix will do)")
    p.add_argument("--note", required=True, help="why; shown to everyone")
    p.add_argument("--by", help="who acknowledges (default: the API token's name)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--for", dest="for_", type=_duration, metavar="DURATION", help="e.g. 2h")
    when.add_argument("--until", type=_time, metavar="TIME", help="RFC 3339 or local time")
    p.set_defaults(func=cmd_ack)

    p = sub.add_parser("unack", parents=[common], help="remove an alert's acknowledgement")
    p.add_argument("id", metavar="ID", help="alert fingerprint (a unique prefix will do)")
    p.set_defaults(func=cmd_unack)

    p = sub.add_parser("silence", parents=[common, fmt], help="create a silence")
    p.add_argument(
        "--match",
        action="append",
        required=True,
        type=_matcher,
        metavar="K=V",
        help="label=value, label!=value, label=~regex or label!~regex (RE2); repeatable, all must match",
    )
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--for", dest="for_", type=_duration, metavar="DURATION", help="e.g. 2h")
    when.add_argument("--until", type=_time, metavar="TIME", help="RFC 3339 or local time")
    p.add_argument("--starts", type=_time, metavar="TIME", help="start later (default: now)")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_silence)

    p = sub.add_parser("silences", parents=[common, fmt], help="list silences")
    p.add_argument("--all", action="store_true", help="also the expired ones")
    p.set_defaults(func=cmd_silences)

    p = sub.add_parser("expire", parents=[common], help="expire a silence now")
    p.add_argument("silence_id", metavar="SILENCE_ID")
    p.set_defaults(func=cmd_expire)

    p = sub.add_parser("status", parents=[common, fmt], help="the daemon's version and config")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("reload", parents=[common], help="reload the daemon's configuration")
    p.set_defaults(func=cmd_reload)


# -- argument types (a bad one is a usage error, exit 2) ---------------------------------


def _label(text: str) -> str:
    k, sep, _ = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    return text


_CLI_MATCHER = re.compile(r"([^=!~]+)(=~|!~|!=|=)(.*)", re.DOTALL)


def _matcher(text: str) -> dict[str, Any]:
    """`label=value`, `label!=value`, `label=~regex`, `label!~regex`; the value is
    taken as typed (the shell already did the quoting)."""
    m = _CLI_MATCHER.fullmatch(text)
    if m is None:
        raise argparse.ArgumentTypeError(
            f"expected label=value, label!=value, label=~regex or label!~regex, got {text!r}"
        )
    k, op, v = m.groups()
    out: dict[str, Any] = {"label": k}
    if op.endswith("~"):
        try:
            matchers.compile_regex(v)
        except matchers.MatcherError as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None
        out["regex"] = v
    else:
        out["value"] = v
    if op.startswith("!"):
        out["negate"] = True
    return out


def _duration(text: str) -> str:
    try:
        if parse_duration(text) <= 0:
            raise ValueError("must be longer than 0s")
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _time(text: str) -> str:
    """RFC 3339 for the API; a time without a zone is local time, as people mean it."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time; expected e.g. 2026-12-01T18:00 or 2026-12-01T17:00:00Z"
        ) from None
    if dt.tzinfo is None:
        dt = dt.astimezone()
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- where and who -----------------------------------------------------------------------


def daemon_url(args: argparse.Namespace) -> str:
    url = args.url or os.environ.get("VIGIL_URL") or _url_from_config(args.config)
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


def _url_from_config(path: str | None) -> str:
    from engine.config.build.files import default_config_path
    from engine.config.load import YamlError, load_file

    host, port = DEFAULT_HOST, DEFAULT_PORT
    path = path or default_config_path()
    if path:
        try:
            data = load_file(path).data
        except YamlError as e:
            raise ClientError(f"cannot read api.listen from {e.problem.format()}") from None
        api = data.get("api") if isinstance(data, dict) else None
        listen = api.get("listen") if isinstance(api, dict) else None
        if listen is not None:
            m = LISTEN.fullmatch(str(listen))
            if not m:
                raise ClientError(f"{path}: api.listen {listen!r} is not host:port")
            host, port = m.group(1), int(m.group(2))
    # a wildcard listen address is reached through loopback
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def read_token(args: argparse.Namespace) -> str | None:
    if args.token_file:
        return _token_file(args.token_file)
    env = os.environ.get("VIGIL_TOKEN", "").strip()
    if env:
        return env
    path = os.environ.get("VIGIL_TOKEN_FILE")
    return _token_file(path) if path else None


def _token_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_TOKEN_FILE + 1)
    except OSError as e:
        raise ClientError(f"cannot read token file {path}: {e.strerror}") from None
    token = raw.decode("utf-8", "replace").strip()
    if not token or len(raw) > MAX_TOKEN_FILE:
        raise ClientError(f"token file {path} holds no usable token")
    return token


# -- talking to the daemon ---------------------------------------------------------------


class Client:
    """One daemon, one token; every failure becomes a one-line ClientError."""

    def __init__(self, url: str, token: str | None, timeout: float = 10.0) -> None:
        self.url = url
        self.token = token
        try:
            host = httpx.URL(url).host
        except httpx.InvalidURL as e:
            raise ClientError(f"{url!r} is not a usable daemon URL: {e}") from None
        self.http = httpx.Client(
            base_url=url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            # a proxy from the environment must not capture calls to a local daemon
            trust_env=host not in ("127.0.0.1", "::1", "localhost"),
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Client:
        return cls(daemon_url(args), read_token(args), args.timeout)

    def call(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            r = self.http.request(method, path, params=params, json=body)
        except httpx.TimeoutException:
            raise ClientError(
                f"vigil at {self.url} did not answer within {self.http.timeout.read:g}s"
            ) from None
        except httpx.HTTPError as e:
            raise ClientError(f"cannot reach vigil at {self.url}: {_reason(e)}") from None
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.is_success:
            if data is None:
                raise ClientError(f"{self.url} answered {r.status_code} without JSON; is it vigil?")
            return data
        raise self.error(r.status_code, data, r.text)

    def error(self, status: int, data: Any, text: str) -> ClientError:
        msg = data.get("error") if isinstance(data, dict) else None
        if not isinstance(msg, str) or not msg:
            first = text.strip().splitlines()[0][:200] if text.strip() else ""
            msg = f"HTTP {status}" + (f": {first}" if first else "")
        msg = " ".join(msg.split())  # one line, whatever the server sent
        if status == 401:
            if not self.token:
                return ClientError(
                    f"no token given (401): use --token-file, $VIGIL_TOKEN or $VIGIL_TOKEN_FILE; {msg}"
                )
            return ClientError(f"token rejected (401): {msg}")
        if status == 403:
            return ClientError(f"not allowed (403): {msg}")
        if status >= 500:
            return ClientError(f"vigil at {self.url} failed ({status}): {msg}")
        return Status(status, msg, data)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Status(ClientError):
    """A 4xx other than 401/403, with the server's message."""

    def __init__(self, status: int, message: str, data: Any = None) -> None:
        self.status = status
        self.data = data
        super().__init__(message)


def _reason(e: BaseException) -> str:
    """`connection refused` rather than httpx's wrapped repr."""
    seen: BaseException | None = e
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno:
            if seen.errno == errno.ECONNREFUSED:
                return "connection refused"
            return (seen.strerror or str(seen)).lower()
        seen = seen.__cause__ or seen.__context__
    text = str(e) or type(e).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.removeprefix("[Errno 111] ").splitlines()[0]


# -- commands ----------------------------------------------------------------------------


def cmd_alerts(args: argparse.Namespace) -> int:
    params: list[tuple[str, str]] = [("label", lbl) for lbl in args.label]
    for key in ("state", "severity", "rule"):
        value = getattr(args, key)
        if value is not None:
            params.append((key, value))
    with Client.from_args(args) as c:
        alerts: list[dict[str, Any]] = c.call("GET", "/api/v1/alerts", params=params)["alerts"]
    if args.format == "json":
        _dump(alerts)
        return 0
    if not alerts:
        print("no active alerts")
        return 0
    order = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    alerts.sort(key=lambda a: (order.get(str(a.get("severity")), 9), str(a.get("starts_at"))))
    table = _table("fingerprint", "severity", "state", "rule", "labels", "value", "since", "marks")
    now = time.time()
    for a in alerts:
        table.add_row(
            str(a.get("fingerprint")),
            str(a.get("severity")),
            str(a.get("state")),
            str(a.get("rule")),
            _labels(a.get("labels")),
            _value(a.get("value")),
            _age(a.get("starts_at"), now),
            _marks(a),
        )
    _print(table, f"{len(alerts)} active alert(s)")
    for line in evidence_lines(alerts, args.evidence):
        print(line)
    return 0


def _resolve_id(c: Client, fp: str) -> str:
    """A unique prefix of an active alert's fingerprint stands for it, as in git."""
    try:
        c.call("GET", f"/api/v1/alerts/{_seg(fp)}")
        return fp
    except Status as e:
        if e.status != 404:
            raise
    matches = [
        str(a["fingerprint"])
        for a in c.call("GET", "/api/v1/alerts")["alerts"]
        if str(a.get("fingerprint", "")).startswith(fp)
    ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise ClientError(f"alert id {fp} is ambiguous: it starts {len(matches)} fingerprints")
    raise ClientError(f"no alert {fp}")


def cmd_ack(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"note": args.note}
    if args.by:
        body["by"] = args.by
    if args.for_:
        body["for"] = args.for_
    if args.until:
        body["until"] = args.until
    with Client.from_args(args) as c:
        fp = _resolve_id(c, args.id)
        a = c.call("POST", f"/api/v1/alerts/{_seg(fp)}/ack", body=body)
    until = (a.get("acknowledged") or {}).get("until")
    print(
        f"acknowledged {fp} ({a.get('rule')} {_labels(a.get('labels'))}) "
        f"until {_when(until) if until else 'it resolves'}"
    )
    return 0


def cmd_unack(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        fp = _resolve_id(c, args.id)
        a = c.call("POST", f"/api/v1/alerts/{_seg(fp)}/unack", body={})
    print(f"unacknowledged {fp} ({a.get('rule')} {_labels(a.get('labels'))})")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"matchers": args.match, "reason": args.reason}
    if args.for_:
        body["for"] = args.for_
    if args.until:
        body["until"] = args.until
    if args.starts:
        body["starts"] = args.starts
    with Client.from_args(args) as c:
        s = c.call("POST", "/api/v1/silences", body=body)
    if args.format == "json":
        _dump(s)
        return 0
    print(
        f"silence {s.get('id')} created: {_matchers(s.get('matchers'))} "
        f"until {_when(s.get('until'))}"
    )
    return 0


def cmd_silences(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        params = {"all": "true"} if args.all else None
        silences: list[dict[str, Any]] = c.call("GET", "/api/v1/silences", params=params)[
            "silences"
        ]
    if args.format == "json":
        _dump(silences)
        return 0
    if not silences:
        print("no silences")
        return 0
    table = _table("id", "state", "matchers", "starts", "until", "reason", "by")
    for s in silences:
        table.add_row(
            str(s.get("id")),
            str(s.get("state", "")),
            _matchers(s.get("matchers")),
            _when(s.get("starts")),
            _when(s.get("until")),
            str(s.get("reason") or ""),
            str(s.get("created_by") or ""),
        )
    _print(table, f"{len(silences)} silence(s)")
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        c.call("DELETE", f"/api/v1/silences/{_seg(args.silence_id)}")
    print(f"silence {args.silence_id} expired")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        st: dict[str, Any] = c.call("GET", "/api/v1/status")
    if args.format == "json":
        _dump(st)
        return 0
    print(f"vigil {st.get('version', '?')} at {c.url}")
    for key, value in st.items():
        if key in ("version", "last_reload", "rule_problems"):
            continue
        print(f"{key}: {_when(value) if key in ('started',) else _plain(value)}")
    lr = st.get("last_reload")
    if isinstance(lr, dict):
        if lr.get("at"):
            print(f"last reload: {'ok' if lr.get('ok') else 'FAILED'} at {_when(lr['at'])}")
        else:
            print("last reload: none since start")
        for err in lr.get("errors") or []:
            print(f"  {err}")
    problems = st.get("rule_problems") or []
    if problems:
        print(f"rule problems: {len(problems)}")
        for p in problems:
            print(
                f"  {p.get('problem')} {p.get('rule')}: {' '.join(str(p.get('message')).split())}"
            )
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    with Client.from_args(args) as c:
        try:
            c.call("POST", "/api/v1/reload", body={})
        except Status as e:
            if e.status == 422 and isinstance(e.data, dict):
                # the problems are the useful part: one line each, then the summary
                for err in e.data.get("errors") or []:
                    print(" ".join(str(err).split()), file=sys.stderr)
            raise
    print("configuration reloaded")
    return 0


# -- output ------------------------------------------------------------------------------


def _seg(s: str) -> str:
    """A path segment: ids are hex, but whatever was typed must stay one segment."""
    from urllib.parse import quote

    return quote(s, safe="")


def _dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


_NO_WRAP = {"fingerprint", "id", "severity", "state", "value", "since", "starts", "until"}


def _table(*columns: str) -> Rows:
    return Rows(*columns, no_wrap=frozenset(_NO_WRAP))


def _print(table: Rows, caption: str) -> None:
    table.show(caption)


def _labels(labels: Any) -> str:
    if not isinstance(labels, dict):
        return ""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _matchers(matchers: Any) -> str:
    out = []
    for m in matchers or []:
        neg = "!" if m.get("negate") else ""
        if "regex" in m:
            out.append(f"{m.get('label')}{neg or '='}~{m['regex']}")
        else:
            out.append(f"{m.get('label')}{neg}={m.get('value')}")
    return ", ".join(out)


def _value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _marks(a: Mapping[str, Any]) -> str:
    marks = []
    ack = a.get("acknowledged")
    if ack:
        marks.append(f"acked by {ack.get('by')}")
    if a.get("silenced"):
        marks.append("silenced")
    if a.get("inhibited"):
        marks.append("inhibited")
    if a.get("flapping"):
        marks.append("flapping")
    if a.get("stale"):
        marks.append("stale")
    return ", ".join(marks)


def _parse(ts: Any) -> datetime | None:
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts)
    except ValueError:
        return None


def _when(ts: Any) -> str:
    """A time from the API in the reader's local time zone."""
    dt = _parse(ts)
    if dt is None:
        return "" if ts is None else str(ts)
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _age(ts: Any, now: float) -> str:
    """Two units are enough to read an age: 45s, 12m3s, 5h12m, 3d4h."""
    dt = _parse(ts)
    if dt is None:
        return ""
    s = max(0, int(now - dt.timestamp()))
    for big, small, size, sub in (("d", "h", 86400, 3600), ("h", "m", 3600, 60), ("m", "s", 60, 1)):
        if s >= size:
            rest = (s % size) // sub
            return f"{s // size}{big}" + (f"{rest}{small}" if rest else "")
    return f"{s}s"


def _plain(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else str(v)
