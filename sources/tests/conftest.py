"""Shared fixtures: a fresh instance (settings, database, simulated YunoHost) per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backupmanager.db import Database, upgrade_schema
from backupmanager.settings import Settings, load_settings

FAKES = Path(__file__).parent / "fakes"
SIMULATOR = FAKES / "yunohost"


@pytest.fixture
def sim_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A simulated YunoHost server whose archives folder is the instance's."""
    root = tmp_path / "ynh"
    monkeypatch.setenv("YNH_SIM_ROOT", str(root))
    monkeypatch.setenv("YNH_SIM_ARCHIVES_DIR", str(tmp_path / "archives"))
    monkeypatch.setenv("YNH_SIM_LOCK_WARN_SECONDS", "1")
    monkeypatch.delenv("BACKUP_CORE_ONLY", raising=False)
    return root


@pytest.fixture
def settings(tmp_path: Path, sim_root: Path) -> Settings:
    (tmp_path / "archives").mkdir(exist_ok=True)
    return load_settings(
        None,
        env={},
        defaults={
            "instance_name": "jerry",
            "instance_url": "https://jerry.example.org",
            "data_dir": str(tmp_path / "data"),
            "archives_dir": str(tmp_path / "archives"),
            "timezone": "Europe/Paris",
            "poll_seconds": 0.2,
            "yunohost_lock_timeout_seconds": 30,
            "programs": {"yunohost": str(SIMULATOR)},
            # No package changelog: the version comes from the simulator's `tools versions`.
            "yunohost_changelog": str(tmp_path / "no-yunohost-changelog.gz"),
        },
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    upgrade_schema(settings)
    database = Database(settings)
    yield database
    database.dispose()


@pytest.fixture
def cli_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """Environment for running `backupmanager` as a separate process against this instance."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'instance_name = "{settings.instance_name}"\n'
        f'instance_url = "{settings.instance_url}"\n'
        f'data_dir = "{settings.data_dir}"\n'
        f'archives_dir = "{settings.archives_dir}"\n'
        f'timezone = "{settings.timezone}"\n'
        f"poll_seconds = {settings.poll_seconds}\n"
        f"yunohost_lock_timeout_seconds = {settings.yunohost_lock_timeout_seconds}\n"
        f'[programs]\nyunohost = "{settings.programs.yunohost}"\n'
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKUPMANAGER_")}
    env["BACKUPMANAGER_CONFIG"] = str(config)
    return env
