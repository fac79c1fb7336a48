"""The usual failures of database jobs say what happened and what to do (issue 4, DESIGN §3)."""
# ruff: noqa: F811  (pytest fixtures imported from db_support are parameters here)

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backupmanager import services
from backupmanager.db import Database
from backupmanager.models import Run
from backupmanager.secret_store import SecretStore
from backupmanager.settings import Settings
from tests.helpers import run_job_now
from tests.integration.db_support import (  # noqa: F401 (fixture)
    SampleDatabase,
    job_config,
    mysql_admin,
    pg_admin,
    sample_db,
    unique,
)


def failed_run_message(
    db: Database, settings: Settings, engine: str, config: dict[str, object]
) -> str:
    return failed_run(db, settings, engine, config).error_message or ""


def failed_run(db: Database, settings: Settings, engine: str, config: dict[str, object]) -> Run:
    """A job made without checking the server, run once: it must fail and leave nothing."""
    job = services.create_job(
        db,
        settings,
        {"name": unique("failing"), "type": engine, "config": config, "cron": "0 3 * * *"},
        check_server=False,
    )
    run = run_job_now(db, settings, job.id)
    assert run.status == "error", run.log_text
    assert not list(settings.archives_dir.glob("bm-partial-*"))  # nothing half-written is left
    return run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unknown_database_is_refused_when_the_job_is_made_and_explained_when_it_runs(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    missing = unique("bmt_missing")
    raw = {"name": "missing", "type": sample_db.engine, "cron": "0 3 * * *"}
    with pytest.raises(services.InputError) as refused:
        services.create_job(db, settings, {**raw, "config": {"database": missing, "user": "x"}})
    assert f"'{missing}' does not exist" in str(refused.value)
    assert sample_db.name in str(refused.value)  # the databases that do exist are listed
    message = failed_run_message(db, settings, sample_db.engine, {"database": missing, "user": "x"})
    assert "does not exist" in message
    assert "Check the job's database name" in message


def test_a_server_that_does_not_answer_is_named(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    SecretStore(settings.data_dir).set("unused", "not-needed-here")
    config = job_config(sample_db, host="127.0.0.1", port=free_port(), password_secret="unused")
    message = failed_run_message(db, settings, sample_db.engine, config)
    assert "is not answering: is it running?" in message
    assert "127.0.0.1" in message


def test_access_denied_says_which_user_and_what_to_check(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    stranger, password = unique("bmt_stranger"), "stranger-password"
    if sample_db.engine == "mysql":
        mysql_admin(f"CREATE USER '{stranger}'@'%' IDENTIFIED BY '{password}';")
    else:  # the sample database refuses CONNECT to PUBLIC
        pg_admin(f"CREATE ROLE {stranger} LOGIN PASSWORD '{password}';")
    try:
        SecretStore(settings.data_dir).set("stranger", password)
        config = {
            "database": sample_db.name,
            "user": stranger,
            "host": "127.0.0.1",
            "password_secret": "stranger",
        }
        message = failed_run_message(db, settings, sample_db.engine, config)
    finally:
        if sample_db.engine == "mysql":
            mysql_admin(f"DROP USER IF EXISTS '{stranger}'@'%';")
        else:
            pg_admin(f"DROP ROLE IF EXISTS {stranger};")
    assert f"refused access for user '{stranger}'" in message
    assert password not in message


def test_a_missing_dump_tool_says_what_to_install(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    tool = "mysqldump" if sample_db.engine == "mysql" else "pg_dump"
    package = "mariadb-client" if sample_db.engine == "mysql" else "postgresql-client"
    broken = settings.model_copy(
        update={"programs": settings.programs.model_copy(update={tool: Path("/nonexistent/x")})}
    )
    raw = {"name": "no tool", "type": sample_db.engine, "cron": "0 3 * * *"}
    with pytest.raises(services.InputError, match=package):
        services.create_job(db, broken, {**raw, "config": job_config(sample_db)})
    message = failed_run_message(db, broken, sample_db.engine, job_config(sample_db))
    assert "/nonexistent/x was not found" in message
    assert f"apt-get install {package}" in message


@pytest.fixture
def tiny_archives_dir(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB file system: a real 'No space left on device' (needs root to mount)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_full_disk_is_reported_and_leaves_nothing_behind(
    db: Database, settings: Settings, sample_db: SampleDatabase, tiny_archives_dir: Path
) -> None:
    if sample_db.engine == "mysql":
        mysql_admin(
            "CREATE TABLE filler (id INT PRIMARY KEY, junk TEXT);"
            "INSERT INTO filler SELECT seq, SHA2(seq, 512) FROM seq_1_to_3000;",
            database=sample_db.name,
        )
    else:
        pg_admin(
            "CREATE TABLE filler AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS junk "
            "FROM generate_series(1, 3000) g;",
            database=sample_db.name,
        )
    small = settings.model_copy(update={"archives_dir": tiny_archives_dir})
    message = failed_run_message(
        db, small, sample_db.engine, job_config(sample_db, compression="none")
    )
    assert "full" in message and "Free some space" in message
    assert list(tiny_archives_dir.iterdir()) == []


@pytest.fixture
def fake_tool_dir() -> Iterator[Path]:
    """A folder the postgres system user can read (pg_dump runs as postgres through runuser)."""
    folder = Path(tempfile.mkdtemp(prefix="bm-fake-tool-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        ("echo 'Got error: 1045: something went wrong' >&2; exit 2", "failed: "),
        ("printf 'not a dump'; exit 0", ""),  # a dump that is not one, with a success exit code
    ],
)
def test_a_dump_tool_that_fails_or_writes_no_dump_is_named(
    db: Database,
    settings: Settings,
    sample_db: SampleDatabase,
    fake_tool_dir: Path,
    behaviour: str,
    expected: str,
) -> None:
    tool = "mysqldump" if sample_db.engine == "mysql" else "pg_dump"
    fake = fake_tool_dir / tool
    fake.write_text(f"#!/bin/sh\n{behaviour}\n")
    fake.chmod(0o755)
    faking = settings.model_copy(
        update={"programs": settings.programs.model_copy(update={tool: fake})}
    )
    message = failed_run_message(db, faking, sample_db.engine, job_config(sample_db))
    if expected:  # the tool's own name and words, not those of the stdbuf wrapping it
        assert message.startswith(f"{tool} {expected}")
        assert "something went wrong" in message
    elif tool == "mysqldump":
        assert "mysqldump's output ended early" in message
    else:
        assert "pg_dump did not write a custom-format archive" in message
