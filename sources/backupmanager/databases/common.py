"""What both engines share: where to connect, how a tool is invoked, errors, count comparison."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backupmanager.process import Argv

Log = Callable[[str], None]
# Names of databases and users BackupManager accepts: what YunoHost apps use and more, but
# nothing that could be read as an option, a path or a second statement.
DATABASE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$")
USER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.$-]{0,62}$")
HOST_PATTERN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252}[A-Za-z0-9])?$")


class DatabaseError(Exception):
    """A database tool or query failed; the message says what happened and what to do."""


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to connect. The default is the local server through its socket."""

    host: str | None = None
    port: int | None = None
    user: str | None = None  # None: root (MariaDB) / postgres (PostgreSQL), no password
    password: str | None = field(default=None, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password,) if self.password else ()


@dataclass(frozen=True)
class Invocation:
    """One program to start, with the credentials it needs outside its argv."""

    argv: Argv
    env: dict[str, str]
    pass_fds: tuple[int, ...]
    cwd: Path | None
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Contents:
    """Tables (with their row counts) and views of a database: what a restore drill compares."""

    tables: dict[str, int]
    views: list[str]

    def as_dict(self) -> dict[str, object]:
        return {"tables": dict(sorted(self.tables.items())), "views": sorted(self.views)}


def compare_contents(recorded: Contents, restored: Contents) -> list[str]:
    """Every difference, in words; an empty list means the restore holds what was dumped."""
    problems = []
    for name in sorted(set(recorded.tables) - set(restored.tables)):
        problems.append(f"table {name} is missing")
    for name in sorted(set(restored.tables) - set(recorded.tables)):
        problems.append(f"table {name} was not in the dump")
    for name in sorted(set(recorded.tables) & set(restored.tables)):
        if recorded.tables[name] != restored.tables[name]:
            problems.append(
                f"table {name} has {restored.tables[name]} rows, {recorded.tables[name]} were dumped"
            )
    for name in sorted(set(recorded.views) - set(restored.views)):
        problems.append(f"view {name} is missing")
    return problems
