"""Alerting rules: the same scenarios through Debian's Prometheus and `vigil run`.

One Prometheus (scraping a local exporter every 200 ms, evaluating every second)
and one vigil daemon (a `file` collector read every 100 ms, the rule group
evaluated every second) run every scenario of prom_scenarios.py side by side on
one timeline; the exporter's series and vigil's file change at the same instants.

What is compared, per scenario and per alert (label set):
- the label sets of the alerts (Prometheus's minus alertname/job/instance; vigil's
  with its severity), and the sequence of states each went through;
- each transition's time: within one evaluation interval plus one scrape (and a
  margin for a loaded machine), since each program sees a change at its own next
  evaluation;
- the timers exactly, to half an interval: firing - pending (`for`), and the
  resolve of a rule minus the resolve of its twin without timers
  (`keep_firing_for` counted from the first false evaluation). Both are whole
  evaluation intervals in each program, whatever its phase.

Prometheus's transitions come from polling /api/v1/rules every 100 ms: the time of
a state change is `activeAt` for pending, the rule's `lastEvaluation` otherwise
(both are evaluation timestamps; a poll that sees a new state before Prometheus
has stamped the evaluation waits for the stamp). vigil's come from its journal.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.differential.harness import (
    Exporter,
    binary,
    free_port,
    parse_ts,
    run_binary,
    run_timeline,
)
from tests.differential.prom_scenarios import (
    HYSTERESIS,
    SCENARIOS,
    PromScenario,
    prometheus_rules,
    series_labels,
    vigil_rules,
)
from tests.integration.daemon import Daemon

pytestmark = pytest.mark.slow

INTERVAL = 1.0
SCRAPE = 0.2
ABS_TOL = INTERVAL + SCRAPE + 0.6  # each program's own next evaluation, plus load
REL_TOL = 0.5 * INTERVAL  # timers are whole intervals in both programs
SETTLE = 3.0  # after the last step: the longest keep_firing_for, plus an evaluation

Key = tuple[tuple[str, str], ...]
Timeline = dict[str, dict[Key, list[tuple[float, str]]]]  # rule -> labels -> [(t, state)]
ALL = (*SCENARIOS, HYSTERESIS)

PROMETHEUS_YML = """\
global:
  scrape_interval: {scrape}
  scrape_timeout: 150ms
  evaluation_interval: {interval}
rule_files: [{rules}]
scrape_configs:
  - job_name: diff
    static_configs: [{{targets: ['127.0.0.1:{port}']}}]
"""


@dataclass
class Runs:
    t0: float
    prometheus: Timeline = field(default_factory=dict)
    vigil: Timeline = field(default_factory=dict)


def _key(labels: dict[str, str]) -> Key:
    return tuple(sorted(labels.items()))


class RulesPoller:
    """State changes of Prometheus's alerts, read from /api/v1/rules."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[tuple[str, Key], str] = {}
        self.out: Timeline = {}
        self.client = httpx.Client(timeout=2)
        self.last_eval: dict[str, float] = {}
        # Prometheus updates an alert's state before the rule's lastEvaluation, so
        # a poll between the two sees the new state with the previous evaluation's
        # time; such entries wait here for the rule's next lastEvaluation.
        self.unstamped: list[tuple[str, list[tuple[float, str]], int]] = []

    def poll(self) -> None:
        data = self.client.get(f"{self.url}/api/v1/rules", params={"type": "alert"}).json()
        now: dict[tuple[str, Key], tuple[str, float]] = {}
        evaluated: dict[str, float] = {}
        for group in data["data"]["groups"]:
            for rule in group["rules"]:
                evaluated[rule["name"]] = parse_ts(rule["lastEvaluation"])
                for a in rule["alerts"]:
                    labels = {
                        k: v
                        for k, v in a["labels"].items()
                        if k not in ("alertname", "job", "instance")
                    }
                    now[(rule["name"], _key(labels))] = (a["state"], parse_ts(a["activeAt"]))
        still = []
        for name, seq, i in self.unstamped:
            if evaluated[name] > seq[i][0]:
                seq[i] = (evaluated[name], seq[i][1])
            else:
                still.append((name, seq, i))
        self.unstamped = still

        def record(name: str, key: Key, at: float | None, state: str) -> None:
            seq = self.out.setdefault(name, {}).setdefault(key, [])
            stale = at is None and evaluated[name] == self.last_eval.get(name)
            seq.append((evaluated[name] if at is None else at, state))
            if stale:
                self.unstamped.append((name, seq, len(seq) - 1))

        for (name, key), (state, active_at) in now.items():
            if self.seen.get((name, key)) != state:
                first = state == "pending" or (name, key) not in self.seen
                record(name, key, active_at if first else None, state)
                self.seen[(name, key)] = state
        for (name, key), state in list(self.seen.items()):
            if (name, key) not in now:
                record(name, key, None, "resolved" if state == "firing" else "inactive")
                del self.seen[(name, key)]
        self.last_eval = evaluated


def vigil_timeline(events: list[dict[str, Any]], rules: set[str]) -> Timeline:
    out: Timeline = {}
    for e in events:
        if (
            e.get("rule") in rules
            and "alert" in e
            and e["event"] in ("pending", "firing", "resolved", "inactive")
        ):
            labels = {"severity": e["severity"], **e.get("labels", {})}
            out.setdefault(e["rule"], {}).setdefault(_key(labels), []).append(
                (parse_ts(e["ts"]), e["event"])
            )
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    prometheus = binary("prometheus")
    tmp = tmp_path_factory.mktemp("diff-prometheus")
    state: dict[str, dict[str, float]] = {sc.id: dict(sc.steps[0][1]) for sc in ALL}
    with Exporter() as exporter:
        daemon = Daemon(tmp / "vigil", vigil_rules(ALL, f"{int(INTERVAL * 1000)}ms"))

        def publish() -> None:
            exporter.set(
                {
                    f"{sid}_v": {_key(series_labels(k)): v for k, v in series.items()}
                    for sid, series in state.items()
                }
            )
            daemon.set_values(
                {
                    sid: [{"labels": series_labels(k), "value": v} for k, v in series.items()]
                    for sid, series in state.items()
                }
            )

        publish()
        (tmp / "rules.yml").write_text(prometheus_rules(ALL, f"{int(INTERVAL * 1000)}ms"))
        (tmp / "prometheus.yml").write_text(
            PROMETHEUS_YML.format(
                scrape=f"{int(SCRAPE * 1000)}ms",
                interval=f"{int(INTERVAL * 1000)}ms",
                rules=tmp / "rules.yml",
                port=exporter.port,
            )
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            prometheus,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        daemon.start()
        try:
            with run_binary(argv, tmp / "prometheus.log", f"{url}/-/ready"):
                _wait_scraped(url)
                poller = RulesPoller(url)
                t0 = time.time() + 1.0
                steps = []
                for sc in ALL:
                    for offset, series in sc.steps[1:]:

                        def act(sid: str = sc.id, series: Any = series) -> None:
                            state[sid] = dict(series)
                            publish()

                        steps.append((offset, act))
                end = max(sc.end for sc in ALL) + SETTLE + 2 * INTERVAL
                run_timeline(t0, steps, end, tick=poller.poll)
                rules = {sc.id for sc in ALL} | {f"{sc.id}_twin" for sc in ALL}
                yield Runs(t0, poller.out, vigil_timeline(daemon.events(), rules))
        finally:
            daemon.stop()


def _wait_scraped(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="diff"}'}, timeout=2).json()
        if any(s["value"][1] == "1" for s in r["data"]["result"]):
            return
        time.sleep(0.1)
    raise AssertionError("Prometheus never scraped the exporter")


def _show(t0: float, tl: dict[Key, list[tuple[float, str]]]) -> str:
    return "; ".join(
        f"{dict(k)}: " + ", ".join(f"{s}@{t - t0:.2f}" for t, s in v) for k, v in sorted(tl.items())
    )


def compare(sc: PromScenario, runs: Runs) -> None:
    t0 = runs.t0
    for rule in (sc.id, f"{sc.id}_twin"):
        p, v = runs.prometheus.get(rule, {}), runs.vigil.get(rule, {})
        where = f"{rule}:\n  prometheus: {_show(t0, p)}\n  vigil:      {_show(t0, v)}"
        assert set(p) == set(v), f"label sets differ; {where}"
        for key in p:
            assert [s for _, s in p[key]] == [s for _, s in v[key]], f"states differ; {where}"
            for (tp, s), (tv, _) in zip(p[key], v[key], strict=True):
                assert abs(tp - tv) <= ABS_TOL, f"{s} {tv - tp:+.2f}s apart; {where}"
    # the timers, measured in each program from its own evaluations
    for key in runs.prometheus.get(sc.id, {}):
        timers_p = _timers(runs.prometheus, sc.id, key)
        timers_v = _timers(runs.vigil, sc.id, key)
        where = f"timers (for, keep_firing_for) prometheus {timers_p} vigil {timers_v}"
        assert len(timers_p) == len(timers_v), where
        for (what, dp), (_, dv) in zip(timers_p, timers_v, strict=True):
            assert abs(dp - dv) <= REL_TOL, f"{what}: {where}"


def _timers(tl: Timeline, rule: str, key: Key) -> list[tuple[str, float]]:
    """firing - pending, and resolved - the twin's latest resolve before it."""
    out = []
    seq = tl.get(rule, {}).get(key, [])
    twin = tl.get(f"{rule}_twin", {}).get(key, [])
    for (t_prev, s_prev), (t, s) in itertools.pairwise(seq):
        if s == "firing" and s_prev == "pending":
            out.append(("for", round(t - t_prev, 2)))
        if s == "resolved":
            ends = [tt for tt, ss in twin if ss == "resolved" and tt <= t + 0.2]
            out.append(("keep_firing_for", round(t - ends[-1], 2) if ends else float("nan")))
    return out


@pytest.mark.parametrize("sc", SCENARIOS, ids=lambda sc: sc.id)
def test_rule_scenario(sc: PromScenario, runs: Runs) -> None:
    """Each scenario's docstring is its `doc` in prom_scenarios.py."""
    compare(sc, runs)


def test_at_least_fifteen_scenarios() -> None:
    assert len(SCENARIOS) >= 15


def test_hysteresis_differs_on_purpose(runs: Runs) -> None:
    """Intentional difference: vigil's `resolve_expr` (hysteresis) keeps a firing alert
    until its own condition holds; Prometheus has no such thing and resolves at the
    first false evaluation. The twin (no resolve_expr) resolves as Prometheus does."""
    sc = HYSTERESIS
    key = (("host", "a"), ("severity", "warning"))
    prom = runs.prometheus[sc.id][key]
    vig = runs.vigil[sc.id][key]
    assert [s for _, s in prom] == [s for _, s in vig] == ["firing", "resolved"], (prom, vig)
    assert 4 <= prom[1][0] - runs.t0 <= 4 + ABS_TOL  # value 4: not above 5 any more
    assert 7 <= vig[1][0] - runs.t0 <= 7 + ABS_TOL  # value 1: below resolve_expr's 3
    twin = [(t - runs.t0, s) for t, s in runs.vigil[f"{sc.id}_twin"][key]]
    assert [s for _, s in twin] == ["firing", "resolved"], twin
    assert 4 <= twin[1][0] <= 4 + ABS_TOL, twin
