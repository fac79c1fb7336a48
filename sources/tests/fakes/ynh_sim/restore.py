"""`yunohost backup restore` (YUNOHOST.md §1.7, §1.8, §2.3, §7)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tarfile
from pathlib import Path
from typing import Any

from . import apps as sim_apps
from .archives import backup_info
from .context import Context
from .hooks import run_hook, system_restore_hooks
from .messages import YunohostError, YunohostValidationError, m18n
from .targets import Targets
from .util import tar_read_mode, version_tuple

MB = 1024 * 1024
APP_MARGIN = 100 * MB
POSTINSTALL_ESTIMATE = 5 * MB


def _extract_kwargs() -> dict[str, Any]:
    # YunoHost (Python 3.11, no filter) trusts members fully; members escaping the folder are
    # stopped beforehand by _safe_members.
    return {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


class Restore:
    """One restore: validated info, targets, the extracted work dir (§1.7 RestoreManager)."""

    def __init__(self, ctx: Context, name: str) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.console = ctx.console
        self.name = name
        self.info = backup_info(ctx, name, with_details=True)
        self._check_version(self.info.get("from_yunohost_version"))
        self.archive_path: str = self.info["path"]
        self.targets = Targets()
        self.work_dir = self.state.tmp_dir / name
        self.overrides: dict[str, str] = ctx.behaviour().get("restore_results", {})

    @staticmethod
    def _check_version(version: Any) -> None:
        """from_yunohost_version must exist, parse, and be >= 4.2.0 once `~x` is removed.

        A missing one crashes the real code with a TypeError (§7.1): so does this.
        """
        stripped = re.sub(r"~\w+", "", version)  # TypeError on None, as in YunoHost
        if not stripped or version_tuple(stripped) < (4, 2, 0):
            raise YunohostValidationError("restore_backup_too_old")

    # -- targets -------------------------------------------------------------------------------

    def set_system_targets(self, wanted: list[str] | None) -> None:
        """Select parts; a part with no restore hook on the system gets it from the archive."""
        selected = self.targets.set_wanted(
            "system",
            wanted,
            list(self.info["system"].keys()),
            lambda part: self.console.error(
                m18n("backup_archive_system_part_not_available", part=part)
            ),
        )
        on_system = system_restore_hooks(self.state)
        custom_dir = self.state.hooks_d / "restore"
        custom_dir.mkdir(parents=True, exist_ok=True)
        for part in selected:
            if part in on_system:
                continue
            entry = self.info["system"][part]
            # Without size_details, entry is a plain list: no "paths" key (§7.2)
            if not isinstance(entry, dict) or not entry.get("paths"):
                self.console.error(m18n("restore_hook_unavailable", part=part))
                self.targets.set_result("system", part, "Skipped")
                continue
            for hook_path in entry["paths"]:
                # A missing member raises an uncaught KeyError, as in YunoHost (§7.3)
                self._copy_member(f"hooks/restore/{os.path.basename(hook_path)}", custom_dir)

    def _copy_member(self, member_name: str, target: Path) -> None:
        """Extract one member under its basename into `target` (TarBackupMethod.copy)."""
        with tarfile.open(self.archive_path, tar_read_mode(self.archive_path)) as tar:
            member = tar.getmember(member_name)
            member.name = os.path.basename(member.name)
            tar.extract(member, path=str(target), **_extract_kwargs())

    def set_app_targets(self, wanted: list[str] | None) -> None:
        to_restore = self.targets.set_wanted(
            "apps",
            wanted,
            list(self.info["apps"].keys()),
            lambda app: self.console.error(m18n("backup_archive_app_not_found", app=app)),
        )
        installed = [app for app in to_restore if self.state.app(app) is not None]
        if installed:
            if installed == to_restore:
                raise YunohostValidationError(
                    "restore_already_installed_apps", apps=", ".join(installed)
                )
            self.console.warning(m18n("restore_already_installed_apps", apps=", ".join(installed)))

    # -- checks ----------------------------------------------------------------------------------

    def assert_enough_free_space(self) -> None:
        """Needed space: the archive's `size` + a 100 MB margin (+ 5 MB before post-install).

        YunoHost looks for `size_details` in backup_info()'s result, which never has it: the
        per-target computation and the 10 MB "conf" margin are therefore never used.
        """
        needed = int(self.info["size"])
        margin = APP_MARGIN
        if not self.state.is_postinstalled():
            needed += POSTINSTALL_ESTIMATE
        free = self.state.free_space(self.state.tmp_dir)
        if free >= needed + margin:
            return
        key = (
            "restore_may_be_not_enough_disk_space"
            if free > needed
            else ("restore_not_enough_disk_space")
        )
        raise YunohostValidationError(key, free_space=free, needed_space=needed, margin=margin)

    def confirm_system_restore(self, force: bool) -> None:
        """Restoring system parts on an installed server asks first; not a tty: fails (§2.3)."""
        if not (self.info["system"] and self.targets.selected["system"]):
            return
        if not self.state.is_postinstalled():
            return
        self.console.warning(m18n("yunohost_already_installed"))
        if force:
            return
        if not os.isatty(1):
            raise YunohostError(m18n("not_a_tty"), raw_msg=True)
        answer = input("Do you really want to restore an already installed system? [y/N] ")
        if answer not in ("y", "Y"):
            raise YunohostError("restore_failed")

    # -- mount -------------------------------------------------------------------------------------

    def mount(self) -> None:
        """Extract ONLY what YunoHost extracts into tmp/<name> (TarBackupMethod.mount)."""
        if not self.work_dir.resolve().is_relative_to(self.state.tmp_dir.resolve()):
            # NAME given as an absolute path: the work dir is that path and YunoHost's
            # mkdir crashes on it; never wipe anything outside tmp/
            raise FileExistsError(f"[Errno 17] File exists: '{self.work_dir}'")
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True)
        self.console.debug(m18n("restore_extracting"))
        try:
            # closed by the `with` below; an opening error has its own message
            tar = tarfile.open(self.archive_path, tar_read_mode(self.archive_path))  # noqa: SIM115
        except Exception as error:
            raise YunohostError("backup_archive_open_failed") from error
        with tar:
            try:
                names = tar.getnames()
            except (OSError, EOFError, tarfile.ReadError) as error:
                raise YunohostError(
                    "backup_archive_corrupted", archive=self.archive_path, error=str(error)
                ) from error
            dot = self._extract_info_files(tar, names)
            prefixes = self._wanted_prefixes(dot)
            members = [m for m in tar.getmembers() if m.name.startswith(tuple(prefixes))]
            tar.extractall(
                path=str(self.work_dir), members=self._safe_members(members), **_extract_kwargs()
            )
        with open(self.work_dir / "info.json", encoding="utf-8") as handle:
            self.inner_info = json.load(handle)  # re-read from inside the archive (§1.7)

    def _extract_info_files(self, tar: tarfile.TarFile, names: list[str]) -> str:
        """Extract info.json (required) and backup.csv (optional); return the `./` prefix."""
        if "info.json" in names:
            dot = ""
        elif "./info.json" in names:
            dot = "./"
        else:
            raise YunohostError("backup_archive_cant_retrieve_info_json", archive=self.archive_path)
        tar.extract(dot + "info.json", path=str(self.work_dir), **_extract_kwargs())
        for csv_name in ("backup.csv", "./backup.csv"):
            if csv_name in names:
                tar.extract(csv_name, path=str(self.work_dir), **_extract_kwargs())
                break
        return dot

    def _wanted_prefixes(self, dot: str) -> list[str]:
        """conf/ once for any conf_* part, <part _→/>/ for others, hooks/restore/, apps/<app>."""
        prefixes = []
        for part in self.targets.list("system", exclude=["Skipped"]):
            prefix = "conf/" if part.startswith("conf_") else part.replace("_", "/") + "/"
            if dot + prefix not in prefixes:
                prefixes.append(dot + prefix)
        prefixes.append(dot + "hooks/restore/")
        # A prefix match: apps/foo also matches apps/foo__2 (§1.7)
        prefixes += [dot + "apps/" + app for app in self.targets.list("apps", exclude=["Skipped"])]
        return prefixes

    def _safe_members(self, members: list[tarfile.TarInfo]) -> list[tarfile.TarInfo]:
        """Drop members that would land outside the work dir.

        Real YunoHost extracts them (as root, outside the folder, §7.5): absolute or `..`
        names, hard links to outside, and files written through a symlink member that
        points outside. The simulator refuses to touch this machine and reports each one
        as a WARNING instead. Symlinks themselves are kept, whatever they point to.
        """
        root = os.path.realpath(self.work_dir)

        def outside(path: str) -> bool:
            return not (path == root or path.startswith(root + os.sep))

        symlinks: dict[str, str] = {}
        safe = []
        for member in members:
            path = os.path.normpath(os.path.join(root, member.name))
            escapes = outside(path)
            parent = os.path.dirname(path)
            while not escapes and parent.startswith(root + os.sep):
                escapes = parent in symlinks and outside(symlinks[parent])
                parent = os.path.dirname(parent)
            if member.islnk():
                escapes = escapes or outside(os.path.normpath(os.path.join(root, member.linkname)))
            if member.issym():
                target = os.path.join(os.path.dirname(path), member.linkname)
                symlinks[path] = os.path.normpath(target)
            if escapes:
                self.console.warning(
                    f"SIMULATOR: member '{member.name}' would be written outside the restore "
                    "folder by real YunoHost (YUNOHOST.md §7.5); not extracted here"
                )
                continue
            safe.append(member)
        return safe

    # -- restore ---------------------------------------------------------------------------------

    def restore(self) -> None:
        """Post-install if needed, system parts, then apps; the work dir is always removed."""
        try:
            self._postinstall_if_needed()
            self._restore_system()
            self._restore_apps()
        except Exception as error:
            text = error.message if isinstance(error, YunohostError) else str(error)
            raise YunohostError(m18n("restore_critical", error=text), raw_msg=True) from error
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def _postinstall_if_needed(self) -> None:
        """A server before post-install needs conf/ynh/current_host from the archive."""
        if self.state.is_postinstalled():
            return
        if not (self.work_dir / "conf" / "ynh" / "current_host").is_file():
            raise YunohostError(m18n("postinstall_no_current_host"), raw_msg=True)
        self.console.debug("executing the post-install...")
        self.state.mark_postinstalled()

    def _restore_system(self) -> None:
        selected = self.targets.list("system", exclude=["Skipped"])
        if not selected:
            return
        operation = self.ctx.operation("backup_restore_system")
        operation.start()
        self.console.debug(m18n("restore_running_hooks"))
        env = {
            "YNH_BACKUP_DIR": str(self.work_dir),
            "YNH_BACKUP_CSV": str(self.work_dir / "backup.csv"),
        }
        hooks = system_restore_hooks(self.state)
        failed = []
        # hook_callback runs the hooks in priority order (their NN- prefix)
        for part in sorted(selected, key=lambda p: [h.name for h in hooks.get(p, [])]):
            if self._run_part(part, hooks.get(part, []), env):
                self.targets.set_result("system", part, "Success")
            else:
                self.console.error(m18n("restore_system_part_failed", part=part))
                self.targets.set_result("system", part, "Error")
                failed.append(part)
        if failed:
            operation.error()
        else:
            operation.success()

    def _run_part(self, part: str, hooks: list[Path], env: dict[str, str]) -> bool:
        override = self.overrides.get(part)
        if override is not None:
            return override in ("Success", "Warning")
        ok = bool(hooks)
        for hook in hooks:
            code = run_hook(
                self.state, self.console, hook, [str(self.work_dir)], env, self.work_dir
            )
            ok = ok and code == 0
        return ok

    def _restore_apps(self) -> None:
        for app in self.targets.list("apps", exclude=["Skipped"]):
            self._restore_app(app)

    def _restore_app(self, app: str) -> None:
        """Install the app from apps/<app>/ (settings, files) and register it (§1.7)."""
        if self.state.app(app) is not None:
            self.console.error(m18n("restore_already_installed_app", app=app))
            self.targets.set_result("apps", app, "Error")
            return
        operation = self.ctx.operation("backup_restore_app", app)
        operation.start()
        self.console.info(m18n("app_start_restore", app=app))
        app_dir = self.work_dir / "apps" / app
        (app_dir / "backup" / "_common.sh").unlink(missing_ok=True)
        if not (app_dir / "settings" / "scripts" / "restore").is_file():
            self.console.warning(m18n("unrestore_app", app=app))
            self.targets.set_result("apps", app, "Warning")
            return
        self.console.debug(f"Restoring the app '{app}'…")
        if self.overrides.get(app) == "Error":
            message = m18n("app_restore_failed", app=app, error=m18n("app_restore_script_failed"))
            self.console.error(message)
            operation.error()
            self.targets.set_result("apps", app, "Error")
            return
        sizes = sim_apps.restore_files(self.state, app, app_dir / "backup")
        sim_apps.install_restored(
            self.state, app, self.info["apps"][app], app_dir / "settings", sizes
        )
        self.targets.set_result("apps", app, "Success")
        operation.success()

    @property
    def success(self) -> bool:
        ok = ["Success", "Warning"]
        return bool(
            self.targets.list("apps", include=ok) or self.targets.list("system", include=ok)
        )


def backup_restore(
    ctx: Context,
    *,
    name: str,
    system: list[str] | None,
    apps: list[str] | None,
    force: bool,
) -> dict[str, dict[str, str]]:
    """Restore from a local archive; exit 1 `restore_nothings_done` if nothing succeeded."""
    if system is None and apps is None:
        system, apps = [], []
    restore = Restore(ctx, name)
    restore.set_system_targets(system)
    restore.set_app_targets(apps)
    restore.assert_enough_free_space()
    restore.confirm_system_restore(force)
    ctx.console.info(m18n("backup_mount_archive_for_restore"))
    restore.mount()
    restore.restore()
    if not restore.success:
        raise YunohostError("restore_nothings_done")
    ctx.console.success(m18n("restore_complete"))
    sys.stdout.flush()
    return restore.targets.results
