"""Small helpers shared by the tests (no fixtures here: see conftest.py)."""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backupmanager import services
from backupmanager.commands import run_inline
from backupmanager.db import Database
from backupmanager.models import Run
from backupmanager.settings import Settings


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
