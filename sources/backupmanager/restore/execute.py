"""One restore end to end: verify, plan, then each step in order. The restores' catch-all error boundary."""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from backupmanager import process
from backupmanager.admin_commands import AdminCommandFailed, CommandsDisabled
from backupmanager.archive import ArchiveError, validate_archive_name
from backupmanager.archive_writer import part_directory
from backupmanager.clock import Clock, instance_timezone, system_clock
from backupmanager.databases.reader import DATABASE_TYPES, archive_type
from backupmanager.db import Database
from backupmanager.index import ORIGIN_LOCAL
from backupmanager.jobs.custom_dir_hook import CUSTOM_PART
from backupmanager.models import (
    RESTORE_ERROR,
    RESTORE_QUEUED,
    RESTORE_RUNNING,
    RESTORE_SUCCESS,
    Archive,
    Restore,
)
from backupmanager.restore.plan import RestoreOptions, make_plan
from backupmanager.restore.refusals import CLI, face_of
from backupmanager.restore.safety import UnsafeArchive, scan_archive
from backupmanager.restore.steps import STEPS, StepContext, StepFailed
from backupmanager.runlog import RunLog
from backupmanager.settings import Settings

RESTORABLE_TYPES = ("custom_dir",)


class RestoreRefused(Exception):
    """The restore cannot start: nothing was changed. The message says why and what to do."""


def archive_file(settings: Settings, name: str) -> Path:
    try:
        validate_archive_name(name)
    except ArchiveError as error:
        raise RestoreRefused(str(error)) from None
    path = settings.archives_dir / f"{name}.tar"
    if not path.exists():
        raise RestoreRefused(f"there is no archive {name}.tar in {settings.archives_dir}")
    return path.resolve()


def recorded_sha256(db: Database, name: str) -> str | None:
    """The checksum computed when we wrote the archive, if this instance made it."""
    with db.read() as session:
        row = session.scalar(select(Archive).where(Archive.name == name))
        if row is None or row.origin != ORIGIN_LOCAL:
            return None
        return row.sha256


class RestoreExecution:
    def __init__(self, db: Database, settings: Settings, restore_id: int, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.restore_id = restore_id
        self.clock = clock
        self.log = RunLog(db, restore_id, instance_timezone(settings), model=Restore)
        self.steps: list[dict[str, Any]] = []
        self._current: str | None = None  # the step under way, named in a failure
        self.face = CLI  # where the restore was asked from: the words of a refusal

    def _update(self, **values: Any) -> None:
        with self.db.write() as session:
            session.execute(update(Restore).where(Restore.id == self.restore_id).values(**values))

    def _claim(self) -> bool:
        with self.db.write() as session:
            claimed = session.execute(
                update(Restore)
                .where(Restore.id == self.restore_id, Restore.status == RESTORE_QUEUED)
                .values(
                    status=RESTORE_RUNNING,
                    started_at=self.clock(),
                    pid=os.getpid(),
                    phase="checking the archive",
                )
            )
            return bool(getattr(claimed, "rowcount", 0))

    def progress(self, done: int, total: int | None) -> None:
        self._update(progress_bytes=done, total_bytes=total)

    def execute(self) -> str:
        if not self._claim():
            return ""
        with self.db.read() as session:
            row = session.get(Restore, self.restore_id)
            assert row is not None
            name, options = row.archive_name, RestoreOptions.from_dict(json.loads(row.options_json))
            self.face = face_of(row.requested_by)
        self.log.line(f"Restore {self.restore_id} of archive {name} started.")
        try:
            return self._restore(name, options)
        except (RestoreRefused, UnsafeArchive) as error:
            return self._finish(RESTORE_ERROR, f"Restore refused, nothing was changed: {error}")
        except (StepFailed, AdminCommandFailed, CommandsDisabled, process.ProcessError) as error:
            return self._failed_step(str(error))
        except OSError as error:
            return self._failed_step(f"{type(error).__name__}: {error}")
        except Exception as error:  # the one catch-all: a bug must end the restore, not the worker
            self.log.line("".join(traceback.format_exception(error)).rstrip())
            return self._failed_step(f"Unexpected error ({type(error).__name__}): {error}")
        finally:
            self.log.flush()

    def _restore(self, name: str, options: RestoreOptions) -> str:
        path = archive_file(self.settings, name)
        if archive_type(path) in DATABASE_TYPES:
            from backupmanager.restore.database import restore_database
            from backupmanager.restore.database_plan import DatabaseRestoreRefused

            try:
                note = restore_database(self, name, path, options, recorded_sha256(self.db, name))
            except DatabaseRestoreRefused as error:
                raise RestoreRefused(str(error)) from None
            return self._finish(RESTORE_SUCCESS, None, note=note)
        target = Path(options.target) if options.target is not None else Path("/")
        self.log.phase("verifying the archive")
        size = path.stat().st_size
        scan = scan_archive(
            path,
            part_dir=part_directory(CUSTOM_PART),
            target=target,
            verify=True,
            progress=lambda done: self.progress(done, size),
        )
        expected = recorded_sha256(self.db, name)
        if expected and expected != scan.sha256:
            raise RestoreRefused(
                f"the archive's SHA256 ({scan.sha256}) is not the one recorded when it was "
                f"written ({expected}): it is damaged or was replaced"
            )
        self.log.line(
            f"Archive checked: every member is safe to extract, SHA256 {scan.sha256}"
            + (" (matches the one recorded)." if expected else " (no recorded checksum).")
        )
        kind = scan.backup_info.get("type")
        if kind not in RESTORABLE_TYPES:
            raise RestoreRefused(f"archives of type {kind!r} are not restored by this command yet")
        plan, manifest = make_plan(self.settings, name, scan, options, face=self.face)
        self._update(plan_json=json.dumps(plan.as_dict()), total_bytes=scan.bytes)
        if plan.refusal:
            raise RestoreRefused(plan.refusal)
        if options.plan_only:
            return self._finish(RESTORE_SUCCESS, None, note="Plan computed; nothing was changed.")
        context = StepContext(
            self.settings, path, manifest, options, self.log.line, self.progress, scan.bytes
        )
        for planned in plan.steps:
            step = planned["step"]
            if step not in STEPS:
                continue
            self.log.phase(step)
            self._current = step
            detail = STEPS[step](context)
            self.log.line(f"Step {step}: {detail}.")
            self._record(step, "done", detail)
        return self._finish(RESTORE_SUCCESS, None)

    # For restore/database.py, which runs the steps of database archives itself.
    def begin_step(self, step: str) -> None:
        self.log.phase(step)
        self._current = step

    def record_step(self, step: str, detail: str) -> None:
        self.log.line(f"Step {step}: {detail}.")
        self._record(step, "done", detail)

    def save_plan(self, plan: dict[str, Any], total_bytes: int) -> None:
        self._update(plan_json=json.dumps(plan), total_bytes=total_bytes)

    def _record(self, step: str, status: str, detail: str) -> None:
        self.steps.append({"step": step, "status": status, "detail": detail})
        self._update(steps_json=json.dumps(self.steps))

    def _failed_step(self, message: str) -> str:
        step = self._current
        if step is None:
            return self._finish(RESTORE_ERROR, message)
        self._record(step, "failed", message)
        done = ", ".join(s["step"] for s in self.steps if s["status"] == "done") or "nothing"
        return self._finish(
            RESTORE_ERROR, f"Restore stopped at step '{step}': {message} (done before: {done})"
        )

    def _finish(self, status: str, error: str | None, *, note: str = "") -> str:
        self.log.line(error or note or "Restore finished: success.")
        self.log.flush()
        self._update(
            status=status,
            finished_at=self.clock(),
            error_message=error,
            phase="done" if status == RESTORE_SUCCESS else "failed",
        )
        return status


def execute_restore(
    db: Database, settings: Settings, restore_id: int, *, clock: Clock = system_clock
) -> str:
    """Run a queued restore to its end; its final status ("" if another process took it)."""
    return RestoreExecution(db, settings, restore_id, clock).execute()
