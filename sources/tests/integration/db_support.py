"""Real MariaDB and PostgreSQL servers for the database tests: admin access, sample databases.

Works with Debian's default authentication on a fresh install (MariaDB root through
unix_socket, PostgreSQL peer as `postgres`) and with trust/empty-password setups: as root
the tools are run through the socket, PostgreSQL's as the postgres system user. Every test
creates its own uniquely named databases, users and roles, and drops them afterwards.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

RUNUSER = "/usr/sbin/runuser"


def _have_servers() -> str | None:
    if os.geteuid() != 0:
        return "the database tests run as root (socket authentication), like the worker"
    for tool in ("mysql", "mysqldump", "psql", "pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: run ./tools/services.sh"
    return None


SKIP_REASON = _have_servers()
needs_servers = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


def mysql_admin(sql: str, *, database: str | None = None, check: bool = True) -> str:
    argv = ["mysql", "--batch", "--skip-column-names", "--default-character-set=utf8mb4"]
    if database:
        argv.append(f"--database={database}")
    result = subprocess.run(argv, input=sql.encode(), capture_output=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"mysql failed: {result.stderr.decode()}")
    return result.stdout.decode("utf-8", errors="surrogateescape")


def pg_admin(sql: str, *, database: str = "postgres", check: bool = True) -> str:
    argv = [RUNUSER, "-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t"]
    argv += ["-v", "ON_ERROR_STOP=1", "-d", database]
    result = subprocess.run(argv, input=sql.encode(), capture_output=True, check=False, cwd="/")
    if check and result.returncode != 0:
        raise AssertionError(f"psql failed: {result.stderr.decode()}")
    return result.stdout.decode("utf-8", errors="surrogateescape")


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


@dataclass
class SampleDatabase:
    engine: str
    name: str
    owner: str  # the job's `user`: MariaDB user or PostgreSQL owner role
    password: str
    reader: str = ""  # a second user/role with grants on part of the database
    extra_databases: list[str] = field(default_factory=list)  # restored copies, dropped at the end

    def drop(self) -> None:
        drop_sample(self)


# Text that breaks naive dump handling: quotes, backslashes, row separators, non-ASCII, tabs.
TRICKY_TEXTS = [
    "héllo wörld ✓ 日本語 🎉",
    'it\'s a \\ backslash and "double" quotes',
    "looks like a row separator: ),( and ); and '),('",
    "line one\nline two\ttab\rreturn",
    "",
]
BINARY_VALUES = [bytes(range(256)), b"\x00\x00\n\r'\\\x1a", b""]


def _mysql_schema(owner: str, reader: str, password: str, name: str) -> str:
    texts = ",\n".join(
        f"({index + 1}, {_mysql_text(text)}, {index * 3}.25, {_hex(BINARY_VALUES[index % 3])}, "
        f"'2026-05-0{index + 1} 03:00:00')"
        for index, text in enumerate(TRICKY_TEXTS)
    )
    return f"""
CREATE TABLE items (id INT PRIMARY KEY AUTO_INCREMENT, name TEXT, price DECIMAL(10,2),
  data BLOB, created DATETIME, INDEX items_price (price)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, item_id INT, note VARCHAR(64))
  ENGINE=InnoDB;
CREATE TABLE `odd name`` table` (`weird col` INT, `é` VARCHAR(10)) ENGINE=InnoDB;
CREATE TABLE empty_one (x INT) ENGINE=InnoDB;
INSERT INTO items VALUES {texts};
INSERT INTO items (name, price, data, created)
  SELECT CONCAT('row ', seq), seq / 7, UNHEX(SHA1(seq)), '2026-01-01' + INTERVAL seq MINUTE
  FROM seq_1_to_500;
INSERT INTO `odd name`` table` VALUES (1, 'ça'), (2, NULL);
CREATE TRIGGER items_added AFTER INSERT ON items FOR EACH ROW
  INSERT INTO audit (item_id, note) VALUES (NEW.id, 'added');
INSERT INTO items (name, price) VALUES ('after the trigger', 1.00);
CREATE VIEW cheap_items AS SELECT id, name FROM items WHERE price < 10;
CREATE FUNCTION double_it(x INT) RETURNS INT DETERMINISTIC RETURN x * 2;
CREATE USER '{owner}'@'localhost' IDENTIFIED BY '{password}';
GRANT ALL PRIVILEGES ON `{name}`.* TO '{owner}'@'localhost';
CREATE USER '{reader}'@'localhost' IDENTIFIED BY '{password}';
GRANT SELECT ON `{name}`.`items` TO '{reader}'@'localhost';
"""


def _mysql_text(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _hex(value: bytes) -> str:
    return f"0x{value.hex()}" if value else "''"


def _pg_schema(owner: str, reader: str, password: str) -> str:
    texts = ",\n".join(
        f"({_pg_text(text)}, {index * 3}.25, '\\x{BINARY_VALUES[index % 3].hex()}', "
        f"'2026-05-0{index + 1} 03:00:00+00')"
        for index, text in enumerate(TRICKY_TEXTS)
    )
    return f"""
SET ROLE {owner};
CREATE TABLE items (id serial PRIMARY KEY, name text, price numeric(10,2), data bytea,
  created timestamptz);
CREATE INDEX items_price ON items (price);
CREATE TABLE audit (id serial PRIMARY KEY, item_id int, note text);
CREATE SCHEMA extra;
CREATE TABLE extra."odd name" ("weird col" int, "é" text);
CREATE TABLE empty_one (x int);
INSERT INTO items (name, price, data, created) VALUES {texts};
INSERT INTO items (name, price, data, created)
  SELECT 'row ' || g, g / 7.0, decode(md5(g::text), 'hex'), '2026-01-01'::timestamptz + g * interval '1 minute'
  FROM generate_series(1, 500) g;
INSERT INTO extra."odd name" VALUES (1, 'ça'), (2, NULL);
CREATE FUNCTION log_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO audit (item_id, note) VALUES (NEW.id, 'added'); RETURN NEW; END $$;
CREATE TRIGGER items_added AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION log_item();
INSERT INTO items (name, price) VALUES ('after the trigger', 1.00);
CREATE VIEW cheap_items AS SELECT id, name FROM items WHERE price < 10;
GRANT SELECT ON items TO {reader};
RESET ROLE;
"""


def _pg_text(text: str) -> str:
    return (
        "E'"
        + text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
        + "'"
    )


def create_sample(engine: str) -> SampleDatabase:
    name = unique("bmt")
    sample = SampleDatabase(engine, name, f"{name}_own", secrets.token_urlsafe(12), f"{name}_rd")
    if engine == "mysql":
        mysql_admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;")
        mysql_admin(
            _mysql_schema(sample.owner, sample.reader, sample.password, name), database=name
        )
    else:
        pg_admin(
            f"CREATE ROLE {sample.owner} LOGIN PASSWORD '{sample.password}';\n"
            f"CREATE ROLE {sample.reader} NOLOGIN;\n"
            f"CREATE DATABASE {name} OWNER {sample.owner};\n"
            f"REVOKE CONNECT ON DATABASE {name} FROM PUBLIC;\n"
            f"GRANT CONNECT ON DATABASE {name} TO {sample.reader};\n"
        )
        pg_admin(_pg_schema(sample.owner, sample.reader, sample.password), database=name)
    return sample


def drop_database(engine: str, name: str) -> None:
    if engine == "mysql":
        mysql_admin(f"DROP DATABASE IF EXISTS `{name}`;")
    else:
        pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


def drop_accounts(sample: SampleDatabase) -> None:
    if sample.engine == "mysql":
        for user in (sample.owner, sample.reader):
            mysql_admin(f"DROP USER IF EXISTS '{user}'@'localhost', '{user}'@'127.0.0.1';")
    else:
        for role in (sample.owner, sample.reader):
            exists = pg_admin(f"SELECT 1 FROM pg_roles WHERE rolname = '{role}';").strip()
            if exists:
                for database in pg_admin(
                    "SELECT datname FROM pg_database WHERE NOT datistemplate;"
                ).split():
                    pg_admin(f"DROP OWNED BY {role};", database=database, check=False)
                pg_admin(f"DROP ROLE IF EXISTS {role};")


def drop_sample(sample: SampleDatabase) -> None:
    for name in [sample.name, *sample.extra_databases]:
        drop_database(sample.engine, name)
    drop_accounts(sample)


@pytest.fixture(params=["mysql", "postgresql"])
def sample_db(request: pytest.FixtureRequest) -> Iterator[SampleDatabase]:
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    sample = create_sample(request.param)
    yield sample
    drop_sample(sample)


def schema_of(engine: str, name: str) -> str:
    """The schema as the engine's own dump tool prints it, without lines naming the database."""
    if engine == "mysql":
        argv = [
            "mysqldump",
            "--no-data",
            "--routines",
            "--triggers",
            "--events",
            "--skip-dump-date",
            "--skip-comments",
            "--",
            name,
        ]
        text = subprocess.run(argv, capture_output=True, check=True).stdout.decode()
    else:
        argv = [RUNUSER, "-u", "postgres", "--", "pg_dump", "--schema-only", "-d", name]
        text = subprocess.run(argv, capture_output=True, check=True, cwd="/").stdout.decode()
    lines = [
        line
        for line in text.splitlines()
        if not line.startswith(("--", "\\restrict", "\\unrestrict"))
    ]
    return "\n".join(lines).replace(name, "<db>")


def table_checksums(engine: str, name: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and the SHA256 of its rows in key order, read by the server."""
    result: dict[str, tuple[int, str]] = {}
    if engine == "mysql":
        tables = mysql_admin(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            f"'{name}' AND TABLE_TYPE = 'BASE TABLE';"
        ).splitlines()
        for table in tables:
            quoted = "`" + table.replace("`", "``") + "`"
            rows = sorted(mysql_admin(f"SELECT * FROM {quoted};", database=name).splitlines())
            result[table] = (len(rows), _digest(rows))
        return result
    tables = pg_admin(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema');",
        database=name,
    ).splitlines()
    for table in tables:
        rows = sorted(pg_admin(f"SELECT t::text FROM {table} t;", database=name).splitlines())
        result[table] = (len(rows), _digest(rows))
    return result


def _digest(rows: list[str]) -> str:
    return hashlib.sha256("\n".join(rows).encode("utf-8", errors="surrogateescape")).hexdigest()


def login_works(engine: str, user: str, password: str, database: str) -> bool:
    """Can `user` log in over TCP with its password and read the database?"""
    env = {**os.environ}
    if engine == "mysql":
        env["MYSQL_PWD"] = password
        argv = ["mysql", f"--user={user}", "-e", "SELECT COUNT(*) FROM items", database]
    else:
        env["PGPASSWORD"] = password
        argv = [
            "psql",
            "-X",
            "-h",
            "127.0.0.1",
            "-U",
            user,
            "-d",
            database,
            "-c",
            "SELECT COUNT(*) FROM items",
        ]
    return subprocess.run(argv, capture_output=True, env=env, check=False).returncode == 0


def reader_can_select(sample: SampleDatabase, database: str) -> bool:
    """The second user/role got back its SELECT grant on `items` of `database`."""
    if sample.engine == "mysql":
        grants = mysql_admin(f"SHOW GRANTS FOR '{sample.reader}'@'localhost';", check=False)
        return f"GRANT SELECT ON `{database}`.`items`" in grants
    answer = pg_admin(
        f"SELECT has_table_privilege('{sample.reader}', 'public.items', 'SELECT');",
        database=database,
    )
    return answer.strip() == "t"


def job_config(sample: SampleDatabase, **extra: Any) -> dict[str, Any]:
    return {"database": sample.name, "user": sample.owner, **extra}
