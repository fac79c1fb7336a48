"""Small helpers shared by the tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from backupmanager import services
from backupmanager.commands import run_inline, run_inline_command
from backupmanager.db import Database
from backupmanager.models import Command, Run
from backupmanager.restore.plan import RestoreOptions
from backupmanager.settings import Settings

if TYPE_CHECKING:
    from flask.testing import FlaskClient

# The installed `backupmanager` command of this environment, for tests that run it as an admin.
BACKUPMANAGER = Path(sys.executable).parent / "backupmanager"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def members(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def member_bytes(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def read_calls(sim_root: Path) -> list[dict[str, Any]]:
    calls = sim_root / "calls.jsonl"
    if not calls.exists():
        return []
    return [json.loads(line) for line in calls.read_text().splitlines() if line.strip()]


def set_behaviour(sim_root: Path, **behaviour: Any) -> None:
    sim_root.mkdir(parents=True, exist_ok=True)
    (sim_root / "behaviour.json").write_text(json.dumps(behaviour))


def add_job(db: Database, settings: Settings, **overrides: Any) -> int:
    raw: dict[str, Any] = {
        "name": "nextcloud daily",
        "type": "ynh_app",
        "config": {"app_id": "nextcloud"},
        "cron": "0 3 * * *",
        "retention": "count:7",
    }
    raw.update(overrides)
    return services.create_job(db, settings, raw).id


def run_job_now(db: Database, settings: Settings, job_id: int) -> Run:
    """Queue a run and execute it in this process, as `jobs run` does without a worker."""
    from backupmanager.clock import system_clock

    queued = services.queue_run(
        db, job_id, trigger="manual", requested_by="test", now=system_clock()
    )
    run_inline(db, settings, queued.run_id)
    with db.read() as session:
        return services.get_run(session, queued.run_id)


def wait_for(
    condition: Callable[[], Any], *, timeout: float = 30.0, what: str = "condition"
) -> Any:
    """Poll until condition() is truthy; fails the test with `what` after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def seed_history(db: Database, *, jobs: int, runs: int, now: Any) -> list[int]:
    """Many jobs with a long run history and one archive each, inserted in bulk (query-count
    tests and bench/bench_pages.py): mostly successes, every 7th run failed, newest last."""
    from datetime import timedelta

    from sqlalchemy import insert, select

    from backupmanager.models import Archive, Job

    with db.write() as session:
        session.execute(
            insert(Job),
            [
                {
                    "name": f"job {number:04d}",
                    "type": "ynh_app",
                    "config_json": json.dumps({"app_id": "nextcloud", "core_only": False}),
                    "cron_expr": f"{number % 60} {number % 24} * * *",
                    "retention_mode": "count",
                    "retention_value": "7",
                    "enabled": number % 10 != 0,
                    "core_only": False,
                    "created_at": now - timedelta(days=400),
                    "updated_at": now - timedelta(days=400),
                }
                for number in range(jobs)
            ],
        )
        job_ids = list(session.scalars(select(Job.id).order_by(Job.id)))
        rows = []
        for number in range(runs):
            job_id = job_ids[number % len(job_ids)]
            started = now - timedelta(minutes=runs - number)
            ok = number % 7 != 3
            rows.append(
                {
                    "job_id": job_id,
                    "queued_at": started,
                    "started_at": started,
                    "finished_at": started + timedelta(seconds=30 + number % 90),
                    "status": "success" if ok else "error",
                    "trigger": "schedule",
                    "phase": "done" if ok else "failed",
                    "log_text": "backup log line\n" * 20,
                    "error_message": None if ok else "yunohost backup create failed",
                    "archive_name": f"jerry_app{number}_20260101" if ok else None,
                    "size_bytes": 1_000_000 + number if ok else None,
                }
            )
        session.execute(insert(Run), rows)
        session.execute(
            insert(Archive),
            [
                {
                    "name": f"jerry_job{job_id}_20260101",
                    "filename": f"jerry_job{job_id}_20260101.tar",
                    "size_bytes": 5_000_000 + job_id,
                    "created_at": now - timedelta(days=1),
                    "kind": "ynh_app",
                    "app": "nextcloud",
                    "job_id": job_id,
                    "origin": "backupmanager",
                    "sha256": "0" * 64,
                    "instance_name": "jerry",
                    "mtime_ns": 0,
                    "indexed_at": now,
                }
                for job_id in job_ids
            ],
        )
    return job_ids


def restore_now(
    db: Database, settings: Settings, name: str, options: RestoreOptions
) -> dict[str, Any]:
    """Queue a restore and run it in this process, as the CLI does without a worker."""
    from backupmanager.clock import system_clock
    from backupmanager.commands import run_inline_restore
    from backupmanager.index import sync_index
    from backupmanager.restore import service

    with db.write() as session:  # as the CLI does: archives put there by hand are indexed first
        sync_index(session, settings.archives_dir, settings.instance_name)
    restore_id = service.queue_restore(
        db, settings, name, options, requested_by="test", now=system_clock()
    )
    run_inline_restore(db, settings, restore_id)
    return service.restore_status(db, restore_id, with_log=True)


def csrf(client: FlaskClient, path: str = "/jobs/new") -> str:
    """The CSRF token of the form on a dashboard page."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match is not None
    return match[1]


def work_restore_commands(db: Database, settings: Settings) -> None:
    """What the worker does with the queued restore commands (plans and restores)."""
    with db.read() as session:
        ids = session.scalars(
            select(Command.id).where(Command.kind == "restore", Command.status == "queued")
        ).all()
    for command_id in ids:
        assert run_inline_command(db, settings, command_id)


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`backupmanager ARGS` in its own process, as an admin types it; output captured as text."""
    return subprocess.run(
        [str(BACKUPMANAGER), *args], env=env, capture_output=True, text=True, timeout=timeout
    )
