"""PostgreSQL through its own clients: peer auth as `postgres`, password in the child's env only."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backupmanager import process
from backupmanager.databases.common import Contents, DatabaseError, Endpoint, Invocation, Log
from backupmanager.databases.errors import TOOL_FAILED, explain, missing_tool_advice, server_label
from backupmanager.settings import Settings

ENGINE = "postgresql"
SYSTEM_USER = "postgres"  # peer authentication on Debian (pg_hba.conf `local all postgres peer`)
MAINTENANCE_DATABASE = "postgres"
CONNECT_TIMEOUT_SECONDS = 10
QUERY_TIMEOUT_SECONDS = 600
PSQL_ARGS = ("--no-psqlrc", "--quiet", "--no-align", "--tuples-only", "--set=ON_ERROR_STOP=1")
USER_SCHEMAS = "n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"

CONTENTS_SQL = f"""
SELECT json_build_object(
  'tables', COALESCE((SELECT json_object_agg(t.name, t.rows) FROM (
    SELECT n.nspname || '.' || c.relname AS name,
      (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I',
        n.nspname, c.relname), false, true, '')))[1]::text::bigint AS rows
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS}
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
  ) t), '{{}}'::json),
  'views', COALESCE((SELECT json_agg(n.nspname || '.' || c.relname ORDER BY 1)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('v', 'm') AND {USER_SCHEMAS}), '[]'::json)
)::text;
"""

FACTS_SQL = """
SELECT json_build_object(
  'version', current_setting('server_version'),
  'owner', pg_get_userbyid(d.datdba),
  'encoding', pg_encoding_to_char(d.encoding),
  'collate', d.datcollate,
  'ctype', d.datctype,
  'acl', CASE WHEN d.datacl IS NULL THEN NULL ELSE (
    SELECT json_agg(json_build_object(
      'grantee', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
      'privilege', a.privilege_type, 'grantable', a.is_grantable))
    FROM aclexplode(d.datacl) a) END,
  'estimated_bytes', pg_database_size(d.oid),
  'superuser', (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
)::text FROM pg_database d WHERE d.datname = current_database();
"""

# The roles the database's objects name, then (recursively) the group roles they are members of:
# `GRANT app_readers TO app` must be replayable on a fresh server, group roles included.
# bool_or: PostgreSQL 16 keeps one pg_auth_members row per grantor of the same membership.
ROLES_SQL = f"""
WITH RECURSIVE wanted(name) AS (
  SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()
  UNION SELECT pg_get_userbyid(c.relowner)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_SCHEMAS}
  UNION SELECT pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE {USER_SCHEMAS}
  UNION SELECT pg_get_userbyid(p.proowner)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {USER_SCHEMAS}
  UNION SELECT pg_get_userbyid(a.grantee)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
    WHERE a.grantee <> 0 AND {USER_SCHEMAS}
  UNION SELECT pg_get_userbyid(a.grantee)
    FROM pg_namespace n, aclexplode(n.nspacl) a WHERE a.grantee <> 0 AND {USER_SCHEMAS}
  UNION SELECT pg_get_userbyid(a.grantee) FROM pg_database d, aclexplode(d.datacl) a
    WHERE d.datname = current_database() AND a.grantee <> 0
  UNION SELECT %(user)s
), recorded(oid) AS (
  SELECT r.oid FROM pg_roles r JOIN wanted w ON w.name = r.rolname
  UNION SELECT m.roleid FROM pg_auth_members m JOIN recorded c ON m.member = c.oid
)
SELECT COALESCE(json_agg(json_build_object(
  'name', r.rolname, 'login', r.rolcanlogin, 'superuser', r.rolsuper,
  'createdb', r.rolcreatedb, 'createrole', r.rolcreaterole, 'inherit', r.rolinherit,
  'connection_limit', r.rolconnlimit, 'password', %(password)s,
  'member_of', COALESCE((SELECT json_agg(json_build_object(
      'role', g.name, 'admin_option', g.admin_option) ORDER BY g.name)
    FROM (SELECT pg_get_userbyid(m.roleid) AS name, bool_or(m.admin_option) AS admin_option
      FROM pg_auth_members m WHERE m.member = r.oid GROUP BY m.roleid) g), '[]')
  ) ORDER BY r.rolname), '[]')::text
FROM pg_roles r JOIN recorded c ON c.oid = r.oid;
"""


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def string(value: str) -> str:
    """A literal with standard_conforming_strings (on since PostgreSQL 9.1)."""
    return "'" + value.replace("'", "''") + "'"


def conninfo(database: str) -> str:
    escaped = database.replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{escaped}' application_name='backupmanager'"


class PostgresClient:
    """Runs psql, pg_dump, pg_restore against one server; failures become DatabaseError."""

    engine = ENGINE

    def __init__(self, settings: Settings, endpoint: Endpoint, *, log: Log) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.log = log
        self.server = server_label(ENGINE, endpoint.host, endpoint.port)

    @contextlib.contextmanager
    def invocation(self, program: Path, *args: str, database: str) -> Iterator[Invocation]:
        endpoint = self.endpoint
        env = {"PGCONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS)}
        prefix: tuple[str, ...] = (str(program),)
        cwd = None
        if endpoint.host is None and endpoint.user is None and os.geteuid() == 0:
            if not program.exists():  # runuser would only say "failed to execute"
                raise DatabaseError(missing_tool_advice(str(program), ENGINE))
            # Peer authentication: the tool runs as the postgres system user (cwd it can read).
            prefix = (str(self.settings.programs.runuser), "-u", SYSTEM_USER, "--", str(program))
            cwd = Path("/")
        connection = ["--no-password"]
        if endpoint.host:
            connection.append(f"--host={endpoint.host}")
            connection += [f"--port={endpoint.port}"] if endpoint.port else []
        if endpoint.user:
            connection.append(f"--username={endpoint.user}")
        if endpoint.password:
            env["PGPASSWORD"] = endpoint.password  # the child's environment only (DESIGN §3)
        argv = (*prefix, *connection, f"--dbname={conninfo(database)}", *args)
        yield Invocation(argv, env, (), cwd, endpoint.secrets)

    def failure(self, error: process.ProcessError, database: str) -> DatabaseError:
        if isinstance(error, process.ProgramMissing):
            return DatabaseError(missing_tool_advice(error.argv[0], ENGINE))
        user = self.endpoint.user or SYSTEM_USER
        argv = error.argv
        program = Path(argv[argv.index("--") + 1] if "--" in argv else argv[0]).name
        message = explain(
            error.stderr_tail, engine=ENGINE, database=database, user=user, server=self.server
        )
        return DatabaseError(TOOL_FAILED.format(program=program) + message)

    def psql(self, sql: str, *, database: str = MAINTENANCE_DATABASE) -> str:
        output = bytearray()
        with self.invocation(self.settings.programs.psql, *PSQL_ARGS, database=database) as call:
            try:
                process.feed(
                    call.argv,
                    source=[sql.encode()],
                    sink=output.extend,
                    on_line=lambda _stream, line: self.log(f"psql: {line}"),
                    env=call.env,
                    cwd=call.cwd,
                    secrets=call.secrets,
                    timeout=QUERY_TIMEOUT_SECONDS,
                )
            except process.ProcessError as error:
                raise self.failure(error, database) from None
        return output.decode("utf-8", errors="replace")

    def query_json(self, sql: str, *, database: str = MAINTENANCE_DATABASE) -> Any:
        lines = [line for line in self.psql(sql, database=database).splitlines() if line.strip()]
        if not lines:
            return None
        try:
            return json.loads(lines[-1])
        except ValueError:
            raise DatabaseError(f"psql gave an unexpected answer: {lines[-1][:200]}") from None

    def dump_args(self, snapshot: str) -> tuple[str, ...]:
        """pg_dump's custom format (pg_restore), uncompressed (we compress), our snapshot."""
        return ("--format=custom", "--compress=0", f"--snapshot={snapshot}")

    def restore_args(self, *, drill: bool) -> tuple[str, ...]:
        """All or nothing; a drill leaves roles and privileges alone."""
        args = ("--single-transaction", "--exit-on-error")
        return (*args, "--no-owner", "--no-privileges") if drill else args


class Snapshot:
    """A psql session holding a REPEATABLE READ transaction whose snapshot pg_dump shares.

    Row counts asked in this session see exactly what pg_dump dumps (`--snapshot`), however
    busy the database is: what a restore drill compares against.
    """

    MARKER = b"--bm-answer-end--"

    def __init__(self, session: process.Coprocess) -> None:
        self.session = session
        self.session.send(
            b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
            b"SELECT pg_export_snapshot();\n\\echo " + self.MARKER + b"\n"
        )
        self.name = self.session.read_until(self.MARKER, timeout=QUERY_TIMEOUT_SECONDS).decode()
        self.name = self.name.strip()

    def ask(self, sql: str) -> None:
        """Send a query now; its answer is read later (while pg_dump runs, psql works too)."""
        self.session.send(sql.encode() + b"\n\\echo " + self.MARKER + b"\n")

    def answer(self) -> Any:
        text = self.session.read_until(self.MARKER, timeout=QUERY_TIMEOUT_SECONDS).decode()
        lines = [line for line in text.splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None

    def query(self, sql: str) -> Any:
        """Ask and wait for the answer (JSON), in the snapshot's transaction."""
        self.ask(sql)
        return self.answer()


@contextlib.contextmanager
def exported_snapshot(client: PostgresClient, database: str) -> Iterator[Snapshot]:
    with client.invocation(client.settings.programs.psql, *PSQL_ARGS, database=database) as call:
        try:
            with process.Coprocess(
                call.argv,
                env=call.env,
                cwd=call.cwd,
                secrets=call.secrets,
                on_line=lambda _stream, line: client.log(f"psql: {line}"),
            ) as session:
                snapshot = Snapshot(session)
                yield snapshot
                session.send(b"COMMIT;\n")
                session.finish(timeout=QUERY_TIMEOUT_SECONDS)
        except process.ProcessError as error:
            raise client.failure(error, database) from None


def facts_from_answer(facts: Any) -> dict[str, Any]:
    """FACTS_SQL's answer (asked connected to the database, so it always has one row)."""
    if not isinstance(facts, dict):
        raise DatabaseError("PostgreSQL did not answer the question about the database's facts")
    return facts


def roles_sql(user: str, *, superuser: bool) -> str:
    """The roles the database's objects name and the group roles they are members of (each with
    its memberships, `member_of`), with their password hash when we may read it."""
    password = (
        "(SELECT a.rolpassword FROM pg_authid a WHERE a.oid = r.oid)" if superuser else "NULL"
    )
    return ROLES_SQL.replace("%(user)s", string(user)).replace("%(password)s", password)


def roles_from_answer(found: Any) -> list[Any]:
    return list(found) if isinstance(found, list) else []


def contents(client: PostgresClient, database: str) -> Contents:
    data = client.query_json(CONTENTS_SQL, database=database)
    tables = {str(name): int(rows) for name, rows in dict(data["tables"]).items()}
    return Contents(tables, [str(view) for view in data["views"]])


def table_count(client: PostgresClient, database: str) -> int:
    """How many tables the database has (for a plan: no row is read)."""
    answer = client.query_json(
        "SELECT count(*)::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p') AND {USER_SCHEMAS};",
        database=database,
    )
    return int(answer or 0)


def list_databases(client: PostgresClient) -> list[str]:
    names = client.query_json(
        "SELECT COALESCE(json_agg(datname ORDER BY datname), '[]')::text FROM pg_database "
        "WHERE NOT datistemplate;"
    )
    return [str(name) for name in names or []]


def database_exists(client: PostgresClient, database: str) -> bool:
    return database in list_databases(client)


def create_database(
    client: PostgresClient, database: str, facts: dict[str, Any], *, owner: str | None
) -> None:
    options = " TEMPLATE template0"
    if owner:
        options += f" OWNER {ident(owner)}"
    for key, clause in (("encoding", "ENCODING"), ("collate", "LC_COLLATE"), ("ctype", "LC_CTYPE")):
        if facts.get(key):
            options += f" {clause} {string(str(facts[key]))}"
    client.psql(f"CREATE DATABASE {ident(database)}{options};")


def apply_database_acl(client: PostgresClient, database: str, acl: list[Any] | None) -> int:
    """The database's own privileges (CONNECT, TEMP…), which pg_dump does not carry."""
    if acl is None:
        return 0
    statements = [f"REVOKE ALL ON DATABASE {ident(database)} FROM PUBLIC;"]
    for item in acl:
        grantee = str(item["grantee"])
        who = "PUBLIC" if grantee == "PUBLIC" else ident(grantee)
        option = " WITH GRANT OPTION" if item.get("grantable") else ""
        privilege = str(item["privilege"])
        if not privilege.replace(" ", "").isalpha():
            raise DatabaseError("the archive's database privileges are malformed")
        statements.append(f"GRANT {privilege} ON DATABASE {ident(database)} TO {who}{option};")
    client.psql("\n".join(statements))
    return len(acl)


def drop_database(client: PostgresClient, database: str) -> None:
    client.psql(f"DROP DATABASE IF EXISTS {ident(database)} WITH (FORCE);")


def rename_database(client: PostgresClient, old: str, new: str) -> None:
    client.psql(f"ALTER DATABASE {ident(old)} RENAME TO {ident(new)};")


def restore_roles(client: PostgresClient, recorded: list[Any]) -> list[str]:
    """Create the roles that do not exist here, as recorded (never as superusers)."""
    existing = client.query_json("SELECT COALESCE(json_agg(rolname), '[]')::text FROM pg_roles;")
    done, statements = [], []
    for role in recorded:
        name = str(role["name"])
        if name in (existing or []):
            continue
        options = ["LOGIN" if role.get("login") else "NOLOGIN"]
        options.append("CREATEDB" if role.get("createdb") else "NOCREATEDB")
        options.append("CREATEROLE" if role.get("createrole") else "NOCREATEROLE")
        options.append("INHERIT" if role.get("inherit", True) else "NOINHERIT")
        limit = int(role.get("connection_limit", -1))
        options.append(f"CONNECTION LIMIT {limit}")
        if role.get("password"):
            options.append(f"PASSWORD {string(str(role['password']))}")
        statements.append(f"CREATE ROLE {ident(name)} WITH {' '.join(options)};")
        note = (
            " (recorded as a superuser: created without that right)"
            if role.get("superuser")
            else ""
        )
        hashed = " with its recorded password hash" if role.get("password") else ""
        done.append(f"created role {name}{hashed}{note}")
    if statements:
        client.psql("\n".join(statements))
    return done
