"""Known tool errors mapped to clear advice for the admin (FreedomBox's approach, DESIGN §3)."""

from __future__ import annotations


def N_(text: str) -> str:
    """Marks an English message the dashboard shows in the page's language (web/known_messages.py;
    tools/translations.sh extracts it). Returns it unchanged: logs, CLI and API stay in English."""
    return text


KNOWN_ERRORS: tuple[tuple[str, str], ...] = (
    (
        "No space left on device",
        N_(
            "The disk is full. Free some space (delete old archives or raise retention) and run "
            "the job again."
        ),
    ),
    (
        "There is already a YunoHost operation running",
        N_(
            "YunoHost stayed busy with another operation (an install, an upgrade, another backup) "
            "for too long. The job will run again at its next slot; you can also use Run now later."
        ),
    ),
    (
        "will not be saved",
        N_(
            "YunoHost does not know this app: it may have been removed or renamed. Edit the job "
            "to pick an installed app."
        ),
    ),
    (
        "is unknown",
        N_(
            "YunoHost does not know this system part. Edit the job and pick parts listed by "
            "'yunohost hook list backup'."
        ),
    ),
    (
        "must be run as root",
        N_(
            "YunoHost commands need root: run the worker as root (the backupmanager-worker "
            "service does)."
        ),
    ),
    (
        "Access denied for user",
        N_(
            "The database refused the connection: check the user name and that it may read the "
            "database."
        ),
    ),
)


def advice_for(text: str) -> str | None:
    """The advice for the first known error found in a tool's output, or None."""
    for needle, advice in KNOWN_ERRORS:
        if needle.lower() in text.lower():
            return advice
    return None
