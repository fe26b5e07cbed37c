"""Scheduling: the APScheduler jobs of collectors and rule groups.

One interval job per collector and per group, added at start, changed by a
reload only where the configuration changed, and replanned when the wall clock
steps. Separate so the timing of runs is read in one place.
"""

from __future__ import annotations

import logging
import zlib
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine.config.model import Config, RuleGroup
from engine.daemon.collecting import Collecting
from engine.runtime.clock_steps import replan

log = logging.getLogger("vigil")


class Scheduling(Collecting):
    """When collectors read and groups run."""

    scheduler: AsyncIOScheduler | None
    _overrun_logged: dict[str, float]

    def _reschedule(self, old: Config, new: Config) -> None:
        assert self.scheduler is not None
        sched = self.scheduler
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
                self._add_collector_job(sched, c.name)

    def _add_collector_job(self, sched: AsyncIOScheduler, name: str) -> None:
        c = self.collectors[name]
        sched.add_job(
            self.collect, "interval", args=[name], seconds=c.interval or self.config.default_interval,
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
            self.run_group, "interval", args=[g], seconds=g.interval,
            jitter=min(1.0, g.interval * 0.05), id=f"group:{g.name}",
            max_instances=1, coalesce=True, replace_existing=True,
            next_run_time=datetime.now(UTC) + timedelta(seconds=offset),
        )  # fmt: skip

    def schedule(self) -> AsyncIOScheduler:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent

        sched = AsyncIOScheduler()

        def skipped(event: JobSubmissionEvent) -> None:
            # APScheduler skips a run while the previous one still goes (max_instances=1):
            # an overrun, counted and reported at most once a minute per job
            job = str(event.job_id)
            if job.startswith("group:"):
                self.metrics.evaluation_overrun(job[6:])
            now = self.mono()
            if now - self._overrun_logged.get(job, -60.0) >= 60.0:
                self._overrun_logged[job] = now
                log.warning("%s overran its interval; the run that was due is skipped", job)

        sched.add_listener(skipped, EVENT_JOB_MAX_INSTANCES)
        for name in self.collectors:
            self._add_collector_job(sched, name)
        for g in self.config.groups:
            self._add_group_job(sched, g, spread=True)
        return sched

    def _clock_stepped(self, step: float) -> None:
        log.warning(
            "the wall clock stepped %+.1f s; runs and notification timers keep their intervals",
            step,
        )
        if self.scheduler is not None:
            replan(self.scheduler, step)
        self.dispatcher.clock_stepped(step)

    def _next_due(self) -> float | None:
        """Seconds until the scheduler's next job (the gap the garbage collector and
        big notification steps wait for)."""
        if self.scheduler is None:
            return None
        times = [j.next_run_time for j in self.scheduler.get_jobs() if j.next_run_time]
        return min(times).timestamp() - self.wall() if times else None
