"""ynh_app and ynh_system jobs: `yunohost backup create` (SPEC S-K1, S-K2; YUNOHOST.md §2.2, §2.5)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backupmanager import process, yunohost
from backupmanager.archive import read_info_beside
from backupmanager.errors import advice_for
from backupmanager.jobs import BackupContext, BackupResult, JobConfigError, JobFailed
from backupmanager.settings import Settings

APP_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
PART_PATTERN = re.compile(r"^[a-z0-9_]+$")


class YnhAppConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(min_length=1, max_length=64)
    core_only: bool = False

    @field_validator("app_id")
    @classmethod
    def _app_id(cls, value: str) -> str:
        if not APP_ID_PATTERN.match(value):
            raise ValueError(
                f"'{value}' is not a YunoHost app id (lowercase letters, digits, '_', '-')"
            )
        return value


class YnhSystemConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    parts: list[str] = Field(default_factory=list)

    @field_validator("parts")
    @classmethod
    def _parts(cls, value: list[str]) -> list[str]:
        for part in value:
            if not PART_PATTERN.match(part):
                raise ValueError(
                    f"'{part}' is not a system part name (like conf_ldap or data_home)"
                )
        return sorted(set(value))


def _run_create(
    context: BackupContext, *, apps: list[str] | None, system: list[str] | None
) -> BackupResult:
    settings = context.settings
    argv = yunohost.create_argv(
        settings.programs.yunohost,
        name=context.partial_name,
        apps=apps,
        system=system,
        lock_timeout=settings.yunohost_lock_timeout_seconds,
    )
    # BACKUP_CORE_ONLY must be exactly "1" (YUNOHOST.md §2.5); make sure an inherited one
    # never turns a full backup into a partial one.
    env: dict[str, str | None] = {"BACKUP_CORE_ONLY": "1" if context.core_only else None}
    if context.core_only:
        context.log("Core-only backup: BACKUP_CORE_ONLY=1 (big data folders are skipped).")
    context.set_phase("yunohost backup create")
    context.log("$ " + " ".join(argv))
    result = yunohost.run_write(
        argv,
        env=env,
        timeout=settings.run_timeout_seconds,
        log=context.log,
        on_line=lambda _stream, line: context.log(line),
    )
    if result.returncode != 0:
        detail = "\n".join(result.stderr_tail[-3:]) or f"exit code {result.returncode}"
        advice = advice_for("\n".join(result.stderr_tail + result.stdout_tail))
        raise JobFailed(
            f"yunohost backup create failed: {detail}" + (f"\n{advice}" if advice else "")
        )
    try:
        outcome = yunohost.read_create_answer(yunohost.parse_json_answer(result))
    except yunohost.YunohostError as error:
        raise JobFailed(str(error)) from None
    tar_path = settings.archives_dir / f"{context.partial_name}.tar"
    if not tar_path.exists():
        tar_path = settings.archives_dir / f"{context.partial_name}.tar.gz"
    info_path = settings.archives_dir / f"{context.partial_name}.info.json"
    if outcome.failed_items:
        raise JobFailed(
            "YunoHost finished but did not back up everything: "
            + "; ".join(outcome.failed_items)
            + ". The archive is incomplete and was not kept; see the log above."
        )
    if not tar_path.exists() or not info_path.exists():
        raise JobFailed(
            f"YunoHost reported success but {tar_path.name} or its info.json is missing in "
            f"{settings.archives_dir}: is archives_dir the folder YunoHost writes to?"
        )
    info = read_info_beside(settings.archives_dir, context.partial_name) or {}
    return BackupResult(
        tar_path=tar_path,
        info_json_path=info_path,
        yunohost_version=str(info.get("from_yunohost_version", "")),
    )


class YnhAppKind:
    type_name = "ynh_app"
    config_model: type[BaseModel] = YnhAppConfig

    def label(self, config: BaseModel) -> str:
        assert isinstance(config, YnhAppConfig)
        return config.app_id

    def check(self, config: BaseModel, settings: Settings) -> None:
        assert isinstance(config, YnhAppConfig)
        try:
            apps = {app.id: app for app in yunohost.list_apps(settings.programs.yunohost)}
        except (process.ProcessError, yunohost.YunohostError) as error:
            raise JobConfigError(f"could not ask YunoHost for its apps: {error}") from None
        if config.app_id not in apps:
            known = ", ".join(sorted(apps)) or "none"
            raise JobConfigError(
                f"app_id: '{config.app_id}' is not an installed app (installed: {known})"
            )
        if not apps[config.app_id].supports_backup_restore:
            raise JobConfigError(
                f"app_id: '{config.app_id}' has no backup/restore scripts, YunoHost cannot back it up"
            )

    def backup(self, config: BaseModel, context: BackupContext) -> BackupResult:
        assert isinstance(config, YnhAppConfig)
        context.core_only = context.core_only or config.core_only
        return _run_create(context, apps=[config.app_id], system=None)


class YnhSystemKind:
    type_name = "ynh_system"
    config_model: type[BaseModel] = YnhSystemConfig

    def label(self, config: BaseModel) -> str:
        return "system"

    def check(self, config: BaseModel, settings: Settings) -> None:
        assert isinstance(config, YnhSystemConfig)
        if not config.parts:
            return
        try:
            known = set(yunohost.list_backup_parts(settings.programs.yunohost))
        except (process.ProcessError, yunohost.YunohostError) as error:
            raise JobConfigError(f"could not ask YunoHost for its system parts: {error}") from None
        unknown = sorted(set(config.parts) - known)
        if unknown:
            raise JobConfigError(
                f"parts: unknown system part(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )

    def backup(self, config: BaseModel, context: BackupContext) -> BackupResult:
        assert isinstance(config, YnhSystemConfig)
        return _run_create(context, apps=None, system=list(config.parts))
