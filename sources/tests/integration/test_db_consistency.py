"""A dump taken while the database is being written to is a consistent snapshot (S-K4, S-K5)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator

import pytest

from backupmanager.db import Database
from backupmanager.restore.plan import RestoreOptions
from backupmanager.settings import Settings
from tests.helpers import add_job, run_job_now, wait_for
from tests.integration.db_support import (
    RUNUSER,
    SKIP_REASON,
    drop_database,
    mysql_admin,
    pg_admin,
    unique,
)
from tests.integration.test_db_round_trip import restore_now

ACCOUNTS = 50
START_BALANCE = 1000
BIG_ROWS = (
    100_000  # between `accounts` and `counter`/`ledger` in dump order: the dump takes a while
)

MYSQL_SCHEMA = f"""
CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL) ENGINE=InnoDB;
CREATE TABLE big (id INT PRIMARY KEY, filler VARCHAR(100)) ENGINE=InnoDB;
CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB;
CREATE TABLE ledger (id INT PRIMARY KEY AUTO_INCREMENT, src INT, dst INT) ENGINE=InnoDB;
INSERT INTO accounts SELECT seq, {START_BALANCE} FROM seq_1_to_{ACCOUNTS};
INSERT INTO big SELECT seq, REPEAT('x', 80) FROM seq_1_to_{BIG_ROWS};
INSERT INTO counter VALUES (1, 0);
"""
PG_SCHEMA = f"""
CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL);
CREATE TABLE big (id int PRIMARY KEY, filler text);
CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL);
CREATE TABLE ledger (id serial PRIMARY KEY, src int, dst int);
INSERT INTO accounts SELECT g, {START_BALANCE} FROM generate_series(1, {ACCOUNTS}) g;
INSERT INTO big SELECT g, repeat('x', 80) FROM generate_series(1, {BIG_ROWS}) g;
INSERT INTO counter VALUES (1, 0);
"""


def transaction(engine: str, number: int) -> bytes:
    """Move 1 from one account to another, log it, count it: all or nothing."""
    source, target = number % ACCOUNTS + 1, (number * 7 + 3) % ACCOUNTS + 1
    begin = "START TRANSACTION" if engine == "mysql" else "BEGIN"
    return (
        f"{begin};\n"
        f"UPDATE accounts SET balance = balance - 1 WHERE id = {source};\n"
        f"UPDATE accounts SET balance = balance + 1 WHERE id = {target};\n"
        f"INSERT INTO ledger (src, dst) VALUES ({source}, {target});\n"
        "UPDATE counter SET n = n + 1;\nCOMMIT;\n"
    ).encode()


class Writer(threading.Thread):
    """A client that commits transactions one after another until told to stop."""

    def __init__(self, engine: str, database: str) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        if engine == "mysql":
            argv = ["mysql", f"--database={database}"]
        else:
            argv = [RUNUSER, "-u", "postgres", "--", "psql", "-X", "-q", "-d", database]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd="/"
        )
        self.stopping = threading.Event()

    def run(self) -> None:
        assert self.process.stdin is not None
        number = 0
        while not self.stopping.is_set():
            self.process.stdin.write(transaction(self.engine, number))
            self.process.stdin.flush()
            number += 1

    def stop(self) -> None:
        self.stopping.set()
        self.join()
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def query(engine: str, database: str, sql: str) -> list[int]:
    if engine == "mysql":
        text = mysql_admin(sql, database=database)
    else:
        text = pg_admin(sql, database=database)
    return [int(value) for value in text.split()]


def counter(engine: str, database: str) -> int:
    return query(engine, database, "SELECT n FROM counter;")[0]


@pytest.fixture(params=["mysql", "postgresql"])
def busy_database(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, list[str]]]:
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    engine, name = request.param, unique("bmt_busy")
    copies: list[str] = []
    if engine == "mysql":
        mysql_admin(f"CREATE DATABASE `{name}`;")
        mysql_admin(MYSQL_SCHEMA, database=name)
    else:
        pg_admin(f"CREATE DATABASE {name};")
        pg_admin(PG_SCHEMA, database=name)
    yield engine, name, copies
    for database in [name, *copies]:
        drop_database(engine, database)


def test_a_dump_during_writes_restores_a_consistent_snapshot(
    db: Database, settings: Settings, busy_database: tuple[str, str, list[str]]
) -> None:
    engine, name, copies = busy_database
    job_id = add_job(
        db, settings, name="busy", type=engine, config={"database": name, "user": "busy_app"}
    )
    writer = Writer(engine, name)
    writer.start()
    try:
        wait_for(lambda: counter(engine, name) > 0, what="the writer's first transactions")
        before = counter(engine, name)
        run = run_job_now(db, settings, job_id)
        after = counter(engine, name)
        wait_for(lambda: counter(engine, name) > after + 2, what="writes after the backup")
    finally:
        writer.stop()
    assert run.status == "success", run.log_text
    assert run.archive_name is not None
    assert after > before  # the writer kept committing while the dump ran

    copy = unique("bmt_snap")
    copies.append(copy)
    status = restore_now(db, settings, run.archive_name, RestoreOptions(database=copy))
    assert status["status"] == "success", status["log"]  # includes the row-count comparison
    total = query(engine, copy, "SELECT SUM(balance) FROM accounts;")[0]
    assert total == ACCOUNTS * START_BALANCE  # no transfer seen half done
    snapshot = counter(engine, copy)
    assert query(engine, copy, "SELECT COUNT(*) FROM ledger;") == [snapshot]
    assert before <= snapshot <= after
    assert query(engine, copy, "SELECT COUNT(*) FROM big;") == [BIG_ROWS]
