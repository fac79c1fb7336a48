"""Database: migrations are idempotent and keep data; WAL, busy timeout, foreign keys; file modes."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

from sqlalchemy import text

from backupmanager.db import DATABASE_FILE_MODE, Database, upgrade_schema
from backupmanager.models import Job, Run
from backupmanager.settings import Settings


def test_upgrade_is_idempotent_and_keeps_jobs_and_runs(settings: Settings) -> None:
    first = upgrade_schema(settings)
    database = Database(settings)
    with database.write() as session:
        job = Job(
            name="kept",
            type="ynh_app",
            config_json="{}",
            cron_expr="0 3 * * *",
            retention_mode="count",
            retention_value="7",
        )
        session.add(job)
        session.flush()
        session.add(Run(job_id=job.id, status="success", log_text="hello"))
    database.dispose()
    second = upgrade_schema(settings)
    assert first == second != ""
    database = Database(settings)
    with database.read() as session:
        assert session.scalar(text("select count(*) from jobs")) == 1
        assert session.scalar(text("select log_text from runs")) == "hello"
    database.dispose()


def test_sqlite_is_configured_for_two_processes(db: Database, settings: Settings) -> None:
    with db.read() as session:
        assert session.scalar(text("pragma journal_mode")) == "wal"
        assert session.scalar(text("pragma busy_timeout")) == 30000
        assert session.scalar(text("pragma foreign_keys")) == 1
    mode = stat.S_IMODE(settings.database_path.stat().st_mode)
    assert mode == DATABASE_FILE_MODE  # group (the web user) may write, others may not read


def test_spec_tables_exist(db: Database) -> None:
    with db.read() as session:
        tables = set(session.scalars(text("select name from sqlite_master where type='table'")))
    assert {
        "jobs",
        "runs",
        "remote_instances",
        "remote_runs",
        "uploads",
        "archives",
        "commands",
    } <= tables


def test_writer_waits_instead_of_failing(db: Database, settings: Settings) -> None:
    """Another process holding the write lock briefly must not make our write fail at once."""
    other = sqlite3.connect(settings.database_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "insert into worker_state values (1, 1, 'x', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    )
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with db.write() as session:
            session.execute(text("update worker_state set hostname = 'ours' where id = 1"))
    finally:
        release.join()
        other.close()
    with db.read() as session:
        assert session.scalar(text("select hostname from worker_state")) == "ours"


def test_subprocess_import_is_banned_outside_process_py(tmp_path: Path) -> None:
    import subprocess

    sources = Path(__file__).resolve().parents[2]
    ruff = Path(sys_prefix()) / "bin" / "ruff"
    result = subprocess.run(
        [
            str(ruff),
            "check",
            "--config",
            str(sources / "pyproject.toml"),
            "--stdin-filename",
            "backupmanager/sneaky.py",
            "-",
        ],
        input="import subprocess\n\nsubprocess.run(['true'])\n",
        capture_output=True,
        text=True,
        cwd=sources,
    )
    assert result.returncode == 1
    assert "TID251" in result.stdout and "backupmanager.process" in result.stdout


def sys_prefix() -> str:
    import sys

    return sys.prefix
