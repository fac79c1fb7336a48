"""mysql / postgresql jobs against real servers: backup → drop → restore, same schema and content."""
# ruff: noqa: F811  (pytest fixtures imported from db_support are parameters here)

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from backupmanager.databases import layout
from backupmanager.db import Database
from backupmanager.restore.plan import RestoreOptions
from backupmanager.settings import Settings
from tests.conftest import SIMULATOR
from tests.helpers import add_job, member_bytes, members, restore_now, run_job_now
from tests.integration.db_support import (  # noqa: F401 (fixture)
    SampleDatabase,
    drop_accounts,
    drop_database,
    job_config,
    login_works,
    mysql_admin,
    pg_admin,
    reader_can_select,
    sample_db,
    schema_of,
    table_checksums,
    unique,
)


def back_up(db: Database, settings: Settings, sample: SampleDatabase, **config: Any) -> str:
    job_id = add_job(
        db, settings, name=unique("db job"), type=sample.engine, config=job_config(sample, **config)
    )
    run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    assert run.archive_name is not None
    return run.archive_name


def change_data(sample: SampleDatabase) -> None:
    if sample.engine == "mysql":
        mysql_admin(
            "DELETE FROM items WHERE id > 100; DROP VIEW cheap_items;", database=sample.name
        )
    else:
        pg_admin("DELETE FROM items WHERE id > 100; DROP VIEW cheap_items;", database=sample.name)


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_round_trip_into_the_original_and_into_a_new_name(
    db: Database, settings: Settings, sample_db: SampleDatabase, compression: str
) -> None:
    engine, name = sample_db.engine, sample_db.name
    schema, checksums = schema_of(engine, name), table_checksums(engine, name)
    archive = back_up(db, settings, sample_db, compression=compression)
    assert archive.startswith(f"jerry_{engine}_{name}_")

    # The original database and its users are gone: restore recreates all of it.
    drop_database(engine, name)
    drop_accounts(sample_db)
    status = restore_now(db, settings, archive, RestoreOptions())
    assert status["status"] == "success", status["log"]
    expected_steps = ["accounts", "database", "load", "grants", "compare"]
    if engine == "postgresql":
        expected_steps.remove("grants")  # in the dump itself; the roles come first
    assert [step["step"] for step in status["steps"]] == expected_steps
    assert schema_of(engine, name) == schema
    assert table_checksums(engine, name) == checksums
    assert login_works(engine, sample_db.owner, sample_db.password, name)
    assert reader_can_select(sample_db, name)

    # Into a new name, next to the original.
    new_name = unique("bmt_copy")
    sample_db.extra_databases.append(new_name)
    status = restore_now(db, settings, archive, RestoreOptions(database=new_name))
    assert status["status"] == "success", status["log"]
    assert table_checksums(engine, new_name) == checksums
    assert reader_can_select(sample_db, new_name)
    assert schema_of(engine, new_name).replace(name, "<db>") == schema

    # Replacing an existing database needs an explicit yes, then puts the archived state back.
    change_data(sample_db)
    refused = restore_now(db, settings, archive, RestoreOptions())
    assert refused["status"] == "error"
    assert "--overwrite" in refused["error_message"]
    assert table_checksums(engine, name) != checksums
    status = restore_now(db, settings, archive, RestoreOptions(overwrite=True))
    assert status["status"] == "success", status["log"]
    assert status["plan"]["database"]["exists"] is True
    assert schema_of(engine, name) == schema
    assert table_checksums(engine, name) == checksums


def test_archives_are_listed_by_yunohost_with_correct_information(
    db: Database, settings: Settings, sample_db: SampleDatabase
) -> None:
    archive = back_up(db, settings, sample_db)
    tar = settings.archives_dir / f"{archive}.tar"
    beside = (settings.archives_dir / f"{archive}.info.json").read_bytes()
    names = members(tar)
    part = "data_mysqldump" if sample_db.engine == "mysql" else "data_pgdump"
    assert "info.json" in names and "backup.csv" in names and "backup_info.json" in names
    assert f"hooks/restore/50-{part}" in names
    assert all(not name.startswith(("/", "./")) for name in names)
    answer = subprocess.run(
        [str(SIMULATOR), "backup", "info", archive, "--with-details", "--output-as", "json"],
        capture_output=True,
        check=True,
    ).stdout
    info = json.loads(answer.decode().strip().splitlines()[-1])
    assert part in info["system"]
    assert info["system"][part]["size"] > 0
    inner = json.loads(beside)
    assert inner["size"] == info["size"]
    assert inner["from_yunohost_version"]
    facts = json.loads(member_bytes(tar, "backup_info.json"))["database"]["facts"]
    if sample_db.engine == "mysql":  # asked with the other facts, before the dump
        assert facts["server_version"] == mysql_admin("SELECT VERSION()").strip()
        assert facts["charset"] == "utf8mb4"
    else:
        assert facts["version"] == pg_admin("SHOW server_version").strip()
        assert facts["encoding"] == "UTF8"


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_a_dump_cut_into_many_members_restores_with_the_same_content_and_counts(
    db: Database,
    settings: Settings,
    sample_db: SampleDatabase,
    compression: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Members of 4 KiB: the spliced (none) and buffered (zstd) paths both cross many member
    # boundaries, and the row counter sees the dump across them.
    monkeypatch.setattr(layout, "CHUNK_BYTES", 4096)
    engine = sample_db.engine
    checksums = table_checksums(engine, sample_db.name)
    archive = back_up(db, settings, sample_db, compression=compression)
    names = members(settings.archives_dir / f"{archive}.tar")
    pieces = [name for name in names if ".sql." in name or ".pgdump." in name]
    assert len(pieces) >= 3
    new_name = unique("bmt_pieces")
    sample_db.extra_databases.append(new_name)
    status = restore_now(db, settings, archive, RestoreOptions(database=new_name))
    assert status["status"] == "success", status["log"]  # its compare step checks the counts
    assert "as in the dump" in status["log"]
    assert table_checksums(engine, new_name) == checksums
