"""The dashboard's pages run a fixed number of SQL statements whatever the data size (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select

from backupmanager.app import create_app
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import Run
from backupmanager.settings import Settings
from tests.helpers import seed_history

PAGES = (
    "/",
    "/dashboard/live",
    "/jobs/{job}",
    "/jobs/{job}?page=3",
    "/runs/{run}",
    "/archives",
    "/archives?job={job}",
    "/restores",
)


@contextmanager
def counting(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = app.extensions["backupmanager.db"].engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def queries_per_page(settings: Settings, db: Database, *, jobs: int, runs: int) -> dict[str, int]:
    job_ids = seed_history(db, jobs=jobs, runs=runs, now=system_clock())
    with db.read() as session:
        run_id = session.scalar(select(Run.id).where(Run.job_id == job_ids[1]).limit(1))
    app = create_app(settings, dev_mode=True)
    client = app.test_client()
    counts = {}
    for template in PAGES:
        path = template.format(job=job_ids[1], run=run_id)
        client.get(path)  # warm-up: first-use statements (session, caches) are not the point
        with counting(app) as statements:
            answer = client.get(path)
        assert answer.status_code == 200, path
        counts[template] = len(statements)
    return counts


@pytest.fixture
def small(settings: Settings, db: Database) -> dict[str, int]:
    return queries_per_page(settings, db, jobs=5, runs=100)


def test_same_number_of_queries_for_5_and_500_jobs(
    small: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    from backupmanager.db import upgrade_schema
    from backupmanager.settings import load_settings

    base = tmp_path_factory.mktemp("big")
    big_settings = load_settings(
        None,
        env={},
        defaults={
            "instance_name": "jerry",
            "data_dir": str(base / "data"),
            "archives_dir": str(base / "archives"),
            "timezone": "Europe/Paris",
        },
    )
    upgrade_schema(big_settings)
    big_db = Database(big_settings)
    try:
        big = queries_per_page(big_settings, big_db, jobs=500, runs=100_000)
    finally:
        big_db.dispose()
    assert big == small
    # The bound itself, so that a new query on a page is a conscious change of this number.
    assert max(small.values()) <= 8, small
