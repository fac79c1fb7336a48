"""MariaDB/MySQL through its own clients: argv, option file through a pipe, queries, metadata."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from backupmanager import process
from backupmanager.databases.common import (
    Contents,
    DatabaseError,
    Endpoint,
    Invocation,
    Log,
)
from backupmanager.databases.errors import TOOL_FAILED, explain, missing_tool_advice, server_label
from backupmanager.settings import Settings

ENGINE = "mysql"
CONNECT_TIMEOUT_SECONDS = 10
QUERY_TIMEOUT_SECONDS = 600
_BATCH_ESCAPES = {"t": "\t", "n": "\n", "0": "\0", "\\": "\\"}
# A line of SHOW GRANTS: privileges, object (db.table, or a routine), the rest (TO … options).
GRANT_LINE = re.compile(
    r"^GRANT (?P<privileges>.+?) ON (?P<kind>(?:FUNCTION|PROCEDURE|PACKAGE BODY|PACKAGE) )?"
    r"(?P<db>`(?:[^`]|``)+`|\*)\.(?P<object>`(?:[^`]|``)+`|\*) TO (?P<rest>.+)$"
)
IDENTIFIED = re.compile(r" IDENTIFIED (?:BY|VIA) .*?(?= WITH |$)")


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def unquote_ident(quoted: str) -> str:
    return quoted[1:-1].replace("``", "`")


def string(value: str) -> str:
    """A string literal (queries run with backslash escapes on, see `query`)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _unescape(field: str) -> str:
    """mysql --batch escapes tab, newline, NUL and backslash in values."""
    return re.sub(r"\\(.)", lambda match: _BATCH_ESCAPES.get(match[1], match[1]), field)


class MysqlClient:
    """Runs `mysql`, `mysqldump` against one server; every failure becomes a DatabaseError."""

    engine = ENGINE

    def __init__(self, settings: Settings, endpoint: Endpoint, *, log: Log) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.log = log
        self.server = server_label(ENGINE, endpoint.host, endpoint.port)

    @contextlib.contextmanager
    def invocation(self, program: Path, *args: str) -> Iterator[Invocation]:
        """argv with the connection options; the password goes through a pipe (DESIGN §3)."""
        endpoint = self.endpoint
        with contextlib.ExitStack() as stack:
            first: list[str] = []
            fds: tuple[int, ...] = ()
            if endpoint.password:
                escaped = endpoint.password.replace("\\", "\\\\").replace('"', '\\"')
                fd = stack.enter_context(
                    process.secret_fd(f'[client]\npassword="{escaped}"\n'.encode())
                )
                first, fds = [f"--defaults-extra-file=/dev/fd/{fd}"], (fd,)
            connection = []
            if program == self.settings.programs.mysql:  # mysqldump has no such option
                connection.append(f"--connect-timeout={CONNECT_TIMEOUT_SECONDS}")
            if endpoint.host:
                connection += ["--protocol=TCP", f"--host={endpoint.host}"]
                connection += [f"--port={endpoint.port}"] if endpoint.port else []
            if endpoint.user:
                connection.append(f"--user={endpoint.user}")
            argv = (str(program), *first, *connection, *args)
            yield Invocation(argv, {}, fds, None, endpoint.secrets)

    def failure(self, error: process.ProcessError, database: str) -> DatabaseError:
        if isinstance(error, process.ProgramMissing):
            return DatabaseError(missing_tool_advice(error.argv[0], ENGINE))
        user = self.endpoint.user or "root"
        program = Path(error.argv[0]).name
        message = explain(
            error.stderr_tail, engine=ENGINE, database=database, user=user, server=self.server
        )
        return DatabaseError(TOOL_FAILED.format(program=program) + message)

    def query(self, sql: str, *, database: str = "", for_database: str = "") -> list[list[str]]:
        """Rows of the last statements' results (tab-separated batch output, unescaped)."""
        output = bytearray()
        args = ["--batch", "--skip-column-names", "--default-character-set=utf8mb4"]
        if database:
            args.append(f"--database={database}")
        prologue = "SET SESSION sql_mode = REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '');\n"
        with self.invocation(self.settings.programs.mysql, *args) as call:
            try:
                process.feed(
                    call.argv,
                    source=[(prologue + sql).encode()],
                    sink=output.extend,
                    on_line=lambda _stream, line: self.log(f"mysql: {line}"),
                    pass_fds=call.pass_fds,
                    secrets=call.secrets,
                    timeout=QUERY_TIMEOUT_SECONDS,
                )
            except process.ProcessError as error:
                raise self.failure(error, for_database or database) from None
        text = output.decode("utf-8", errors="replace")
        return [[_unescape(field) for field in line.split("\t")] for line in text.splitlines()]

    def query_each(self, statements: Iterable[str], *, database: str = "") -> list[list[list[str]]]:
        """The rows of each statement, separated by marker rows, in one connection."""
        marker = "--bm-next-result--"
        sql = "".join(f"{statement};\nSELECT '{marker}';\n" for statement in statements)
        results: list[list[list[str]]] = [[]]
        for row in self.query(sql, database=database, for_database=database):
            if row == [marker]:
                results.append([])
            else:
                results[-1].append(row)
        return results[:-1]

    def execute(self, sql: str, *, database: str = "") -> None:
        self.query(sql, database=database, for_database=database)

    def dump_args(self, database: str) -> tuple[str, ...]:
        """mysqldump of one database, consistent (InnoDB) and complete, format pinned for counts."""
        return (
            "--single-transaction",
            "--routines",
            "--triggers",
            "--events",
            "--hex-blob",
            "--default-character-set=utf8mb4",
            "--add-locks",  # LOCK TABLES … UNLOCK TABLES around each table's rows (dumpcount.py)
            "--extended-insert",
            "--disable-keys",
            "--quick",
            "--",
            database,
        )

    def load_args(self, database: str) -> tuple[str, ...]:
        return ("--binary-mode", "--default-character-set=utf8mb4", f"--database={database}")


def list_databases(client: MysqlClient) -> list[str]:
    return [row[0] for row in client.query("SHOW DATABASES;")]


def database_facts(client: MysqlClient, database: str) -> dict[str, Any] | None:
    """Character set, collation, size estimate, non-transactional tables and the server's
    version (one client start: they come before the dump), or None."""
    schema, tables, version = client.query_each(
        [
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
            f"information_schema.SCHEMATA WHERE SCHEMA_NAME = {string(database)}",
            "SELECT TABLE_NAME, IFNULL(ENGINE, ''), IFNULL(DATA_LENGTH + INDEX_LENGTH, 0) FROM "
            f"information_schema.TABLES WHERE TABLE_SCHEMA = {string(database)} "
            "AND TABLE_TYPE = 'BASE TABLE'",
            "SELECT VERSION()",
        ]
    )
    if not schema:
        return None
    return {
        "server_version": version[0][0] if version else "",
        "charset": schema[0][0],
        "collation": schema[0][1],
        "estimated_bytes": sum(int(row[2] or 0) for row in tables),
        "non_transactional": sorted(row[0] for row in tables if row[1] not in ("InnoDB", "")),
    }


def _db_of_grant(quoted: str) -> str | None:
    if quoted == "*":
        return None
    # SHOW GRANTS escapes LIKE wildcards in database names (`my\_db`).
    return re.sub(r"\\([_%\\])", r"\1", unquote_ident(quoted))


def _accounts_with_grants(client: MysqlClient, user: str, database: str) -> list[tuple[str, str]]:
    """(user, host) of the job's user and of every account with a privilege on the database."""
    unescaped = "REPLACE(REPLACE(REPLACE(Db, '\\\\_', '_'), '\\\\%', '%'), '\\\\\\\\', '\\\\')"
    union = " UNION ALL ".join(
        f"SELECT User, Host, Db FROM mysql.{table}"
        for table in ("db", "tables_priv", "columns_priv", "procs_priv")
    )
    rows = client.query(
        f"SELECT User, Host FROM mysql.user WHERE User = {string(user)} UNION "
        f"SELECT DISTINCT User, Host FROM ({union}) g WHERE {unescaped} = {string(database)};"
    )
    return sorted({(row[0], row[1]) for row in rows if row[0] and row[0] != "root"})


def accounts(client: MysqlClient, user: str, database: str) -> list[dict[str, Any]]:
    """The job's user and every account with grants on `database`, with those grants: what a
    restore recreates. A remote login records only itself (it may not read mysql.*)."""
    if client.endpoint.host and client.endpoint.user == user:
        who_list = [(user, "CURRENT_USER")]
    else:
        who_list = _accounts_with_grants(client, user, database)
    found = []
    for name, host in who_list:
        who = "CURRENT_USER()" if host == "CURRENT_USER" else f"{string(name)}@{string(host)}"
        create, grants = client.query_each([f"SHOW CREATE USER {who}", f"SHOW GRANTS FOR {who}"])
        kept = []
        for (line,) in grants:
            match = GRANT_LINE.match(line)
            if match and _db_of_grant(match["db"]) == database:
                kept.append(IDENTIFIED.sub("", line))
        found.append({"user": name, "host": host, "create": create[0][0], "grants": kept})
    return found


def contents(client: MysqlClient, database: str) -> Contents:
    """Tables with their exact row counts, and views, as the server sees them now."""
    rows = client.query(
        "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE "
        f"TABLE_SCHEMA = {string(database)};"
    )
    tables = [name for name, kind in rows if kind == "BASE TABLE"]
    views = [name for name, kind in rows if kind == "VIEW"]
    counts: dict[str, int] = {}
    if tables:
        sql = "".join(
            f"SELECT {string(name)}, COUNT(*) FROM {ident(database)}.{ident(name)};\n"
            for name in tables
        )
        counts = {name: int(count) for name, count in client.query(sql, for_database=database)}
    return Contents(counts, views)


def table_count(client: MysqlClient, database: str) -> int:
    """How many tables the database has (for a plan: no row is read)."""
    rows = client.query(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE "
        f"TABLE_SCHEMA = {string(database)} AND TABLE_TYPE = 'BASE TABLE';"
    )
    return int(rows[0][0]) if rows else 0


def database_exists(client: MysqlClient, database: str) -> bool:
    rows = client.query(
        f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {string(database)};"
    )
    return bool(rows)


def create_database(client: MysqlClient, database: str, facts: dict[str, Any]) -> None:
    options = ""
    if facts.get("charset"):
        options += f" CHARACTER SET {ident(str(facts['charset']))}"
    if facts.get("collation"):
        options += f" COLLATE {ident(str(facts['collation']))}"
    client.execute(f"CREATE DATABASE {ident(database)}{options};")


def drop_database(client: MysqlClient, database: str) -> None:
    client.execute(f"DROP DATABASE IF EXISTS {ident(database)};")


def create_accounts(client: MysqlClient, recorded: list[dict[str, Any]]) -> list[str]:
    """Create the recorded accounts that do not exist here (before the load: views, triggers
    and routines name them as DEFINER). Existing accounts keep their password."""
    done, statements = [], []
    for account in recorded:
        user, host = str(account["user"]), str(account["host"])
        if host == "CURRENT_USER":
            continue  # recorded through a remote login: that account is managed elsewhere
        exists = client.query(
            f"SELECT 1 FROM mysql.user WHERE User = {string(user)} AND Host = {string(host)};"
        )
        if exists:
            continue
        create = str(account["create"])
        if not create.startswith("CREATE USER "):
            raise DatabaseError(f"the archive's account record for {user}@{host} is malformed")
        statements.append("CREATE USER IF NOT EXISTS " + create[len("CREATE USER ") :])
        done.append(f"created user {user}@{host} (with its recorded password hash)")
    if statements:
        client.execute(";\n".join(statements) + ";")
    return done


def apply_grants(
    client: MysqlClient, recorded: list[dict[str, Any]], old_name: str, new_name: str
) -> list[str]:
    """The recorded grants on the database, given on `new_name` (after the load: table grants
    need their tables)."""
    done, statements = [], []
    for account in recorded:
        user, host = str(account["user"]), str(account["host"])
        if host == "CURRENT_USER" or not account["grants"]:
            continue
        who = f"{string(user)}@{string(host)}"
        for grant in account["grants"]:
            match = GRANT_LINE.match(str(grant))
            if match is None or _db_of_grant(match["db"]) != old_name:
                raise DatabaseError(f"the archive's grant record for {user}@{host} is malformed")
            kind = match["kind"] or ""
            option = " WITH GRANT OPTION" if "WITH GRANT OPTION" in match["rest"] else ""
            target = f"{ident(new_name)}.{match['object']}"
            statements.append(f"GRANT {match['privileges']} ON {kind}{target} TO {who}{option}")
        done.append(f"{user}@{host}: {len(account['grants'])} grant(s)")
    if statements:
        client.execute(";\n".join(statements) + ";")
    return done
