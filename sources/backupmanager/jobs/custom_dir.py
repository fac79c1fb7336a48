"""custom_dir jobs: any folders of the server in one YunoHost-compatible archive (SPEC S-K3, §4)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from backupmanager import process, yunohost
from backupmanager.admin_commands import (
    AdminCommandFailed,
    CommandsDisabled,
    require_enabled,
    run_commands,
)
from backupmanager.archive_writer import (
    CUSTOM_HOOKS_DIR,
    ArchiveWriter,
    WrittenArchive,
    backup_csv,
    part_directory,
    restore_hook_name,
    yunohost_info,
)
from backupmanager.errors import advice_for
from backupmanager.jobs import BackupContext, BackupResult, JobConfigError, JobFailed
from backupmanager.jobs.custom_dir_config import CustomDirConfig
from backupmanager.jobs.custom_dir_hook import CUSTOM_PART, HOOK_PRIORITY, RESTORE_HOOK
from backupmanager.process import Argv
from backupmanager.settings import Settings
from backupmanager.systemd import ServiceError, start_again, stop_services
from backupmanager.tree import TreeSummary, TreeWalker, parse_excludes

MANIFEST_FORMAT = 1
# 64 KiB records: big writes, at most 64 KiB of padding at the end.
TAR_BLOCKING_FACTOR = 128
# Less free space than one tar record (blocking factor × 512 bytes): tar's short write was ENOSPC.
FULL_DISK_BYTES = TAR_BLOCKING_FACTOR * 512


def tar_create_argv(tar: Path, list_file: Path, part_dir: str) -> Argv:
    """GNU tar writing the listed entries to its stdout (our archive file) under `<part_dir>/`.

    PAX format (xattrs, ACLs, long names, big files), sparse files detected, hard links kept,
    owners by name and number. The transform renames members and hard-link targets, not
    symlink targets (`S`). Names come from our walk (`--no-recursion`), NUL-separated, never
    read as options.
    """
    return (
        str(tar),
        "--create",
        "--file=-",
        "--directory=/",
        "--format=posix",
        "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
        "--xattrs",
        "--acls",
        "--sparse",
        f"--blocking-factor={TAR_BLOCKING_FACTOR}",
        f"--transform=flags=rhS;s,^,{part_dir}/,",
        "--no-recursion",
        "--null",
        "--verbatim-files-from",
        f"--files-from={list_file}",
    )


def _system_user_facts(name: str) -> dict[str, Any] | None:
    """uid/gid of the job's system user, so a restore can recreate it with the same numbers."""
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        return None
    try:
        group = grp.getgrgid(user.pw_gid).gr_name
    except KeyError:
        group = None
    return {"name": name, "uid": user.pw_uid, "gid": user.pw_gid, "group": group}


class CustomDirKind:
    type_name = "custom_dir"
    config_model: type[BaseModel] = CustomDirConfig

    def label(self, config: BaseModel) -> str:
        assert isinstance(config, CustomDirConfig)
        return config.label or Path(config.source_path).name

    def check(self, config: BaseModel, settings: Settings) -> None:
        assert isinstance(config, CustomDirConfig)
        try:
            require_enabled(settings, config.commands(), what="hooks / post_restore_commands")
        except CommandsDisabled as error:
            raise JobConfigError(str(error)) from None
        for path in [config.source_path, *config.extra_paths]:
            if not os.path.lexists(path):
                raise JobConfigError(f"'{path}' does not exist on this server")
            if Path(path).is_symlink():
                raise JobConfigError(f"'{path}' is a symbolic link: give the real folder")

    def backup(self, config: BaseModel, context: BackupContext) -> BackupResult:
        assert isinstance(config, CustomDirConfig)
        settings = context.settings
        try:
            require_enabled(settings, config.commands(), what="this job has commands")
        except CommandsDisabled as error:
            raise JobFailed(str(error)) from None
        try:
            version = yunohost.installed_version(
                settings.programs.yunohost, settings.yunohost_changelog
            )
        except (process.ProcessError, yunohost.YunohostError) as error:
            raise JobFailed(f"could not ask YunoHost for its version: {error}") from None
        missing = [path for path in config.paths() if not os.path.lexists(path)]
        if missing:
            raise JobFailed(f"{', '.join(missing)} does not exist: nothing to back up there")
        env = {"BACKUPMANAGER_SOURCE_PATH": config.source_path}
        self._hook(settings, config.hooks.backup_pre, "backup_pre", context, env)
        try:
            written = self._archive_with_services_stopped(config, context, version)
        except BaseException:
            if config.hooks.backup_post:
                context.log("The backup failed; running backup_post anyway.")
                try:
                    self._hook(settings, config.hooks.backup_post, "backup_post", context, env)
                except JobFailed as error:
                    context.log(str(error))
            raise
        self._hook(settings, config.hooks.backup_post, "backup_post", context, env)
        return BackupResult(
            tar_path=written.tar_path,
            info_json_path=written.info_json_path,
            yunohost_version=version,
            sha256=written.sha256,
        )

    @staticmethod
    def _hook(
        settings: Settings,
        commands: list[str],
        hook: str,
        context: BackupContext,
        env: dict[str, str],
    ) -> None:
        if not commands:
            return
        context.set_phase(hook)
        try:
            run_commands(settings, commands, hook=hook, log=context.log, env=env)
        except (AdminCommandFailed, CommandsDisabled, process.ProcessError) as error:
            raise JobFailed(str(error)) from None

    def _archive_with_services_stopped(
        self, config: CustomDirConfig, context: BackupContext, version: str
    ) -> WrittenArchive:
        """Services are always started again, in reverse order, even when the backup fails."""
        settings = context.settings
        stopped: list[str] = []
        try:
            if config.stop_services:
                context.set_phase("stopping services")
            stopped = stop_services(
                settings, config.stop_services, context.log, ledger_key=context.partial_name
            )
            written = _write_archive(config, context, version)
        except BaseException as error:
            if isinstance(error, ServiceError):
                stopped = list(getattr(error, "stopped", stopped))
            if stopped:
                context.set_phase("starting services again")
                context.log("The backup failed: starting the stopped services again.")
                start_again(settings, stopped, context.log, ledger_key=context.partial_name)
            if isinstance(error, ServiceError):
                raise JobFailed(str(error)) from None
            raise
        if stopped:
            context.set_phase("starting services again")
            errors = start_again(settings, stopped, context.log, ledger_key=context.partial_name)
            if errors:
                raise JobFailed("the archive is complete but " + "; ".join(errors))
        return written


def _log_summary(context: BackupContext, summary: TreeSummary) -> None:
    context.log(
        f"To back up: {summary.entries} entries ({summary.files} files, {summary.bytes} bytes)."
    )
    for pattern, count in sorted(summary.excluded.items()):
        context.log(f"Excluded by '{pattern}': {count} entries (with everything inside them).")
    for path in summary.skipped_special[:20]:
        context.log(f"Skipped {path}: sockets and device nodes are not backed up.")


def _manifest(config: CustomDirConfig, paths: list[str], summary: TreeSummary) -> dict[str, Any]:
    """What our restore needs on a fresh server, embedded in backup_info.json."""
    user = config.restore.system_user
    return {
        "format": MANIFEST_FORMAT,
        "part": CUSTOM_PART,
        "source_path": config.source_path,
        "paths": paths,
        "excludes": config.excludes,
        "entries": summary.entries,
        "bytes": summary.bytes,
        "restore": config.restore.model_dump(),
        "hooks": {
            "restore_pre": config.hooks.restore_pre,
            "restore_post": config.hooks.restore_post,
        },
        "system_user": _system_user_facts(user.name) if user is not None else None,
    }


def _write_archive(config: CustomDirConfig, context: BackupContext, version: str) -> WrittenArchive:
    settings = context.settings
    paths = config.paths()
    part_dir = part_directory(CUSTOM_PART)
    hook_name = restore_hook_name(CUSTOM_PART, HOOK_PRIORITY)
    settings.staging_dir.mkdir(parents=True, exist_ok=True)
    list_path = settings.staging_dir / f"{context.partial_name}.files"
    context.set_phase("listing files")
    walker = TreeWalker(
        parse_excludes(config.excludes),
        never=[str(settings.archives_dir), str(settings.data_dir)],
    )
    try:
        with list_path.open("wb") as out:
            summary = walker.write_list(paths, out)
        _log_summary(context, summary)
        context.set_phase("writing the archive")
        with ArchiveWriter(
            settings.archives_dir,
            context.partial_name,
            progress=lambda done: context.report_progress(done, summary.bytes),
        ) as writer:
            now = int(time.time())
            writer.add_info_json(
                yunohost_info(
                    created_at=now,
                    size=summary.bytes,
                    system_parts={
                        CUSTOM_PART: (f"{CUSTOM_HOOKS_DIR}/backup/{hook_name}", summary.bytes)
                    },
                    yunohost_version=version,
                ),
                mtime=now,
            )
            rows = [(path, f"{part_dir}{path}") for path in paths]
            rows.append((f"{CUSTOM_HOOKS_DIR}/restore/{hook_name}", f"hooks/restore/{hook_name}"))
            writer.add_bytes("backup.csv", backup_csv(rows), mtime=now)
            info = {**context.backup_info, "yunohost_version": version}
            info["custom_dir"] = _manifest(config, paths, summary)
            writer.add_backup_info(info, mtime=now)
            writer.add_bytes(
                f"hooks/restore/{hook_name}", RESTORE_HOOK.encode(), mode=0o755, mtime=now
            )
            _stream_tar(context, writer, list_path, part_dir)
            written = writer.finish()
    finally:
        list_path.unlink(missing_ok=True)
    context.log(f"Archive written: {written.size_bytes} bytes, SHA256 computed while writing.")
    return written


def _stream_tar(
    context: BackupContext, writer: ArchiveWriter, list_path: Path, part_dir: str
) -> None:
    argv = tar_create_argv(context.settings.programs.tar, list_path, part_dir)
    context.log("$ " + " ".join(argv))
    # tar writes straight into our archive file; the writer hashes the bytes behind it.
    result = writer.append_output_of(
        lambda fd: process.write_into(
            argv,
            stdout_fd=fd,
            on_line=lambda _stream, line: context.log(f"tar: {line}"),
            on_tick=writer.report_progress,
            timeout=context.settings.run_timeout_seconds,
        )
    )
    if result.returncode == 1:
        # GNU tar: "some files differ" — a file changed while it was read. The archive is
        # whole, but that file's copy may be inconsistent: say so loudly, keep the archive.
        context.log(
            "WARNING: some files changed while they were read (see tar's lines above); "
            "their copy may be inconsistent. Stop the service during the backup "
            "(stop_services) to get a consistent copy."
        )
    elif result.returncode != 0:
        detail = "\n".join(result.stderr_tail[-3:]) or f"exit code {result.returncode}"
        if _disk_filled(result, writer.tar_path.parent):
            detail = f"No space left on device in {writer.tar_path.parent}\n{detail}"
        advice = advice_for(detail)
        raise JobFailed(f"tar failed: {detail}" + (f"\n{advice}" if advice else ""))
    writer.mark_ended()


def _disk_filled(result: process.ProcessResult, folder: Path) -> bool:
    """tar only says "Wrote only N of M bytes" when the archive's disk is full: tell it plainly."""
    short_write = any("Wrote only" in line for line in result.stderr_tail)
    return short_write and shutil.disk_usage(folder).free < FULL_DISK_BYTES
