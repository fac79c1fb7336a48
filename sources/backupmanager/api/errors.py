"""One JSON error shape for the API (DESIGN §3): `{"error": "..."}`, never HTML, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from backupmanager import services

logger = logging.getLogger("backupmanager.api")

# What an admin or a script should read for the HTTP errors Werkzeug raises on its own.
MESSAGES = {
    400: "the request is malformed",
    401: "a valid X-BackupManager-Key header is required",
    404: "there is no such API endpoint (see /api/v1/openapi.json)",
    405: "this method is not allowed here",
    413: "the request body is too large",
    415: "send the request body as JSON (Content-Type: application/json)",
}


class ApiError(Exception):
    """An answer other than success: a status, a message for people, optional extra fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def error_response(
    status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    response = jsonify({"error": message, **extra})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _api_error(error: ApiError) -> Response:
    return error_response(error.status, error.message, headers=error.headers, **error.extra)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    headers = {}
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(sorted(valid_methods))
    return error_response(status, MESSAGES.get(status, error.name.lower()), headers=headers)


def _input_error(error: services.InputError) -> Response:
    return error_response(400, str(error))


def _not_found(error: services.NotFound) -> Response:
    return error_response(404, str(error))


def _unexpected(error: Exception) -> Response:
    # The details go to the web process's log, never to the client (no stack trace, no paths).
    logger.exception("API request failed", exc_info=error)
    return error_response(500, "internal error: the web process's log has the details")


def register_error_handlers(blueprint: Blueprint) -> None:
    blueprint.register_error_handler(ApiError, _api_error)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(services.InputError, _input_error)
    blueprint.register_error_handler(services.NotFound, _not_found)
    blueprint.register_error_handler(Exception, _unexpected)
