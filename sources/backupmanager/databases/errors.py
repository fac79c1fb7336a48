"""Known MariaDB / PostgreSQL errors turned into what happened and what to do (DESIGN §3)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from backupmanager.errors import N_, advice_for

# What happened and what to do; the {fields} are filled in (shown translated: N_).
UNKNOWN_DATABASE = N_(
    "The database '{database}' does not exist on {server}. Check the job's database name "
    "(see 'backupmanager jobs show'); after a reinstall, restore the archive with "
    "'backupmanager restore NAME' first."
)
ACCESS_REFUSED = N_(
    "{server} refused access for user '{user}'. On this server BackupManager connects as "
    "root (MariaDB) or postgres (PostgreSQL) through the local socket; for a remote host, "
    "check the user and its password ('backupmanager secrets set NAME') and that the user "
    "may read every table, view, trigger and routine of '{database}'."
)
NOT_ANSWERING = N_(
    "{server} is not answering: is it running? Start it ('systemctl start mariadb' or "
    "'systemctl start postgresql') or check the job's host and port, then run the job again."
)
DISK_FULL = N_(
    "The disk is full. Free some space (delete old archives or lower the retention) and try again."
)
MISSING_TOOL = N_(
    "{program} was not found: install it ('apt-get install {package}') or set its path under "
    "[programs] in the configuration."
)
TOOL_FAILED = N_("{program} failed: ")

# (pattern in the tool's stderr, advice); {database}, {user}, {server} are filled in.
KNOWN_DATABASE_ERRORS: tuple[tuple[str, str], ...] = (
    (r"Unknown database|database \".*\" does not exist", UNKNOWN_DATABASE),
    (
        r"Access denied for user|password authentication failed|Peer authentication failed"
        r"|no password supplied|permission denied for|role \".*\" does not exist",
        ACCESS_REFUSED,
    ),
    (
        r"Can't connect to|Connection refused|Is the server running|could not connect to server"
        r"|No such file or directory.*\.s\.PGSQL|Lost connection to server|timeout expired",
        NOT_ANSWERING,
    ),
    (r"No space left on device|The table .* is full|could not extend file|Disk full", DISK_FULL),
)


LOCAL_SERVER = N_("the local {name} server")
REMOTE_SERVER = N_("the {name} server at {address}")


def server_label(engine: str, host: str | None, port: int | None) -> str:
    name = "MariaDB" if engine == "mysql" else "PostgreSQL"
    if host is None:
        return LOCAL_SERVER.format(name=name)
    return REMOTE_SERVER.format(name=name, address=host + (f":{port}" if port else ""))


def explain(
    stderr_tail: Sequence[str], *, engine: str, database: str, user: str, server: str
) -> str:
    """The tool's last words plus the advice for the first known error, if any."""
    text = "\n".join(stderr_tail)
    detail = "; ".join(line.strip() for line in stderr_tail[-3:] if line.strip())
    for pattern, advice in KNOWN_DATABASE_ERRORS:
        if re.search(pattern, text, re.IGNORECASE):
            filled = advice.format(database=database, user=user, server=server)
            return f"{detail}\n{filled}" if detail else filled
    general = advice_for(text)
    return f"{detail}\n{general}" if general else detail or "no message"


def missing_tool_advice(program: str, engine: str) -> str:
    package = "mariadb-client" if engine == "mysql" else "postgresql-client"
    return MISSING_TOOL.format(program=program, package=package)
