"""Scheduling: the APScheduler jobs of collectors and rule groups.

One interval job per collector and per group, added at start, changed by a
reload only where the configuration changed, and replanned when the wall clock
steps. Separate so the timing of runs is read in one place.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine.config.model import Config, RuleGroup
from engine.daemon.clock import Clock
from engine.daemon.collecting import Collecting
from engine.daemon.evaluation import Evaluation
from engine.daemon.metrics import Metrics
from engine.daemon.react import Reactor
from engine.runtime.clock_steps import replan

if TYPE_CHECKING:
    from engine.report.deliver import ReportRunner

log = logging.getLogger("vigil")

SHUTDOWN_DRAIN_SECONDS = 5.0


class Scheduler:
    """Owns the timers: when each collector reads (`Collecting.collect`) and each
    group runs (`Evaluation.run_group`), and the overruns of both."""

    def __init__(
        self,
        collecting: Collecting,
        evaluation: Evaluation,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.collecting = collecting
        self.evaluation = evaluation
        self.metrics = metrics
        self.clock = clock
        self.scheduler: AsyncIOScheduler | None = None  # once started
        # between the ticks: a pass on a write, an evaluation on news (react.py)
        self.reactor = Reactor(collecting, evaluation, clock)
        self._overrun_logged: dict[str, float] = {}
        self.reports: ReportRunner | None = None  # scheduled reports (engine/report/deliver.py)

    def start(self, config: Config) -> None:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent

        sched = AsyncIOScheduler()

        def skipped(event: JobSubmissionEvent) -> None:
            # APScheduler skips a run while the previous one still goes (max_instances=1):
            # an overrun, counted and reported at most once a minute per job
            job = str(event.job_id)
            if job.startswith("group:"):
                self.metrics.evaluation_overrun(job[6:])
            now = self.clock.mono()
            if now - self._overrun_logged.get(job, -60.0) >= 60.0:
                self._overrun_logged[job] = now
                log.warning("%s overran its interval; the run that was due is skipped", job)

        sched.add_listener(skipped, EVENT_JOB_MAX_INSTANCES)
        for name in self.collecting.collectors:
            self._add_collector_job(sched, name, config)
        for g in config.groups:
            self._add_group_job(sched, g, spread=True)
        if self.reports is not None:
            for r in config.reports:
                self._plan_report(sched, r.name)
        self.scheduler = sched
        sched.start()
        self.reactor.start(config)

    def reschedule(self, old: Config, new: Config) -> None:
        """Change the jobs where `new` differs from `old` (no-op before the start)."""
        sched = self.scheduler
        if sched is None:
            return
        old_groups = {g.name: g for g in old.groups}
        new_groups = {g.name: g for g in new.groups}
        for name, g in old_groups.items():
            if new_groups.get(name) != g:
                sched.remove_job(f"group:{name}")
                self.metrics.forget_group(name)
        for name, g in new_groups.items():
            if old_groups.get(name) != g:
                self._add_group_job(sched, g, spread=False)
        old_cc = {c.name: c for c in old.collectors}
        for c in old.collectors:
            if c not in new.collectors:
                sched.remove_job(f"collect:{c.name}")
        for c in new.collectors:
            if old_cc.get(c.name) != c:
                self._add_collector_job(sched, c.name, new)
        if self.reports is not None and old.reports != new.reports:
            self.reports.config = new
            for r in old.reports:
                if sched.get_job(f"report:{r.name}") is not None:
                    sched.remove_job(f"report:{r.name}")
            for r in new.reports:
                self._plan_report(sched, r.name)
        elif self.reports is not None:
            self.reports.config = new  # its channels and intervals
        self.reactor.reconfigure(new)

    def _plan_report(self, sched: AsyncIOScheduler, name: str) -> None:
        # one date job at a time per report: the next one is planned when it ran
        assert self.reports is not None
        nxt = self.reports.next(name)
        if nxt is None:
            return
        due, when = nxt
        sched.add_job(
            self._report, "date", args=[name, due], run_date=datetime.fromtimestamp(when, UTC),
            id=f"report:{name}", replace_existing=True, misfire_grace_time=None,
        )  # fmt: skip

    async def _report(self, name: str, due: float) -> None:
        assert self.reports is not None
        await self.reports.run(name, due)
        if self.scheduler is not None and any(r.name == name for r in self.reports.config.reports):
            self._plan_report(self.scheduler, name)

    def _add_collector_job(self, sched: AsyncIOScheduler, name: str, config: Config) -> None:
        c = self.collecting.collectors[name]
        sched.add_job(
            self.collecting.collect, "interval", args=[name],
            seconds=c.interval or config.default_interval,
            id=f"collect:{name}", max_instances=1, coalesce=True, replace_existing=True,
        )  # fmt: skip

    def _add_group_job(self, sched: AsyncIOScheduler, g: RuleGroup, *, spread: bool) -> None:
        # The first evaluation is now, not an interval later: a group added or changed
        # by a reload applies its rules at once, and after a start the replayed alerts
        # are judged on fresh values. `spread` (at start) staggers the groups' first
        # runs over up to a second, and jitter keeps groups with the same interval
        # from ticking all at once later on.
        offset = zlib.crc32(g.name.encode()) % 1000 / 1000 * min(1.0, g.interval) if spread else 0
        sched.add_job(
            self.evaluation.run_group, "interval", args=[g], seconds=g.interval,
            jitter=min(1.0, g.interval * 0.05), id=f"group:{g.name}",
            max_instances=1, coalesce=True, replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=offset),
        )  # fmt: skip

    def clock_stepped(self, step: float) -> None:
        if self.scheduler is not None:
            replan(self.scheduler, step)

    def next_due(self) -> float | None:
        """Seconds until the scheduler's next job (the gap the garbage collector and
        big notification steps wait for)."""
        if self.scheduler is None:
            return None
        times = [j.next_run_time for j in self.scheduler.get_jobs() if j.next_run_time]
        return min(times).timestamp() - self.clock.wall() if times else None

    async def stop(self) -> None:
        if self.scheduler is None:
            return
        # shutdown() cancels the jobs in flight, which APScheduler logs as a job
        # failure with a traceback: let them finish first (bounded: collectors
        # have their own timeouts, and a stop must not hang)
        self.scheduler.pause()
        await self.reactor.stop(SHUTDOWN_DRAIN_SECONDS)
        # a job handed to the loop just before the pause counts itself in
        # as collecting or running only at its first step: let it take it
        for _ in range(2):
            await asyncio.sleep(0)
        deadline = self.clock.mono() + SHUTDOWN_DRAIN_SECONDS
        while (self.evaluation.running or self.collecting.busy) and self.clock.mono() < deadline:
            await asyncio.sleep(0.01)
        self.scheduler.shutdown(wait=False)
