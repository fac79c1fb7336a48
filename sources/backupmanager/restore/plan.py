"""The restore plan: what a restore will create, overwrite and start, computed before anything changes."""

from __future__ import annotations

import grp
import pwd
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from backupmanager.admin_commands import ENABLE_HINT
from backupmanager.jobs.custom_dir_config import Hooks, RestoreSettings
from backupmanager.restore.refusals import CLI, files_exist, wording
from backupmanager.restore.safety import ArchiveScan, UnsafeArchive, declared_paths
from backupmanager.settings import Settings
from backupmanager.systemd import unit_name

# The steps of a complete restore, in the order they run (doc/custom_dir.md, "Restore").
STEP_ORDER = (
    "restore_pre",
    "system_user",
    "files",
    "permissions",
    "systemd_unit",
    "firewall",
    "post_restore",
)


@dataclass(frozen=True)
class RestoreOptions:
    target: str | None = None  # None: every path back to its origin
    overwrite: bool = False  # existing files at their origin may be replaced
    skip_commands: bool = False  # restore without running the archive's commands
    plan_only: bool = False  # compute and store the plan, change nothing
    database: str | None = None  # database archives only (issue 4)
    drill: bool = False  # a restore drill: throw-away database, compared then dropped

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RestoreOptions:
        known = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        return cls(**known)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RestorePlan:
    archive: str
    to_origin: bool
    target: str
    paths: list[dict[str, str]]
    files: dict[str, Any]
    steps: list[dict[str, Any]]
    commands: list[str] = field(default_factory=list)
    commands_blocked: str | None = None
    refusal: str | None = None  # why this restore would be refused with these options (CLI)
    refusal_reason: dict[str, Any] | None = None  # the same as data, for the other faces

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Manifest:
    """The archive's description of itself (backup_info.json "custom_dir"), validated."""

    paths: list[str]  # absolute
    source_path: str
    restore: RestoreSettings
    hooks: Hooks
    system_user: dict[str, Any] | None

    @classmethod
    def read(cls, backup_info: dict[str, Any]) -> Manifest:
        relative = declared_paths(backup_info)
        manifest = backup_info["custom_dir"]
        try:
            restore = RestoreSettings.model_validate(manifest.get("restore") or {})
            hooks = Hooks.model_validate(manifest.get("hooks") or {})
        except ValidationError as error:
            raise UnsafeArchive(f"backup_info.json has invalid restore settings: {error}") from None
        paths = ["/" + path for path in relative]
        source = str(manifest.get("source_path") or paths[0])
        if source not in paths:
            raise UnsafeArchive("backup_info.json: source_path is not one of the archive's paths")
        user = manifest.get("system_user")
        return cls(paths, source, restore, hooks, user if isinstance(user, dict) else None)

    def commands(self) -> list[str]:
        return [
            *self.hooks.restore_pre,
            *self.restore.post_restore_commands,
            *self.hooks.restore_post,
        ]


def _user_step(manifest: Manifest) -> dict[str, Any]:
    user = manifest.restore.system_user
    if user is None:
        return {"step": "system_user", "action": "none (no system user in the job)"}
    try:
        pwd.getpwnam(user.name)
    except KeyError:
        facts = manifest.system_user or {}
        uid = facts.get("uid")
        same = f" with uid {uid} if free" if isinstance(uid, int) else ""
        return {"step": "system_user", "action": f"create system user {user.name}{same}"}
    return {"step": "system_user", "action": f"keep the existing user {user.name}"}


def _unit_step(settings: Settings, manifest: Manifest) -> dict[str, Any]:
    service = manifest.restore.systemd_service
    if service is None:
        return {"step": "systemd_unit", "action": "none (no service in the job)"}
    unit = unit_name(service.name)
    destination = settings.systemd_unit_dir / unit
    verb = "replace" if destination.exists() else "install"
    return {
        "step": "systemd_unit",
        "action": f"{verb} {destination} from {service.service_file}; enable and start {unit}",
    }


def _permissions_step(manifest: Manifest) -> dict[str, Any]:
    permissions = manifest.restore.permissions
    if permissions is None or (permissions.owner is None and permissions.mode is None):
        return {"step": "permissions", "action": "keep owners and modes from the archive"}
    what = []
    if permissions.owner:
        scope = " (and everything inside)" if permissions.recursive_owner else ""
        what.append(f"owner {permissions.owner}{scope}")
    if permissions.mode:
        what.append(f"mode {permissions.mode}")
    return {"step": "permissions", "action": f"{', '.join(what)} on {manifest.source_path}"}


def _firewall_step(manifest: Manifest) -> dict[str, Any]:
    firewall = manifest.restore.firewall
    if firewall is None:
        return {"step": "firewall", "action": "none (no port in the job)"}
    action = f"open {firewall.protocol} port {firewall.port} (yunohost firewall allow)"
    return {"step": "firewall", "action": action}


def make_plan(
    settings: Settings, name: str, scan: ArchiveScan, options: RestoreOptions, *, face: str = CLI
) -> tuple[RestorePlan, Manifest]:
    manifest = Manifest.read(scan.backup_info)
    to_origin = options.target is None
    target = "/" if to_origin else str(options.target)
    paths = [
        {"origin": path, "restore_to": path if to_origin else str(Path(target) / path[1:])}
        for path in manifest.paths
    ]
    files = {
        "entries": scan.entries,
        "files": scan.files,
        "bytes": scan.bytes,
        "overwrite": scan.existing,
        "overwrite_examples": scan.existing_examples,
        "create": scan.entries - scan.existing,
    }
    files_step = {
        "step": "files",
        "action": f"restore {scan.entries} entries ({scan.bytes} bytes) to "
        + ("their origin" if to_origin else target)
        + (f", overwriting {scan.existing} existing files" if scan.existing else ""),
    }
    commands = manifest.commands() if to_origin else []
    plan = RestorePlan(name, to_origin, target, paths, files, [files_step], commands)
    if not to_origin:
        plan.steps.append(
            {"step": "system", "action": "skipped: a restore to another folder restores files only"}
        )
    else:
        run_them = "skip (--skip-commands)" if options.skip_commands else "run"
        if commands and not settings.features.hook_commands:
            plan.commands_blocked = ENABLE_HINT
        # The user comes first so that tar gives files their owner by name (doc/custom_dir.md).
        plan.steps = [
            *(
                [{"step": "restore_pre", "action": f"{run_them} {manifest.hooks.restore_pre}"}]
                if manifest.hooks.restore_pre
                else []
            ),
            _user_step(manifest),
            files_step,
            _permissions_step(manifest),
            _unit_step(settings, manifest),
            _firewall_step(manifest),
        ]
        post = [*manifest.restore.post_restore_commands, *manifest.hooks.restore_post]
        if post:
            plan.steps.append({"step": "post_restore", "action": f"{run_them} {post}"})
    plan.refusal = _refusal(plan, options, face)
    return plan, manifest


def _refusal(plan: RestorePlan, options: RestoreOptions, face: str) -> str | None:
    if options.database is not None:
        return "--database only applies to database archives; this is a custom_dir archive"
    # One rule at the origin and in another folder: nothing existing is replaced unasked.
    if plan.files["overwrite"] and not options.overwrite:
        plan.refusal_reason = files_exist(plan.files["overwrite"], plan.files["overwrite_examples"])
        return wording(plan.refusal_reason, face)
    if plan.commands_blocked and not options.skip_commands:
        return (
            f"the archive asks to run {len(plan.commands)} command(s) after restoring, but "
            f"{plan.commands_blocked}; or restore without them with --skip-commands"
        )
    return None


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def archive_target(options: RestoreOptions) -> Path:
    return Path(options.target) if options.target is not None else Path("/")
