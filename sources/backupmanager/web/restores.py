"""Restores from the dashboard (issues 3 and 4): options, the worker's plan first, then the restore."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import abort, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import defer

from backupmanager import services
from backupmanager.clock import system_clock
from backupmanager.databases.reader import DATABASE_TYPES
from backupmanager.models import (
    RESTORE_QUEUED,
    RESTORE_RUNNING,
    RESTORE_SUCCESS,
    Archive,
    Restore,
)
from backupmanager.restore import refusals
from backupmanager.restore.execute import RESTORABLE_TYPES
from backupmanager.restore.service import (
    RestoreInputError,
    RestoreOptions,
    RestoreRefused,
    is_plan,
    plan_options,
    queue_restore,
    restore_status,
    restore_view,
)
from backupmanager.web import i18n, state
from backupmanager.web.auth import protected_blueprint
from backupmanager.web.known_messages import localized

bp = protected_blueprint("restores", __name__)
LIVE_LOG_CHARS = 64_000
RESTORES_SHOWN = 100  # the restores page lists the newest ones; each has its own page
# Where a refusal of the service layer goes on the form: its message names the option.
FIELD_OF_MESSAGE = (
    ("--database", "database"),
    ("--target", "target"),
    ("--overwrite", "overwrite"),
)


# Kinds BackupManager restores itself; YunoHost restores the others.
RESTORABLE_KINDS = (*RESTORABLE_TYPES, *DATABASE_TYPES)


def restorable(kind: str | None) -> bool:
    return kind in RESTORABLE_KINDS


@dataclass
class RestoreForm:
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, source: Any) -> RestoreForm:
        return cls(
            {
                "target": (source.get("target") or "").strip(),
                "database": (source.get("database") or "").strip(),
                "overwrite": source.get("overwrite") in ("on", "1", "true"),
                "skip_commands": source.get("skip_commands") in ("on", "1", "true"),
            }
        )

    @classmethod
    def of(cls, options: RestoreOptions) -> RestoreForm:
        """The form as it was filled for these options (a plan's, shown again)."""
        return cls(
            {
                "target": options.target or "",
                "database": options.database or "",
                "overwrite": options.overwrite,
                "skip_commands": options.skip_commands,
            }
        )

    def options(self, *, plan_only: bool) -> RestoreOptions:
        return RestoreOptions(
            target=self.values["target"] or None,
            overwrite=self.values["overwrite"],
            skip_commands=self.values["skip_commands"],
            plan_only=plan_only,
            database=self.values["database"] or None,
        )

    def query(self) -> dict[str, str]:
        """The options as query arguments, so the plan page keeps what was typed."""
        return {
            key: ("on" if value is True else value) for key, value in self.values.items() if value
        }

    def refuse(self, message: str) -> None:
        """Put the service layer's (English) refusal next to the option it names."""
        name = next((n for flag, n in FIELD_OF_MESSAGE if flag in message[:40]), "form")
        hint = _hints().get(name) if i18n.language() != "en" else None
        self.errors[name] = f"{hint} ({message})" if hint else message


def _hints() -> dict[str, str]:
    return {
        "database": _("A new database name is only for MySQL / PostgreSQL archives."),
        "target": _("The folder must be an absolute path, such as /home/restored."),
        "form": _("This restore cannot be started."),
    }


@bp.app_template_global()
def refusal_words(plan: dict[str, Any] | None, error_message: str | None) -> str:
    """Why a plan is refused, in the page's words: the checkbox to tick, not a CLI flag."""
    reason = (plan or {}).get("refusal_reason")
    if reason and reason.get("reason") in refusals.WORDS[refusals.WEB]:
        english = refusals.WORDS[refusals.WEB][reason["reason"]]
        return refusals.wording(reason, refusals.WEB, template=_(english))
    return localized((plan or {}).get("refusal") or error_message)


def _archive(name: str) -> Archive:
    with state().db.read() as session:
        try:
            return services.get_archive(session, name)
        except (services.NotFound, services.InputError):
            abort(404)


def _restore(restore_id: int) -> dict[str, Any]:
    try:
        view = restore_status(state().db, restore_id, with_log=True)
    except LookupError:
        abort(404)
    active = view["status"] in (RESTORE_QUEUED, RESTORE_RUNNING)
    log = view.pop("log") or ""
    view["active"] = active
    view["clipped"] = active and len(log) > LIVE_LOG_CHARS
    view["log"] = log[-LIVE_LOG_CHARS:] if view["clipped"] else log
    view["percent"] = _percent(view["progress_bytes"], view["total_bytes"])
    started, finished = view["started_at"], view["finished_at"]
    view["seconds"] = (
        (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
        if started and finished
        else None
    )
    return view


def _percent(done: int | None, total: int | None) -> int | None:
    if not total or done is None:
        return None
    return max(0, min(100, round(100 * done / total)))


def _worker_alive() -> bool:
    with state().db.read() as session:
        return services.worker_alive(session, system_clock())


def _form_page(archive: Archive, form: RestoreForm, plan: dict[str, Any] | None, code: int) -> Any:
    page = render_template(
        "restore_form.html",
        archive=archive,
        form=form,
        plan=plan,
        restorable=restorable(archive.kind),
        is_database=archive.kind in DATABASE_TYPES,
        worker_alive=_worker_alive(),
    )
    return page, code


@bp.route("/archives/<name>/restore", methods=["GET", "POST"])
def start(name: str) -> Any:
    """GET: the options (and the plan asked for, `?plan=ID`). POST: show the plan, or restore now."""
    archive = _archive(name)
    form = RestoreForm.read(request.form if request.method == "POST" else request.args)
    if request.method == "GET":
        plan_id = request.args.get("plan", type=int)
        plan = _restore(plan_id) if plan_id else None
        if plan is not None and plan["archive_name"] != archive.name:
            abort(404)
        return _form_page(archive, form, plan, 200)
    plan_only = request.form.get("action") != "restore"
    if not plan_only and not _matches_its_plan(archive, form):
        return _form_page(archive, form, None, 409)
    web = state()
    try:
        restore_id = queue_restore(
            web.db,
            web.settings,
            archive.name,
            form.options(plan_only=plan_only),
            requested_by=f"web:{g.identity.username}"[:64],
            now=system_clock(),
        )
    except (RestoreInputError, RestoreRefused) as error:
        form.refuse(str(error))
        return _form_page(archive, form, None, 422)
    if plan_only:
        arguments: dict[str, Any] = {"name": archive.name, "plan": restore_id, **form.query()}
        return redirect(url_for("restores.start", **arguments))
    return redirect(url_for("restores.show", restore_id=restore_id))


def _matches_its_plan(archive: Archive, form: RestoreForm) -> bool:
    """ "Restore now" runs the restore whose plan was shown: same archive, same options.

    A page left open, or a field changed after the plan, must not restore something else.
    """
    plan_id = request.form.get("plan", type=int)
    view = _restore(plan_id) if plan_id else None
    shown = (
        view is not None
        and view["archive_name"] == archive.name
        and view["options"].get("plan_only")
        and view["status"] == RESTORE_SUCCESS
    )
    if shown and view is not None:
        planned = plan_options(RestoreOptions.from_dict(view["options"]))
        if planned == plan_options(form.options(plan_only=False)):
            return True
    form.errors["form"] = _(
        "The options are not those of the plan shown: nothing was restored. Press “Show the "
        "plan” to see what these options would do, then “Restore now” under it."
    )
    return False


@bp.get("/restores")
def index() -> str:
    """The newest restores and restore drills, wherever they were started (here, CLI, API, cron)."""
    with state().db.read() as session:
        rows = session.scalars(
            select(Restore)
            .options(defer(Restore.log_text, raiseload=True))  # long, and never shown here
            .where(~is_plan())  # a plan changed nothing: it is not a restore
            .order_by(Restore.id.desc())
            .limit(RESTORES_SHOWN)
        ).all()
        restores = [restore_view(row) for row in rows]
    return render_template(
        "restores.html", restores=restores, now=system_clock(), shown=RESTORES_SHOWN
    )


@bp.get("/restores/<int:restore_id>/plan")
def plan(restore_id: int) -> str:
    """The plan part of the restore form, which htmx refreshes until the worker has written it."""
    return render_template("_restore_plan.html", plan=_restore(restore_id))


@bp.get("/restores/<int:restore_id>")
def show(restore_id: int) -> Any:
    view = _restore(restore_id)
    if view["options"].get("plan_only"):  # a plan is shown as a plan, on the restore form
        form = RestoreForm.of(RestoreOptions.from_dict(view["options"]))
        arguments = {"name": view["archive_name"], "plan": restore_id, **form.query()}
        return redirect(url_for("restores.start", **arguments))
    return render_template(
        "restore.html",
        restore=view,
        archive_name=view["archive_name"],
        worker_alive=_worker_alive(),
    )


@bp.get("/restores/<int:restore_id>/live")
def live(restore_id: int) -> str:
    """The part of the restore page that htmx refreshes until the restore is over."""
    return render_template(
        "_restore_live.html", restore=_restore(restore_id), worker_alive=_worker_alive()
    )
