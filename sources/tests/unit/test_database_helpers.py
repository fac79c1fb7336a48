"""Pure helpers of database jobs: grant lines, quoting, count comparison, config validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupmanager.databases import mysql, postgresql
from backupmanager.databases.common import Contents, compare_contents
from backupmanager.databases.layout import dump_prefix, restore_hook, safe_file_name
from backupmanager.jobs import JobConfigError, get_kind, parse_config
from backupmanager.jobs.db_dump import _with_output_buffer


@pytest.mark.parametrize(
    ("line", "database", "privileges", "target"),
    [
        ("GRANT ALL PRIVILEGES ON `mabase`.* TO `u`@`localhost`", "mabase", "ALL PRIVILEGES", "*"),
        ("GRANT SELECT, INSERT ON `my\\_db`.`t` TO `u`@`%`", "my_db", "SELECT, INSERT", "`t`"),
        (
            "GRANT SELECT (`a`, `b`) ON `x`.`odd``t` TO `u`@`h`",
            "x",
            "SELECT (`a`, `b`)",
            "`odd``t`",
        ),
        ("GRANT EXECUTE ON FUNCTION `x`.`f` TO `u`@`h`", "x", "EXECUTE", "`f`"),
    ],
)
def test_grant_lines_are_understood(line: str, database: str, privileges: str, target: str) -> None:
    match = mysql.GRANT_LINE.match(line)
    assert match is not None
    assert mysql._db_of_grant(match["db"]) == database
    assert match["privileges"] == privileges
    assert match["object"] == target


def test_global_grants_and_passwords_are_not_database_grants() -> None:
    line = "GRANT USAGE ON *.* TO `u`@`localhost` IDENTIFIED BY PASSWORD '*ABCDEF'"
    match = mysql.GRANT_LINE.match(line)
    assert match is not None and mysql._db_of_grant(match["db"]) is None
    assert "PASSWORD" not in mysql.IDENTIFIED.sub("", line)


def test_quoting() -> None:
    assert mysql.ident("a`b") == "`a``b`"
    assert mysql.string("it's \\") == "'it\\'s \\\\'"
    assert postgresql.ident('a"b') == '"a""b"'
    assert postgresql.string("it's") == "'it''s'"
    assert postgresql.conninfo("d'b") == "dbname='d\\'b' application_name='backupmanager'"


def test_compare_contents_names_every_difference() -> None:
    dumped = Contents({"a": 3, "b": 1, "c": 0}, ["v", "w"])
    restored = Contents({"a": 3, "b": 2, "d": 0}, ["v"])
    assert compare_contents(dumped, restored) == [
        "table c is missing",
        "table d was not in the dump",
        "table b has 2 rows, 1 were dumped",
        "view w is missing",
    ]
    assert compare_contents(dumped, dumped) == []


def test_layout_names() -> None:
    assert dump_prefix("mysql", "mabase", "zstd") == "data/mysqldump/mabase.sql.zst."
    assert dump_prefix("postgresql", "my$db", "none") == "data/pgdump/my-db.pgdump."
    assert safe_file_name("..") == "database"
    hook = restore_hook("mysql")
    assert hook.startswith("#!/bin/bash") and "exit 1" in hook and "backupmanager restore" in hook


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"database": "a;drop", "user": "u"}, "database"),
        ({"database": "ok", "user": "--user=root"}, "user"),
        ({"database": "ok", "user": "u", "host": "-oProxyCommand"}, "host"),
        ({"database": "ok", "user": "u", "password_secret": "Hunter2 !"}, "password_secret"),
        ({"database": "ok", "user": "u", "drill_cron": "every day"}, "drill_cron"),
        ({"database": "ok", "user": "u", "compression": "gzip"}, "compression"),
        ({"database": "ok", "user": "u", "password": "x"}, "password"),
    ],
)
def test_bad_configs_are_refused_naming_the_field(config: dict[str, str], problem: str) -> None:
    with pytest.raises(JobConfigError, match=problem):
        parse_config(get_kind("mysql"), config)


def test_a_config_keeps_only_the_secret_name_and_labels_the_archive() -> None:
    kind = get_kind("postgresql")
    config = parse_config(
        kind, {"database": "mabase", "user": "postgres", "host": "", "drill_cron": "0  4 * * 0"}
    )
    assert config.model_dump() == {
        "database": "mabase",
        "user": "postgres",
        "host": None,
        "port": None,
        "password_secret": None,
        "compression": "zstd",
        "drill_cron": "0 4 * * 0",
    }
    assert kind.label(config) == "postgresql_mabase"


def test_the_dump_tool_gets_a_big_output_buffer_only_when_both_programs_exist(
    tmp_path: Path,
) -> None:
    tool, stdbuf = tmp_path / "pg_dump", tmp_path / "stdbuf"
    argv = ("/usr/sbin/runuser", "-u", "postgres", "--", str(tool), "--no-password")
    assert _with_output_buffer(argv, tool, stdbuf) == argv  # neither is installed
    tool.touch()
    assert _with_output_buffer(argv, tool, stdbuf) == argv  # no stdbuf: only slower
    stdbuf.touch()
    wrapped = _with_output_buffer(argv, tool, stdbuf)
    assert wrapped == (*argv[:4], str(stdbuf), "-o1M", str(tool), "--no-password")
    tool.unlink()  # a missing tool keeps its own "not found" error
    assert _with_output_buffer(argv, tool, stdbuf) == argv
