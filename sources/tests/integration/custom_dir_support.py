"""Fixtures and helpers for the custom_dir and restore tests: real users, real trees, systemctl sim."""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backupmanager.settings import Settings
from tests.conftest import FAKES

SYSTEMCTL = FAKES / "systemctl"


@pytest.fixture
def systemctl_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "systemctl"
    monkeypatch.setenv("SYSTEMCTL_SIM_ROOT", str(root))
    monkeypatch.setenv("SYSTEMCTL_SIM_UNIT_DIR", str(tmp_path / "units"))
    root.mkdir()
    return root


@pytest.fixture
def cd_settings(settings: Settings, tmp_path: Path, systemctl_root: Path) -> Settings:
    """The instance with the systemctl simulator, a test unit folder and commands enabled."""
    return settings.model_copy(
        update={
            "programs": settings.programs.model_copy(update={"systemctl": SYSTEMCTL}),
            "features": settings.features.model_copy(update={"hook_commands": True}),
            "systemd_unit_dir": tmp_path / "units",
        }
    )


def write_cli_config(settings: Settings, path: Path) -> dict[str, str]:
    """A config file for `backupmanager` subprocesses with every setting these tests change."""
    path.write_text(
        f'instance_name = "{settings.instance_name}"\n'
        f'data_dir = "{settings.data_dir}"\n'
        f'archives_dir = "{settings.archives_dir}"\n'
        f'timezone = "{settings.timezone}"\n'
        f'systemd_unit_dir = "{settings.systemd_unit_dir}"\n'
        f"poll_seconds = {settings.poll_seconds}\n"
        f'[programs]\nyunohost = "{settings.programs.yunohost}"\n'
        f'systemctl = "{settings.programs.systemctl}"\n'
        f'tar = "{settings.programs.tar}"\n'
        f"[features]\nhook_commands = {str(settings.features.hook_commands).lower()}\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKUPMANAGER_")}
    env["BACKUPMANAGER_CONFIG"] = str(path)
    return env


def delete_user(name: str) -> None:
    subprocess.run(["userdel", name], capture_output=True, check=False)
    subprocess.run(["groupdel", name], capture_output=True, check=False)


@pytest.fixture
def system_user() -> Iterator[str]:
    """A real system user with a unique name, removed afterwards whatever happens."""
    name = f"bmtest{secrets.token_hex(3)}"
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        check=True,
    )
    try:
        yield name
    finally:
        delete_user(name)


def set_units(systemctl_root: Path, **units: dict[str, bool]) -> None:
    (systemctl_root / "units.json").write_text(json.dumps(units))


def systemctl_calls(systemctl_root: Path) -> list[list[str]]:
    calls = systemctl_root / "calls.jsonl"
    if not calls.exists():
        return []
    return [json.loads(line)["argv"] for line in calls.read_text().splitlines()]


def units_state(systemctl_root: Path) -> dict[str, dict[str, bool]]:
    return json.loads((systemctl_root / "units.json").read_text())


UNIT_FILE = "[Unit]\nDescription=test service\n[Service]\nExecStart=/bin/true\n"


def make_tree(root: Path, user: str) -> None:
    """Several owners and modes, links of both kinds, a sparse file, xattrs, an ACL, excludables."""
    root.mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "data").mkdir(mode=0o750)
    (root / "empty").mkdir(mode=0o700)
    (root / "cache" / "deep").mkdir(parents=True)
    (root / "bin" / "run.sh").write_text("#!/bin/sh\necho run\n")
    (root / "bin" / "run.sh").chmod(0o755)
    (root / "app.conf").write_text("secret=1\n")
    (root / "app.conf").chmod(0o640)
    (root / "data" / "db.sqlite").write_bytes(os.urandom(200_000))
    (root / "data" / "db.sqlite").chmod(0o600)
    os.link(root / "data" / "db.sqlite", root / "data" / "db-hardlink")
    (root / "current").symlink_to("data")
    (root / "python").symlink_to("/usr/bin/python3")
    with (root / "sparse.img").open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)
        handle.seek(32 * 1024 * 1024)
        handle.write(b"middle of a sparse file")
    (root / "notes.txt").write_text("remember\n")
    os.setxattr(root / "notes.txt", "user.comment", b"kept by tar")
    subprocess.run(["setfacl", "-m", "u:nobody:r", str(root / "notes.txt")], check=True)
    (root / "cache" / "deep" / "big.bin").write_bytes(b"x" * 10_000)
    (root / "scratch.tmp").write_text("temporary\n")
    (root / "hermes.service").write_text(UNIT_FILE)
    uid, gid = pwd.getpwnam(user).pw_uid, grp.getgrnam(user).gr_gid
    for path in (
        root,
        root / "data",
        root / "data" / "db.sqlite",
        root / "app.conf",
        root / "empty",
    ):
        os.chown(path, uid, gid)
    os.chown(root / "notes.txt", 0, gid)
    root.chmod(0o750)


def manifest(root: Path) -> dict[str, dict[str, Any]]:
    """Every path under root with type, owner and group names, mode, content hash, links, xattrs."""
    entries: dict[str, dict[str, Any]] = {}
    inodes: dict[int, str] = {}
    for path in sorted([root, *root.rglob("*")]):
        status = path.lstat()
        relative = str(path.relative_to(root))
        entry: dict[str, Any] = {
            "type": stat.S_IFMT(status.st_mode),
            "mode": oct(stat.S_IMODE(status.st_mode)),
            "owner": pwd.getpwuid(status.st_uid).pw_name,
            "group": grp.getgrgid(status.st_gid).gr_name,
        }
        if path.is_symlink():
            entry["link"] = os.readlink(path)
        else:
            entry["xattrs"] = {name: os.getxattr(path, name) for name in sorted(os.listxattr(path))}
        if stat.S_ISREG(status.st_mode):
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            entry["size"] = status.st_size
            entry["mtime"] = int(status.st_mtime)
            entry["sparse"] = status.st_blocks * 512 < status.st_size // 2
            entry["same_as"] = inodes.setdefault(status.st_ino, relative)
        entries[relative] = entry
    return entries


def remove_tree(root: Path) -> None:
    shutil.rmtree(root)
