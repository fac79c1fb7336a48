"""Commands queued for the worker (DESIGN §1): claiming, finishing, and what each kind does."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update

from backupmanager.clock import Clock, system_clock
from backupmanager.db import Database
from backupmanager.models import (
    COMMAND_DONE,
    COMMAND_FAILED,
    COMMAND_QUEUED,
    COMMAND_RUNNING,
    RESTORE_SUCCESS,
    RUN_ERROR,
    Command,
    Restore,
    Run,
)
from backupmanager.settings import Settings

# A handler executes one claimed command and says whether it succeeded, with a small result.
CommandHandler = Callable[[Database, Settings, Command, Clock], tuple[bool, dict[str, Any]]]


def _run_job(
    db: Database, settings: Settings, command: Command, clock: Clock
) -> tuple[bool, dict[str, Any]]:
    from backupmanager.runner import execute_run

    assert command.run_id is not None
    status = execute_run(db, settings, command.run_id, clock=clock)
    return status != RUN_ERROR, {"status": status}


def _delete_archive(
    db: Database, settings: Settings, command: Command, clock: Clock
) -> tuple[bool, dict[str, Any]]:
    from backupmanager.services import delete_archive_now

    name = str(json.loads(command.payload_json).get("name", ""))
    error = delete_archive_now(db, settings, name)
    return not error, {"name": name, "error": error} if error else {"deleted": name}


def _restore(
    db: Database, settings: Settings, command: Command, clock: Clock
) -> tuple[bool, dict[str, Any]]:
    from backupmanager.restore.execute import execute_restore

    assert command.restore_id is not None
    status = execute_restore(db, settings, command.restore_id, clock=clock)
    return status == RESTORE_SUCCESS, {"status": status}


def _refresh_apps(
    db: Database, settings: Settings, command: Command, clock: Clock
) -> tuple[bool, dict[str, Any]]:
    from backupmanager import appcache

    catalog = appcache.refresh(settings, clock())
    return not catalog.error, {"apps": len(catalog.apps), "error": catalog.error}


def _drill(
    db: Database, settings: Settings, command: Command, clock: Clock
) -> tuple[bool, dict[str, Any]]:
    from backupmanager.drill import run_drill

    return run_drill(db, settings, command, clock)


def handlers() -> dict[str, CommandHandler]:
    """Every command kind the worker knows. A new kind adds one line here."""
    return {
        "run_job": _run_job,
        "restore": _restore,
        "drill": _drill,
        "delete_archive": _delete_archive,
        "refresh_apps": _refresh_apps,
    }


def enqueue(
    session: Any,
    kind: str,
    *,
    now: datetime,
    requested_by: str,
    payload: dict[str, Any] | None = None,
    run_id: int | None = None,
    restore_id: int | None = None,
) -> Command:
    """Add a command inside the caller's write transaction (with the row it works on)."""
    if kind not in handlers():
        raise ValueError(f"unknown command kind {kind!r}")
    command = Command(
        kind=kind,
        payload_json=json.dumps(payload or {}),
        status=COMMAND_QUEUED,
        run_id=run_id,
        restore_id=restore_id,
        requested_by=requested_by,
        created_at=now,
    )
    session.add(command)
    session.flush()
    return command


# Finished commands are only a queue's leftovers (runs and restores keep their own history):
# kept this long for troubleshooting, then deleted so the table does not grow for ever.
KEEP_FINISHED_COMMANDS = timedelta(days=30)


def prune_finished_commands(db: Database, now: datetime) -> int:
    """Delete commands that ended more than KEEP_FINISHED_COMMANDS ago; returns how many."""
    with db.write() as session:
        result = session.execute(
            delete(Command).where(
                Command.status.in_((COMMAND_DONE, COMMAND_FAILED)),
                Command.finished_at < now - KEEP_FINISHED_COMMANDS,
            )
        )
        return int(getattr(result, "rowcount", 0))


def claim_command(db: Database, command_id: int, now: datetime) -> bool:
    """queued → running, atomically (DESIGN §1): exactly one process gets each command."""
    with db.write() as session:
        result = session.execute(
            update(Command)
            .where(Command.id == command_id, Command.status == COMMAND_QUEUED)
            .values(status=COMMAND_RUNNING, claimed_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


def finish_command(
    db: Database, command_id: int, now: datetime, *, ok: bool, result: dict[str, Any]
) -> None:
    with db.write() as session:
        session.execute(
            update(Command)
            .where(Command.id == command_id)
            .values(
                status=COMMAND_DONE if ok else COMMAND_FAILED,
                finished_at=now,
                result_json=json.dumps(result),
            )
        )


def run_command(db: Database, settings: Settings, command: Command, clock: Clock) -> None:
    """Execute one claimed command to its end and record the outcome."""
    handler = handlers().get(command.kind)
    if handler is None:
        finish_command(
            db, command.id, clock(), ok=False, result={"error": f"unknown command {command.kind}"}
        )
        return
    ok, result = handler(db, settings, command, clock)
    finish_command(db, command.id, clock(), ok=ok, result=result)


def run_inline_command(
    db: Database, settings: Settings, command_id: int, clock: Clock = system_clock
) -> bool:
    """Claim and run a command in this process (the CLI does this when no worker runs)."""
    with db.read() as session:
        command = session.get(Command, command_id)
    if command is None or not claim_command(db, command.id, clock()):
        return False
    run_command(db, settings, command, clock)
    return True


def run_inline(db: Database, settings: Settings, run_id: int, clock: Clock = system_clock) -> str:
    """Run a queued run in this process; returns its final status ("" if someone else took it)."""
    with db.read() as session:
        command_id = session.scalar(
            select(Command.id).where(Command.run_id == run_id, Command.kind == "run_job")
        )
    if command_id is None or not run_inline_command(db, settings, command_id, clock):
        return ""
    with db.read() as session:
        run = session.get(Run, run_id)
        return run.status if run is not None else ""


def run_inline_restore(
    db: Database, settings: Settings, restore_id: int, clock: Clock = system_clock
) -> str:
    """Run a queued restore in this process; its final status ("" if someone else took it)."""
    with db.read() as session:
        command_id = session.scalar(
            select(Command.id).where(Command.restore_id == restore_id, Command.kind == "restore")
        )
    if command_id is None or not run_inline_command(db, settings, command_id, clock):
        return ""
    with db.read() as session:
        restore = session.get(Restore, restore_id)
        return restore.status if restore is not None else ""
