"""Settings: TOML file, environment overrides, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from backupmanager.settings import SettingsError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_are_yunohost_paths() -> None:
    settings = load_settings(None, env={})
    assert settings.archives_dir == Path("/home/yunohost.backup/archives")
    assert settings.data_dir == Path("/home/yunohost.app/backupmanager")
    assert settings.programs.yunohost == Path("/usr/bin/yunohost")
    assert settings.features.hook_commands is False


def test_file_then_environment(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        'instance_name = "jerry"\ndata_dir = "/srv/bm"\n[programs]\ntar = "/opt/tar"\n[features]\nhook_commands = true\n',
    )
    settings = load_settings(
        config,
        env={
            "BACKUPMANAGER_DATA_DIR": "/srv/other",
            "BACKUPMANAGER_PROGRAMS_YUNOHOST": "/opt/fake/yunohost",
        },
    )
    assert settings.instance_name == "jerry"
    assert settings.data_dir == Path("/srv/other")
    assert settings.programs.tar == Path("/opt/tar")
    assert settings.programs.yunohost == Path("/opt/fake/yunohost")
    assert settings.features.hook_commands is True
    assert settings.database_path == Path("/srv/other/backupmanager.db")


def test_config_named_by_environment(tmp_path: Path) -> None:
    config = write(tmp_path, 'instance_name = "tom"\n')
    settings = load_settings(None, env={"BACKUPMANAGER_CONFIG": str(config)})
    assert settings.instance_name == "tom"


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ('instance_name = "Jerry Server"\n', {}, "setting 'instance_name'"),
        ('data_dir = "relative/path"\n', {}, "setting 'data_dir'"),
        ('[programs]\ntar = "tar"\n', {}, "setting 'programs.tar'"),
        ('instance_url = "ftp:/nope"\n', {}, "setting 'instance_url'"),
        (
            "unknown_key = 1\n",
            {},
            "setting 'unknown_key' (BACKUPMANAGER_UNKNOWN_KEY): unknown setting",
        ),
        ("", {"BACKUPMANAGER_FEATURES_HOOK_COMMANDS": "maybe"}, "setting 'features.hook_commands'"),
        ("", {"BACKUPMANAGER_TIMEZONE": "Mars/Olympus"}, "setting 'timezone'"),
    ],
)
def test_bad_values_name_the_key(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(write(tmp_path, text), env=env)
    assert expected in str(error.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(write(tmp_path, "instance_name = \n"), env={})
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", env={})
