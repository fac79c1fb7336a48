"""custom_dir backups (SPEC S-K3, §4; S-FB1, S-FB7, S-FB8): archive layout, excludes, services, hooks, kill."""

# ruff: noqa: F811  (pytest fixtures imported from custom_dir_support are parameters here)
from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backupmanager import services
from backupmanager.db import Database
from backupmanager.index import ORIGIN_LOCAL
from backupmanager.models import Archive, Run
from backupmanager.runner import restart_services_of_dead_runs
from backupmanager.settings import Settings
from backupmanager.tree import TreeWalker, parse_excludes
from backupmanager.worker import recover_dead_runs
from tests.helpers import (
    BACKUPMANAGER,
    add_job,
    member_bytes,
    members,
    run_job_now,
    sha256_of,
    wait_for,
)
from tests.integration.custom_dir_support import (  # noqa: F401 (fixtures)
    cd_settings,
    set_units,
    systemctl_calls,
    systemctl_root,
    units_state,
    write_cli_config,
)


def small_tree(root: Path) -> None:
    (root / "cache").mkdir(parents=True)
    (root / "cache" / "c.bin").write_text("cache\n")
    (root / "a.txt").write_text("alpha\n")


def test_archive_is_yunohost_compatible(
    db: Database, cd_settings: Settings, systemctl_root: Path, sim_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "opt" / "hermes-agent"
    small_tree(root)
    extra = tmp_path / "etc" / "hermes.conf"
    extra.parent.mkdir()
    extra.write_text("x=1\n")
    config = {"source_path": str(root), "extra_paths": [str(extra)], "excludes": ["cache/"]}
    job_id = add_job(db, cd_settings, name="hermes", type="custom_dir", config=config)
    run = run_job_now(db, cd_settings, job_id)
    assert run.status == "success", run.log_text
    assert run.archive_name == "jerry_hermes-agent_" + run.archive_name.split("_")[-1]
    tar_path = cd_settings.archives_dir / f"{run.archive_name}.tar"
    names = members(tar_path)
    assert names[:4] == [
        "info.json",
        "backup.csv",
        "backup_info.json",
        "hooks/restore/50-data_custom",
    ]
    data = names[4:]
    assert all(name.startswith("data/custom/") for name in data)
    assert f"data/custom{root}/a.txt" in data and f"data/custom{extra}" in data
    assert not any("cache" in name for name in data)
    inner = member_bytes(tar_path, "info.json")
    assert inner == (cd_settings.archives_dir / f"{run.archive_name}.info.json").read_bytes()
    info = json.loads(inner)
    assert info["system"] == {"data_custom": ["/etc/yunohost/hooks.d/backup/50-data_custom"]}
    assert info["apps"] == {} and info["size_details"]["apps"] == {}
    assert info["size_details"]["system"]["data_custom"] == info["size"] == 10
    assert info["from_yunohost_version"] == "12.1.25" and info["description"] == ""
    assert (
        member_bytes(tar_path, "backup.csv")
        == (
            f'"{root}","data/custom{root}"\r\n"{extra}","data/custom{extra}"\r\n'
            '"/etc/yunohost/hooks.d/restore/50-data_custom","hooks/restore/50-data_custom"\r\n'
        ).encode()
    )
    ours = json.loads(member_bytes(tar_path, "backup_info.json"))
    assert ours["type"] == "custom_dir" and ours["app"] == "hermes-agent"
    assert ours["yunohost_version"] == "12.1.25"
    assert ours["custom_dir"]["paths"] == [str(root), str(extra)]
    with tarfile.open(tar_path) as tar:
        assert tar.getmember("hooks/restore/50-data_custom").mode == 0o755
    # The checksum recorded in the index is the one of the bytes on disk, computed while writing
    with db.read() as session:
        row = session.query(Archive).filter_by(name=run.archive_name).one()
        assert row.origin == ORIGIN_LOCAL and row.sha256 == sha256_of(tar_path) == run.sha256
    # YunoHost lists it and reads its info (the simulator follows YUNOHOST.md §1.7)
    answer = subprocess.run(
        [str(cd_settings.programs.yunohost), "backup", "info", run.archive_name, "-d", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(answer.stdout.splitlines()[-1])["system"]["data_custom"]["size"] == 10


@pytest.mark.parametrize(
    ("pattern", "excluded"),
    [
        ("cache/", ["cache", "lib/cache"]),  # no inner '/': a folder of that name at any depth
        ("/cache/", ["cache"]),  # a leading '/' anchors it at the source folder
        ("lib/cache", ["lib/cache"]),  # an inner '/' anchors too
        ("*.tmp", ["x.tmp", "lib/y.tmp"]),
        ("lib/*.tmp", ["lib/y.tmp"]),
        ("**/keep.tmp", []),
        ("logs", ["logs", "lib/logs"]),  # no trailing '/': files and folders
        ("logs/", ["lib/logs"]),  # folders only: the top-level `logs` is a file
    ],
)
def test_exclude_semantics(tmp_path: Path, pattern: str, excluded: list[str]) -> None:
    root = tmp_path / "src"
    for folder in ("cache", "lib/cache", "lib/logs"):
        (root / folder).mkdir(parents=True)
        (root / folder / "inside").write_text("x")
    for name in ("x.tmp", "lib/y.tmp", "logs", "keep.txt"):
        (root / name).write_text("x")
    walker = TreeWalker(parse_excludes([pattern]))
    listing = tmp_path / "list"
    with listing.open("wb") as out:
        walker.write_list([str(root)], out)
    kept = set()
    for raw in listing.read_bytes().split(b"\0"):
        if raw:
            path = "/" + os.fsdecode(raw)
            kept.add("" if path == str(root) else os.path.relpath(path, root))
    everything = {
        "", "cache", "cache/inside", "lib", "lib/cache", "lib/cache/inside", "lib/logs",
        "lib/logs/inside", "x.tmp", "lib/y.tmp", "logs", "keep.txt",
    }  # fmt: skip
    gone = {
        name for name in everything if any(name == e or name.startswith(e + "/") for e in excluded)
    }
    assert kept == everything - gone


@pytest.fixture
def tiny_archives_dir(cd_settings: Settings) -> Iterator[Path]:
    """The archives folder on a 1 MiB tmpfs: a backup bigger than that fails midway (ENOSPC)."""
    folder = cd_settings.archives_dir
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_services_are_started_again_in_reverse_order_when_the_backup_fails(
    db: Database,
    cd_settings: Settings,
    systemctl_root: Path,
    tiny_archives_dir: Path,
    tmp_path: Path,
) -> None:
    root = tmp_path / "srv" / "app"
    root.mkdir(parents=True)
    (root / "big.bin").write_bytes(os.urandom(4 * 1024 * 1024))
    set_units(
        systemctl_root,
        **{
            "first.service": {"active": True, "enabled": True},
            "second.service": {"active": True, "enabled": True},
            "idle.service": {"active": False, "enabled": True},
        },
    )
    config = {"source_path": str(root), "stop_services": ["first", "idle", "second"]}
    job_id = add_job(db, cd_settings, name="app", type="custom_dir", config=config)
    run = run_job_now(db, cd_settings, job_id)
    assert run.status == "error"
    assert "No space left on device" in (run.error_message or "")
    actions = [call for call in systemctl_calls(systemctl_root) if call[0] in ("stop", "start")]
    assert actions == [
        ["stop", "first.service"],
        ["stop", "second.service"],
        ["start", "second.service"],
        ["start", "first.service"],
    ]
    assert units_state(systemctl_root)["first.service"]["active"] is True
    assert units_state(systemctl_root)["idle.service"]["active"] is False  # never started
    assert "starting the stopped services again" in run.log_text
    assert "Started second.service again." in run.log_text
    assert list(tiny_archives_dir.iterdir()) == []  # the partial files were removed


def test_commands_need_the_feature_switch(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    small_tree(root)
    marker = tmp_path / "ran"
    config = {"source_path": str(root), "hooks": {"backup_pre": [f"touch {marker}"]}}
    locked = cd_settings.model_copy(
        update={"features": cd_settings.features.model_copy(update={"hook_commands": False})}
    )
    with pytest.raises(services.InputError, match=r"hook_commands = true.*\[features\]"):
        add_job(db, locked, name="app", type="custom_dir", config=config)
    # Created while allowed, then the admin turned the switch off: refused at run time too
    job_id = add_job(db, cd_settings, name="app", type="custom_dir", config=config)
    run = run_job_now(db, locked, job_id)
    assert run.status == "error"
    assert "BACKUPMANAGER_FEATURES_HOOK_COMMANDS" in (run.error_message or "")
    assert not marker.exists()
    run = run_job_now(db, cd_settings, job_id)
    assert run.status == "success", run.log_text
    assert marker.exists() and f"[backup_pre] $ touch {marker}" in run.log_text


def test_a_killed_backup_leaves_no_archive_under_a_final_name(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    root.mkdir(parents=True)
    block = os.urandom(1024 * 1024)
    with (root / "big.bin").open("wb") as handle:
        for _ in range(300):
            handle.write(block)
    # The service is started again after the archive is written and before it is named: a slow
    # `systemctl start` keeps the backup in flight however fast the disk is.
    set_units(systemctl_root, **{"app.service": {"active": True, "enabled": True}})
    (systemctl_root / "behaviour.json").write_text(json.dumps({"delay_seconds": {"start": 60}}))
    config = {"source_path": str(root), "stop_services": ["app"]}
    job_id = add_job(db, cd_settings, name="app", type="custom_dir", config=config)
    env = write_cli_config(cd_settings, tmp_path / "cli.toml")
    child = subprocess.Popen(
        [str(BACKUPMANAGER), "jobs", "run", str(job_id)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    archives = cd_settings.archives_dir
    try:
        wait_for(
            lambda: any(path.suffix == ".tar" for path in archives.iterdir()),
            what="the partial tar",
        )
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    time.sleep(0.2)
    left = sorted(path.name for path in archives.iterdir())
    assert left and all(name.startswith("bm-partial-") for name in left), left
    with db.read() as session:
        assert session.query(Archive).count() == 0
    # The worker's start-up marks the run interrupted and removes what it left
    from backupmanager.clock import system_clock

    dead = recover_dead_runs(db, cd_settings, system_clock())
    assert len(dead) == 1
    assert list(archives.iterdir()) == []
    # The service the killed run had stopped is started again (FreedomBox S-FB8), and its log says so
    assert units_state(systemctl_root)["app.service"]["active"] is False
    (systemctl_root / "behaviour.json").write_text("{}")
    assert restart_services_of_dead_runs(db, cd_settings) == {f"bm-partial-r{dead[0]}": []}
    assert units_state(systemctl_root)["app.service"]["active"] is True
    with db.read() as session:
        log_text = session.get(Run, dead[0]).log_text  # type: ignore[union-attr]
    assert "starting them again" in log_text and "Started app.service again" in log_text
    assert restart_services_of_dead_runs(db, cd_settings) == {}  # once


def test_the_run_reports_the_bytes_written_against_the_trees_size(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    """What the run page's progress bar shows: bytes of the archive written, of about the tree's."""
    root = tmp_path / "srv" / "data"
    root.mkdir(parents=True)
    (root / "a.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (root / "b.txt").write_text("b" * 1000)
    job_id = add_job(
        db, cd_settings, name="data", type="custom_dir", config={"source_path": str(root)}
    )
    run = run_job_now(db, cd_settings, job_id)
    assert run.status == "success", run.log_text
    assert run.estimated_bytes == 3 * 1024 * 1024 + 1000  # the walk's total
    assert run.progress_bytes == run.size_bytes  # every byte of the archive, tar's included
    assert run.size_bytes is not None and run.size_bytes > run.estimated_bytes


def test_a_file_changing_while_read_keeps_the_archive_and_says_so(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    """GNU tar's exit code 1 ("file changed as we read it"): the archive is whole, the log warns."""
    root = tmp_path / "srv" / "busy"
    root.mkdir(parents=True)
    growing = root / "growing.log"
    growing.write_bytes(os.urandom(32 * 1024 * 1024))
    stop = threading.Event()

    def keep_appending() -> None:  # a service writing its log during the backup
        with growing.open("ab", buffering=0) as handle:
            while not stop.is_set():
                handle.write(b"x")
                time.sleep(0.001)

    writer = threading.Thread(target=keep_appending)
    writer.start()
    try:
        job_id = add_job(
            db, cd_settings, name="busy", type="custom_dir", config={"source_path": str(root)}
        )
        run = run_job_now(db, cd_settings, job_id)
    finally:
        stop.set()
        writer.join()
    assert run.status == "success", run.log_text
    assert "file changed as we read it" in run.log_text
    assert "WARNING: some files changed while they were read" in run.log_text
    tar_path = cd_settings.archives_dir / f"{run.archive_name}.tar"
    assert f"data/custom{growing}" in members(tar_path)
    assert sha256_of(tar_path) == run.sha256
