"""`backupmanager restore NAME [--target DIR] [--database NEW] [--yes] [--wait]` (SPEC §17, S-X)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click

from backupmanager import services
from backupmanager.cli import (
    EXIT_FAILED,
    EXIT_USAGE,
    Context,
    emit,
    fail,
    pass_context,
    run_in_thread_and_stream,
    stream_log,
)
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.index import sync_index
from backupmanager.models import RESTORE_ERROR, RESTORE_INTERRUPTED, RESTORE_SUCCESS
from backupmanager.restore import service
from backupmanager.restore.plan import RestoreOptions

FINISHED = (RESTORE_SUCCESS, RESTORE_ERROR, RESTORE_INTERRUPTED)


def _print_plan(plan: dict[str, Any]) -> None:
    click.echo(f"Restore plan for {plan['archive']}:")
    for path in plan["paths"]:
        click.echo(f"  {path['origin']}  ->  {path['restore_to']}")
    for number, step in enumerate(plan["steps"], start=1):
        click.echo(f"  {number}. {step['step']}: {step['action']}")
    for example in plan["files"]["overwrite_examples"]:
        click.echo(f"     would overwrite {example}")
    if plan["commands"]:
        click.echo("  Commands from the archive (run as root):")
        for command in plan["commands"]:
            click.echo(f"     $ {command}")
    if plan["refusal"]:
        click.echo(f"  Refused as asked: {plan['refusal']}")


def _confirm(plan: dict[str, Any], options: RestoreOptions) -> RestoreOptions:
    """Interactive: the admin sees the plan; overwriting at the origin is a separate yes."""
    overwrite = options.overwrite
    database = plan.get("database")  # database archives (restore/database_plan.py)
    if database and database["exists"] and not overwrite:
        question = (
            f"The database {database['target']} exists ({database['existing_tables']} tables) "
            "and will be replaced. Replace it?"
        )
        if not click.confirm(question):
            fail("nothing was restored", code=EXIT_FAILED)
        overwrite = True
    if plan["files"]["overwrite"] and not overwrite:
        count = plan["files"]["overwrite"]
        if not click.confirm(f"{count} existing files will be overwritten. Overwrite them?"):
            fail("nothing was restored", code=EXIT_FAILED)
        overwrite = True
    if not click.confirm("Start this restore?"):
        fail("nothing was restored", code=EXIT_FAILED)
    return RestoreOptions(**{**options.as_dict(), "overwrite": overwrite})


def _follow(ctx: Context, database: Database, restore_id: int, until: Callable[[], bool]) -> None:
    stream_log(ctx, partial(service.restore_log, database, restore_id), until=until)


def _run_here(ctx: Context, database: Database, restore_id: int) -> None:
    from backupmanager.commands import run_inline_restore

    run_in_thread_and_stream(
        ctx,
        lambda: run_inline_restore(database, ctx.settings, restore_id),
        partial(service.restore_log, database, restore_id),
    )


@click.command("restore")
@click.argument("name")
@click.option(
    "--target",
    type=click.Path(path_type=Path, file_okay=False),
    help="Restore the files under this folder instead of their origin (files only).",
)
@click.option(
    "--database",
    "database",
    metavar="NEW_NAME",
    help="Database archives: restore into this database.",
)
@click.option("--yes", is_flag=True, help="Do not ask: start the restore after printing the plan.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Allow replacing files (or a database) that already exist where the restore writes.",
)
@click.option("--skip-commands", is_flag=True, help="Do not run the archive's restore commands.")
@click.option(
    "--plan", "plan_only", is_flag=True, help="Print the plan and stop (changes nothing)."
)
@click.option("--wait", is_flag=True, help="Follow the restore to its end.")
@pass_context
def restore(
    ctx: Context,
    name: str,
    target: Path | None,
    database: str | None,
    yes: bool,
    overwrite: bool,
    skip_commands: bool,
    plan_only: bool,
    wait: bool,
) -> None:
    """Restore an archive: the plan first, then files, user, service, permissions, commands."""
    options = RestoreOptions(
        target=str(target.absolute()) if target is not None else None,
        overwrite=overwrite,
        skip_commands=skip_commands,
        database=database,
    )
    try:
        plan = service.plan_restore(ctx.settings, name, options)
    except service.RestoreInputError as error:
        fail(str(error), code=EXIT_USAGE)
    except (service.RestoreRefused, service.UnsafeArchive) as error:
        fail(f"restore refused, nothing was changed: {error}", code=EXIT_FAILED)
    if plan_only or not ctx.as_json:
        emit(ctx, plan, lambda: _print_plan(plan))
    if plan_only:
        sys.exit(0 if not plan["refusal"] else EXIT_FAILED)
    if plan["refusal"] and (yes or ctx.as_json):
        fail(f"restore refused, nothing was changed: {plan['refusal']}", code=EXIT_FAILED)
    if not yes:
        if ctx.as_json:
            fail("--json needs --yes (there is no prompt in JSON mode)", code=EXIT_USAGE)
        options = _confirm(plan, options)
    database_handle = ctx.database()
    with database_handle.write() as session:  # an archive copied in by hand is known at once
        sync_index(session, ctx.settings.archives_dir, ctx.settings.instance_name)
    try:
        restore_id = service.queue_restore(
            database_handle, ctx.settings, name, options, requested_by="cli", now=system_clock()
        )
    except service.RestoreRefused as error:
        fail(str(error), code=EXIT_FAILED)
    with database_handle.read() as session:
        worker_is_alive = services.worker_alive(session, system_clock())
    if not worker_is_alive:
        if not ctx.as_json:
            click.echo("No worker is running: restoring in this process.", err=True)
        _run_here(ctx, database_handle, restore_id)
    elif wait:
        _follow(
            ctx,
            database_handle,
            restore_id,
            lambda: service.restore_status(database_handle, restore_id)["status"] in FINISHED,
        )
    else:
        emit(
            ctx,
            {"restore_id": restore_id, "queued": True},
            lambda: click.echo(f"Restore {restore_id} queued."),
        )
        return
    status = service.restore_status(database_handle, restore_id)
    emit(ctx, status, lambda: _print_status(status))
    if status["status"] != RESTORE_SUCCESS:
        sys.exit(EXIT_FAILED)


def _print_status(status: dict[str, Any]) -> None:
    click.echo(f"Restore {status['id']} of {status['archive_name']}: {status['status']}")
    for step in status["steps"]:
        click.echo(f"  {step['status']:<7} {step['step']}: {step['detail']}")
    if status["error_message"]:
        click.echo(f"  error: {status['error_message']}")
