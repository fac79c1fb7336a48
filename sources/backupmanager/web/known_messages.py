"""Run and restore errors shown in the page's language.

A run or a restore keeps one English message: logs, the CLI and the API answer in English. The
sentences of it we wrote ourselves (what happened, what to do: marked N_ where they are
defined) are known templates; on a French page each one found in the message is replaced by its
translation, with the same {fields}. What a tool printed stays as it printed it.
"""

from __future__ import annotations

import functools
import re

from flask_babel import gettext

from backupmanager import drill
from backupmanager.databases import errors as database_errors
from backupmanager.errors import KNOWN_ERRORS
from backupmanager.jobs import db_dump
from backupmanager.restore import database as database_restore

TEMPLATES: tuple[str, ...] = (
    database_errors.UNKNOWN_DATABASE,
    database_errors.ACCESS_REFUSED,
    database_errors.NOT_ANSWERING,
    database_errors.DISK_FULL,
    database_errors.MISSING_TOOL,
    database_errors.TOOL_FAILED,
    db_dump.DISK_FULL,
    db_dump.REFUSED_OR_MISSING,
    db_dump.MISSING_DATABASE,
    drill.DRILL_PASSED_IN,
    drill.DRILL_PASSED,
    drill.DRILL_FAILED,
    database_restore.DIFFERS_FROM_DUMP,
    *(advice for _needle, advice in KNOWN_ERRORS),
)
# Values of fields that are our own words too ({server}, a drill's {compared} or {error}):
# translated when they are the whole value.
LABELS: tuple[str, ...] = (
    database_errors.LOCAL_SERVER,
    database_errors.REMOTE_SERVER,
    database_restore.AS_IN_DUMP,
    database_restore.NOTHING_TO_COMPARE,
    database_restore.DIFFERS_FROM_DUMP,
)
FIELD = re.compile(r"\{(\w+)\}")


@functools.cache
def _pattern(template: str) -> re.Pattern[str]:
    """The template as a pattern: its text as is, each field one line's worth of anything.
    Our sentences start a line of the message (after the tool's words, if any)."""
    parts = FIELD.split(template)
    seen: set[str] = set()
    regex = "(?m)^"
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
        elif part in seen:  # the same field twice holds the same value
            regex += f"(?P={part})"
        else:
            seen.add(part)
            last = index == len(parts) - 2 and not parts[-1]
            regex += f"(?P<{part}>[^\\n]+)" if last else f"(?P<{part}>[^\\n]+?)"
    return re.compile(regex)


def _fill(translated: str, found: re.Match[str]) -> str:
    return translated.format(**{key: _label(value) for key, value in found.groupdict().items()})


def _label(value: str) -> str:
    for template in LABELS:
        found = _pattern(template).fullmatch(value)
        translated = gettext(template)
        if found and translated != template:
            return _fill(translated, found)
    return value


def localized(message: str | None) -> str:
    """The message with our own sentences in the page's language (Flask-Babel's gettext)."""
    text = message or ""
    for template in TEMPLATES:
        translated = gettext(template)
        if translated != template:
            text = _pattern(template).sub(functools.partial(_fill, translated), text)
    return text
