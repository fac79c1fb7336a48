"""The `backupmanager` command line (SPEC §17): a thin layer over the service layer."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlalchemy import select

from backupmanager import archive as archive_format
from backupmanager import prune, services, views, yunohost
from backupmanager.clock import instance_timezone, system_clock
from backupmanager.db import Database, upgrade_schema
from backupmanager.index import stored_info, sync_index
from backupmanager.models import RUN_FINISHED_STATUSES, RUN_SUCCESS, Archive, Job, Run
from backupmanager.process import ProcessError
from backupmanager.retention import RetentionPlan
from backupmanager.settings import Settings, SettingsError, load_settings

EXIT_FAILED = 1
EXIT_USAGE = 2
# How often a followed run or restore log is read again.
LOG_POLL_SECONDS = 0.5


class Context:
    """What every command needs: settings (read once, lazily) and the --json switch."""

    def __init__(self, config_path: Path | None, as_json: bool) -> None:
        self.config_path = config_path
        self.as_json = as_json
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except SettingsError as error:
                fail(str(error), code=EXIT_USAGE)
        return self._settings

    def database(self) -> Database:
        if not self.settings.database_path.exists():
            fail(
                f"No database at {self.settings.database_path}: run 'backupmanager db upgrade' first.",
                code=EXIT_FAILED,
            )
        return Database(self.settings)


def fail(message: str, *, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def emit(ctx: Context, data: Any, human: Callable[[], None]) -> None:
    if ctx.as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        human()


json_option = click.option(
    "--json", "as_json", is_flag=True, default=False, help="Machine-readable JSON output."
)


def pass_context(function: Callable[..., Any]) -> Callable[..., Any]:
    """Give the command our Context, honouring a --json given before or after the command."""

    @json_option
    @click.pass_obj
    def wrapper(obj: Context, /, *args: Any, as_json: bool, **kwargs: Any) -> Any:
        obj.as_json = obj.as_json or as_json
        try:
            return function(obj, *args, **kwargs)
        except (services.InputError, services.NotFound) as error:
            fail(str(error), code=EXIT_USAGE)

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="BACKUPMANAGER_CONFIG",
    help="Configuration file (TOML); default: BACKUPMANAGER_CONFIG.",
)
@json_option
@click.version_option(package_name="backupmanager")
@click.pass_context
def main(click_context: click.Context, config_path: Path | None, as_json: bool) -> None:
    """BackupManager: scheduled, verified, rotated backups of a YunoHost server."""
    click_context.obj = Context(config_path, as_json)


# ---------------------------------------------------------------- db, worker, dev


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Create the database or bring it to the newest schema (keeps every job and run)."""
    revision = upgrade_schema(ctx.settings)
    emit(
        ctx,
        {"database": str(ctx.settings.database_path), "revision": revision},
        lambda: click.echo(f"Database {ctx.settings.database_path} is at revision {revision}."),
    )


@main.command()
@pass_context
def worker(ctx: Context) -> None:
    """Run the scheduler and the runner in the foreground (the backupmanager-worker service)."""
    from backupmanager.worker import Worker, WorkerAlreadyRunning

    upgrade_schema(ctx.settings)
    try:
        _serve_worker(Worker(ctx.settings))
    except WorkerAlreadyRunning as error:
        fail(str(error))


def _serve_worker(the_worker: Any) -> None:
    import logging
    import signal

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    signal.signal(signal.SIGTERM, lambda *_: the_worker.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: the_worker.stop_event.set())
    the_worker.run_forever()


@main.command()
@click.option(
    "--bind", default="127.0.0.1:8765", show_default=True, help="HOST:PORT of the dashboard."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("var/dev"),
    show_default=True,
    help="Where dev mode keeps its database, archives and simulated YunoHost.",
)
@pass_context
def dev(ctx: Context, bind: str, data_dir: Path) -> None:
    """Development mode: worker and dashboard in one process, everything under --data-dir."""
    from backupmanager import devmode

    devmode.serve(data_dir.resolve(), bind, config_path=ctx.config_path)


@main.command()
@click.option("--bind", default="127.0.0.1:8765", show_default=True, help="HOST:PORT to listen on.")
@pass_context
def web(ctx: Context, bind: str) -> None:
    """Run the web process (dashboard + API) in the foreground with gunicorn."""
    from backupmanager.webserver import serve_gunicorn

    serve_gunicorn(ctx.settings, bind)


# ---------------------------------------------------------------- jobs


def job_options(*, required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of `jobs add`, also accepted (all optional) by `jobs edit`."""
    options = [
        click.option("--name", required=required, help="A name of your choice (no ':' or '/')."),
        click.option("--type", "job_type", required=required, help="ynh_app or ynh_system."),
        click.option(
            "--config",
            "config_json",
            required=required,
            help='Settings of the job kind as JSON, e.g. \'{"app_id": "nextcloud"}\'.',
        ),
        click.option(
            "--cron", required=required, help="When to run, e.g. '0 3 * * *' (every day at 03:00)."
        ),
        click.option("--retention", help="count:N, daily:N or gfs:D/W/M (default count:7)."),
        click.option(
            "--core-only/--full",
            "core_only",
            default=None,
            help="ynh_app: skip big data folders (BACKUP_CORE_ONLY=1).",
        ),
        click.option(
            "--disabled/--enabled", "disabled", default=None, help="Whether the scheduler runs it."
        ),
    ]

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def _job_changes(**values: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if values.get("name") is not None:
        changes["name"] = values["name"]
    if values.get("job_type") is not None:
        changes["type"] = values["job_type"]
    if values.get("config_json") is not None:
        try:
            changes["config"] = json.loads(values["config_json"])
        except ValueError as error:
            raise services.InputError(f"--config is not valid JSON: {error}") from None
        if not isinstance(changes["config"], dict):
            raise services.InputError(
                '--config must be a JSON object, e.g. {"app_id": "nextcloud"}'
            )
    if values.get("cron") is not None:
        changes["cron"] = values["cron"]
    if values.get("retention") is not None:
        changes["retention"] = values["retention"]
    if values.get("core_only") is not None:
        changes["core_only"] = values["core_only"]
    if values.get("disabled") is not None:
        changes["enabled"] = not values["disabled"]
    return changes


def _print_job(ctx: Context, job: Job) -> None:
    view = views.job_view(job, timezone=instance_timezone(ctx.settings), now=system_clock())

    def human() -> None:
        click.echo(f"Job {view['id']}: {view['name']} ({view['type']})")
        click.echo(f"  config:    {json.dumps(view['config'], sort_keys=True)}")
        click.echo(f"  schedule:  {view['cron']}  ({view['schedule']})")
        click.echo(f"  next run:  {view['next_run_at'] or 'none (disabled)'}")
        click.echo(f"  retention: {view['retention']}")
        click.echo(f"  enabled:   {'yes' if view['enabled'] else 'no'}")
        if view["last_error"]:
            click.echo(f"  last error: {view['last_error']}")

    emit(ctx, view, human)


@main.group()
def jobs() -> None:
    """Create, change and run backup jobs."""


@jobs.command("add")
@job_options(required=True)
@pass_context
def jobs_add(ctx: Context, **values: Any) -> None:
    """Create a job (the app or parts are checked with YunoHost first)."""
    raw = _job_changes(**values)
    raw.setdefault("retention", "count:7")
    job = services.create_job(ctx.database(), ctx.settings, raw)
    _print_job(ctx, job)


@jobs.command("edit")
@click.argument("job_id", type=int)
@job_options(required=False)
@pass_context
def jobs_edit(ctx: Context, job_id: int, **values: Any) -> None:
    """Change a job; options not given keep their value."""
    changes = _job_changes(**values)
    if not changes:
        fail("nothing to change: give at least one option (see --help)", code=EXIT_USAGE)
    job = services.update_job(ctx.database(), ctx.settings, job_id, changes)
    _print_job(ctx, job)


@jobs.command("list")
@pass_context
def jobs_list(ctx: Context) -> None:
    """Every job with its schedule and state."""
    database = ctx.database()
    timezone, now = instance_timezone(ctx.settings), system_clock()
    with database.read() as session:
        rows = [
            views.job_view(job, timezone=timezone, now=now)
            for job in session.scalars(select(Job).order_by(Job.id))
        ]

    def human() -> None:
        if not rows:
            click.echo("No jobs yet. Create one with 'backupmanager jobs add --help'.")
        for row in rows:
            state = "enabled" if row["enabled"] else "disabled"
            click.echo(
                f"{row['id']:>4}  {row['name']:<24} {row['type']:<11} {row['cron']:<15} {state:<8} {row['schedule']}"
            )

    emit(ctx, rows, human)


@jobs.command("show")
@click.argument("job_id", type=int)
@pass_context
def jobs_show(ctx: Context, job_id: int) -> None:
    """One job in detail."""
    with ctx.database().read() as session:
        job = services.get_job(session, job_id)
    _print_job(ctx, job)


@jobs.command("enable")
@click.argument("job_id", type=int)
@pass_context
def jobs_enable(ctx: Context, job_id: int) -> None:
    """Let the scheduler run the job again."""
    _print_job(ctx, services.set_enabled(ctx.database(), job_id, True))


@jobs.command("disable")
@click.argument("job_id", type=int)
@pass_context
def jobs_disable(ctx: Context, job_id: int) -> None:
    """Stop scheduling the job (Run now still works)."""
    _print_job(ctx, services.set_enabled(ctx.database(), job_id, False))


@jobs.command("delete")
@click.argument("job_id", type=int)
@pass_context
def jobs_delete(ctx: Context, job_id: int) -> None:
    """Delete a job and its history; its archives are kept."""
    services.delete_job(ctx.database(), job_id)
    emit(
        ctx,
        {"deleted": job_id},
        lambda: click.echo(f"Job {job_id} deleted; its archives were kept."),
    )


@jobs.command("run")
@click.argument("job_id", type=int)
@click.option("--wait", is_flag=True, help="Follow the run to its end and print its log.")
@pass_context
def jobs_run(ctx: Context, job_id: int, wait: bool) -> None:
    """Run a job now, through the worker if it is running, else in this process."""
    from backupmanager.commands import run_inline

    database = ctx.database()
    queued = services.queue_run(
        database, job_id, trigger="manual", requested_by="cli", now=system_clock()
    )
    if not queued.created and not ctx.as_json:
        click.echo(f"Job {job_id} is already queued or running as run {queued.run_id}.", err=True)
    with database.read() as session:
        worker_is_alive = services.worker_alive(session, system_clock())
    if not worker_is_alive and queued.created:
        if not ctx.as_json:
            click.echo("No worker is running: running the job in this process.", err=True)
        _follow_inline(ctx, database, queued.run_id, run_inline)
    elif wait:
        _follow(ctx, database, queued.run_id)
    else:
        emit(
            ctx,
            {"run_id": queued.run_id, "queued": queued.created},
            lambda: click.echo(f"Run {queued.run_id} queued."),
        )
        return
    with database.read() as session:
        run = services.get_run(session, queued.run_id)
    emit(ctx, views.run_view(run), lambda: _print_run_summary(run))
    if run.status != RUN_SUCCESS:
        sys.exit(EXIT_FAILED)


def run_in_thread_and_stream(
    ctx: Context, work: Callable[[], object], read_log: Callable[[], str]
) -> None:
    """Do `work` in this process while printing the log it produces (the no-worker path)."""
    import threading

    done = threading.Event()

    def target() -> None:
        try:
            work()
        finally:
            done.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    stream_log(ctx, read_log, until=done.is_set, pause=done.wait)
    thread.join()


def stream_log(
    ctx: Context,
    read_log: Callable[[], str],
    *,
    until: Callable[[], bool],
    pause: Callable[[float], object] = time.sleep,
) -> None:
    """Print a run's or a restore's log as it grows (not with --json), until `until()` is true.

    pause: how to wait between two reads; the in-process path passes its "done" event's wait,
    so the command ends as soon as the work does, not up to half a second later.
    """
    shown = 0
    while True:
        stop = until()
        log_text = read_log()
        if not ctx.as_json and len(log_text) > shown:
            click.echo(log_text[shown:], nl=False, err=True)
            shown = len(log_text)
        if stop:
            return
        pause(LOG_POLL_SECONDS)


def _run_log(database: Database, run_id: int) -> Callable[[], str]:
    def read() -> str:
        with database.read() as session:
            return services.get_run(session, run_id).log_text

    return read


def _follow_inline(
    ctx: Context, database: Database, run_id: int, run_inline: Callable[..., str]
) -> None:
    run_in_thread_and_stream(
        ctx, lambda: run_inline(database, ctx.settings, run_id), _run_log(database, run_id)
    )


def _follow(ctx: Context, database: Database, run_id: int) -> None:
    def finished() -> bool:
        with database.read() as session:
            return services.get_run(session, run_id).status in RUN_FINISHED_STATUSES

    stream_log(ctx, _run_log(database, run_id), until=finished)


def _print_run_summary(run: Run) -> None:
    click.echo(f"Run {run.id}: {run.status}")
    if run.archive_name:
        click.echo(f"  archive: {run.archive_name} ({run.size_bytes} bytes, sha256 {run.sha256})")
    if run.error_message:
        click.echo(f"  error:   {run.error_message}")


# ---------------------------------------------------------------- runs


@main.group()
def runs() -> None:
    """History of runs."""


@runs.command("list")
@click.option("--job", "job_id", type=int, help="Only the runs of this job.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@pass_context
def runs_list(ctx: Context, job_id: int | None, limit: int) -> None:
    """The newest runs first."""
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    with ctx.database().read() as session:
        rows = [views.run_view(run) for run in session.scalars(query)]

    def human() -> None:
        for row in rows:
            click.echo(
                f"{row['id']:>6}  job {row['job_id']:<4} {row['status']:<11} {row['started_at'] or row['queued_at']}  {row['archive_name'] or ''}"
            )

    emit(ctx, rows, human)


@runs.command("show")
@click.argument("run_id", type=int)
@pass_context
def runs_show(ctx: Context, run_id: int) -> None:
    """One run with its log."""
    with ctx.database().read() as session:
        run = services.get_run(session, run_id)
    view = views.run_view(run, with_log=True)

    def human() -> None:
        _print_run_summary(run)
        click.echo(run.log_text, nl=False)

    emit(ctx, view, human)


# ---------------------------------------------------------------- archives


@main.group()
def archives() -> None:
    """Archives in the archives folder, ours and YunoHost's own."""


def _synced(ctx: Context) -> Database:
    database = ctx.database()
    with database.write() as session:
        sync_index(session, ctx.settings.archives_dir, ctx.settings.instance_name)
    return database


@archives.command("list")
@click.option("--job", "job_id", type=int, help="Only the archives of this job.")
@pass_context
def archives_list(ctx: Context, job_id: int | None) -> None:
    """Every archive, oldest first."""
    query = select(Archive).order_by(Archive.created_at, Archive.name)
    if job_id is not None:
        query = query.where(Archive.job_id == job_id)
    with _synced(ctx).read() as session:
        rows = [views.archive_view(row) for row in session.scalars(query)]

    def human() -> None:
        if not rows:
            click.echo(f"No archives in {ctx.settings.archives_dir}.")
        for row in rows:
            click.echo(
                f"{row['name']:<50} {row['size_bytes']:>14}  {row['created_at']}  {row['origin']}"
            )

    emit(ctx, rows, human)


def _get_archive(session: Any, name: str) -> Archive:
    try:
        archive_format.validate_archive_name(name)
    except archive_format.ArchiveError as error:
        raise services.InputError(str(error)) from None
    row = session.scalar(select(Archive).where(Archive.name == name))
    if row is None:
        raise services.NotFound(
            f"there is no archive named '{name}' (see 'backupmanager archives list')"
        )
    return row  # type: ignore[no-any-return]


@archives.command("info")
@click.argument("name")
@pass_context
def archives_info(ctx: Context, name: str) -> None:
    """What the index knows about an archive, and its YunoHost metadata."""
    with _synced(ctx).read() as session:
        row = _get_archive(session, name)
    view = views.archive_view(row)
    view["yunohost_info"] = stored_info(row)
    view["path"] = str(ctx.settings.archives_dir / row.filename)

    def human() -> None:
        for key, value in view.items():
            if key != "yunohost_info":
                click.echo(f"{key:>14}: {value}")
        if view["yunohost_info"]:
            click.echo(
                f"{'contents':>14}: apps {sorted(view['yunohost_info'].get('apps') or {})}, system {sorted(view['yunohost_info'].get('system') or {})}"
            )

    emit(ctx, view, human)


@archives.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_context
def archives_delete(ctx: Context, name: str, yes: bool) -> None:
    """Delete an archive (YunoHost's own archives are deleted through YunoHost)."""
    database = _synced(ctx)
    with database.read() as session:
        row = _get_archive(session, name)
    if not yes and not click.confirm(f"Delete archive {name} ({row.size_bytes} bytes)?"):
        fail("nothing deleted", code=EXIT_FAILED)
    # The same function as the worker's `delete_archive` command (API and dashboard deletions).
    error = services.delete_archive_now(database, ctx.settings, name)
    if error:
        fail(error)
    emit(ctx, {"deleted": name}, lambda: click.echo(f"Archive {name} deleted."))


# ---------------------------------------------------------------- retention


def _print_plan(ctx: Context, job_id: int, plan: RetentionPlan, applied: bool) -> None:
    data = {
        "job_id": job_id,
        "applied": applied,
        "skipped_reason": plan.skipped_reason,
        "keep": [{"name": d.name, "reason": d.reason} for d in plan.keep],
        "delete": [{"name": d.name, "reason": d.reason} for d in plan.delete],
    }

    def human() -> None:
        if plan.skipped_reason:
            click.echo(f"Nothing will be deleted: {plan.skipped_reason}.")
        for decision in plan.keep:
            click.echo(f"keep    {decision.name:<50} {decision.reason}")
        verb = "deleted" if applied else "delete "
        for decision in plan.delete:
            click.echo(f"{verb} {decision.name:<50} {decision.reason}")
        if not plan.delete:
            click.echo("Nothing to delete.")

    emit(ctx, data, human)


@main.group()
def retention() -> None:
    """Preview and apply a job's retention policy."""


@retention.command("preview")
@click.argument("job_id", type=int)
@pass_context
def retention_preview(ctx: Context, job_id: int) -> None:
    """What retention would keep and delete now, and why (changes nothing)."""
    with _synced(ctx).read() as session:
        job = services.get_job(session, job_id)
        plan = prune.plan_for_job(
            session, job, now=system_clock(), timezone=instance_timezone(ctx.settings)
        )
    _print_plan(ctx, job_id, plan, applied=False)


@retention.command("apply")
@click.argument("job_id", type=int)
@pass_context
def retention_apply(ctx: Context, job_id: int) -> None:
    """Apply retention now (the worker also does it after every successful run)."""
    database = _synced(ctx)
    with database.read() as session:
        services.get_job(session, job_id)
    plan = prune.apply_for_job(
        database,
        ctx.settings.archives_dir,
        job_id,
        now=system_clock(),
        timezone=instance_timezone(ctx.settings),
        log=lambda _line: None,
    )
    _print_plan(ctx, job_id, plan, applied=True)


# ---------------------------------------------------------------- apps


@main.group()
def apps() -> None:
    """What YunoHost can back up."""


@apps.command("list")
@pass_context
def apps_list(ctx: Context) -> None:
    """Installed YunoHost apps (from 'yunohost app list'), for ynh_app jobs."""
    try:
        installed = yunohost.list_apps(ctx.settings.programs.yunohost)
    except (ProcessError, yunohost.YunohostError) as error:
        fail(f"could not ask YunoHost for its apps: {error}")
    rows = [app.__dict__ for app in installed]

    def human() -> None:
        for app in installed:
            note = "" if app.supports_backup_restore else "  (no backup support)"
            click.echo(f"{app.id:<24} {app.version:<16} {app.name}{note}")

    emit(ctx, rows, human)


# ---------------------------------------------------------------- restore (cli_restore.py)
from backupmanager.cli_restore import restore as _restore_command  # noqa: E402

main.add_command(_restore_command)

import backupmanager.cli_databases  # noqa: E402, F401  (adds `jobs drill` and `secrets`)
from backupmanager import cli_tokens  # noqa: E402, F401  (adds `backupmanager tokens` to main)
