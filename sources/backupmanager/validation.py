"""Pydantic validation errors turned into messages an admin can act on, naming each field."""

from __future__ import annotations

from pydantic import ValidationError


def field_problems(error: ValidationError) -> list[tuple[str, str]]:
    """(dotted field name, message) for every problem, in the order pydantic found them."""
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"])
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "unknown field (check its spelling)"
        problems.append((where, message))
    return problems


def describe(error: ValidationError, *, default_field: str = "input") -> str:
    """All problems on one line: `field: message; other: message`."""
    return "; ".join(
        f"{where or default_field}: {message}" for where, message in field_problems(error)
    )
