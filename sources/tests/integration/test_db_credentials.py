"""Remote-host credentials: a password from the encrypted store reaches the tools through a pipe
(MariaDB) or the child's environment (PostgreSQL), and never a log, a record, a page, an API
answer, an archive or a file in clear (SPEC §10, DESIGN §3)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from backupmanager import tokens
from backupmanager.app import create_app
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import Command, Job, Restore, Run
from backupmanager.secret_store import SecretStore
from backupmanager.settings import Settings
from tests.helpers import BACKUPMANAGER
from tests.integration.db_support import (
    SKIP_REASON,
    drop_database,
    mysql_admin,
    pg_admin,
    unique,
)


@dataclass
class RemoteDatabase:
    engine: str
    name: str
    user: str
    password: str
    port: int

    @property
    def copies(self) -> list[str]:
        return [f"{self.name}_copy"]


def _create(engine: str) -> RemoteDatabase:
    name = unique("bmt_rem")
    # Characters that break naive quoting in option files, shells and conninfo strings.
    password = f"Pw{secrets.token_hex(6)}'\"\\ #$é"
    user = f"{name}_login"
    if engine == "mysql":
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        mysql_admin(f"CREATE DATABASE `{name}`;")
        grants = "".join(
            f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO '{user}'@'{host}';\n"
            for pattern in (name, f"{name}\\_copy", "bm\\_drill\\_%")
            for host in ("localhost", "127.0.0.1")
        )
        mysql_admin(
            f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{quoted}';\n"
            f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{quoted}';\n{grants}"
        )
        # Created by the remote user itself, as an app would: views name it as their DEFINER.
        subprocess.run(
            ["mysql", "--protocol=TCP", "--host=127.0.0.1", f"--user={user}", name],
            input=b"CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB;\n"
            b"INSERT INTO notes VALUES (1, 'premi\xc3\xa8re'), (2, 'seconde');\n"
            b"CREATE VIEW short_notes AS SELECT id FROM notes;\n",
            env={**os.environ, "MYSQL_PWD": password},
            check=True,
            capture_output=True,
        )
        return RemoteDatabase(engine, name, user, password, 3306)
    quoted = password.replace("'", "''")
    pg_admin(f"CREATE ROLE {user} LOGIN CREATEDB PASSWORD '{quoted}';\n")
    pg_admin(f"CREATE DATABASE {name} OWNER {user};")
    pg_admin(
        f"SET ROLE {user};\nCREATE TABLE notes (id int PRIMARY KEY, body text);\n"
        "INSERT INTO notes VALUES (1, 'première'), (2, 'seconde');\n"
        "CREATE VIEW short_notes AS SELECT id FROM notes;\n",
        database=name,
    )
    return RemoteDatabase(engine, name, user, password, 5432)


def _drop(remote: RemoteDatabase) -> None:
    drop_database(remote.engine, remote.name)
    for copy in remote.copies:
        drop_database(remote.engine, copy)
    if remote.engine == "mysql":
        mysql_admin(
            f"DROP USER IF EXISTS '{remote.user}'@'localhost', '{remote.user}'@'127.0.0.1';"
        )
    else:
        for name in pg_admin(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bm_drill_%';"
        ).split():
            drop_database("postgresql", name)
        pg_admin(f"DROP ROLE IF EXISTS {remote.user};")


@pytest.fixture(params=["mysql", "postgresql"])
def remote_db(request: pytest.FixtureRequest) -> Iterator[RemoteDatabase]:
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    remote = _create(request.param)
    yield remote
    _drop(remote)


class Transcript:
    """Everything our code answered or printed during the test, to scan for passwords."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.texts: list[tuple[str, str]] = []

    def cli(self, *args: str, stdin: str | None = None, ok: bool = True) -> Any:
        result = subprocess.run(
            [str(BACKUPMANAGER), "--json", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            check=False,
            timeout=300,
        )
        self.texts.append((f"cli {args[:2]} stdout", result.stdout))
        self.texts.append((f"cli {args[:2]} stderr", result.stderr))
        assert (result.returncode == 0) == ok, result.stdout + result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    def add(self, where: str, text: str | None) -> None:
        self.texts.append((where, text or ""))


def _job_config(remote: RemoteDatabase, secret: str) -> str:
    return json.dumps(
        {
            "database": remote.name,
            "user": remote.user,
            "host": "127.0.0.1",
            "port": remote.port,
            "password_secret": secret,
        }
    )


def _server_checks_passwords(remote: RemoteDatabase) -> bool:
    """False on a trust setup (this machine's PostgreSQL): a wrong password is not refused."""
    env = {**os.environ, "PGPASSWORD": "wrong", "MYSQL_PWD": "wrong"}
    if remote.engine == "mysql":
        argv = [
            "mysql",
            "--protocol=TCP",
            "--host=127.0.0.1",
            f"--user={remote.user}",
            "-e",
            "SELECT 1",
        ]
    else:
        argv = [
            "psql",
            "-X",
            "-h",
            "127.0.0.1",
            "-U",
            remote.user,
            "-d",
            remote.name,
            "-c",
            "SELECT 1",
        ]
    return subprocess.run(argv, env=env, capture_output=True, check=False).returncode != 0


def _scan_records(db: Database, transcript: Transcript) -> None:
    with db.read() as session:
        for run in session.scalars(select(Run)):
            transcript.add(f"run {run.id} log", run.log_text)
            transcript.add(f"run {run.id} error", run.error_message)
        for restore in session.scalars(select(Restore)):
            for column in ("log_text", "plan_json", "steps_json", "options_json", "error_message"):
                transcript.add(f"restore {restore.id} {column}", getattr(restore, column))
        for command in session.scalars(select(Command)):
            for column in ("payload_json", "result_json", "error"):
                transcript.add(f"command {command.id} {column}", getattr(command, column))
        for job in session.scalars(select(Job)):
            for column in ("config_json", "last_error", "last_drill_message"):
                transcript.add(f"job {job.id} {column}", getattr(job, column))


def _scan_api_and_pages(
    db: Database, settings: Settings, transcript: Transcript, job_id: int
) -> None:
    token = tokens.create_token(db, "leak-scan", now=system_clock(), rounds=4).token
    client = create_app(settings).test_client()
    headers = {"X-BackupManager-Key": token}
    with db.read() as session:
        runs = [run.id for run in session.scalars(select(Run))]
        archives = {run.archive_name for run in session.scalars(select(Run)) if run.archive_name}
    paths = [
        "/api/v1/jobs",
        f"/api/v1/jobs/{job_id}",
        f"/api/v1/jobs/{job_id}/runs",
        "/api/v1/runs",
    ]
    paths += [f"/api/v1/runs/{run_id}" for run_id in runs]
    paths += ["/api/v1/archives"]
    for name in archives:
        paths += [f"/api/v1/archives/{name}/info", f"/api/v1/archives/{name}/restore/status"]
    for path in paths:
        response = client.get(path, headers=headers)
        never_restored = path.endswith("/restore/status") and response.status_code == 404
        assert response.status_code == 200 or never_restored, (path, response.get_data())
        transcript.add(f"GET {path}", response.get_data(as_text=True))
    pages = create_app(settings, dev_mode=True).test_client()
    for path in ["/", "/archives", f"/jobs/{job_id}", f"/jobs/{job_id}/edit"]:
        response = pages.get(path)
        assert response.status_code == 200, path
        transcript.add(f"page {path}", response.get_data(as_text=True))


def _scan_files(settings: Settings, password: str) -> list[str]:
    """Every file BackupManager wrote (database, secrets, archives), byte by byte."""
    needle = password.encode()
    found = []
    for root in (settings.data_dir, settings.archives_dir):
        for path in root.rglob("*"):
            if path.is_file() and needle in path.read_bytes():
                found.append(str(path))
    return found


def test_remote_credentials_never_leak(
    db: Database,
    settings: Settings,
    cli_env: dict[str, str],
    remote_db: RemoteDatabase,
    caplog: pytest.LogCaptureFixture,
) -> None:
    transcript = Transcript(cli_env)
    secret = unique("db-pass").replace("_", "-")
    transcript.cli("secrets", "set", secret, "--stdin", stdin=remote_db.password + "\n")
    assert SecretStore(settings.data_dir).get(secret) == remote_db.password
    job = transcript.cli(
        "jobs",
        "add",
        "--name",
        unique("remote"),
        "--type",
        remote_db.engine,
        "--config",
        _job_config(remote_db, secret),
        "--cron",
        "0 3 * * *",
        "--retention",
        "count:5",
    )
    run = transcript.cli("jobs", "run", str(job["id"]), "--wait")
    assert run["status"] == "success"
    copy = remote_db.copies[0]
    restored = transcript.cli("restore", run["archive_name"], "--database", copy, "--yes", "--wait")
    assert restored["status"] == "success"
    drill = transcript.cli("jobs", "drill", str(job["id"]), "--wait")
    assert drill["last_drill_status"] == "success"
    transcript.cli("jobs", "show", str(job["id"]))
    transcript.cli("secrets", "list")
    with db.read() as session:
        log = session.scalars(select(Run.log_text)).first() or ""
    if remote_db.engine == "mysql":
        assert "--defaults-extra-file=/dev/fd/" in log  # the option file came through a pipe
    assert "--host=127.0.0.1" in log

    # A wrong password: the run fails with advice, and neither password shows anywhere.
    wrong = f"Wrong{secrets.token_hex(6)}'\\"
    transcript.cli("secrets", "set", secret, "--stdin", stdin=wrong + "\n")
    enforced = _server_checks_passwords(remote_db)
    failed = transcript.cli("jobs", "run", str(job["id"]), "--wait", ok=not enforced)
    if enforced:  # not on a PostgreSQL set up with `trust` for 127.0.0.1 (this machine's)
        assert failed["status"] == "error"
        assert "refused access" in failed["error_message"]

    _scan_records(db, transcript)
    _scan_api_and_pages(db, settings, transcript, job["id"])
    transcript.add("python logging", caplog.text)
    for password in (remote_db.password, wrong):
        leaks = [where for where, text in transcript.texts if password in text]
        assert leaks == [], f"password found in {leaks}"
        assert _scan_files(settings, password) == []
    assert len(transcript.texts) > 40  # the scan looked at every answer, not at nothing
