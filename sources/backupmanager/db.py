"""Database engine and sessions on SQLite: WAL, busy timeout, foreign keys, BEGIN IMMEDIATE for writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from backupmanager.settings import Settings

BUSY_TIMEOUT_MS = 30_000
# The web process (app user) and the worker (root) share the file: group-writable, nothing for others.
DATABASE_FILE_MODE = 0o660


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself: Python 3.11's sqlite3 would otherwise
    # open a deferred transaction that fails at once with "database is locked" on its first
    # write when another process writes (DESIGN §6).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _on_begin(connection: Any) -> None:
    if connection.get_execution_options().get("readonly"):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(database_path: Path) -> Engine:
    database_path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{database_path}", connect_args={"timeout": 30})
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


class Database:
    """The engine and session factories of one process (web, worker or CLI)."""

    def __init__(self, settings: Settings) -> None:
        self.path = settings.database_path
        self.engine = make_engine(self.path)
        self._write = sessionmaker(self.engine, expire_on_commit=False)
        self._read = sessionmaker(
            self.engine.execution_options(readonly=True), expire_on_commit=False
        )

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A short write transaction, committed on success; never hold it across a subprocess."""
        with self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction that does not take the write lock."""
        with self._read() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def upgrade_schema(settings: Settings) -> str:
    """Bring the database to the newest schema (idempotent); returns the revision now in place."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    created = not settings.database_path.exists()
    settings.database_path.parent.mkdir(parents=True, exist_ok=True)
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.attributes["database_path"] = settings.database_path
    command.upgrade(config, "head")
    if created:
        settings.database_path.chmod(DATABASE_FILE_MODE)
    engine = make_engine(settings.database_path)
    try:
        with engine.connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return revision or ""
