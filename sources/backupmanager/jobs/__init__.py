"""Job kinds: each validates its own configuration and produces one archive (one module per kind)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from backupmanager.settings import Settings
from backupmanager.validation import describe


class JobFailed(Exception):
    """A backup did not produce a good archive; the message is shown to the admin as is."""


class JobConfigError(ValueError):
    """A job's configuration is wrong; the message names the field and says what to do."""


@dataclass
class BackupContext:
    """What a job kind gets to do its work: settings, a log, a phase indicator, a partial name."""

    settings: Settings
    partial_name: str
    log: Callable[[str], None]
    set_phase: Callable[[str], None]
    # The backup_info.json of SPEC §3, filled by the runner; a kind that writes its own archive
    # embeds it (after setting "yunohost_version"), YunoHost-made archives get it appended.
    backup_info: dict[str, Any] = field(default_factory=dict)
    core_only: bool = False
    # Report bytes written so far (and the expected total, when known) for the progress bar;
    # each call is a database write: call it about once a second, not per block.
    report_progress: Callable[[int, int | None], None] = lambda _done, _total: None


@dataclass
class BackupResult:
    """A complete archive under its partial name, waiting to be sealed and named."""

    tar_path: Path
    info_json_path: Path
    yunohost_version: str
    warnings: list[str] = field(default_factory=list)
    # Set by kinds that write the archive themselves, hashing while writing (DESIGN §4):
    # the runner then trusts it instead of sealing (verify + append + hash) the tar.
    sha256: str | None = None


class JobKind(Protocol):
    type_name: str
    config_model: type[BaseModel]

    def label(self, config: BaseModel) -> str:
        """The `{app}` part of the archive name (SPEC §3)."""
        ...

    def check(self, config: BaseModel, settings: Settings) -> None:
        """Checks against the server (the app exists…); raises JobConfigError."""
        ...

    def backup(self, config: BaseModel, context: BackupContext) -> BackupResult: ...


def parse_config(kind: JobKind, raw: dict[str, Any]) -> BaseModel:
    try:
        return kind.config_model.model_validate(raw)
    except ValidationError as error:
        raise JobConfigError(describe(error, default_field="config")) from None


def job_kinds() -> dict[str, JobKind]:
    from backupmanager.jobs.custom_dir import CustomDirKind
    from backupmanager.jobs.db_dump import MysqlKind, PostgresqlKind
    from backupmanager.jobs.ynh_backup import YnhAppKind, YnhSystemKind

    kinds: list[JobKind] = [YnhAppKind(), YnhSystemKind(), CustomDirKind()]
    kinds += [MysqlKind(), PostgresqlKind()]
    return {kind.type_name: kind for kind in kinds}


def get_kind(type_name: str) -> JobKind:
    kinds = job_kinds()
    if type_name not in kinds:
        raise JobConfigError(
            f"unknown job type '{type_name}': choose one of {', '.join(sorted(kinds))}"
        )
    return kinds[type_name]
