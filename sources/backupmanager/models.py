"""SQLAlchemy 2 typed models: the tables of SPEC §2 plus the archive index, command queue and worker state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC (SQLite has no time zones) and gives them back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


# Status values, kept as plain strings so that the database stays readable with sqlite3.
RUN_QUEUED, RUN_RUNNING, RUN_SUCCESS, RUN_ERROR, RUN_INTERRUPTED = (
    "queued",
    "running",
    "success",
    "error",
    "interrupted",
)
RUN_FINISHED_STATUSES = (RUN_SUCCESS, RUN_ERROR, RUN_INTERRUPTED)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    config_json: Mapped[str] = mapped_column(Text, default="{}")
    cron_expr: Mapped[str] = mapped_column(String(128))
    retention_mode: Mapped[str] = mapped_column(String(16))
    retention_value: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    core_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # Restore drills (issue 4): when the newest archive was last proven restorable, and how.
    last_drill_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_drill_status: Mapped[str | None] = mapped_column(String(16), default=None)
    last_drill_message: Mapped[str | None] = mapped_column(Text, default=None)

    runs: Mapped[list[Run]] = relationship(back_populates="job", cascade="all, delete-orphan")


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_job_started", "job_id", "started_at"),
        Index("ix_runs_status", "status"),
        # A job's newest runs (dashboard, history pages): bounded lookups whatever the history size.
        Index("ix_runs_job_id", "job_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    status: Mapped[str] = mapped_column(String(16), default=RUN_QUEUED)
    trigger: Mapped[str] = mapped_column(String(16), default="manual")
    phase: Mapped[str] = mapped_column(String(64), default="")
    log_text: Mapped[str] = mapped_column(Text, default="")
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    archive_name: Mapped[str | None] = mapped_column(String(64), default=None)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    # Progress where it is known: bytes written so far against the estimate (dashboard bar).
    progress_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    estimated_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)

    job: Mapped[Job] = relationship(back_populates="runs")


class Archive(Base):
    """The index of every archive in the archives folder, ours and YunoHost's own."""

    __tablename__ = "archives"
    __table_args__ = (Index("ix_archives_job", "job_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    app: Mapped[str | None] = mapped_column(String(64), default=None)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), default=None
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), default=None
    )
    origin: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    instance_name: Mapped[str | None] = mapped_column(String(64), default=None)
    mtime_ns: Mapped[int] = mapped_column(BigInteger, default=0)
    indexed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # YunoHost's info.json (apps, system parts, sizes), copied by the worker (root) when it indexes
    # the archive: the web process cannot read the root-only archives folder itself.
    yunohost_info_json: Mapped[str | None] = mapped_column(Text, default=None)


COMMAND_QUEUED, COMMAND_RUNNING, COMMAND_DONE, COMMAND_FAILED = (
    "queued",
    "running",
    "done",
    "failed",
)


class Command(Base):
    """Work asked of the worker by the CLI, the web process or the scheduler (DESIGN §1)."""

    __tablename__ = "commands"
    __table_args__ = (Index("ix_commands_status", "status", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload_json: Mapped[str] = mapped_column(Text, default="{}")
    status: Mapped[str] = mapped_column(String(16), default=COMMAND_QUEUED)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("runs.id", ondelete="SET NULL"), default=None
    )
    restore_id: Mapped[int | None] = mapped_column(
        ForeignKey("restores.id", ondelete="SET NULL"), default=None
    )
    requested_by: Mapped[str] = mapped_column(String(64), default="cli")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    result_json: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class WorkerState(Base):
    """One row: which worker holds the scheduler, and when it last said it was alive."""

    __tablename__ = "worker_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    hostname: Mapped[str] = mapped_column(String(255))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


RESTORE_QUEUED, RESTORE_RUNNING, RESTORE_SUCCESS, RESTORE_ERROR, RESTORE_INTERRUPTED = (
    "queued",
    "running",
    "success",
    "error",
    "interrupted",
)


class Restore(Base):
    """One restore of an archive: its plan, phases, progress, steps done, log and verdict."""

    __tablename__ = "restores"
    __table_args__ = (Index("ix_restores_archive", "archive_name", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    archive_name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=RESTORE_QUEUED)
    phase: Mapped[str] = mapped_column(String(64), default="")
    options_json: Mapped[str] = mapped_column(Text, default="{}")  # target dir, new database name…
    plan_json: Mapped[str] = mapped_column(
        Text, default="{}"
    )  # what will be created/overwritten/started
    steps_json: Mapped[str] = mapped_column(Text, default="[]")  # steps done, in order
    progress_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    total_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    log_text: Mapped[str] = mapped_column(Text, default="")
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by: Mapped[str] = mapped_column(String(64), default="cli")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)


class ApiToken(Base):
    """A named API token: only its bcrypt hash is stored (SPEC §10)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(128))
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class RemoteInstance(Base):
    __tablename__ = "remote_instances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(512))
    api_key: Mapped[str] = mapped_column(Text)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    status: Mapped[str] = mapped_column(String(16), default="offline")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RemoteRun(Base):
    __tablename__ = "remote_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("remote_instances.id", ondelete="CASCADE"))
    job_name: Mapped[str] = mapped_column(String(64))
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_status: Mapped[str | None] = mapped_column(String(16), default=None)
    archive_count: Mapped[int] = mapped_column(Integer, default=0)
    last_size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)


class Upload(Base):
    __tablename__ = "uploads"

    upload_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    total_size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(BigInteger)
    chunks_received: Mapped[int] = mapped_column(Integer, default=0)
    checksum: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")


def as_dict(row: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    """JSON-ready view of a row: datetimes as ISO 8601 strings."""
    result: dict[str, Any] = {}
    for field in fields:
        value = getattr(row, field)
        result[field] = value.isoformat() if isinstance(value, datetime) else value
    return result
