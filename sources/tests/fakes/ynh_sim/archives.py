"""`backup list`, `backup info` and `backup delete` (YUNOHOST.md §1.2, §1.7, §1.11, §2.3)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import tarfile
import traceback
from datetime import UTC, datetime
from typing import Any

from .context import Context
from .hooks import run_hook
from .messages import YunohostError, YunohostValidationError, m18n
from .util import human_size, tar_read_mode


def _strip_extension(filename: str) -> str:
    if filename.endswith(".tar.gz"):
        return filename[: -len(".tar.gz")]
    return filename[: -len(".tar")]


def archive_names(ctx: Context) -> list[str]:
    """§1.2: glob *.tar.gz and *.tar, realpath, drop broken links, dedupe, sort by ctime.

    The listed name is the basename of the REAL path, minus its extension.
    """
    folder = str(ctx.state.archives_dir)
    found = glob.glob(f"{glob.escape(folder)}/*.tar.gz") + glob.glob(f"{glob.escape(folder)}/*.tar")
    real = {os.path.realpath(path) for path in found}
    real = {path for path in real if os.path.exists(path)}
    ordered = sorted(real, key=os.path.getctime)
    return [_strip_extension(os.path.basename(path)) for path in ordered]


def backup_list(ctx: Context, *, with_info: bool = False, human_readable: bool = False) -> Any:
    """`{"archives": [names]}`, or `{"archives": {name: info}}` with --with-info.

    With --with-info an archive whose info fails becomes a WARNING and is left out.
    """
    names = archive_names(ctx)
    if not with_info:
        return {"archives": names}
    infos: dict[str, Any] = {}
    for name in names:
        try:
            infos[name] = backup_info(ctx, name, human_readable=human_readable)
        except YunohostError as error:
            ctx.console.warning(error.message)
        except Exception:  # any crash of the real backup_info becomes a warning too
            trace = "\n" + traceback.format_exc()
            ctx.console.warning(f"Could not check infos for archive {name}: {trace}")
    return {"archives": infos}


def _locate_archive(ctx: Context, name: str) -> tuple[str, str]:
    """(stripped name, archive path): archives/<name>.tar, .tar.gz, else `name` as a path."""
    original = name
    name = _strip_extension(name) if name.endswith((".tar", ".tar.gz")) else name
    folder = str(ctx.state.archives_dir)
    archive_file = f"{folder}/{name}.tar"
    if not os.path.lexists(archive_file):
        archive_file += ".gz"
        if not os.path.lexists(archive_file):
            archive_file = original
            if not os.path.lexists(archive_file):
                raise YunohostValidationError("backup_archive_name_unknown", name=name)
    if os.path.islink(archive_file):
        archive_file = os.path.realpath(archive_file)
        if not os.path.exists(archive_file):
            raise YunohostValidationError("backup_archive_broken_link", path=archive_file)
    return name, archive_file


def _cache_info_json(archive_file: str, info_file: str) -> None:
    """§1.7 step 4: extract info.json (or ./info.json) and move it beside the archive."""
    # A tar that cannot even be opened crashes the real command (uncaught exception)
    info_dir = info_file + ".d"
    with tarfile.open(archive_file, tar_read_mode(archive_file)) as tar:
        try:
            names = tar.getnames()
        except (OSError, EOFError, tarfile.ReadError) as error:
            raise YunohostError(
                "backup_archive_corrupted", archive=archive_file, error=str(error)
            ) from error
        member = next((n for n in ("info.json", "./info.json") if n in names), None)
        if member is None:
            raise YunohostError("backup_archive_cant_retrieve_info_json", archive=archive_file)
        extract_kwargs: dict[str, Any] = {}
        if hasattr(tarfile, "fully_trusted_filter"):
            extract_kwargs["filter"] = "fully_trusted"
        tar.extract(member, path=info_dir, **extract_kwargs)
        shutil.move(os.path.join(info_dir, "info.json"), info_file)
    os.rmdir(info_dir)


def _member_sizes(archive_file: str) -> int:
    with tarfile.open(archive_file, tar_read_mode(archive_file)) as tar:
        return sum(member.size for member in tar.getmembers())


def backup_info(
    ctx: Context, name: str, *, with_details: bool = False, human_readable: bool = False
) -> dict[str, Any]:
    """§1.7: path (real), created_at (UTC datetime), description, size [+ details]."""
    name, archive_file = _locate_archive(ctx, name)
    info_file = f"{ctx.state.archives_dir}/{name}.info.json"
    if not os.path.exists(info_file):
        _cache_info_json(archive_file, info_file)
    try:
        with open(info_file, encoding="utf-8") as handle:
            info = json.load(handle)
    except Exception as error:
        raise YunohostError(
            "backup_archive_cant_retrieve_info_json", archive=archive_file
        ) from error

    size: Any = info.get("size", 0)
    if not size:
        size = _member_sizes(archive_file)  # slow path of the real code (size missing or 0)
    if human_readable:
        size = human_size(size)
    result: dict[str, Any] = {
        "path": archive_file,
        "created_at": datetime.fromtimestamp(info["created_at"], UTC),
        "description": info["description"],
        "size": size,
    }
    if with_details:
        _add_details(info, result, human_readable=human_readable)
    return result


def _add_details(info: dict[str, Any], result: dict[str, Any], *, human_readable: bool) -> None:
    """apps/system with per-target sizes, only when size_details exists (§1.7, §7.2)."""
    system_key = "hooks" if "hooks" in info else "system"
    if "size_details" in info:
        for category in ("apps", "system"):
            for target, value in list(info[category].items()):
                entry = {"paths": value} if category == "system" else value
                info[category][target] = entry
                if target in info["size_details"][category]:
                    size = info["size_details"][category][target]
                    entry["size"] = human_size(size) if human_readable else size
                else:
                    entry["size"] = "?" if human_readable else -1
    result["apps"] = info["apps"]
    result["system"] = info[system_key]
    result["from_yunohost_version"] = info.get("from_yunohost_version")


def _run_delete_hooks(ctx: Context, action: str, name: str) -> None:
    """pre_backup_delete / post_backup_delete hooks from hooks.d/<action>/ (§1.11, §2.6)."""
    folder = ctx.state.hooks_d / action
    for hook in sorted(folder.iterdir()) if folder.is_dir() else []:
        if hook.is_file() and not hook.name.startswith("."):
            run_hook(ctx.state, ctx.console, hook, [name], {}, hook.parent)


def backup_delete(ctx: Context, name: str) -> None:
    """§1.11: remove <name>.tar[.gz], <name>.info.json and a symlinked archive's target."""
    if name not in archive_names(ctx):
        raise YunohostValidationError("backup_archive_name_unknown", name=name)
    _run_delete_hooks(ctx, "pre_backup_delete", name)
    folder = str(ctx.state.archives_dir)
    archive_file = f"{folder}/{name}.tar"
    if not os.path.exists(archive_file) and os.path.exists(archive_file + ".gz"):
        archive_file += ".gz"
    to_delete = [archive_file, f"{folder}/{name}.info.json"]
    if os.path.islink(archive_file):
        to_delete.append(os.path.realpath(archive_file))
    for path in to_delete:
        if not os.path.exists(path):
            continue
        try:
            os.remove(path)
        except OSError:
            ctx.console.warning(m18n("backup_delete_error", path=path))
    _run_delete_hooks(ctx, "post_backup_delete", name)
    ctx.console.success(m18n("backup_deleted", name=name))
