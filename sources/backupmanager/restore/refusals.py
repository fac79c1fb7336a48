"""Why a restore would replace what exists, said in the words of the face that asked (CLI, API, dashboard).

A plan records the reason as data ("refusal_reason"); each face names its own way to allow it:
`--overwrite` in the CLI, the `overwrite` field in the API, the checkbox on the dashboard.
"""

from __future__ import annotations

from typing import Any

from backupmanager.errors import N_

FILES_EXIST = "files_exist"
DATABASE_EXISTS = "database_exists"
CLI, API, WEB = "cli", "api", "web"

WORDS: dict[str, dict[str, str]] = {
    CLI: {
        FILES_EXIST: "{count} files already exist where the restore would write them and would "
        "be overwritten ({examples}): confirm with --overwrite, or restore elsewhere with "
        "--target DIR",
        DATABASE_EXISTS: "the database {name} exists ({tables} tables) and would be replaced: "
        "confirm with --overwrite, or restore into another database with --database NEW_NAME",
    },
    API: {
        FILES_EXIST: "{count} files already exist where the restore would write them and would "
        'be overwritten ({examples}): send "overwrite": true to replace them, or another '
        '"target" folder',
        DATABASE_EXISTS: "the database {name} exists ({tables} tables) and would be replaced: "
        'send "overwrite": true to replace it, or a new name in "database"',
    },
    WEB: {
        FILES_EXIST: N_(
            "{count} files already exist where the restore would write them and would be "
            "overwritten ({examples}). Tick “Overwrite files that already exist” to replace "
            "them, or restore into another folder."
        ),
        DATABASE_EXISTS: N_(
            "The database {name} exists ({tables} tables) and would be replaced. Tick “Replace "
            "the existing database” to replace it, or type the name of a new database."
        ),
    },
}


def files_exist(count: int, examples: list[str]) -> dict[str, Any]:
    return {"reason": FILES_EXIST, "count": count, "examples": list(examples)}


def database_exists(name: str, tables: int) -> dict[str, Any]:
    return {"reason": DATABASE_EXISTS, "name": name, "tables": tables}


def face_of(requested_by: str | None) -> str:
    """The face a restore was asked from, by its `requested_by` ("web:…", "api:…", "cli")."""
    prefix = (requested_by or "").split(":", 1)[0]
    return prefix if prefix in (API, WEB) else CLI


def wording(reason: dict[str, Any], face: str, *, template: str | None = None) -> str:
    """The reason as a sentence for that face; `template`: a translation of the face's words."""
    fields = {key: value for key, value in reason.items() if key != "reason"}
    if "examples" in fields:
        shown = fields["examples"]
        more = ", …" if fields.get("count", 0) > len(shown) else ""
        fields["examples"] = ", ".join(shown) + more
    return (template or WORDS[face][reason["reason"]]).format(**fields)


def refusal_text(plan: dict[str, Any], face: str) -> str | None:
    """Why this plan's restore is refused, for that face (None: it is not)."""
    reason = plan.get("refusal_reason")
    if reason and reason.get("reason") in WORDS[face]:
        return wording(reason, face)
    refusal = plan.get("refusal")
    return str(refusal) if refusal else None
