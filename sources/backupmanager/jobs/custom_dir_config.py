"""The configuration of a custom_dir job (SPEC §4, S-FB1, S-FB7), validated by one schema."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backupmanager.systemd import unit_name
from backupmanager.tree import ExcludeError, ExcludePattern

USER_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
MODE_PATTERN = re.compile(r"^[0-7]{3,4}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def clean_absolute_path(value: str) -> str:
    """An absolute, normalized path that is not `/` and has no `..`."""
    if not value.startswith("/"):
        raise ValueError(f"'{value}' must be an absolute path, e.g. /opt/hermes-agent")
    if ".." in PurePosixPath(value).parts:
        raise ValueError(f"'{value}': '..' is not allowed in a path")
    path = os.path.normpath(value)
    if path in ("/", "//"):
        raise ValueError("backing up / as a whole is not a custom_dir job: name the folders")
    if "\n" in path or "\0" in path:
        raise ValueError("a path cannot contain a line break")
    return path


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SystemUser(_Strict):
    name: str
    group: str | None = None  # default: a group with the user's name
    home: str | None = None
    shell: str = "/usr/sbin/nologin"

    @field_validator("name", "group")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not USER_NAME_PATTERN.match(value):
            raise ValueError(f"'{value}' is not a system user or group name (like hermes-agent)")
        return value

    @field_validator("home", "shell")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else clean_absolute_path(value)


class SystemdService(_Strict):
    name: str
    service_file: str  # a unit file inside the backed-up folders (or added to the archive)

    @field_validator("name")
    @classmethod
    def _unit(cls, value: str) -> str:
        unit_name(value)
        return value

    @field_validator("service_file")
    @classmethod
    def _file(cls, value: str) -> str:
        return clean_absolute_path(value)


class Permissions(_Strict):
    owner: str | None = None  # "user:group" or "user"
    mode: str | None = None  # octal, applied to each restored folder itself (not recursively)
    recursive_owner: bool = False  # also chown everything below (symlinks themselves, not targets)

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is None:
            return None
        for part in value.split(":", 1):
            if not USER_NAME_PATTERN.match(part):
                raise ValueError(f"'{value}' must be user:group, e.g. hermes-agent:hermes-agent")
        return value

    @field_validator("mode")
    @classmethod
    def _mode(cls, value: str | None) -> str | None:
        if value is not None and not MODE_PATTERN.match(value):
            raise ValueError(f"'{value}' must be an octal mode such as 750")
        return value


class Firewall(_Strict):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["TCP", "UDP", "Both"] = "TCP"


class RestoreSettings(_Strict):
    system_user: SystemUser | None = None
    systemd_service: SystemdService | None = None
    permissions: Permissions | None = None
    firewall: Firewall | None = None
    post_restore_commands: list[str] = Field(default_factory=list)


class Hooks(_Strict):
    """S-FB7: commands around backup and restore (off unless [features] hook_commands)."""

    backup_pre: list[str] = Field(default_factory=list)
    backup_post: list[str] = Field(default_factory=list)
    restore_pre: list[str] = Field(default_factory=list)
    restore_post: list[str] = Field(default_factory=list)


class CustomDirConfig(_Strict):
    source_path: str
    extra_paths: list[str] = Field(default_factory=list)  # more folders or files (S-FB1)
    excludes: list[str] = Field(default_factory=list)
    stop_services: list[str] = Field(default_factory=list)  # stopped during the backup (S-FB8)
    label: str | None = None  # the {app} of the archive name; default: the folder's name
    hooks: Hooks = Field(default_factory=Hooks)
    restore: RestoreSettings = Field(default_factory=RestoreSettings)

    @field_validator("source_path")
    @classmethod
    def _source(cls, value: str) -> str:
        return clean_absolute_path(value)

    @field_validator("extra_paths")
    @classmethod
    def _extra(cls, value: list[str]) -> list[str]:
        return [clean_absolute_path(path) for path in value]

    @field_validator("excludes")
    @classmethod
    def _excludes(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                ExcludePattern.parse(pattern)
            except ExcludeError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("stop_services")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        for name in value:
            unit_name(name)
        return value

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is not None and not LABEL_PATTERN.match(value):
            raise ValueError("use up to 40 letters, digits, '-' or '_'")
        return value

    def paths(self) -> list[str]:
        """Every declared path, the unit file added when it lies outside them; no overlaps."""
        paths = [self.source_path, *self.extra_paths]
        service = self.restore.systemd_service
        if service is not None:
            paths.append(service.service_file)
        kept: list[str] = []
        for path in paths:
            inside = [
                other
                for other in kept
                if PurePosixPath(path) == PurePosixPath(other)
                or PurePosixPath(other) in PurePosixPath(path).parents
            ]
            if not inside:
                kept = [p for p in kept if PurePosixPath(path) not in PurePosixPath(p).parents]
                kept.append(path)
        return kept

    def commands(self) -> list[str]:
        hooks = self.hooks
        return [
            *hooks.backup_pre,
            *hooks.backup_post,
            *hooks.restore_pre,
            *hooks.restore_post,
            *self.restore.post_restore_commands,
        ]
