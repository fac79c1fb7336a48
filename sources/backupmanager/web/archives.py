"""The archives page: every archive of the index (ours and YunoHost's), filters, queued deletion."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from backupmanager import services
from backupmanager.clock import system_clock
from backupmanager.index import ORIGIN_LOCAL
from backupmanager.models import Job
from backupmanager.web import queries, state
from backupmanager.web.auth import protected_blueprint
from backupmanager.web.restores import RESTORABLE_KINDS

bp = protected_blueprint("archives", __name__)


@bp.get("/archives")
def index() -> str:
    filters = queries.ArchiveFilters(
        job_id=request.args.get("job", type=int),
        kind=request.args.get("kind", ""),
        origin=request.args.get("origin", ""),
    )
    with state().db.read() as session:
        page = queries.archives(session, filters, request.args.get("page", 1, type=int) or 1)
        jobs, kinds, origins = queries.archive_facets(session)
        pending = queries.pending_deletions(session)
    return render_template(
        "archives.html",
        page=page,
        filters=filters,
        jobs=jobs,
        job_names=dict(jobs),
        kinds=kinds,
        origins=origins,
        pending=pending,
        now=system_clock(),
        ORIGIN_LOCAL=ORIGIN_LOCAL,
        restorable_kinds=RESTORABLE_KINDS,
    )


@bp.route("/archives/<name>/delete", methods=["GET", "POST"])
def delete(name: str) -> Any:
    web = state()
    with web.db.read() as session:
        try:
            archive = services.get_archive(session, name)
        except (services.NotFound, services.InputError):
            abort(404)
        job = session.get(Job, archive.job_id) if archive.job_id else None
    if request.method == "GET":
        return render_template(
            "archive_delete.html", archive=archive, job=job, ORIGIN_LOCAL=ORIGIN_LOCAL
        )
    services.queue_archive_deletion(
        web.db, name, requested_by=f"web:{g.identity.username}"[:64], now=system_clock()
    )
    flash(
        _("Deletion of %(name)s queued: the worker deletes it in a few seconds.", name=name), "info"
    )
    return redirect(url_for("archives.index"))
