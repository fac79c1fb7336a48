"""mysql and postgresql jobs against the raw dump tools, on the same 1,000,000-row database.

Usage (as root, with ./tools/services.sh run first):
    .venv/bin/python bench/bench_databases.py [--rows 1000000] [--runs 3] [--keep]

For each engine, in the same run and on the same database:
- raw: the dump tool alone writing to a file (mysqldump with our options; pg_dump -Fc -Z0,
  the format we store), and the usual compressed form (| zstd -3; pg_dump -Fc);
- the job kind alone (kind.backup(): metadata, dump, row counts, archive, SHA256), in process;
- the whole command an admin runs, `backupmanager jobs run ID --wait`, in its own process,
  whose peak memory (VmHWM) is our process's, the dump tool's being separate.
Prints markdown tables for doc/benchmarks.md. The benchmark databases (bm_bench_rows) are
created once and kept with --keep (creating them takes about a minute).

--restore: a restore of the job's archive under a new database name (plan, SHA256 check, load,
row-count comparison; PostgreSQL through a staging database) against the raw load
(`mysql NEW < dump.sql`, `pg_restore -d NEW dump`), alternated, in a database created empty.

--breakdown: what each part of our work costs without compression: the job kind as it is, with
its follower thread (SHA256, row counts) kept at normal priority instead of SCHED_IDLE, with the
row counting switched off (MariaDB), then with the SHA256 switched off too (what is left is the
plumbing: stdbuf, splice, members, metadata), interleaved with the raw tool.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sources"))

from backupmanager import archive_writer, services  # noqa: E402
from backupmanager.clock import system_clock  # noqa: E402
from backupmanager.commands import run_inline, run_inline_restore  # noqa: E402
from backupmanager.databases.dumpcount import MysqlDumpCounter  # noqa: E402
from backupmanager.db import Database, upgrade_schema  # noqa: E402
from backupmanager.index import sync_index  # noqa: E402
from backupmanager.jobs import BackupContext, get_kind, parse_config  # noqa: E402
from backupmanager.restore import service as restores  # noqa: E402
from backupmanager.restore.plan import RestoreOptions  # noqa: E402
from backupmanager.settings import Settings, load_settings  # noqa: E402

SIMULATOR = ROOT / "sources" / "tests" / "fakes" / "yunohost"
BACKUPMANAGER = ROOT / ".venv" / "bin" / "backupmanager"
DATABASE = "bm_bench_rows"
RUNUSER = ["/usr/sbin/runuser", "-u", "postgres", "--"]

MYSQL_FILL = """
CREATE TABLE rows1m (id INT PRIMARY KEY, n INT NOT NULL, label VARCHAR(64) NOT NULL,
  amount DECIMAL(12,2), created DATETIME, payload VARBINARY(32), INDEX (n)) ENGINE=InnoDB;
INSERT INTO rows1m SELECT seq, seq % 1000, CONCAT('ligne n°', seq, ' — été ''quoted'' (x),(y)'),
  seq / 7, '2026-01-01' + INTERVAL seq SECOND, UNHEX(SHA1(seq)) FROM seq_1_to_{rows};
"""
PG_FILL = """
CREATE TABLE rows1m AS SELECT g AS id, g % 1000 AS n,
  'ligne n°' || g || ' — été ''quoted'' (x),(y)' AS label, (g / 7.0)::numeric(12,2) AS amount,
  timestamp '2026-01-01' + g * interval '1 second' AS created, decode(md5(g::text), 'hex') AS payload
  FROM generate_series(1, {rows}) g;
ALTER TABLE rows1m ADD PRIMARY KEY (id);
CREATE INDEX ON rows1m (n);
"""


def sh(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, check=True, capture_output=True, **kwargs)


def prepare_databases(rows: int) -> None:
    exists = sh(["mysql", "-N", "-e", f"SHOW DATABASES LIKE '{DATABASE}'"]).stdout.strip()
    if not exists:
        print(f"creating MariaDB {DATABASE} ({rows} rows)…", file=sys.stderr)
        sh(["mysql", "-e", f"CREATE DATABASE {DATABASE}"])
        sh(["mysql", DATABASE], input=MYSQL_FILL.format(rows=rows).encode())
    psql = [*RUNUSER, "psql", "-X", "-q", "-A", "-t"]
    listed = sh([*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"], cwd="/")
    if not listed.stdout.strip():
        print(f"creating PostgreSQL {DATABASE} ({rows} rows)…", file=sys.stderr)
        sh([*psql, "-c", f"CREATE DATABASE {DATABASE}"], cwd="/")
        sh([*psql, "-d", DATABASE], input=PG_FILL.format(rows=rows).encode(), cwd="/")
        sh([*psql, "-d", DATABASE, "-c", "VACUUM ANALYZE"], cwd="/")


def drop_database(engine: str, name: str) -> None:
    if engine == "mysql":
        sh(["mysql", "-e", f"DROP DATABASE IF EXISTS {name}"])
    else:
        sh([*RUNUSER, "psql", "-X", "-q", "-c", f"DROP DATABASE IF EXISTS {name}"], cwd="/")


def timed_shell(command: str, output: Path) -> float:
    """A raw dump, through bash with pipefail (a failed dump must not look fast)."""
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", f"{command} > {output}"], check=True, cwd="/")
    elapsed = time.perf_counter() - start
    output.unlink()
    return elapsed


def raw_commands(engine: str) -> dict[str, str]:
    if engine == "mysql":
        dump = (
            "mysqldump --single-transaction --routines --triggers --events --hex-blob "
            "--default-character-set=utf8mb4 --add-locks --extended-insert --disable-keys "
            f"--quick -- {DATABASE}"
        )
        return {"none": dump, "zstd": f"{dump} | zstd -3 -q -c"}
    runuser = " ".join(RUNUSER)
    return {
        "none": f"{runuser} pg_dump --format=custom --compress=0 {DATABASE}",
        "zstd": f"{runuser} pg_dump --format=custom {DATABASE}",  # pg_dump's own gzip -6
    }


RAW_LABELS = {
    ("mysql", "none"): "mysqldump > file",
    ("mysql", "zstd"): "mysqldump | zstd -3 > file",
    ("postgresql", "none"): "pg_dump -Fc -Z0 > file",
    ("postgresql", "zstd"): "pg_dump -Fc > file (gzip)",
}


def make_settings(base: Path) -> Settings:
    """The instance as on a server: YunoHost's version from its package changelog."""
    (base / "archives").mkdir(parents=True, exist_ok=True)
    with gzip.open(base / "changelog.gz", "wt") as handle:
        handle.write("yunohost (12.1.25) stable; urgency=low\n")
    os.environ["YNH_SIM_ROOT"] = str(base / "ynh")
    os.environ["YNH_SIM_ARCHIVES_DIR"] = str(base / "archives")
    return load_settings(
        None,
        env={},
        defaults={
            "instance_name": "bench",
            "data_dir": str(base / "data"),
            "archives_dir": str(base / "archives"),
            "programs": {"yunohost": str(SIMULATOR)},
            "yunohost_changelog": str(base / "changelog.gz"),
        },
    )


def kind_backup(settings: Settings, engine: str, compression: str) -> float:
    """The job kind alone: what BackupManager adds to the dump tool, in process."""
    kind = get_kind(engine)
    config = parse_config(kind, {"database": DATABASE, "user": "bench", "compression": compression})
    context = BackupContext(
        settings=settings,
        partial_name=f"bm-partial-bench-{engine}-{compression}",
        log=lambda _line: None,
        set_phase=lambda _phase: None,
        backup_info={"instance_name": "bench", "app": DATABASE, "type": engine},
    )
    start = time.perf_counter()
    result = kind.backup(config, context)
    elapsed = time.perf_counter() - start
    result.tar_path.unlink()
    result.info_json_path.unlink()
    return elapsed


def cli_run(settings: Settings, config_path: Path, job_id: int) -> tuple[float, int]:
    """`backupmanager jobs run ID --wait` in its own process: wall time, peak RSS (KiB)."""
    env = {**os.environ, "BACKUPMANAGER_CONFIG": str(config_path)}
    start = time.perf_counter()
    child = subprocess.Popen(
        [str(BACKUPMANAGER), "--json", "jobs", "run", str(job_id), "--wait"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    peak = 0
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    answer = json.loads(child.stdout.read() if child.stdout else b"{}")
    if answer.get("status") != "success":
        raise SystemExit(f"the job failed: {answer}")
    for path in settings.archives_dir.iterdir():
        path.unlink()
    return elapsed, peak


def bench_engine(settings: Settings, config_path: Path, engine: str, runs: int) -> list[str]:
    rows: list[str] = []
    out = settings.archives_dir / "raw.out"
    db = Database(settings)
    for compression in ("none", "zstd"):
        job = services.create_job(
            db,
            settings,
            {
                "name": f"bench {engine} {compression}",
                "type": engine,
                "config": {"database": DATABASE, "user": "bench", "compression": compression},
                "cron": "0 3 * * *",
                "retention": "count:1",
            },
        )
        raw_command = raw_commands(engine)[compression]
        piped = f"{raw_commands(engine)['none']} | cat"
        timed_shell(raw_command, out)  # warm-up: caches, buffers
        raw, through_pipe, ours = [], [], []
        for _ in range(runs):  # interleaved: a busy moment weighs on every column alike
            raw.append(timed_shell(raw_command, out))
            through_pipe.append(timed_shell(piped, out))
            ours.append(kind_backup(settings, engine, compression))
        cli = [cli_run(settings, config_path, job.id) for _ in range(runs)]
        raw_s, kind_s = statistics.median(raw), statistics.median(ours)
        pipe_s = statistics.median(through_pipe)
        cli_s = statistics.median(wall for wall, _ in cli)
        peak = max(rss for _, rss in cli) / 1024
        raw_label = RAW_LABELS[engine, compression].replace("|", "\\|")  # inside a table
        rows.append(
            f"| {engine} | {compression} | `{raw_label}` {raw_s:.2f} s "
            f"| {pipe_s:.2f} s | **{kind_s:.2f} s ({kind_s / raw_s:.2f}x)** "
            f"| {cli_s:.2f} s ({cli_s / raw_s:.2f}x) | {peak:.0f} MiB |"
        )
    db.dispose()
    return rows


class _NoHash:
    """Stands for hashlib.sha256 in --breakdown: what the SHA256 costs."""

    def update(self, _data: object) -> None:
        pass

    def hexdigest(self) -> str:
        return "0" * 64


@contextmanager
def switched_off(*parts: str) -> Iterator[None]:
    with ExitStack() as stack:
        if "idle priority" in parts:
            stack.enter_context(
                mock.patch.object(archive_writer, "_may_leave_idle_priority", lambda: False)
            )
        if "counting" in parts:
            stack.enter_context(mock.patch.object(MysqlDumpCounter, "feed", lambda *_: None))
        if "hashing" in parts:
            stack.enter_context(mock.patch.object(archive_writer.hashlib, "sha256", _NoHash))
        yield


def breakdown(settings: Settings, engine: str, runs: int) -> str:
    variants: dict[str, tuple[str, ...]] = {
        "as it is": (),
        "follower at normal priority": ("idle priority",),
        "without row counting": ("counting",),
        "without row counting nor SHA256": ("counting", "hashing"),
    }
    out = settings.archives_dir / "raw.out"
    raw: list[float] = []
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        raw.append(timed_shell(raw_commands(engine)["none"], out))
        for name, parts in variants.items():
            with switched_off(*parts):
                times[name].append(kind_backup(settings, engine, "none"))
    raw_s = statistics.median(raw)
    cells = " | ".join(
        f"{statistics.median(values):.2f} s ({statistics.median(values) / raw_s:.2f}x)"
        for values in times.values()
    )
    return f"| {engine} | {raw_s:.2f} s | {cells} |"


RESTORED = "bm_bench_restored"


def raw_load(engine: str, dump: Path) -> float:
    """The raw tool loading the raw dump into an empty database (created before the clock)."""
    if engine == "mysql":
        sh(["mysql", "-e", f"CREATE DATABASE {RESTORED}"])
        command = f"mysql {RESTORED} < {dump}"
    else:
        sh([*RUNUSER, "createdb", RESTORED], cwd="/")
        command = f"{' '.join(RUNUSER)} pg_restore --no-owner -d {RESTORED} {dump}"
    start = time.perf_counter()
    subprocess.run(["bash", "-c", command], check=True, cwd="/")
    return time.perf_counter() - start


def our_restore(db: Database, settings: Settings, archive: str) -> float:
    """A restore under a new name, queued and run in process as `restore --wait` does."""
    start = time.perf_counter()
    restore_id = restores.queue_restore(
        db,
        settings,
        archive,
        RestoreOptions(database=RESTORED),
        requested_by="bench",
        now=system_clock(),
    )
    run_inline_restore(db, settings, restore_id)
    elapsed = time.perf_counter() - start
    status = restores.restore_status(db, restore_id, with_log=False)
    if status["status"] != "success":
        raise SystemExit(f"the restore failed: {status}")
    return elapsed


def bench_restore(settings: Settings, engine: str, runs: int) -> str:
    db = Database(settings)
    job = services.create_job(
        db,
        settings,
        {
            "name": f"restore bench {engine}",
            "type": engine,
            "config": {"database": DATABASE, "user": "bench", "compression": "none"},
            "cron": "0 3 * * *",
        },
    )
    queued = services.queue_run(
        db, job.id, trigger="manual", requested_by="bench", now=system_clock()
    )
    run_inline(db, settings, queued.run_id)
    with db.write() as session:
        sync_index(session, settings.archives_dir, settings.instance_name)
        archive = services.get_run(session, queued.run_id).archive_name
    dump = Path(tempfile.mkdtemp(prefix="bm-bench-raw-")) / "dump"
    dump.parent.chmod(0o755)  # pg_restore runs as postgres
    subprocess.run(["bash", "-c", f"{raw_commands(engine)['none']} > {dump}"], check=True, cwd="/")
    dump.chmod(0o644)
    raw, ours = [], []
    try:
        for _ in range(runs):
            drop_database(engine, RESTORED)
            raw.append(raw_load(engine, dump))
            drop_database(engine, RESTORED)
            ours.append(our_restore(db, settings, str(archive)))
    finally:
        drop_database(engine, RESTORED)
        shutil.rmtree(dump.parent)
        db.dispose()
    raw_s, ours_s = statistics.median(raw), statistics.median(ours)
    tool = "`mysql NEW < dump.sql`" if engine == "mysql" else "`pg_restore -d NEW dump`"
    return f"| {engine} | {tool} {raw_s:.2f} s | **{ours_s:.2f} s ({ours_s / raw_s:.2f}x)** |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--breakdown", action="store_true", help="what each part of ours costs")
    parser.add_argument("--restore", action="store_true", help="restores against the raw load")
    args = parser.parse_args()
    prepare_databases(args.rows)
    base = Path(tempfile.mkdtemp(prefix="bm-bench-db-"))
    try:
        settings = make_settings(base)
        upgrade_schema(settings)
        config_path = base / "config.toml"
        config_path.write_text(
            f'instance_name = "bench"\ndata_dir = "{settings.data_dir}"\n'
            f'archives_dir = "{settings.archives_dir}"\n'
            f'yunohost_changelog = "{settings.yunohost_changelog}"\n'
            f'[programs]\nyunohost = "{SIMULATOR}"\n'
        )
        print(f"{args.rows} rows, median of {args.runs} runs, {os.cpu_count()} CPUs")
        print()
        if args.restore:
            print("| engine | raw load | our restore under a new name (ratio) |")
            print("|---|---:|---:|")
            for engine in ("mysql", "postgresql"):
                print(bench_restore(settings, engine, args.runs), flush=True)
            return
        if args.breakdown:
            print(
                "| engine | raw tool (none) | job kind as it is | follower at normal priority "
                "| without row counting | without row counting nor SHA256 |"
            )
            print("|---|---:|---:|---:|---:|---:|")
            for engine in ("mysql", "postgresql"):
                print(breakdown(settings, engine, args.runs), flush=True)
            return
        print(
            "| engine | compression | raw tool | uncompressed tool `\\| cat > file` | job kind (ratio) "
            "| `jobs run --wait` (ratio) | peak RSS of our process |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for engine in ("mysql", "postgresql"):
            for row in bench_engine(settings, config_path, engine, args.runs):
                print(row, flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if not args.keep:
            for engine in ("mysql", "postgresql"):
                drop_database(engine, DATABASE)


if __name__ == "__main__":
    main()
