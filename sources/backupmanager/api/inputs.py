"""Query strings and JSON bodies of the API, validated by pydantic models that refuse unknown fields."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backupmanager.api.errors import ApiError
from backupmanager.validation import describe

# Request bodies are small JSON objects (run, restore options): anything bigger is refused.
MAX_BODY_BYTES = 64 * 1024
MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000
MAX_ID = 2**63 - 1  # SQLite's INTEGER: a bigger id would overflow, not just miss

Model = TypeVar("Model", bound=BaseModel)


class Strict(BaseModel):
    """Query strings: unknown parameters refused; "50" or "true" read as numbers and booleans."""

    model_config = ConfigDict(extra="forbid")


class Body(BaseModel):
    """JSON bodies: unknown fields refused, and no coercion ("1" is not a number, 1 not true)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Page(Strict):
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


def query(model: type[Model]) -> Model:
    """The query string as `model`; an unknown or repeated parameter is refused (no silent typo)."""
    values: dict[str, str] = {}
    for key, items in request.args.lists():
        if len(items) > 1:
            raise ApiError(400, f"{key}: give this query parameter once")
        values[key] = items[0]
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ApiError(400, describe(error, default_field="query")) from None


def body(model: type[Model]) -> Model:
    """The JSON body as `model`; an empty body is an empty object."""
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(413, f"the request body is too large (at most {MAX_BODY_BYTES} bytes)")
    raw = request.get_data(cache=False)
    if not raw.strip():
        data: Any = {}
    else:
        if request.mimetype != "application/json":
            raise ApiError(415, "send the request body as JSON (Content-Type: application/json)")
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise ApiError(400, f"the request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object, e.g. {}")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ApiError(400, describe(error, default_field="body")) from None
