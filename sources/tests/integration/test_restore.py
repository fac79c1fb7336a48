"""Complete restore of custom_dir archives (SPEC §7, S-C, S-X): round trip as root, plan, safety."""
# ruff: noqa: F811  (pytest fixtures imported from custom_dir_support are parameters here)

from __future__ import annotations

import io
import json
import pwd
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from backupmanager.clock import system_clock
from backupmanager.commands import run_inline_restore
from backupmanager.db import Database
from backupmanager.models import Command, Restore
from backupmanager.restore import service
from backupmanager.restore.plan import RestoreOptions
from backupmanager.settings import Settings
from backupmanager.worker import recover_dead_restores
from tests.helpers import add_job, restore_now, run_cli, run_job_now
from tests.integration.custom_dir_support import (  # noqa: F401 (fixtures)
    UNIT_FILE,
    cd_settings,
    delete_user,
    make_tree,
    manifest,
    remove_tree,
    set_units,
    system_user,
    systemctl_calls,
    systemctl_root,
    units_state,
    write_cli_config,
)


def hermes_config(root: Path, user: str, marker: Path) -> dict[str, Any]:
    return {
        "source_path": str(root),
        "excludes": ["cache/", "*.tmp"],
        "stop_services": ["hermes-test"],
        "restore": {
            "system_user": {"name": user, "home": str(root), "shell": "/usr/sbin/nologin"},
            "systemd_service": {
                "name": "hermes-test",
                "service_file": str(root / "hermes.service"),
            },
            "permissions": {"owner": f"{user}:{user}", "mode": "750"},
            "firewall": {"port": 8742, "protocol": "TCP"},
            "post_restore_commands": [f"echo restored >> {marker}"],
        },
        "hooks": {"restore_post": [f"echo post >> {marker}"]},
    }


def back_up(db: Database, settings: Settings, config: dict[str, Any], name: str = "hermes") -> str:
    job_id = add_job(db, settings, name=name, type="custom_dir", config=config)
    run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    assert run.archive_name is not None
    return run.archive_name


def test_round_trip_restores_tree_user_service_and_commands(
    db: Database,
    cd_settings: Settings,
    system_user: str,
    systemctl_root: Path,
    sim_root: Path,
    tmp_path: Path,
) -> None:
    root = tmp_path / "opt" / "hermes-agent"
    marker = tmp_path / "marker.txt"
    make_tree(root, system_user)
    set_units(systemctl_root, **{"hermes-test.service": {"active": True, "enabled": True}})
    archive = back_up(db, cd_settings, hermes_config(root, system_user, marker))
    before = manifest(root)
    excluded = ["cache", "cache/deep", "cache/deep/big.bin", "scratch.tmp"]
    for relative in excluded:
        del before[relative]
    uid = pwd.getpwnam(system_user).pw_uid

    remove_tree(root)
    delete_user(system_user)
    set_units(systemctl_root)  # a fresh server: the unit is unknown
    env = write_cli_config(cd_settings, tmp_path / "cli.toml")
    done = run_cli(env, "restore", archive, "--yes", "--wait", "--json", timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    status = json.loads(done.stdout)
    assert status["status"] == "success"
    assert [step["step"] for step in status["steps"]] == [
        "system_user",
        "files",
        "permissions",
        "systemd_unit",
        "firewall",
        "post_restore",
    ]
    after = manifest(root)
    assert after == before
    assert not set(excluded) & set(after)
    assert after["sparse.img"]["sparse"]
    assert after["data/db.sqlite"]["same_as"] == after["data/db-hardlink"]["same_as"]
    assert after["notes.txt"]["xattrs"]["user.comment"] == b"kept by tar"
    assert "system.posix_acl_access" in after["notes.txt"]["xattrs"]
    assert pwd.getpwnam(system_user).pw_uid == uid  # recreated with its old uid
    assert (cd_settings.systemd_unit_dir / "hermes-test.service").read_text() == UNIT_FILE
    assert ["daemon-reload"] in systemctl_calls(systemctl_root)
    assert ["enable", "--now", "hermes-test.service"] in systemctl_calls(systemctl_root)
    assert units_state(systemctl_root)["hermes-test.service"] == {"active": True, "enabled": True}
    assert marker.read_text() == "restored\npost\n"
    firewall = json.loads((sim_root / "firewall.json").read_text())
    assert firewall["tcp"]["8742"]["open"] is True


def simple_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.txt").write_text("beta\n")


def test_restore_to_another_folder_restores_files_only(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    marker = tmp_path / "marker"
    config = {
        "source_path": str(root),
        "restore": {"post_restore_commands": [f"touch {marker}"]},
    }
    archive = back_up(db, cd_settings, config)
    target = tmp_path / "elsewhere"
    status = restore_now(db, cd_settings, archive, RestoreOptions(target=str(target)))
    assert status["status"] == "success", status["log"]
    assert (target / str(root)[1:] / "sub" / "b.txt").read_text() == "beta\n"
    assert [step["step"] for step in status["steps"]] == ["files"]
    assert not marker.exists()  # commands belong to a restore at the origin
    assert status["plan"]["paths"] == [
        {"origin": str(root), "restore_to": str(target / str(root)[1:])}
    ]


def test_restore_over_existing_files_is_explicit(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    archive = back_up(db, cd_settings, {"source_path": str(root)})
    (root / "a.txt").write_text("changed since\n")

    plan = service.plan_restore(cd_settings, archive, RestoreOptions())
    assert plan["files"]["overwrite"] == 2
    assert str(root / "a.txt") in plan["files"]["overwrite_examples"]
    assert plan["refusal"] and "--overwrite" in plan["refusal"]
    refused = restore_now(db, cd_settings, archive, RestoreOptions())
    assert refused["status"] == "error"
    assert "nothing was changed" in refused["error_message"]
    assert (root / "a.txt").read_text() == "changed since\n"

    done = restore_now(db, cd_settings, archive, RestoreOptions(overwrite=True))
    assert done["status"] == "success", done["log"]
    assert (root / "a.txt").read_text() == "alpha\n"


def test_a_failing_step_stops_the_restore_and_says_what_was_done(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    config = {
        "source_path": str(root),
        "restore": {"post_restore_commands": ["echo about to fail; exit 3"]},
    }
    archive = back_up(db, cd_settings, config)
    remove_tree(root)
    status = restore_now(db, cd_settings, archive, RestoreOptions())
    assert status["status"] == "error"
    assert "stopped at step 'post_restore'" in status["error_message"]
    assert "exit code 3" in status["error_message"]
    assert (
        "done before: system_user, files, permissions, systemd_unit, firewall"
        in (status["error_message"])
    )
    assert status["steps"][-1]["status"] == "failed"
    assert "about to fail" in status["log"]
    assert (root / "a.txt").exists()


def test_archive_commands_need_the_feature_or_skip_commands(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    marker = tmp_path / "marker"
    config = {"source_path": str(root), "hooks": {"restore_pre": [f"touch {marker}"]}}
    archive = back_up(db, cd_settings, config)
    remove_tree(root)
    locked = cd_settings.model_copy(
        update={"features": cd_settings.features.model_copy(update={"hook_commands": False})}
    )
    refused = restore_now(db, locked, archive, RestoreOptions())
    assert refused["status"] == "error"
    assert "hook_commands = true" in refused["error_message"]
    assert "--skip-commands" in refused["error_message"]
    assert not root.exists()

    skipped = restore_now(db, locked, archive, RestoreOptions(skip_commands=True))
    assert skipped["status"] == "success", skipped["log"]
    assert (root / "a.txt").exists() and not marker.exists()
    assert "NOT run (--skip-commands)" in skipped["log"]


def test_webadmin_path_restores_the_files_through_yunohost(
    db: Database, cd_settings: Settings, systemctl_root: Path, sim_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    (root / "a.txt").chmod(0o600)
    archive = back_up(db, cd_settings, {"source_path": str(root)})
    remove_tree(root)
    done = subprocess.run(
        [
            str(cd_settings.programs.yunohost),
            "backup",
            "restore",
            archive,
            "--system",
            "data_custom",
            "--force",
            "--output-as",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "system": {"data_custom": "Success"},
        "apps": {},
    }
    assert (root / "sub" / "b.txt").read_text() == "beta\n"
    assert (root / "a.txt").stat().st_mode & 0o777 == 0o600
    # YunoHost copied the archive's restore hook to run it, as it does for custom parts
    assert (sim_root / "hooks.d" / "restore" / "50-data_custom").is_file()


def test_cli_refuses_database_option_for_a_folder_archive(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    archive = back_up(db, cd_settings, {"source_path": str(root)})
    env = write_cli_config(cd_settings, tmp_path / "cli.toml")
    done = run_cli(env, "restore", archive, "--database", "other", "--yes", timeout=60)
    assert done.returncode == 2
    assert "--database only applies to MySQL / PostgreSQL archives" in done.stderr


def test_cli_plan_changes_nothing(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    archive = back_up(db, cd_settings, {"source_path": str(root)})
    remove_tree(root)
    env = write_cli_config(cd_settings, tmp_path / "cli.toml")
    done = run_cli(env, "restore", archive, "--plan", timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"Restore plan for {archive}" in done.stdout
    assert "files: restore 4 entries" in done.stdout
    assert not root.exists()


def hostile_archive(archives_dir: Path, name: str, bad: tarfile.TarInfo) -> None:
    """A small archive that looks like ours, with one bad member among good ones."""
    metadata = {
        "info.json": json.dumps(
            {"description": "", "created_at": 1, "size": 1, "apps": {}, "system": {},
             "size_details": {"apps": {}, "system": {}}, "from_yunohost_version": "12.1.25"}
        ).encode(),
        "backup_info.json": json.dumps(
            {"type": "custom_dir", "instance_name": "jerry",
             "custom_dir": {"paths": ["/srv/app"], "source_path": "/srv/app"}}
        ).encode(),
    }  # fmt: skip
    with tarfile.open(archives_dir / f"{name}.tar", "w", format=tarfile.PAX_FORMAT) as tar:
        for member_name, payload in metadata.items():
            info = tarfile.TarInfo(member_name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        good = tarfile.TarInfo("data/custom/srv/app/good.txt")
        good.size = 3
        tar.addfile(good, io.BytesIO(b"ok\n"))
        tar.addfile(bad, io.BytesIO(b"evil\n") if bad.isreg() else None)
    (archives_dir / f"{name}.info.json").write_bytes(metadata["info.json"])


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = link
    member.size = 5 if kind == tarfile.REGTYPE else 0
    return member


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_member("data/custom/srv/app/../../../../etc/cron.d/evil"), "'..'"),
        (_member("/etc/cron.d/evil"), "absolute"),
        (_member("data/custom/etc/cron.d/evil"), "outside the folders the archive declares"),
        (
            _member("data/custom/srv/app/up", tarfile.SYMTYPE, "../../../../../etc"),
            "points outside",
        ),
        (_member("data/custom/srv/app/hl", tarfile.LNKTYPE, "/etc/shadow"), "absolute"),
        (_member("data/custom/srv/app/hl", tarfile.LNKTYPE, "etc/shadow"), "hard link"),
        (_member("data/custom/srv/app/null", tarfile.CHRTYPE), "device node"),
        (_member("unexpected.sh"), "unexpected member"),
    ],
)
def test_hostile_archives_are_refused_and_nothing_is_written(
    db: Database,
    cd_settings: Settings,
    systemctl_root: Path,
    tmp_path: Path,
    bad: tarfile.TarInfo,
    reason: str,
) -> None:
    hostile_archive(cd_settings.archives_dir, "hostile", bad)
    target = tmp_path / "target"
    status = restore_now(db, cd_settings, "hostile", RestoreOptions(target=str(target)))
    assert status["status"] == "error"
    assert "Restore refused, nothing was changed" in status["error_message"]
    assert reason in status["error_message"]
    assert not target.exists()
    assert status["steps"] == []


def test_writing_through_an_archived_symlink_is_refused(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    link = _member("data/custom/srv/app/out", tarfile.SYMTYPE, str(tmp_path / "outside"))
    hostile_archive(cd_settings.archives_dir, "through", link)
    with tarfile.open(cd_settings.archives_dir / "through.tar", "a") as tar:
        tar.addfile(_member("data/custom/srv/app/out/planted"), io.BytesIO(b"evil\n"))
    target = tmp_path / "target"
    status = restore_now(db, cd_settings, "through", RestoreOptions(target=str(target)))
    assert status["status"] == "error"
    assert "through a symbolic link" in status["error_message"]
    assert not target.exists() and not (tmp_path / "outside").exists()


def test_a_damaged_archive_is_refused_before_any_change(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    archive = back_up(db, cd_settings, {"source_path": str(root)})
    remove_tree(root)
    tar_path = cd_settings.archives_dir / f"{archive}.tar"
    with tar_path.open("r+b") as handle:  # flip bytes inside a.txt's content
        data = handle.read()
        offset = data.index(b"alpha\n")
        handle.seek(offset)
        handle.write(b"ALPHA\n")
    status = restore_now(db, cd_settings, archive, RestoreOptions())
    assert status["status"] == "error"
    assert "not the one recorded when it was written" in status["error_message"]
    assert not root.exists()


def test_an_interrupted_restore_is_marked_at_worker_start(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    archive = back_up(db, cd_settings, {"source_path": str(root)})
    restore_id = service.queue_restore(
        db, cd_settings, archive, RestoreOptions(overwrite=True), requested_by="test",
        now=system_clock(),
    )  # fmt: skip
    with db.write() as session:  # as a worker killed in the middle leaves it
        row = session.get(Restore, restore_id)
        assert row is not None
        row.status, row.phase, row.pid = "running", "files", 999_999
    assert recover_dead_restores(db, system_clock()) == [restore_id]
    status = service.restore_status(db, restore_id)
    assert status["status"] == "interrupted"
    assert "during 'files'" in status["error_message"]
    with db.read() as session:
        command = session.query(Command).filter_by(restore_id=restore_id).one()
        assert command.status == "failed"


def test_queueing_reads_the_index_not_the_archive(
    db: Database, cd_settings: Settings, systemctl_root: Path, tmp_path: Path
) -> None:
    """The web process queues restores but cannot read the root-only archives folder."""
    root = tmp_path / "srv" / "app"
    simple_tree(root)
    archive = back_up(db, cd_settings, {"source_path": str(root)})
    tar = cd_settings.archives_dir / f"{archive}.tar"
    hidden = tar.rename(tmp_path / "elsewhere.tar")  # unreadable, as far as queueing can tell
    restore_id = service.queue_restore(
        db, cd_settings, archive, RestoreOptions(overwrite=True), requested_by="api:test",
        now=system_clock(),
    )  # fmt: skip
    with pytest.raises(service.RestoreInputError, match="--database only applies"):
        service.queue_restore(
            db, cd_settings, archive, RestoreOptions(database="other"), requested_by="api:test",
            now=system_clock(),
        )  # fmt: skip
    hidden.rename(tar)
    run_inline_restore(db, cd_settings, restore_id)  # the worker reads and checks the archive
    assert service.restore_status(db, restore_id)["status"] == "success"
