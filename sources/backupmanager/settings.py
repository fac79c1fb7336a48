"""One typed settings object, read from the TOML file of SPEC §17 with environment overrides."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backupmanager.validation import field_problems

ENV_PREFIX = "BACKUPMANAGER_"
CONFIG_ENV = "BACKUPMANAGER_CONFIG"
DEFAULT_ARCHIVES_DIR = Path("/home/yunohost.backup/archives")
DEFAULT_DATA_DIR = Path("/home/yunohost.app/backupmanager")

# An instance name goes into every archive name (SPEC §3): keep it to what YunoHost accepts
# and what survives every tool (no ':' or spaces, FreedomBox S-FB10).
INSTANCE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class SettingsError(Exception):
    """A setting is missing or wrong; the message names the key and says what to do."""


class Programs(BaseModel):
    """Path of every external program (DESIGN §3), so tests and dev mode can point at a fake."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    yunohost: Path = Path("/usr/bin/yunohost")
    tar: Path = Path("/usr/bin/tar")
    mysqldump: Path = Path("/usr/bin/mysqldump")
    mysql: Path = Path("/usr/bin/mysql")
    pg_dump: Path = Path("/usr/bin/pg_dump")
    pg_restore: Path = Path("/usr/bin/pg_restore")
    psql: Path = Path("/usr/bin/psql")
    rsync: Path = Path("/usr/bin/rsync")
    ssh: Path = Path("/usr/bin/ssh")
    systemctl: Path = Path("/usr/bin/systemctl")
    useradd: Path = Path("/usr/sbin/useradd")
    groupadd: Path = Path("/usr/sbin/groupadd")
    sh: Path = Path("/bin/sh")  # runs the admin's hook and post-restore commands
    # Local PostgreSQL tools run as the `postgres` system user (Debian's peer authentication).
    runuser: Path = Path("/usr/sbin/runuser")
    # Gives a dump tool a big stdout buffer (coreutils); without it dumps are only slower.
    stdbuf: Path = Path("/usr/bin/stdbuf")

    @field_validator("*")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path, e.g. /usr/bin/tar")
        return value


class Features(BaseModel):
    """Risky features, off until the admin enables them in the root-owned config (DESIGN §1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hook_commands: bool = False


class Settings(BaseModel):
    """Everything BackupManager needs to know about where it runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_name: str = "backupmanager"
    instance_url: str = ""
    data_dir: Path = DEFAULT_DATA_DIR
    archives_dir: Path = DEFAULT_ARCHIVES_DIR
    timezone: str = ""  # empty: the server's own zone
    yunohost_lock_timeout_seconds: int = Field(default=6 * 3600, ge=1)
    run_timeout_seconds: int = Field(default=24 * 3600, ge=60)
    poll_seconds: float = Field(default=2.0, gt=0, le=60)
    # Where a restore installs a custom_dir job's systemd unit (tests point it elsewhere).
    systemd_unit_dir: Path = Path("/etc/systemd/system")
    # Where YunoHost's package keeps its changelog: its first line gives the installed version,
    # as YunoHost reads it itself (the `yunohost` CLI is asked only when the file is missing).
    yunohost_changelog: Path = Path("/usr/share/doc/yunohost/changelog.gz")
    # Who may use the dashboard (YUNOHOST.md §5.3): members of this system group (LDAP on YunoHost).
    admins_group: str = Field(default="admins", pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    programs: Programs = Programs()
    features: Features = Features()

    @field_validator("instance_name")
    @classmethod
    def _instance_name(cls, value: str) -> str:
        if not INSTANCE_NAME_PATTERN.match(value):
            raise ValueError(
                "use 1 to 32 lowercase letters, digits or '-', starting with a letter or digit"
            )
        return value

    @field_validator("instance_url")
    @classmethod
    def _instance_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
            raise ValueError("must be a URL such as https://backup.example.org")
        return value.rstrip("/")

    @field_validator("data_dir", "archives_dir", "systemd_unit_dir", "yunohost_changelog")
    @classmethod
    def _absolute_dir(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise ValueError("unknown time zone, use a name such as Europe/Paris") from error
        return value

    @property
    def database_path(self) -> Path:
        return self.data_dir / "backupmanager.db"

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"


def _env_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """Map BACKUPMANAGER_DATA_DIR, BACKUPMANAGER_PROGRAMS_YUNOHOST… onto the settings tree."""
    overrides: dict[str, Any] = {}
    sections: dict[str, type[BaseModel]] = {"programs": Programs, "features": Features}
    for field in Settings.model_fields:
        if field in sections:
            section_values: dict[str, Any] = {}
            for sub in sections[field].model_fields:
                key = f"{ENV_PREFIX}{field}_{sub}".upper()
                if key in env:
                    section_values[sub] = env[key]
            if section_values:
                overrides[field] = section_values
        else:
            key = f"{ENV_PREFIX}{field}".upper()
            if key in env:
                overrides[field] = env[key]
    return overrides


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _explain(error: ValidationError, source: str) -> SettingsError:
    lines = []
    for key, message in field_problems(error):
        if message.startswith("unknown field"):
            message = "unknown setting (check its spelling)"
        env_name = f"{ENV_PREFIX}{key.replace('.', '_')}".upper()
        lines.append(f"setting '{key}' ({env_name}): {message}")
    return SettingsError(f"Bad configuration in {source}:\n  " + "\n  ".join(lines))


def load_settings(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the TOML file (if any), apply environment overrides, validate everything at once."""
    env = os.environ if env is None else env
    if config_path is None and env.get(CONFIG_ENV):
        config_path = Path(env[CONFIG_ENV])
    values: dict[str, Any] = dict(defaults or {})
    source = "the environment"
    if config_path is not None:
        source = str(config_path)
        try:
            with config_path.open("rb") as handle:
                values = _merge(values, tomllib.load(handle))
        except FileNotFoundError as error:
            raise SettingsError(f"Configuration file {config_path} does not exist.") from error
        except tomllib.TOMLDecodeError as error:
            raise SettingsError(
                f"Configuration file {config_path} is not valid TOML: {error}"
            ) from error
    values = _merge(values, _env_overrides(env))
    try:
        return Settings.model_validate(values)
    except ValidationError as error:
        raise _explain(error, source) from None
