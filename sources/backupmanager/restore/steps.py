"""The steps of a complete custom_dir restore (SPEC §7): user, files, permissions, unit, firewall, commands."""

from __future__ import annotations

import grp
import os
import pwd
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backupmanager import process, systemd, yunohost
from backupmanager.admin_commands import run_commands
from backupmanager.archive_writer import part_directory
from backupmanager.jobs.custom_dir_hook import CUSTOM_PART
from backupmanager.process import Argv
from backupmanager.restore.plan import Manifest, RestoreOptions, group_exists, user_exists
from backupmanager.settings import Settings

CHECKPOINT_RECORDS = 1000  # tar reads 10 KiB records: a progress line about every 10 MB
RECORD_BYTES = 10240
CHECKPOINT = re.compile(r"bm-checkpoint (\d+)")


class StepFailed(Exception):
    """A restore step failed; the message says what went wrong in that step."""


@dataclass
class StepContext:
    settings: Settings
    archive_path: Path
    manifest: Manifest
    options: RestoreOptions
    log: Callable[[str], None]
    progress: Callable[[int, int | None], None]
    total_bytes: int

    @property
    def target(self) -> Path:
        return Path(self.options.target) if self.options.target is not None else Path("/")

    @property
    def env(self) -> dict[str, str]:
        return {
            "BACKUPMANAGER_SOURCE_PATH": self.manifest.source_path,
            "BACKUPMANAGER_ARCHIVE": str(self.archive_path),
        }


def tar_extract_argv(tar: Path, archive: Path, target: Path, members: list[str]) -> Argv:
    """GNU tar putting `data/custom/<path>` back at `<target>/<path>`, everything preserved."""
    return (
        str(tar),
        "--extract",
        f"--file={archive}",
        f"--directory={target}",
        "--xattrs",
        "--xattrs-include=*",
        "--acls",
        "--same-owner",
        "--same-permissions",
        "--strip-components=2",
        f"--checkpoint={CHECKPOINT_RECORDS}",
        "--checkpoint-action=echo=bm-checkpoint %u",
        "--",
        *members,
    )


def _run(argv: Argv, context: StepContext) -> None:
    context.log("$ " + " ".join(argv))
    result = process.run(
        argv, timeout=3600, on_line=lambda _stream, line: context.log(line), check=False
    )
    if result.returncode != 0:
        detail = "; ".join(result.stderr_tail[-3:]) or f"exit code {result.returncode}"
        raise StepFailed(f"{Path(argv[0]).name} failed: {detail}")


def _free(check: Callable[[int], object], number: object) -> bool:
    if not isinstance(number, int):
        return False
    try:
        check(number)
    except KeyError:
        return True
    return False


def system_user(context: StepContext) -> str:
    user = context.manifest.restore.system_user
    if user is None:
        return "no system user to create"
    if user_exists(user.name):
        return f"user {user.name} already exists"
    facts = context.manifest.system_user or {}
    programs = context.settings.programs
    group = user.group or str(facts.get("group") or user.name)
    if not group_exists(group):
        argv = [str(programs.groupadd), "--system"]
        if _free(grp.getgrgid, facts.get("gid")):
            argv += ["--gid", str(facts["gid"])]
        _run((*argv, group), context)
    argv = [str(programs.useradd), "--system", "--gid", group, "--no-create-home"]
    argv += ["--shell", user.shell, "--home-dir", user.home or context.manifest.source_path]
    if _free(pwd.getpwuid, facts.get("uid")):
        argv += ["--uid", str(facts["uid"])]
    _run((*argv, user.name), context)
    return f"created system user {user.name} (uid {pwd.getpwnam(user.name).pw_uid})"


def files(context: StepContext) -> str:
    settings, target = context.settings, context.target
    target.mkdir(parents=True, exist_ok=True)
    part_dir = part_directory(CUSTOM_PART)
    members = [f"{part_dir}{path}" for path in context.manifest.paths]
    argv = tar_extract_argv(settings.programs.tar, context.archive_path, target, members)
    context.log("$ " + " ".join(argv))
    last = [0.0]

    def on_line(_stream: str, line: str) -> None:
        match = CHECKPOINT.search(line)
        if match is None:
            context.log(f"tar: {line}")
        elif time.monotonic() - last[0] >= 1.0:
            last[0] = time.monotonic()
            done = int(match[1]) * CHECKPOINT_RECORDS * RECORD_BYTES
            context.progress(min(done, context.total_bytes), context.total_bytes)

    result = process.run(argv, timeout=settings.run_timeout_seconds, on_line=on_line, check=False)
    if result.returncode != 0:
        detail = "; ".join(line for line in result.stderr_tail if "bm-checkpoint" not in line)
        raise StepFailed(f"tar could not restore the files: {detail[-600:]}")
    context.progress(context.total_bytes, context.total_bytes)
    where = "their origin" if context.options.target is None else str(target)
    return f"files restored to {where}"


def _owner_ids(owner: str) -> tuple[int, int]:
    user, _, group = owner.partition(":")
    try:
        entry = pwd.getpwnam(user)
        gid = grp.getgrnam(group).gr_gid if group else entry.pw_gid
    except KeyError as error:
        raise StepFailed(f"owner {owner}: {error.args[0]}") from None
    return entry.pw_uid, gid


def permissions(context: StepContext) -> str:
    wanted = context.manifest.restore.permissions
    if wanted is None or (wanted.owner is None and wanted.mode is None):
        return "owners and modes kept as archived"
    top = context.manifest.source_path
    done = []
    if wanted.owner:
        uid, gid = _owner_ids(wanted.owner)
        os.lchown(top, uid, gid)
        if wanted.recursive_owner:
            for folder, subfolders, names in os.walk(top):
                for name in [*subfolders, *names]:
                    os.lchown(Path(folder) / name, uid, gid)
        done.append(f"owner {wanted.owner}")
    if wanted.mode:
        Path(top).chmod(int(wanted.mode, 8), follow_symlinks=False)
        done.append(f"mode {wanted.mode}")
    return f"{', '.join(done)} applied to {top}"


def systemd_unit(context: StepContext) -> str:
    service = context.manifest.restore.systemd_service
    if service is None:
        return "no systemd service"
    unit_file = Path(service.service_file)
    if not unit_file.is_file():
        raise StepFailed(f"the unit file {unit_file} is not among the restored files")
    try:
        destination = systemd.install_unit(context.settings, service.name, unit_file, context.log)
    except systemd.ServiceError as error:
        raise StepFailed(str(error)) from None
    return f"{destination.name} installed, enabled and started"


def firewall(context: StepContext) -> str:
    wanted = context.manifest.restore.firewall
    if wanted is None:
        return "no firewall port"
    argv = yunohost.firewall_allow_argv(
        context.settings.programs.yunohost, wanted.protocol, wanted.port
    )
    context.log("$ " + " ".join(argv))
    result = yunohost.run_write(
        argv,
        env={},
        timeout=context.settings.yunohost_lock_timeout_seconds + 60,
        log=context.log,
        on_line=lambda _stream, line: context.log(line),
    )
    if result.returncode != 0:
        raise StepFailed(f"yunohost firewall allow failed: {'; '.join(result.stderr_tail[-3:])}")
    return f"{wanted.protocol} port {wanted.port} open"


def restore_pre(context: StepContext) -> str:
    return _commands(context, context.manifest.hooks.restore_pre, "restore_pre")


def post_restore(context: StepContext) -> str:
    restore = context.manifest.restore
    done = _commands(context, restore.post_restore_commands, "post_restore_commands")
    return done + "; " + _commands(context, context.manifest.hooks.restore_post, "restore_post")


def _commands(context: StepContext, commands: list[str], hook: str) -> str:
    if not commands:
        return f"no {hook}"
    if context.options.skip_commands:
        context.log(f"{hook}: {len(commands)} command(s) NOT run (--skip-commands).")
        return f"{hook} skipped"
    run_commands(context.settings, commands, hook=hook, log=context.log, env=context.env)
    return f"{len(commands)} {hook} command(s) run"


STEPS: dict[str, Callable[[StepContext], str]] = {
    "restore_pre": restore_pre,
    "system_user": system_user,
    "files": files,
    "permissions": permissions,
    "systemd_unit": systemd_unit,
    "firewall": firewall,
    "post_restore": post_restore,
}
