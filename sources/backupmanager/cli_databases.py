"""`backupmanager jobs drill ID [--wait]` and `backupmanager secrets …` (database jobs, issue 4)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from typing import Any

import click
from sqlalchemy import select

from backupmanager import services
from backupmanager.cli import (
    EXIT_FAILED,
    EXIT_USAGE,
    Context,
    emit,
    fail,
    jobs,
    main,
    pass_context,
    run_in_thread_and_stream,
    stream_log,
)
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.drill import drill_view, queue_drill
from backupmanager.models import RESTORE_ERROR, RESTORE_INTERRUPTED, RESTORE_SUCCESS, Command
from backupmanager.restore import service
from backupmanager.secret_store import SecretError, SecretStore

FINISHED = (RESTORE_SUCCESS, RESTORE_ERROR, RESTORE_INTERRUPTED)


def _follow(ctx: Context, database: Database, restore_id: int, until: Callable[[], bool]) -> None:
    """Print the drill's log as it grows (not with --json), until `until()` is true."""
    stream_log(ctx, partial(service.restore_log, database, restore_id), until=until)


def _run_here(ctx: Context, database: Database, restore_id: int) -> None:
    from backupmanager.commands import run_inline_command

    with database.read() as session:
        command_id = session.scalar(
            select(Command.id).where(Command.restore_id == restore_id, Command.kind == "drill")
        )

    def work() -> None:
        if command_id is not None:
            run_inline_command(database, ctx.settings, command_id)

    run_in_thread_and_stream(ctx, work, partial(service.restore_log, database, restore_id))


@jobs.command("drill")
@click.argument("job_id", type=int)
@click.option("--wait", is_flag=True, help="Follow the drill to its end and print its verdict.")
@pass_context
def jobs_drill(ctx: Context, job_id: int, wait: bool) -> None:
    """Restore drill: restore the job's newest archive into a throw-away database, compare, drop."""
    database = ctx.database()
    restore_id, created = queue_drill(database, job_id, requested_by="cli", now=system_clock())
    if not created and not ctx.as_json:
        click.echo(
            f"A drill of job {job_id} is already under way (restore {restore_id}).", err=True
        )
    with database.read() as session:
        worker_is_alive = services.worker_alive(session, system_clock())
    if not worker_is_alive and created:
        if not ctx.as_json:
            click.echo("No worker is running: running the drill in this process.", err=True)
        _run_here(ctx, database, restore_id)
    elif wait:
        _follow(
            ctx,
            database,
            restore_id,
            lambda: service.restore_status(database, restore_id)["status"] in FINISHED,
        )
    else:
        emit(
            ctx,
            {"job_id": job_id, "restore_id": restore_id, "queued": created},
            lambda: click.echo(f"Drill queued (restore {restore_id})."),
        )
        return
    status = service.restore_status(database, restore_id)
    with database.read() as session:
        verdict = drill_view(services.get_job(session, job_id))
    result: dict[str, Any] = {"job_id": job_id, "restore_id": restore_id, **verdict}
    result["status"] = status["status"]

    def human() -> None:
        click.echo(f"Drill of job {job_id}: {status['status']}")
        click.echo(f"  {verdict['last_drill_message']}")

    emit(ctx, result, human)
    if status["status"] != RESTORE_SUCCESS:
        sys.exit(EXIT_FAILED)


@main.group()
def secrets() -> None:
    """Passwords of remote database servers, stored encrypted (never on the command line)."""


def _read_secret(from_stdin: bool) -> str:
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@secrets.command("set")
@click.argument("name")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from stdin.")
@pass_context
def secrets_set(ctx: Context, name: str, from_stdin: bool) -> None:
    """Store (or replace) the password NAME: asked without echo, or read from stdin."""
    store = SecretStore(ctx.settings.data_dir)
    try:
        store.set(name, _read_secret(from_stdin))
    except SecretError as error:
        fail(str(error), code=EXIT_USAGE)
    emit(ctx, {"name": name, "stored": True}, lambda: click.echo(f"Secret {name} stored."))


@secrets.command("list")
@pass_context
def secrets_list(ctx: Context) -> None:
    """The names of the stored secrets (never their values)."""
    try:
        names = SecretStore(ctx.settings.data_dir).names()
    except SecretError as error:
        fail(str(error))
    emit(ctx, names, lambda: click.echo("\n".join(names)) if names else None)


@secrets.command("delete")
@click.argument("name")
@pass_context
def secrets_delete(ctx: Context, name: str) -> None:
    """Forget the password NAME (jobs that name it will fail until it is set again)."""
    try:
        deleted = SecretStore(ctx.settings.data_dir).delete(name)
    except SecretError as error:
        fail(str(error))
    if not deleted:
        fail(f"there is no secret named '{name}'", code=EXIT_FAILED)
    emit(ctx, {"name": name, "deleted": True}, lambda: click.echo(f"Secret {name} deleted."))
