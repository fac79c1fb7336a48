"""The worker: the one scheduler of the machine, the command queue, crash recovery, index upkeep."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, or_, select, update

from backupmanager import appcache, services
from backupmanager.clock import Clock, instance_timezone, system_clock
from backupmanager.commands import (
    claim_command,
    finish_command,
    prune_finished_commands,
    run_command,
)
from backupmanager.cron import next_run_after
from backupmanager.db import Database
from backupmanager.drill import drill_schedules, queue_drill
from backupmanager.index import sync_index
from backupmanager.models import (
    COMMAND_FAILED,
    COMMAND_QUEUED,
    COMMAND_RUNNING,
    RESTORE_QUEUED,
    RESTORE_RUNNING,
    RUN_INTERRUPTED,
    RUN_QUEUED,
    RUN_RUNNING,
    Command,
    Job,
    Restore,
    Run,
    WorkerState,
)
from backupmanager.runner import (
    remove_partial_files,
    restart_services_of_dead_runs,
    sweep_partial_files,
)
from backupmanager.scheduler import JobScheduler
from backupmanager.settings import Settings

logger = logging.getLogger(__name__)
INDEX_SYNC_EVERY_SECONDS = 10.0
MAX_PARALLEL_RUNS = 2


class WorkerAlreadyRunning(RuntimeError):
    """Another worker holds the lock: there must be exactly one scheduler per machine."""


def is_backupmanager_process(pid: int | None) -> bool:
    """True while `pid` is a live BackupManager process (guards against reused pids)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"backupmanager" in cmdline


def _mark_dead(
    session: Any,
    model: type[Run | Restore],
    now: datetime,
    in_flight: frozenset[int],
    message: str,
) -> list[int]:
    """Rows of `model` still `running` whose process is gone: interrupted, their commands failed."""
    running = session.scalars(select(model).where(model.status == RUN_RUNNING)).all()
    dead = [
        row
        for row in running
        if row.id not in in_flight
        and (row.pid == os.getpid() or not is_backupmanager_process(row.pid))
    ]
    for row in dead:
        row.error_message = message.format(phase=row.phase or "start")
        row.status = RUN_INTERRUPTED
        row.finished_at = now
        row.phase = "interrupted"
        row.log_text += f"{now:%H:%M:%S} Interrupted: its process is gone.\n"
    dead_ids = [row.id for row in dead]
    if dead_ids:
        column = Command.run_id if model is Run else Command.restore_id
        session.execute(
            update(Command)
            .where(column.in_(dead_ids), Command.status.in_((COMMAND_QUEUED, COMMAND_RUNNING)))
            .values(status=COMMAND_FAILED, finished_at=now, error="interrupted")
        )
    return dead_ids


def recover_dead_runs(
    db: Database, settings: Settings, now: datetime, *, in_flight: frozenset[int] = frozenset()
) -> list[int]:
    """Mark runs whose process died as interrupted, fail their commands, remove their partial files.

    At start-up nothing is in flight, so every run still marked running is checked; later the
    worker also catches a CLI that ran a job itself and was killed.
    """
    with db.write() as session:
        dead_ids = _mark_dead(
            session,
            Run,
            now,
            in_flight,
            "The run was interrupted (the service stopped or crashed). Its unfinished files "
            "were removed; run the job again.",
        )
    for run_id in dead_ids:
        for path in remove_partial_files(settings.archives_dir, run_id):
            logger.warning("removed %s left by interrupted run %s", path.name, run_id)
    return dead_ids


def recover_dead_restores(
    db: Database, now: datetime, *, in_flight: frozenset[int] = frozenset()
) -> list[int]:
    """Restores whose process died: interrupted, saying that some steps may already be done."""
    with db.write() as session:
        return _mark_dead(
            session,
            Restore,
            now,
            in_flight,
            "The restore was interrupted (the service stopped or crashed) during '{phase}'. "
            "The steps listed as done were done; files may be partly restored. Run the restore "
            "again.",
        )


def fail_orphaned_commands(db: Database, now: datetime) -> list[int]:
    """Commands left `running` by a worker that stopped, whose run or restore is not going on.

    At start-up no worker holds any command, so such a command will never finish by itself
    (e.g. the worker died during retention, after its run succeeded). Runs and restores that are
    still going on (a CLI running a job itself) keep theirs.
    """
    active_runs = select(Run.id).where(Run.status.in_((RUN_QUEUED, RUN_RUNNING)))
    active_restores = select(Restore.id).where(
        Restore.status.in_((RESTORE_QUEUED, RESTORE_RUNNING))
    )
    with db.write() as session:
        orphans = list(
            session.scalars(
                select(Command.id).where(
                    Command.status == COMMAND_RUNNING,
                    or_(Command.run_id.is_(None), Command.run_id.not_in(active_runs)),
                    or_(Command.restore_id.is_(None), Command.restore_id.not_in(active_restores)),
                )
            )
        )
        if orphans:
            session.execute(
                update(Command)
                .where(Command.id.in_(orphans))
                .values(
                    status=COMMAND_FAILED,
                    finished_at=now,
                    error="interrupted: the worker stopped before this command finished",
                )
            )
    return orphans


def catch_up_missed_slots(db: Database, settings: Settings, now: datetime) -> list[int]:
    """A slot missed while the worker was down runs once at start-up, not once per slot (S-S)."""
    timezone = instance_timezone(settings)
    queued: list[int] = []
    with db.read() as session:
        last_runs = dict(
            session.execute(select(Run.job_id, func.max(Run.queued_at)).group_by(Run.job_id)).all()
        )
        jobs = session.scalars(select(Job).where(Job.enabled.is_(True))).all()
    for job in jobs:
        reference = max(filter(None, (job.created_at, last_runs.get(job.id))))
        try:
            slot = next_run_after(job.cron_expr, timezone, reference)
        except ValueError:
            continue
        if slot is not None and slot <= now:
            queued_run = services.queue_run(
                db, job.id, trigger="catch-up", requested_by="worker", now=now
            )
            if queued_run.created:
                queued.append(job.id)
                logger.info("job %s missed its slot of %s: running it now", job.id, slot)
    return queued


class Worker:
    """Scheduler + runner in one root process; one per machine, guarded by a lock file."""

    def __init__(self, settings: Settings, *, clock: Clock = system_clock) -> None:
        self.settings = settings
        self.clock = clock
        self.db = Database(settings)
        self.stop_event = threading.Event()
        self._lock_file: IO[str] | None = None
        self._executor = ThreadPoolExecutor(max_workers=MAX_PARALLEL_RUNS, thread_name_prefix="run")
        self._in_flight: set[int] = set()
        self._restores_in_flight: set[int] = set()
        self._in_flight_lock = threading.Lock()
        self._scheduler = JobScheduler(
            instance_timezone(settings), self._on_fire, on_drill=self._on_drill
        )
        self._last_index_sync = 0.0
        self._last_catalog_refresh = 0.0

    def acquire_lock(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        lock_path = self.settings.data_dir / "worker.lock"
        handle = lock_path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise WorkerAlreadyRunning(
                f"another BackupManager worker is already running (pid {holder}); "
                "only one may run per machine"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def start(self) -> None:
        self.acquire_lock()
        now = self.clock()
        with self.db.write() as session:
            state = session.get(WorkerState, 1) or WorkerState(id=1)
            state.pid, state.hostname = os.getpid(), socket.gethostname()
            state.started_at = state.heartbeat_at = now
            session.merge(state)
        for run_id in recover_dead_runs(self.db, self.settings, now):
            logger.warning("run %s was interrupted", run_id)
        for restore_id in recover_dead_restores(self.db, now):
            logger.warning("restore %s was interrupted", restore_id)
        for command_id in fail_orphaned_commands(self.db, now):
            logger.warning("command %s was interrupted", command_id)
        self.sync_index()
        catch_up_missed_slots(self.db, self.settings, now)
        self._sync_schedules()
        self._scheduler.start()

    def _on_fire(self, job_id: int) -> None:
        try:
            queued = services.queue_run(
                self.db, job_id, trigger="schedule", requested_by="scheduler", now=self.clock()
            )
        except services.NotFound:
            return
        if not queued.created:
            logger.info(
                "job %s is still running (run %s): this slot is skipped", job_id, queued.run_id
            )

    def _on_drill(self, job_id: int) -> None:
        try:
            queue_drill(self.db, job_id, requested_by="scheduler", now=self.clock())
        except (services.NotFound, services.InputError) as error:
            logger.warning("scheduled restore drill of job %s not started: %s", job_id, error)

    def _sync_schedules(self) -> None:
        with self.db.read() as session:
            rows = session.execute(select(Job.id, Job.cron_expr).where(Job.enabled.is_(True))).all()
        self._scheduler.sync([(job_id, expression) for job_id, expression in rows])
        self._scheduler.sync_drills(drill_schedules(self.db))

    def sync_index(self) -> None:
        for path in sweep_partial_files(self.db, self.settings.archives_dir):
            logger.warning("removed %s, left by a run that is over", path.name)
        for key, errors in restart_services_of_dead_runs(self.db, self.settings).items():
            logger.warning("started again the services %s had stopped (%s)", key, errors or "ok")
        with self.db.write() as session:
            sync_index(session, self.settings.archives_dir, self.settings.instance_name)

    def tick(self) -> None:
        """One pass of the main loop: heartbeat, schedules, queued commands, index, dead runs."""
        now = self.clock()
        with self.db.write() as session:
            session.execute(update(WorkerState).where(WorkerState.id == 1).values(heartbeat_at=now))
        self._sync_schedules()
        if now.timestamp() - self._last_catalog_refresh >= appcache.REFRESH_EVERY.total_seconds():
            # The web process cannot run `yunohost app list` (root only): keep its copy fresh.
            self._last_catalog_refresh = now.timestamp()
            appcache.queue_refresh(self.db, now=now, requested_by="worker")
            prune_finished_commands(self.db, now)
        self._dispatch_commands()
        if now.timestamp() - self._last_index_sync >= INDEX_SYNC_EVERY_SECONDS:
            self._last_index_sync = now.timestamp()
            self.sync_index()
            recover_dead_runs(
                self.db, self.settings, now, in_flight=frozenset(self._in_flight_runs())
            )
            with self._in_flight_lock:
                restores = frozenset(self._restores_in_flight)
            recover_dead_restores(self.db, now, in_flight=restores)

    def _in_flight_runs(self) -> set[int]:
        with self._in_flight_lock:
            return set(self._in_flight)

    def _dispatch_commands(self) -> None:
        with self.db.read() as session:
            commands = session.scalars(
                select(Command)
                .where(Command.status == COMMAND_QUEUED)
                .order_by(Command.id)
                .limit(10)
            ).all()
        for command in commands:
            with self._in_flight_lock:
                if len(self._in_flight) >= MAX_PARALLEL_RUNS:
                    return
            if not claim_command(self.db, command.id, self.clock()):
                continue
            with self._in_flight_lock:
                self._in_flight.add(command.run_id or -command.id)
                if command.restore_id is not None:
                    self._restores_in_flight.add(command.restore_id)
            self._executor.submit(self._run_command, command)

    def _run_command(self, command: Command) -> None:
        try:
            run_command(self.db, self.settings, command, self.clock)
        except Exception:  # a failure here must not kill the worker thread pool
            logger.exception("command %s failed", command.id)
            finish_command(self.db, command.id, self.clock(), ok=False, result={"error": "crashed"})
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(command.run_id or -command.id)
                if command.restore_id is not None:
                    self._restores_in_flight.discard(command.restore_id)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self.stop_event.wait(self.settings.poll_seconds):
                try:
                    self.tick()
                except Exception:  # keep the scheduler alive through a passing database error
                    logger.exception("worker loop error")
        finally:
            self.stop()

    def stop(self) -> None:
        self._scheduler.shutdown()
        self._executor.shutdown(wait=True)
        self.db.dispose()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
