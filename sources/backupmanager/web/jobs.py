"""Job pages: create and edit (one form for every kind), history with chart, Run now, previews."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from backupmanager import appcache, cron, prune, services
from backupmanager.clock import system_clock
from backupmanager.drill import queue_drill
from backupmanager.models import Job
from backupmanager.retention import RetentionPolicy, RetentionPolicyError
from backupmanager.web import chart, forms, i18n, queries, state
from backupmanager.web.auth import protected_blueprint

bp = protected_blueprint("jobs", __name__)


def _form_page(data: forms.JobFormData, job: Job | None, status: int = 200) -> tuple[str, int]:
    web = state()
    catalog = appcache.read(web.settings)
    page = render_template(
        "job_form.html",
        form=data,
        job=job,
        kinds=forms.kind_choices(),
        kind_template=forms.kind_form(data.values["type"]).template,
        catalog=catalog,
        retention_modes=forms.RETENTION_MODES,
    )
    return page, status


def _save(data: forms.JobFormData, job_id: int | None) -> Job | None:
    """Validate with the shared schema, check against the cached catalog, save; None on errors."""
    web = state()
    catalog = appcache.read(web.settings)
    raw = data.raw_input()
    try:
        services.validate_job_input(raw, web.settings, check_server=False)
    except services.InputError as error:
        data.errors.update(forms.errors_by_field(str(error)))
    data.errors.update(forms.kind_form(data.values["type"]).check(data.values["config"], catalog))
    if data.errors:
        data.errors = forms.localized(data.errors, i18n.language())
        return None
    try:
        if job_id is None:
            return services.create_job(web.db, web.settings, raw, check_server=False)
        return services.update_job(web.db, web.settings, job_id, raw, check_server=False)
    except services.InputError as error:
        data.errors = forms.localized(forms.errors_by_field(str(error)), i18n.language())
        return None


def _get_job(job_id: int) -> Job:
    with state().db.read() as session:
        try:
            return services.get_job(session, job_id)
        except services.NotFound:
            abort(404)


@bp.route("/jobs/new", methods=["GET", "POST"])
def new() -> Any:
    if request.method == "GET":
        data = forms.from_job(None)
        if request.args.get("type"):
            data.values["type"] = request.args["type"]
        return _form_page(data, None)
    data = forms.read_form(request.form)
    job = _save(data, None)
    if job is None:
        return _form_page(data, None, 422)
    flash(_("Job “%(name)s” created.", name=job.name), "success")
    return redirect(url_for("jobs.show", job_id=job.id))


@bp.route("/jobs/<int:job_id>/edit", methods=["GET", "POST"])
def edit(job_id: int) -> Any:
    job = _get_job(job_id)
    if request.method == "GET":
        return _form_page(forms.from_job(job), job)
    data = forms.read_form(request.form)
    saved = _save(data, job_id)
    if saved is None:
        return _form_page(data, job, 422)
    flash(_("Job “%(name)s” saved.", name=saved.name), "success")
    return redirect(url_for("jobs.show", job_id=job_id))


@bp.get("/jobs/<int:job_id>")
def show(job_id: int) -> str:
    web = state()
    now = system_clock()
    page_number = request.args.get("page", 1, type=int) or 1
    with web.db.read() as session:
        try:
            job = services.get_job(session, job_id)
        except services.NotFound:
            abort(404)
        runs = queries.job_runs(session, job_id, page_number)
        points = [
            chart.Point(
                at=row.finished_at or row.started_at,
                size_bytes=row.size_bytes,
                seconds=i18n.seconds_between(row.started_at, row.finished_at),
                label=row.archive_name or "",
            )
            for row in queries.chart_runs(session, job_id)
            if row.started_at is not None
        ]
    svg = (
        None
        if len(points) < 2
        else chart.render(
            points,
            size_title=_("Archive size"),
            duration_title=_("Duration"),
            size_fmt=lambda value: i18n.size(int(value)),
            duration_fmt=i18n.duration,
            date_fmt=lambda moment: i18n.when(moment, "short"),
            description=_(
                "Archive sizes and run durations of the last %(n)d successful runs", n=len(points)
            ),
        )
    )
    try:
        next_run = cron.next_run_after(job.cron_expr, web.timezone, now) if job.enabled else None
    except ValueError:
        next_run = None
    return render_template(
        "job_history.html",
        job=job,
        runs=runs,
        chart=svg,
        next_run=next_run,
        policy=_policy_words(job.retention_mode, job.retention_value),
        now=now,
    )


@bp.post("/jobs/<int:job_id>/run")
def run_now(job_id: int) -> Response:
    web = state()
    try:
        queued = services.queue_run(
            web.db,
            job_id,
            trigger="manual",
            requested_by=f"web:{g.identity.username}"[:64],
            now=system_clock(),
        )
    except services.NotFound:
        abort(404)
    if not queued.created:
        flash(_("This job is already queued or running: here is that run."), "info")
    return redirect(url_for("runs.show", run_id=queued.run_id))


@bp.post("/jobs/<int:job_id>/drill")
def drill_now(job_id: int) -> Response:
    """Queue a restore drill (doc/databases.md); the worker runs it, the job page shows it."""
    try:
        _restore_id, created = queue_drill(
            state().db, job_id, requested_by=f"web:{g.identity.username}"[:64], now=system_clock()
        )
    except services.NotFound:
        abort(404)
    except services.InputError as error:
        flash(str(error), "error")
        return redirect(url_for("jobs.show", job_id=job_id))
    if created:
        flash(_("Restore drill queued: its verdict will show here when it is done."), "success")
    else:
        flash(_("A restore drill of this job is already under way."), "info")
    return redirect(url_for("jobs.show", job_id=job_id))


@bp.post("/jobs/<int:job_id>/enabled")
def set_enabled(job_id: int) -> Response:
    enabled = request.form.get("enabled") == "1"
    try:
        job = services.set_enabled(state().db, job_id, enabled)
    except services.NotFound:
        abort(404)
    message = _("Job enabled.") if job.enabled else _("Job disabled: it will not run on schedule.")
    flash(message, "success")
    return redirect(url_for("jobs.show", job_id=job_id))


@bp.route("/jobs/<int:job_id>/delete", methods=["GET", "POST"])
def delete(job_id: int) -> Any:
    job = _get_job(job_id)
    if request.method == "GET":
        return render_template("job_delete.html", job=job)
    try:
        services.delete_job(state().db, job_id)
    except services.InputError as error:
        flash(str(error), "error")
        return redirect(url_for("jobs.show", job_id=job_id))
    flash(_("Job “%(name)s” deleted; its archives were kept.", name=job.name), "success")
    return redirect(url_for("dashboard.index"))


@bp.post("/apps/refresh")
def refresh_catalog() -> Response:
    appcache.queue_refresh(state().db, now=system_clock(), requested_by="web")
    flash(
        _("The worker is asking YunoHost for its apps; reload this page in a few seconds."), "info"
    )
    return redirect(request.referrer or url_for("jobs.new"))


# ------------------------------------------------------------------ htmx fragments


@bp.get("/jobs/preview/cron")
def cron_preview() -> str:
    """The schedule in words and its next five runs, or what is wrong with it, as you type."""
    expression = request.args.get("cron", "")
    web = state()
    try:
        normalized = cron.validate(expression)
        upcoming = cron.next_runs(normalized, web.timezone, system_clock(), count=5)
    except cron.CronError as error:
        return render_template("_cron_preview.html", error=str(error), words="", upcoming=[])
    return render_template(
        "_cron_preview.html", error="", words=i18n.schedule_words(normalized), upcoming=upcoming
    )


def _policy_words(mode: str, value: str) -> str:
    policy = RetentionPolicy.parse(mode, value)
    if policy.mode == "count":
        return str(_("keep the %(n)d newest archives", n=policy.count))
    if policy.mode == "daily":
        return str(
            _("keep one archive per day for the last %(n)d days, plus today's", n=policy.days)
        )
    return str(
        _(
            "keep %(d)d daily, %(w)d weekly and %(m)d monthly archives",
            d=policy.daily,
            w=policy.weekly,
            m=policy.monthly,
        )
    )


@bp.get("/jobs/preview/retention")
def retention_preview() -> str:
    """What this retention would delete today, for the job being edited (nothing is deleted)."""
    mode = request.args.get("retention_mode", "count")
    value = request.args.get("retention_value", "")
    job_id = request.args.get("job_id", type=int)
    web = state()
    try:
        words = _policy_words(mode, value)
    except RetentionPolicyError as error:
        return render_template("_retention_preview.html", error=str(error), words="", plan=None)
    plan = None
    if job_id:
        with web.db.read() as session:
            probe = Job(id=job_id, retention_mode=mode, retention_value=value)
            plan = prune.plan_for_job(session, probe, now=system_clock(), timezone=web.timezone)
    return render_template("_retention_preview.html", error="", words=words, plan=plan)


@bp.get("/jobs/kind-fields")
def kind_fields() -> str:
    """The settings of the chosen kind, swapped into the form when the kind changes."""
    data = forms.from_job(None)
    data.values["type"] = request.args.get("type", "ynh_app")
    return render_template(
        forms.kind_form(data.values["type"]).template,
        form=data,
        catalog=appcache.read(state().settings),
    )
