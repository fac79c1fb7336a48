"""Restore drills: the newest archive restored into a throw-away database, compared, dropped."""
# ruff: noqa: F811  (pytest fixtures imported from db_support are parameters here)

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from sqlalchemy import select

from backupmanager import services
from backupmanager.clock import system_clock
from backupmanager.commands import run_inline_command
from backupmanager.db import Database
from backupmanager.drill import drill_schedules, newest_archive, queue_drill
from backupmanager.models import Command, Job
from backupmanager.restore import service
from backupmanager.settings import Settings
from backupmanager.worker import Worker
from tests.helpers import add_job, run_job_now, wait_for
from tests.integration.db_support import (  # noqa: F401 (fixture)
    SampleDatabase,
    job_config,
    mysql_admin,
    pg_admin,
    sample_db,
    table_checksums,
    unique,
)


def database_names(engine: str) -> list[str]:
    if engine == "mysql":
        return mysql_admin("SHOW DATABASES;").split()
    return pg_admin("SELECT datname FROM pg_database;").split()


def create_database(engine: str, name: str) -> None:
    if engine == "mysql":
        mysql_admin(f"CREATE DATABASE {name};")
    else:
        pg_admin(f"CREATE DATABASE {name};")


def make_job(db: Database, settings: Settings, sample: SampleDatabase, **config: object) -> int:
    job_id = add_job(
        db, settings, name=unique("drill"), type=sample.engine, config=job_config(sample, **config)
    )
    run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    return job_id


def drill_now(db: Database, settings: Settings, job_id: int) -> dict[str, object]:
    restore_id, created = queue_drill(db, job_id, requested_by="test", now=system_clock())
    assert created
    with db.read() as session:
        command_id = session.scalar(select(Command.id).where(Command.restore_id == restore_id))
    assert command_id is not None
    run_inline_command(db, settings, command_id)
    return service.restore_status(db, restore_id, with_log=True)


def job_row(db: Database, job_id: int) -> Job:
    with db.read() as session:
        job = services.get_job(session, job_id)
        session.expunge(job)
        return job


def corrupt_first_dump_member(tar_path: Path) -> None:
    """Flip bytes in the middle of the dump's first piece (after its tar header)."""
    with tarfile.open(tar_path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".000001"))
        offset = member.offset_data + member.size // 2
    with tar_path.open("r+b") as handle:
        handle.seek(offset)
        data = handle.read(16)
        handle.seek(offset)
        handle.write(bytes(byte ^ 0x5A for byte in data))


def test_a_drill_of_a_good_archive_passes_and_is_recorded_on_the_job(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    checksums = table_checksums(sample_db.engine, sample_db.name)
    job_id = make_job(db, settings, sample_db)
    before = set(database_names(sample_db.engine))
    leftover = f"bm_drill_{job_id}_deadbeef"  # what a drill killed mid-way leaves behind
    create_database(sample_db.engine, leftover)
    status = drill_now(db, settings, job_id)
    assert status["status"] == "success", status["log"]
    steps = [step["step"] for step in status["steps"]]  # type: ignore[attr-defined]
    assert steps == ["database", "load", "compare", "drop"]  # no users, roles or grants touched
    assert status["requested_by"] == "drill"
    assert set(database_names(sample_db.engine)) == before  # the throw-away database is gone
    assert table_checksums(sample_db.engine, sample_db.name) == checksums
    job = job_row(db, job_id)
    assert job.last_drill_status == "success"
    assert job.last_drill_at is not None
    assert "throw-away database" in (job.last_drill_message or "")
    assert "rows" in (job.last_drill_message or "")
    with db.read() as session:
        view = services.get_job(session, job_id)
        assert view.last_drill_status == "success"


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_a_drill_of_a_damaged_archive_fails_and_says_so_on_the_job(
    db: Database, settings: Settings, sample_db: SampleDatabase, compression: str
) -> None:
    job_id = make_job(db, settings, sample_db, compression=compression)
    with db.read() as session:
        newest = newest_archive(session, job_id)
        assert newest is not None
        name = newest.name
    corrupt_first_dump_member(settings.archives_dir / f"{name}.tar")
    before = set(database_names(sample_db.engine))
    status = drill_now(db, settings, job_id)
    assert status["status"] == "error"
    assert set(database_names(sample_db.engine)) == before  # dropped even though it failed
    job = job_row(db, job_id)
    assert job.last_drill_status == "error"
    message = job.last_drill_message or ""
    assert name in message and "could not be restored" in message
    assert "damaged" in message or "SHA256" in message


def test_drills_need_a_database_job_with_an_archive(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    yunohost_job = add_job(db, settings)
    with pytest.raises(services.InputError, match="mysql and postgresql jobs"):
        queue_drill(db, yunohost_job, requested_by="test", now=system_clock())
    fresh = add_job(
        db, settings, name="never run", type=sample_db.engine, config=job_config(sample_db)
    )
    with pytest.raises(services.InputError, match="no archive yet"):
        queue_drill(db, fresh, requested_by="test", now=system_clock())


def test_the_worker_schedules_drills_from_drill_cron(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    job_id = make_job(db, settings, sample_db, drill_cron="30 5 * * 0")
    assert drill_schedules(db) == [(job_id, "30 5 * * 0")]
    worker = Worker(settings)
    worker.start()
    try:
        scheduled = worker._scheduler._scheduler.get_job(f"drill-{job_id}")
        assert scheduled is not None
        assert scheduled.next_run_time.weekday() == 6  # Sunday, standard cron semantics
        worker._on_drill(job_id)  # what the trigger calls at 05:30 on Sundays

        def verdict() -> str | None:
            worker.tick()
            return job_row(db, job_id).last_drill_status

        assert wait_for(verdict, timeout=120, what="the drill's verdict") == "success"
        services.update_job(db, settings, job_id, {"config": job_config(sample_db)})
        worker.tick()
        assert worker._scheduler._scheduler.get_job(f"drill-{job_id}") is None
    finally:
        worker.stop()
    with db.read() as session:
        kinds = [command.kind for command in session.scalars(select(Command))]
    assert "drill" in kinds
