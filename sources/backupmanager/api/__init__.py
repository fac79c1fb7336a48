"""The REST API v1 (SPEC §8): blueprint, token check, read-only scope, JSON answers only.

Everything under `/api/` belongs to this blueprint, known routes and unknown ones alike, so that
no answer there is ever an HTML page and no route can skip the token check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import Map, Rule

from backupmanager import __version__
from backupmanager.api.auth import HEADER, Caller, FailureLimiter, TokenVerifier, client_address
from backupmanager.api.changes import ChangeWatch
from backupmanager.api.errors import ApiError, logger, register_error_handlers
from backupmanager.api.inputs import MAX_BODY_BYTES, MAX_ID
from backupmanager.clock import instance_timezone, system_clock
from backupmanager.db import Database
from backupmanager.settings import Settings

EXTENSION = "backupmanager.api"
PREFIX = "/api"
# Path ids. Their range (1 to SQLite's largest INTEGER) is checked after the token check:
# a converter's own min/max would stop Werkzeug from falling back to the JSON 404 route.
ID = "int"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
READ_METHODS = frozenset({"GET", "HEAD"})
UNAUTHORIZED_HEADERS = {"WWW-Authenticate": f'{HEADER} realm="BackupManager API"'}

bp = Blueprint("api", __name__, url_prefix=PREFIX)
register_error_handlers(bp)


@dataclass
class ApiState:
    """What every API view needs, kept on the application (no globals at import time)."""

    settings: Settings
    db: Database
    timezone: tzinfo
    verifier: TokenVerifier
    limiter: FailureLimiter
    watch: ChangeWatch
    version: str = __version__
    known_routes: Map | None = field(default=None)
    _fresh: dict[str, tuple[int, Any]] = field(default_factory=dict)

    def fresh(self, key: str, load: Callable[[], Any]) -> Any:
        """`load()`'s value, read again only after something was committed to the database."""
        version = self.watch.version()
        known = self._fresh.get(key)
        if known is not None and known[0] == version:
            return known[1]
        value = load()
        self._fresh[key] = (version, value)
        return value


def state() -> ApiState:
    api_state: ApiState = current_app.extensions[EXTENSION]
    return api_state


def caller() -> Caller:
    authenticated: Caller = g.api_caller
    return authenticated


def route(rule: str, methods: list[str]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add a rule under /api; no automatic OPTIONS answer (no CORS, nothing to negotiate)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        bp.add_url_rule(rule, view_func=view, methods=methods, provide_automatic_options=False)
        return view

    return decorate


def register(app: Flask, settings: Settings, database: Database) -> None:
    """Mount the API on the app: one line in create_app."""
    from backupmanager.api import archives, jobs, meta  # noqa: F401  (their routes join bp)

    watch = ChangeWatch(database.path)
    app.extensions[EXTENSION] = ApiState(
        settings=settings,
        db=database,
        timezone=instance_timezone(settings),
        verifier=TokenVerifier(database, watch),
        limiter=FailureLimiter(),
        watch=watch,
    )
    app.register_blueprint(bp)


def _refuse(address: str, reason: str) -> ApiError:
    # Logged with the address and what was wrong, never with the presented value.
    logger.warning(
        "API key refused from %s (%s %s): %s", address, request.method, request.path, reason
    )
    return ApiError(
        401, "a valid X-BackupManager-Key header is required", headers=UNAUTHORIZED_HEADERS
    )


@bp.before_request
def _authenticate() -> None:
    request.max_content_length = MAX_BODY_BYTES
    api = state()
    presented = request.headers.get(HEADER, "")
    if not presented:
        # Nothing was guessed and no bcrypt ran: not counted as a failed authentication.
        raise ApiError(
            401, "a valid X-BackupManager-Key header is required", headers=UNAUTHORIZED_HEADERS
        )
    address = client_address(request.environ)

    def before_bcrypt() -> None:
        wait = api.limiter.retry_after(address)
        if wait:
            logger.warning("API key refused from %s: too many failed attempts", address)
            raise ApiError(
                429,
                f"too many failed authentications from your address: try again in {wait} s",
                headers={"Retry-After": str(wait)},
                retry_after=wait,
            )

    authenticated = api.verifier.verify(
        presented.strip(), system_clock(), before_bcrypt=before_bcrypt
    )
    if authenticated is None:
        api.limiter.record_failure(address)
        raise _refuse(address, "unknown, malformed or revoked key")
    g.api_caller = authenticated
    if (
        request.method not in READ_METHODS
        and authenticated.read_only
        and request.endpoint != "api.fallback"
    ):
        raise ApiError(
            403,
            f"the token '{authenticated.name}' is read-only: use a token with full access "
            "for this action (backupmanager tokens create NAME)",
        )
    for key, value in (request.view_args or {}).items():
        if key.endswith("_id") and not 1 <= value <= MAX_ID:
            raise ApiError(404, f"there is no {key.removesuffix('_id')} {value}")


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _known_routes() -> Map:
    """The API's own rules without the fallback, to tell a wrong method from an unknown path."""
    api = state()
    if api.known_routes is None:
        api.known_routes = Map(
            [
                Rule(rule.rule, methods=rule.methods, endpoint=rule.endpoint)
                for rule in current_app.url_map.iter_rules()
                if rule.endpoint.startswith("api.") and rule.endpoint != "api.fallback"
            ]
        )
    return api.known_routes


@bp.route("", defaults={"rest": ""}, methods=ALL_METHODS, provide_automatic_options=False)
@bp.route("/<path:rest>", methods=ALL_METHODS, provide_automatic_options=False)
def fallback(rest: str) -> Response:
    """Any other path or method under /api/: a JSON 404 or 405, after the token check."""
    allowed = _known_routes().bind("localhost").allowed_methods(request.path)
    if allowed:
        raise MethodNotAllowed(valid_methods=sorted(allowed))
    raise ApiError(404, "there is no such API endpoint (see /api/v1/openapi.json)")


def ok(data: Any, status: int = 200, *, location: str | None = None) -> Response:
    response = jsonify(data)
    response.status_code = status
    if location:
        response.headers["Location"] = location
    return response
