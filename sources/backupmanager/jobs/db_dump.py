"""mysql and postgresql jobs: a consistent dump streamed into a YunoHost-compatible archive (S-K4, S-K5).

mysqldump (one transaction) or pg_dump (custom format, in a snapshot we export) writes to a
pipe, cut into tar members and hashed as it is written: no temporary file, memory flat whatever
the size. Uncompressed, the kernel splices the pipe into the archive and a thread reads each
member back to hash it and count rows (restore drills); with zstd, each block is read here,
counted and compressed. The tool gets a 1 MiB output buffer (stdbuf): a few hundred writes
instead of tens of thousands, which is most of what a pipe costs it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from backupmanager import process, yunohost
from backupmanager.archive_writer import CUSTOM_HOOKS_DIR, ArchiveWriter, backup_csv, yunohost_info
from backupmanager.databases import mysql, postgresql
from backupmanager.databases.common import Contents, DatabaseError
from backupmanager.databases.dumpcount import MysqlDumpCounter
from backupmanager.databases.errors import missing_tool_advice
from backupmanager.databases.layout import (
    FORMAT,
    PARTS,
    TOOLS,
    CompressedMembers,
    SplicedMembers,
    accounts_member,
    dump_prefix,
    hook_name,
    restore_hook,
)
from backupmanager.errors import N_
from backupmanager.jobs import BackupContext, BackupResult, JobConfigError, JobFailed
from backupmanager.jobs.db_config import DatabaseJobConfig
from backupmanager.secret_store import SecretError, SecretStore
from backupmanager.settings import Settings

Members = CompressedMembers | SplicedMembers
BATCH_BYTES = 1024 * 1024
# Read the dump tool's pipe every few ms, in big blocks (with zstd).
GATHER_SECONDS = 0.004
OUTPUT_BUFFER = "1M"  # stdbuf -o: the dump tool's stdout buffer
DISK_FULL = N_(
    "The disk holding the archives is full (No space left on device). Free some space (delete "
    "old archives or lower the retention) and run the job again."
)
REFUSED_OR_MISSING = N_(
    "{server} refused access for user '{user}' to the database '{database}', or it does not "
    "exist (databases this user can see: {names}). Check the job's database name and the "
    "user's grants."
)
MISSING_DATABASE = N_(
    "The database '{database}' does not exist on {server} (databases there: {names}). Check "
    "the job's database name."
)


def client_for(
    engine: str, settings: Settings, config: DatabaseJobConfig, log: Callable[[str], None]
) -> Any:
    """The engine's client, connected as the job says (raises SecretError for a missing secret)."""
    endpoint = config.endpoint(settings)
    if engine == "mysql":
        return mysql.MysqlClient(settings, endpoint, log=log)
    return postgresql.PostgresClient(settings, endpoint, log=log)


class _Batches:
    """Gathers the small writes a dump tool makes into blocks of about BATCH_BYTES.

    Without stdbuf, mysqldump and pg_dump write a few KiB at a time, and even with it a pipe
    read may return part of a write: handling each piece (count, compress, cut into members)
    costs more than the bytes themselves.
    """

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self.sink = sink
        self.pending: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.size += len(chunk)
        if self.size >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            block = self.pending[0] if len(self.pending) == 1 else b"".join(self.pending)
            self.pending, self.size = [], 0
            self.sink(block)


class _Progress:
    """Bytes read from the dump tool, reported about once a second."""

    def __init__(self, context: BackupContext, estimate: int | None) -> None:
        self.context, self.estimate = context, estimate
        self.done, self.last = 0, time.monotonic()

    def add(self, count: int) -> None:
        self.done += count
        if time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            self.context.report_progress(self.done, self.estimate)


class DatabaseKind:
    engine = ""
    type_name = ""
    config_model: type[BaseModel] = DatabaseJobConfig

    def label(self, config: BaseModel) -> str:
        assert isinstance(config, DatabaseJobConfig)
        return f"{self.engine}_{config.database}"  # SPEC §3: jerry_mysql_mabase_20260508

    def _programs(self, settings: Settings) -> list[Any]:
        programs = settings.programs
        if self.engine == "mysql":
            return [programs.mysqldump, programs.mysql]
        return [programs.pg_dump, programs.pg_restore, programs.psql]

    def check(self, config: BaseModel, settings: Settings) -> None:
        assert isinstance(config, DatabaseJobConfig)
        for program in self._programs(settings):
            if not program.exists():
                raise JobConfigError(missing_tool_advice(str(program), self.engine))
        if config.password_secret and not SecretStore(settings.data_dir).exists(
            config.password_secret
        ):
            raise JobConfigError(
                f"password_secret: there is no secret named '{config.password_secret}': "
                f"set it first with 'backupmanager secrets set {config.password_secret}'"
            )
        try:
            client = client_for(self.engine, settings, config, lambda _line: None)
            names = (mysql if self.engine == "mysql" else postgresql).list_databases(client)
        except (DatabaseError, SecretError) as error:
            raise JobConfigError(str(error)) from None
        if config.database not in names:
            shown = ", ".join(name for name in names[:20] if not name.startswith("bm_drill_"))
            raise JobConfigError(
                f"database: '{config.database}' does not exist on {client.server} "
                f"(databases there: {shown or 'none'})"
            )

    def backup(self, config: BaseModel, context: BackupContext) -> BackupResult:
        assert isinstance(config, DatabaseJobConfig)
        settings = context.settings
        # info.json comes last in our archives: ask YunoHost (slow to start) while the dump runs.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ynh-version") as pool:
            version = pool.submit(
                yunohost.installed_version, settings.programs.yunohost, settings.yunohost_changelog
            )
            try:
                client = client_for(self.engine, settings, config, context.log)
                return self._backup(config, context, client, version)
            except (DatabaseError, SecretError) as error:
                raise JobFailed(str(error)) from None
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    raise JobFailed(DISK_FULL) from None
                raise

    def _backup(
        self,
        config: DatabaseJobConfig,
        context: BackupContext,
        client: Any,
        asked_version: Future[str],
    ) -> BackupResult:
        context.set_phase("reading the database's metadata")
        with self.opened(config, context, client) as opened:
            return self._archive(config, context, client, opened, asked_version)

    def _archive(
        self,
        config: DatabaseJobConfig,
        context: BackupContext,
        client: Any,
        opened: Opened,
        asked_version: Future[str],
    ) -> BackupResult:
        facts = opened.facts
        context.set_phase(f"dumping with {TOOLS[self.engine]}")
        progress = _Progress(context, facts.get("estimated_bytes"))
        with ArchiveWriter(context.settings.archives_dir, context.partial_name) as writer:
            now = int(time.time())
            prefix = dump_prefix(self.engine, config.database, config.compression)
            members: Members = (
                CompressedMembers(writer, prefix, mtime=now)
                if config.compression == "zstd"
                else SplicedMembers(writer, prefix, mtime=now)
            )
            try:
                contents, accounts = self.dump(config, context, client, opened, members, progress)
            finally:
                members.close()
            context.set_phase("writing the archive's metadata")
            version = _version(asked_version)
            meta = self._meta(config, facts, contents, members)
            _write_metadata(writer, context, self.engine, config, meta, accounts, version, now)
            written = writer.finish()
        context.report_progress(members.dump_bytes, members.dump_bytes)
        _log_summary(context, meta, written.size_bytes)
        return BackupResult(
            tar_path=written.tar_path,
            info_json_path=written.info_json_path,
            yunohost_version=version,
            sha256=written.sha256,
        )

    def _meta(
        self,
        config: DatabaseJobConfig,
        facts: dict[str, Any],
        contents: Contents,
        members: Members,
    ) -> dict[str, Any]:
        """backup_info.json's "database": what a restore and a drill need (no secrets)."""
        return {
            "format": FORMAT,
            "engine": self.engine,
            "database": config.database,
            "user": config.user,
            "host": config.host,
            "port": config.port,
            "tool": TOOLS[self.engine],
            "dump_format": "sql" if self.engine == "mysql" else "custom",
            "compression": config.compression,
            "dump_bytes": members.dump_bytes,
            "stored_bytes": members.stored_bytes,
            "members": len(members.members),
            "facts": {key: value for key, value in facts.items() if key != "superuser"},
            "contents": contents.as_dict(),
            "counted_from": self.counted_from,
        }

    counted_from = ""

    @contextlib.contextmanager
    def opened(
        self, config: DatabaseJobConfig, context: BackupContext, client: Any
    ) -> Iterator[Opened]:
        """Facts about the database, read before the dump (which they also check exists), and
        what the dump needs kept open meanwhile."""
        raise NotImplementedError
        yield

    def dump(
        self,
        config: DatabaseJobConfig,
        context: BackupContext,
        client: Any,
        opened: Opened,
        members: Members,
        progress: _Progress,
    ) -> tuple[Contents, list[Any]]:
        """The dump into `members`; its tables with their row counts, and the accounts to recreate."""
        raise NotImplementedError


@dataclass
class Opened:
    facts: dict[str, Any]
    # PostgreSQL: the session whose snapshot pg_dump uses (row counts and roles are asked there).
    snapshot: postgresql.Snapshot | None = None


def _version(asked: Future[str]) -> str:
    try:
        return asked.result()
    except (process.ProcessError, yunohost.YunohostError) as error:
        raise JobFailed(f"could not ask YunoHost for its version: {error}") from None


def _stream_tool(
    context: BackupContext,
    client: Any,
    program: Any,
    args: tuple[str, ...],
    members: Members,
    progress: _Progress,
    **extra: str,
) -> None:
    """Run the dump tool into the members, then end them; a non-zero exit fails the run (DESIGN §6)."""
    with client.invocation(program, *args, **extra) as call:
        argv = _with_output_buffer(call.argv, program, context.settings.programs.stdbuf)
        context.log("$ " + " ".join(argv))
        tool = program.name
        options: dict[str, Any] = {
            "on_line": lambda _stream, line: context.log(f"{tool}: {line}"),
            "env": call.env,
            "cwd": call.cwd,
            "timeout": context.settings.run_timeout_seconds,
            "secrets": call.secrets,
            "pass_fds": call.pass_fds,
        }
        try:
            if isinstance(members, SplicedMembers):
                result = process.splice(argv, take=_taking(members, progress), **options)
            else:
                batches = _Batches(lambda block: _write(members, progress, block))
                result = process.stream(
                    argv, sink=batches.add, gather_seconds=GATHER_SECONDS, **options
                )
                batches.flush()
        except process.ProcessError as error:
            error.argv = call.argv  # the tool's own name in messages, not stdbuf's
            raise client.failure(error, extra.get("database", args[-1])) from None
    if result.returncode != 0:
        failure = process.ProcessError(call.argv, result.returncode, result.stderr_tail)
        raise client.failure(failure, extra.get("database", args[-1]))
    members.finish()


def _taking(members: SplicedMembers, progress: _Progress) -> Callable[[int], int]:
    def take(pipe_fd: int) -> int:
        moved = members.take(pipe_fd)
        progress.add(moved)
        return moved

    return take


def _write(members: CompressedMembers, progress: _Progress, block: bytes) -> None:
    members.write(block)
    progress.add(len(block))


def _with_output_buffer(argv: tuple[str, ...], program: Any, stdbuf: Any) -> tuple[str, ...]:
    """argv with `stdbuf -o 1M` just before the tool (after runuser), when both are installed.

    Without it the tool's stdio writes 4 KiB at a time into the pipe; stdbuf is part of
    coreutils, and a missing one only costs speed. A missing tool is left for the usual error.
    """
    if str(program) not in argv or not stdbuf.exists() or not program.exists():
        return argv
    at = argv.index(str(program))
    return (*argv[:at], str(stdbuf), f"-o{OUTPUT_BUFFER}", *argv[at:])


class MysqlKind(DatabaseKind):
    engine = type_name = "mysql"
    counted_from = "mysqldump's output (the dump's own transaction)"

    @contextlib.contextmanager
    def opened(
        self, config: DatabaseJobConfig, context: BackupContext, client: Any
    ) -> Iterator[Opened]:
        facts = mysql.database_facts(client, config.database)
        if facts is None:
            names = ", ".join(mysql.list_databases(client)[:20]) or "none"
            fields = {"server": client.server, "database": config.database, "names": names}
            if client.endpoint.user:  # MariaDB hides the databases a user has no right on
                raise DatabaseError(REFUSED_OR_MISSING.format(user=client.endpoint.user, **fields))
            raise DatabaseError(MISSING_DATABASE.format(**fields))
        if facts["non_transactional"]:
            context.log(
                "WARNING: these tables do not use InnoDB, so their copy is not part of the "
                f"consistent snapshot: {', '.join(facts['non_transactional'])}."
            )
        yield Opened(facts)

    def dump(
        self,
        config: DatabaseJobConfig,
        context: BackupContext,
        client: Any,
        opened: Opened,
        members: Members,
        progress: _Progress,
    ) -> tuple[Contents, list[Any]]:
        accounts = mysql.accounts(client, config.user, config.database)
        counter = MysqlDumpCounter()
        tail = bytearray()

        def keep_tail(block: bytes) -> None:
            tail[:] = (bytes(tail) + block[-256:])[-256:]  # never a copy of the whole block

        members.watch(counter.feed)
        members.watch(keep_tail)
        programs = context.settings.programs
        _stream_tool(
            context,
            client,
            programs.mysqldump,
            client.dump_args(config.database),
            members,
            progress,
        )
        if b"-- Dump completed" not in tail:
            raise DatabaseError("mysqldump's output ended early (no 'Dump completed' line)")
        return counter.finish(), accounts


class PostgresqlKind(DatabaseKind):
    engine = type_name = "postgresql"
    counted_from = "the snapshot pg_dump used (exported by BackupManager)"

    @contextlib.contextmanager
    def opened(
        self, config: DatabaseJobConfig, context: BackupContext, client: Any
    ) -> Iterator[Opened]:
        """The facts are asked in the session whose snapshot pg_dump will use: one psql start."""
        with postgresql.exported_snapshot(client, config.database) as snapshot:
            facts = postgresql.facts_from_answer(snapshot.query(postgresql.FACTS_SQL))
            if not facts.get("superuser"):
                context.log(
                    "Roles are recorded without their password (not connected as a superuser)."
                )
            yield Opened(facts, snapshot)

    def dump(
        self,
        config: DatabaseJobConfig,
        context: BackupContext,
        client: Any,
        opened: Opened,
        members: Members,
        progress: _Progress,
    ) -> tuple[Contents, list[Any]]:
        head = bytearray()

        def keep_head(block: bytes) -> None:
            if len(head) < 5:
                head.extend(block[:5])

        members.watch(keep_head)
        superuser = bool(opened.facts.get("superuser"))
        snapshot = opened.snapshot
        assert snapshot is not None
        # Asked in the snapshot's own session while pg_dump runs: the row counts see exactly
        # what pg_dump dumps, and the roles cost no extra psql start.
        snapshot.ask(postgresql.CONTENTS_SQL)
        snapshot.ask(postgresql.roles_sql(config.user, superuser=superuser))
        args = client.dump_args(snapshot.name)
        programs = context.settings.programs
        _stream_tool(
            context, client, programs.pg_dump, args, members, progress, database=config.database
        )
        answer = snapshot.answer()
        roles = postgresql.roles_from_answer(snapshot.answer())
        if bytes(head[:5]) != b"PGDMP":
            raise DatabaseError("pg_dump did not write a custom-format archive")
        tables = {str(name): int(rows) for name, rows in dict(answer["tables"]).items()}
        return Contents(tables, [str(view) for view in answer["views"]]), roles


def _write_metadata(
    writer: ArchiveWriter,
    context: BackupContext,
    engine: str,
    config: DatabaseJobConfig,
    meta: dict[str, Any],
    accounts: list[Any],
    version: str,
    now: int,
) -> None:
    """The members after the dump: accounts, backup.csv, the part's hook, info.json, ours."""
    part, hook = PARTS[engine], hook_name(engine)
    accounts_name = accounts_member(engine, config.database)
    accounts_json = json.dumps({"engine": engine, "accounts": accounts}, indent=2).encode()
    writer.add_bytes(accounts_name, accounts_json, mode=0o600, mtime=now)
    part_dir = part.replace("_", "/")
    rows = [
        (f"{TOOLS[engine]}:{config.database}", part_dir),
        (f"{CUSTOM_HOOKS_DIR}/restore/{hook}", f"hooks/restore/{hook}"),
    ]
    writer.add_bytes("backup.csv", backup_csv(rows), mtime=now)
    writer.add_bytes(f"hooks/restore/{hook}", restore_hook(engine).encode(), mode=0o755, mtime=now)
    stored = meta["stored_bytes"] + len(accounts_json)
    writer.add_info_json(
        yunohost_info(
            created_at=now,
            size=stored,
            system_parts={part: (f"{CUSTOM_HOOKS_DIR}/backup/{hook}", stored)},
            yunohost_version=version,
            description=f"{TOOLS[engine]} of {config.database}",
        ),
        mtime=now,
    )
    writer.add_backup_info(
        {**context.backup_info, "yunohost_version": version, "database": meta}, mtime=now
    )


def _log_summary(context: BackupContext, meta: dict[str, Any], size: int) -> None:
    tables = meta["contents"]["tables"]
    rows = sum(tables.values())
    compression = "zstd" if meta["compression"] == "zstd" else "no compression"
    context.log(
        f"Dump complete: {len(tables)} tables, {rows} rows, {len(meta['contents']['views'])} "
        f"views; {meta['dump_bytes']} bytes dumped, {size} bytes in the archive ({compression})."
    )
