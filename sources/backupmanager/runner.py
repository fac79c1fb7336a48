"""Run one job end to end: back up, seal, name, index, rotate. The only catch-all error boundary."""

from __future__ import annotations

import json
import os
import traceback
from datetime import datetime, tzinfo
from pathlib import Path

from sqlalchemy import select, update

from backupmanager import __version__, prune, systemd
from backupmanager.archive import (
    PARTIAL_PREFIX,
    ArchiveError,
    archive_base_name,
    backup_info,
    choose_archive_name,
    read_info_beside,
    seal_yunohost_archive,
)
from backupmanager.clock import Clock, instance_timezone, system_clock
from backupmanager.db import Database
from backupmanager.index import ORIGIN_LOCAL, info_as_text, sync_index
from backupmanager.jobs import (
    BackupContext,
    BackupResult,
    JobConfigError,
    JobFailed,
    get_kind,
    parse_config,
)
from backupmanager.models import (
    RUN_ERROR,
    RUN_QUEUED,
    RUN_RUNNING,
    RUN_SUCCESS,
    Archive,
    Job,
    Run,
)
from backupmanager.process import ProcessError
from backupmanager.runlog import RunLog
from backupmanager.settings import Settings


def partial_name(run_id: int) -> str:
    return f"{PARTIAL_PREFIX}r{run_id}"


def remove_partial_files(archives_dir: Path, run_id: int) -> list[Path]:
    """Whatever an unfinished run left in the archives folder under its partial name."""
    removed = []
    for suffix in (".tar", ".tar.gz", ".info.json"):
        path = archives_dir / f"{partial_name(run_id)}{suffix}"
        if path.exists() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def _active_run_ids(db: Database) -> set[int]:
    with db.read() as session:
        return set(session.scalars(select(Run.id).where(Run.status.in_((RUN_QUEUED, RUN_RUNNING)))))


def sweep_partial_files(db: Database, archives_dir: Path) -> list[Path]:
    """Partial files of runs that are over (an orphaned YunoHost may finish after a crash)."""
    active = _active_run_ids(db)
    removed: list[Path] = []
    for path in archives_dir.glob(f"{PARTIAL_PREFIX}r*"):
        run_id = path.name.removeprefix(f"{PARTIAL_PREFIX}r").split(".", 1)[0]
        if run_id.isdigit() and int(run_id) not in active:
            removed += remove_partial_files(archives_dir, int(run_id))
    return removed


def restart_services_of_dead_runs(db: Database, settings: Settings) -> dict[str, list[str]]:
    """Services that a crashed run had stopped are started again; its log says so."""
    active_keys = {partial_name(run_id) for run_id in _active_run_ids(db)}
    timezone = instance_timezone(settings)
    logs: dict[str, RunLog] = {}

    def log(key: str, line: str) -> None:
        run_id = key.removeprefix(f"{PARTIAL_PREFIX}r")
        if run_id.isdigit():
            logs.setdefault(key, RunLog(db, int(run_id), timezone)).line(line)

    outcome = systemd.restart_left_stopped(settings, active_keys=active_keys, log=log)
    for run_log in logs.values():
        run_log.flush()
    return outcome


def _claim(db: Database, run_id: int, now: datetime) -> bool:
    """queued → running, atomically: if another process got it first, leave it alone."""
    with db.write() as session:
        claimed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RUN_QUEUED)
            .values(status=RUN_RUNNING, started_at=now, pid=os.getpid(), phase="starting")
        )
        return bool(getattr(claimed, "rowcount", 0))


class RunExecution:
    """The state of one run while it executes (kept out of the database transaction)."""

    def __init__(self, db: Database, settings: Settings, run_id: int, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.run_id = run_id
        self.clock = clock
        self.timezone: tzinfo = instance_timezone(settings)
        self.log = RunLog(db, run_id, self.timezone)

    def execute(self) -> str:
        started = self.clock()
        if not _claim(self.db, self.run_id, started):
            return ""
        with self.db.read() as session:
            run = session.get(Run, self.run_id)
            assert run is not None
            job = session.get(Job, run.job_id)
            assert job is not None
            session.expunge(job)
        self.log.line(f"Run {self.run_id} of job '{job.name}' ({job.type}) started.")
        try:
            archive_name = self._backup(job, started)
        except (JobFailed, JobConfigError, ArchiveError, ProcessError, OSError) as error:
            return self._fail(job, str(error))
        except Exception as error:  # the one catch-all: a bug must end the run, not the worker
            self.log.line("".join(traceback.format_exception(error)).rstrip())
            return self._fail(job, f"Unexpected error ({type(error).__name__}): {error}")
        finally:
            for path in remove_partial_files(self.settings.archives_dir, self.run_id):
                self.log.line(f"Removed unfinished file {path.name}.")
            self.log.flush()
        try:
            self._rotate(job)
        except Exception as error:  # the archive is safe: a retention problem must not hide it
            message = f"Retention could not be applied: {error}"
            self.log.line(message)
            with self.db.write() as session:
                session.execute(update(Job).where(Job.id == job.id).values(last_error=message))
        self.log.line(f"Run finished: success, archive {archive_name}.")
        self.log.flush()
        return RUN_SUCCESS

    def _backup(self, job: Job, started: datetime) -> str:
        kind = get_kind(job.type)
        config = parse_config(kind, json.loads(job.config_json))
        local_start = started.astimezone(self.timezone)
        label = kind.label(config)
        context = BackupContext(
            settings=self.settings,
            partial_name=partial_name(self.run_id),
            log=self.log.line,
            set_phase=self.log.phase,
            backup_info=backup_info(
                instance_name=self.settings.instance_name,
                instance_url=self.settings.instance_url,
                app=label,
                job_type=job.type,
                created_at=local_start,
                backupmanager_version=__version__,
                yunohost_version="",
                extra={"job_name": job.name, "job_id": job.id, "run_id": self.run_id},
            ),
            core_only=job.core_only,
            report_progress=self._report_progress,
        )
        result = kind.backup(config, context)
        if result.sha256 is not None:
            sha256, size_bytes = result.sha256, result.tar_path.stat().st_size
        else:
            self.log.phase("verifying the archive")
            info = {**context.backup_info, "yunohost_version": result.yunohost_version}
            sealed = seal_yunohost_archive(result.tar_path, info)
            if not sealed.embedded_backup_info:
                self.log.line("Compressed YunoHost archive: backup_info.json could not be added.")
            sha256, size_bytes = sealed.sha256, sealed.size_bytes
        self.log.line(f"Archive verified: {size_bytes} bytes, SHA256 {sha256}.")
        return self._publish(job, label, local_start, result, sha256, size_bytes)

    def _report_progress(self, done: int, total: int | None) -> None:
        with self.db.write() as session:
            session.execute(
                update(Run)
                .where(Run.id == self.run_id)
                .values(progress_bytes=done, estimated_bytes=total)
            )

    def _publish(
        self,
        job: Job,
        label: str,
        local_start: datetime,
        result: BackupResult,
        sha256: str,
        size_bytes: int,
    ) -> str:
        """Give the archive its final name and index it, in one write transaction.

        The transaction serializes this with the index sync of other processes, so nobody
        sees the final name without its index row. info.json is renamed before the tar
        (DESIGN §4): a crash in between leaves no tar under a final name.
        """
        archives_dir = self.settings.archives_dir
        base = archive_base_name(self.settings.instance_name, label, local_start)
        suffix = ".tar.gz" if result.tar_path.name.endswith(".tar.gz") else ".tar"
        with self.db.write() as session:
            # Bring the index up to date first: names of archives that appeared since (webadmin
            # backups…) are taken, and they are classified before retention looks at the index.
            sync_index(session, archives_dir, self.settings.instance_name)
            session.flush()
            taken = set(session.scalars(select(Archive.name)))
            taken.update(
                path.name.removesuffix(".info.json") for path in archives_dir.glob("*.info.json")
            )
            name = choose_archive_name(base, local_start, taken)
            result.info_json_path.rename(archives_dir / f"{name}.info.json")
            final_tar = archives_dir / f"{name}{suffix}"
            result.tar_path.rename(final_tar)
            stat = final_tar.stat()
            session.add(
                Archive(
                    name=name,
                    filename=final_tar.name,
                    size_bytes=size_bytes,
                    created_at=local_start,
                    kind=job.type,
                    app=label,
                    job_id=job.id,
                    run_id=self.run_id,
                    origin=ORIGIN_LOCAL,
                    sha256=sha256,
                    instance_name=self.settings.instance_name,
                    mtime_ns=stat.st_mtime_ns,
                    yunohost_info_json=info_as_text(read_info_beside(archives_dir, name)),
                )
            )
            session.execute(
                update(Run)
                .where(Run.id == self.run_id)
                .values(
                    status=RUN_SUCCESS,
                    finished_at=self.clock(),
                    archive_name=name,
                    size_bytes=size_bytes,
                    sha256=sha256,
                    phase="done",
                    error_message=None,
                )
            )
            session.execute(update(Job).where(Job.id == job.id).values(last_error=None))
        self.log.line(f"Archive saved as {name}{suffix}.")
        return name

    def _rotate(self, job: Job) -> None:
        self.log.phase("retention")
        prune.apply_for_job(
            self.db,
            self.settings.archives_dir,
            job.id,
            now=self.clock(),
            timezone=self.timezone,
            log=self.log.line,
        )

    def _fail(self, job: Job, message: str) -> str:
        self.log.line(f"Run failed: {message}")
        self.log.flush()
        with self.db.write() as session:
            session.execute(
                update(Run)
                .where(Run.id == self.run_id)
                .values(
                    status=RUN_ERROR,
                    finished_at=self.clock(),
                    error_message=message,
                    phase="failed",
                )
            )
            session.execute(update(Job).where(Job.id == job.id).values(last_error=message))
        return RUN_ERROR


def execute_run(
    db: Database, settings: Settings, run_id: int, *, clock: Clock = system_clock
) -> str:
    """Run a queued run to its end; returns its final status ("" if another process took it)."""
    return RunExecution(db, settings, run_id, clock).execute()
