"""APScheduler 3 wiring only: one cron trigger per enabled job, firing a callback (DESIGN §6)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import tzinfo

from apscheduler.schedulers.background import BackgroundScheduler

from backupmanager.cron import build_trigger

logger = logging.getLogger(__name__)
# A slot missed by a few hours (machine busy, suspended) still runs, once (coalesce).
MISFIRE_GRACE_SECONDS = 6 * 3600

JobSchedule = tuple[int, str]  # (job id, cron expression) of an enabled job


class JobScheduler:
    """Keeps APScheduler's jobs equal to the enabled jobs of the database."""

    def __init__(
        self,
        timezone: tzinfo,
        on_fire: Callable[[int], None],
        *,
        on_drill: Callable[[int], None] | None = None,
    ) -> None:
        self._timezone = timezone
        self._on_fire = on_fire
        self._on_drill = on_drill
        self._current: dict[int, str] = {}
        self._drills: dict[int, str] = {}  # restore drills of database jobs (drill.py)
        self._scheduler = BackgroundScheduler(
            timezone=timezone,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
            },
        )

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def sync(self, schedules: list[JobSchedule]) -> None:
        """Add, replace and remove triggers so they match `schedules`; cheap when nothing changed."""
        wanted = dict(schedules)
        for job_id in set(self._current) - set(wanted):
            self._scheduler.remove_job(str(job_id))
            del self._current[job_id]
        for job_id, expression in wanted.items():
            if self._current.get(job_id) == expression:
                continue
            try:
                trigger = build_trigger(expression, self._timezone)
            except ValueError as error:  # validated on input; an old bad row must not stop the rest
                logger.error("job %s has an unusable schedule %r: %s", job_id, expression, error)
                continue
            self._scheduler.add_job(
                self._on_fire,
                trigger=trigger,
                args=(job_id,),
                id=str(job_id),
                replace_existing=True,
            )
            self._current[job_id] = expression

    def sync_drills(self, schedules: list[JobSchedule]) -> None:
        """Like `sync`, for the `drill_cron` of database jobs (APScheduler ids `drill-<job>`)."""
        wanted = dict(schedules) if self._on_drill is not None else {}
        for job_id in set(self._drills) - set(wanted):
            self._scheduler.remove_job(f"drill-{job_id}")
            del self._drills[job_id]
        for job_id, expression in wanted.items():
            if self._drills.get(job_id) == expression:
                continue
            try:
                trigger = build_trigger(expression, self._timezone)
            except ValueError as error:
                logger.error(
                    "job %s has an unusable drill schedule %r: %s", job_id, expression, error
                )
                continue
            self._scheduler.add_job(
                self._on_drill,
                trigger=trigger,
                args=(job_id,),
                id=f"drill-{job_id}",
                replace_existing=True,
            )
            self._drills[job_id] = expression

    def next_fire_times(self) -> dict[int, object]:
        return {
            int(job.id): job.next_run_time
            for job in self._scheduler.get_jobs()
            if not str(job.id).startswith("drill-")
        }
