"""`yunohost backup create` (YUNOHOST.md §1.3-§1.6, §1.9, §1.10, §2.2, §2.5, §2.6)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from . import apps as sim_apps
from .archives import archive_names
from .context import Context
from .hooks import (
    SystemPart,
    backup_parts,
    materialize,
    real_restore_hook_path,
    run_hook,
    system_restore_hooks,
)
from .messages import YunohostError, YunohostValidationError, m18n
from .state import REAL_ARCHIVES_PATH, REAL_BACKUP_PATH
from .targets import Targets
from .util import csv_bytes, human_size, read_csv_rows, space_used

FORBIDDEN_OUTPUT = r"^/(|(bin|boot|dev|etc|lib|root|run|sbin|sys|usr|var)(|/.*))$"


@dataclass
class Row:
    """One backup.csv row: `source` as the real server would write it, `local` on this disk."""

    source: str
    local: Path
    dest: str


def core_only(environ: dict[str, str], test: str) -> bool:
    """Evaluate the helpers' BACKUP_CORE_ONLY test with bash itself (§2.5).

    Helpers v2.1: `[[ ${BACKUP_CORE_ONLY:-0} -eq 1 ]]`; v1: `[ $BACKUP_CORE_ONLY -eq 1 ]`.
    So only 1 (as bash arithmetic reads it) counts; `true` is silently 0.
    """
    value = environ.get("BACKUP_CORE_ONLY")
    env = {"PATH": "/usr/bin:/bin"}
    if value is not None:
        env["BACKUP_CORE_ONLY"] = value
    proc = subprocess.run(["bash", "-c", test], env=env, capture_output=True, check=False)
    return proc.returncode == 0


V21_CORE_ONLY = "[[ ${BACKUP_CORE_ONLY:-0} -eq 1 ]]"
V1_CORE_ONLY = "BACKUP_CORE_ONLY=${BACKUP_CORE_ONLY:-0}; [ $BACKUP_CORE_ONLY -eq 1 ]"


class BackupRun:
    """One backup being built: targets, collected rows, sizes and info.json."""

    def __init__(
        self, ctx: Context, name: str, description: str, output_directory: Path | None
    ) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.console = ctx.console
        self.name = name
        self.description = description
        self.created_at = int(time.time())
        self.is_tmp = output_directory is None
        self.work_dir = output_directory or self.state.tmp_dir / name
        # Paths as the real server would write them in backup.csv (§1.6)
        self.real_work_dir = f"{REAL_BACKUP_PATH}/tmp/{name}" if self.is_tmp else str(self.work_dir)
        self.repo = output_directory or self.state.archives_dir
        self.targets = Targets()
        self.rows: list[Row] = []
        self.system_return: dict[str, list[str]] = {}
        self.apps_return: dict[str, dict[str, Any]] = {}
        self.size = 0
        self.size_details: dict[str, dict[str, int]] = {"system": {}, "apps": {}}
        self.overrides: dict[str, str] = ctx.behaviour().get("results", {})

    # -- work dir -------------------------------------------------------------------------

    def init_work_dir(self) -> None:
        """Create the work dir; a leftover tmp dir of the same name is wiped first."""
        if self.work_dir.is_dir() and self.is_tmp:
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)

    def work_row(self, relative: str) -> Row:
        """A row for a file or folder of the work dir (dest = its relative path)."""
        return Row(f"{self.real_work_dir}/{relative}", self.work_dir / relative, relative)

    def clean(self) -> None:
        if self.is_tmp:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # -- targets -----------------------------------------------------------------------------

    def set_system_targets(self, wanted: list[str] | None) -> dict[str, SystemPart]:
        parts = backup_parts(self.state)
        self.targets.set_wanted(
            "system",
            wanted,
            list(parts),
            lambda part: self.console.error(m18n("backup_hook_unknown", hook=part)),
        )
        for part in self.targets.list("system", exclude=["Skipped"]):
            if self.overrides.get(part) == "Skipped":
                self.console.error(m18n("backup_hook_unknown", hook=part))
                self.targets.set_result("system", part, "Skipped")
        return parts

    def set_app_targets(self, wanted: list[str] | None) -> None:
        installed = [a["id"] for a in self.state.load_apps()]
        selected = self.targets.set_wanted(
            "apps",
            wanted,
            installed,
            lambda app: self.console.error(m18n("unbackup_app", app=app)),
        )
        for app_id in selected:
            has_backup, has_restore = self._app_scripts(app_id)
            if not has_backup:
                self.console.warning(m18n("backup_with_no_backup_script_for_app", app=app_id))
                self.targets.set_result("apps", app_id, "Skipped")
            elif not has_restore:
                self.console.warning(m18n("backup_with_no_restore_script_for_app", app=app_id))
                self.targets.set_result("apps", app_id, "Warning")

    def _app_scripts(self, app_id: str) -> tuple[bool, bool]:
        """(has scripts/backup, has scripts/restore), behaviour.json `results` first."""
        override = self.overrides.get(app_id)
        if override == "Skipped":
            return False, False
        if override == "Warning":
            return True, False
        if override in ("Success", "Error"):
            return True, True
        app = self.state.app(app_id) or {}
        supported = bool(app.get("supports_backup_restore", True))
        return supported, supported

    # -- collecting system parts ---------------------------------------------------------------

    def collect_system(self, parts: dict[str, SystemPart]) -> None:
        """Run each selected part's backup hook, then keep the restore hooks (§1.3, §1.4)."""
        selected = self.targets.list("system", exclude=["Skipped"])
        if not selected:
            return
        self.console.debug(m18n("backup_running_hooks"))
        is_core_only = core_only(self.ctx.environ, V1_CORE_ONLY)
        fd, tmp_csv = tempfile.mkstemp(prefix="backupcsv_")
        os.close(fd)
        succeeded, failed = [], []
        try:
            for part in sorted((parts[name] for name in selected), key=lambda p: p.priority):
                if self._collect_part(part, Path(tmp_csv), is_core_only):
                    succeeded.append(part)
                else:
                    failed.append(part)
        finally:
            os.unlink(tmp_csv)
        self.system_return = {part.name: [part.backup_hook_path] for part in succeeded}
        self._keep_restore_hooks(succeeded)
        for part in failed:
            self.console.error(m18n("backup_system_part_failed", part=part.name))
            self.targets.set_result("system", part.name, "Error")

    def _collect_part(self, part: SystemPart, tmp_csv: Path, is_core_only: bool) -> bool:
        """Collect one part; True if its hook "succeeded"."""
        override = self.overrides.get(part.name)
        if override == "Error":
            return False
        if part.custom:
            return self._run_custom_part(part, tmp_csv)
        materialize(self.state, part)
        for dest, content in part.generated:
            path = self.work_dir / dest
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        for host, dest, _content in part.files:
            if part.is_big and is_core_only:
                self.console.info(m18n("core_only_skip", path=host))
                continue
            self.rows.append(Row(host, self.state.host_path(host), dest))
        return True

    def _run_custom_part(self, part: SystemPart, tmp_csv: Path) -> bool:
        """Run hooks.d/backup/NN-name with $1 = work dir; import the rows it declared."""
        already = len(read_csv_rows(tmp_csv))
        hook = self.state.hooks_d / "backup" / part.filename
        env = {"YNH_BACKUP_DIR": str(self.work_dir), "YNH_BACKUP_CSV": str(tmp_csv)}
        code = run_hook(self.state, self.console, hook, [str(self.work_dir)], env, self.work_dir)
        for source, dest in read_csv_rows(tmp_csv)[already:]:
            self.rows.append(Row(source, Path(source), dest))
        return code == 0

    def _keep_restore_hooks(self, succeeded: list[SystemPart]) -> None:
        """Add hooks/restore/NN-part rows; a part without restore hook ends as Warning."""
        restore_hooks = system_restore_hooks(self.state)
        for part in succeeded:
            hooks = restore_hooks.get(part.name)
            if hooks and self.overrides.get(part.name) != "Warning":
                for hook in hooks:
                    source = real_restore_hook_path(self.state, hook)
                    self.rows.append(Row(source, hook, f"hooks/restore/{hook.name}"))
                self.targets.set_result("system", part.name, "Success")
            else:
                self.console.warning(m18n("restore_hook_unavailable", part=part.name))
                self.targets.set_result("system", part.name, "Warning")

    # -- collecting apps -------------------------------------------------------------------

    def collect_apps(self) -> None:
        is_core_only = core_only(self.ctx.environ, V21_CORE_ONLY)
        for app_id in self.targets.list("apps", exclude=["Skipped"]):
            self._collect_app(app_id, is_core_only)

    def _collect_app(self, app_id: str, is_core_only: bool) -> None:
        """Simulate the app's helpers-2.1 backup script (§1.4, §2.5, §3.3)."""
        app = self.state.app(app_id) or {"id": app_id}
        self.console.info(m18n("app_start_backup", app=app_id))
        app_dir = self.work_dir / "apps" / app_id
        try:
            if self.overrides.get(app_id) == "Error":
                raise RuntimeError("simulated failure of the backup script")
            has_backup, has_restore = self._app_scripts(app_id)
            backup_dir = app_dir / "backup"
            backup_dir.mkdir(parents=True, exist_ok=True)
            files = sim_apps.settings_files(app, with_backup=has_backup, with_restore=has_restore)
            sim_apps.write_settings(app_dir / "settings", files)
            (backup_dir / "db.sql").write_text(sim_apps.db_dump(app))
            sim_apps.materialize(self.state, app)
            rows = []
            for host, is_data in (
                (sim_apps.install_dir(app_id), False),
                (sim_apps.data_dir(app_id), True),
                (sim_apps.log_dir(app_id), True),
            ):
                if is_data and is_core_only:
                    self.console.info(m18n("core_only_skip", path=host))
                    continue
                dest = f"apps/{app_id}/backup{host}"
                # ynh_backup creates the (empty) parent folders in the staging dir
                (self.work_dir / dest).parent.mkdir(parents=True, exist_ok=True)
                rows.append(Row(host, self.state.host_path(host), dest))
        except Exception as error:  # e.g. FileExistsError on a reused -o folder (§1.10)
            self.console.debug(str(error))
            shutil.rmtree(app_dir, ignore_errors=True)
            self.console.error(m18n("backup_app_script_failed", app=app_id))
            self.targets.set_result("apps", app_id, "Error")
            return
        self.rows.extend(rows)
        self.apps_return[app_id] = {
            "version": app.get("version", "-"),
            "name": app.get("name", app_id),
            "description": app.get("description", ""),
        }
        self.targets.set_result("apps", app_id, "Success")

    # -- csv, sizes, info.json -----------------------------------------------------------------

    def finish_collection(self) -> None:
        """Fail if nothing succeeded, else add the work-dir rows, write backup.csv, info.json."""
        ok = ["Success", "Warning"]
        if not self.targets.list("apps", include=ok) and not self.targets.list(
            "system", include=ok
        ):
            shutil.rmtree(self.work_dir, ignore_errors=True)
            raise YunohostError("backup_no_file_collected")
        self.rows.append(self.work_row("backup.csv"))
        self.rows.append(self.work_row("info.json"))
        for app_id in self.apps_return:
            self.rows.append(self.work_row(f"apps/{app_id}"))
        for folder in ("conf", "data"):
            if (self.work_dir / folder).is_dir():
                self.rows.append(self.work_row(folder))
        csv_path = self.work_dir / "backup.csv"
        with open(csv_path, "ab") as handle:
            handle.write(csv_bytes([(row.source, row.dest) for row in self.rows]))
        self.compute_size()
        (self.work_dir / "info.json").write_text(json.dumps(self.info()))

    def compute_size(self) -> None:
        """`du -sb` of every row but info.json, attributed by dest prefix (§1.5 caveats)."""
        self.size = 0
        self.size_details = {
            "system": dict.fromkeys(self.system_return, 0),
            "apps": dict.fromkeys(self.apps_return, 0),
        }
        for row in self.rows:
            if row.dest == "info.json":
                continue
            size = space_used(row.local)
            category = row.dest.split("/")[0]
            if category == "apps":
                app = next((a for a in self.apps_return if row.dest.startswith("apps/" + a)), None)
                if app is not None:
                    self.size_details["apps"][app] += size
            elif category in ("data", "conf"):
                part = next(
                    (p for p in self.system_return if row.dest.startswith(p.replace("_", "/"))),
                    None,
                )
                if part is not None:
                    self.size_details["system"][part] += size
            self.size += size

    def info(self) -> dict[str, Any]:
        """info.json, keys in YunoHost's order (§1.5)."""
        return {
            "description": self.description,
            "created_at": self.created_at,
            "size": self.size,
            "size_details": self.size_details,
            "apps": self.apps_return,
            "system": self.system_return,
            "from_yunohost_version": self.state.version,
        }

    # -- methods -------------------------------------------------------------------------------

    def run_method(self, method: str) -> None:
        try:
            if method == "tar":
                self.tar_backup()
            elif method == "copy":
                self.copy_backup()
            else:
                self.custom_backup(method)
        finally:
            self.clean()

    def tar_backup(self) -> None:
        """§1.3 step 2: tar written in place, then <name>.info.json, then the symlink."""
        self.repo.mkdir(parents=True, exist_ok=True)
        if self.state.free_space(self.repo) < self.size:
            raise YunohostValidationError("not_enough_disk_space", path=str(self.repo))
        compress = bool(self.ctx.behaviour().get("compress_tar_archives", False))
        archive = self.repo / (self.name + (".tar.gz" if compress else ".tar"))
        delay = float(self.ctx.behaviour().get("delay_seconds", 0) or 0)
        with tarfile.open(archive, "w:gz" if compress else "w") as tar:
            for row in self.rows:
                if row.dest == "backup.csv" and delay:
                    # Part of the tar is on disk, without info.json: what a reader sees
                    # while a real backup runs (§1.3)
                    cast(IO[bytes], tar.fileobj).flush()
                    self.console.debug(f"(simulator) archive partly written, pausing {delay} s")
                    time.sleep(delay)
                tar.add(str(row.local), arcname=row.dest)
        archives = self.state.archives_dir
        shutil.copy(self.work_dir / "info.json", archives / f"{self.name}.info.json")
        link = archives / f"{self.name}.tar"
        if not link.is_file():
            link.symlink_to(archive)

    def copy_backup(self) -> None:
        """--methods copy: an uncompressed tree in the -o folder (not listable, §1.10)."""
        for row in self.rows:
            target = self.repo / row.dest
            if target.exists() or not row.local.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if row.local.is_dir():
                shutil.copytree(row.local, target, symlinks=True)
            else:
                shutil.copy2(row.local, target)

    def custom_backup(self, method: str) -> None:
        """§2.6: hooks.d/backup_method/NN-<method>: need_mount then backup. None: no-op."""
        for hook in _backup_method_hooks(self.state.hooks_d / "backup_method", method):
            args = [str(self.work_dir), self.name, str(self.repo), str(self.size), self.description]
            if run_hook(self.state, self.console, hook, ["need_mount", *args], {}, hook.parent):
                self.console.error(f"Could not run script: {hook}")
            else:
                self.copy_backup()  # "organize" every row into work_dir/<dest>
            if run_hook(self.state, self.console, hook, ["backup", *args], {}, hook.parent):
                raise YunohostError("backup_custom_backup_error")


def _backup_method_hooks(folder: Path, method: str) -> list[Path]:
    """Hooks named `NN-<method>` or `NN-<method>_…` (extension stripped), as hook_callback."""
    found = []
    for hook in sorted(folder.iterdir()) if folder.is_dir() else []:
        name = hook.name.partition("-")[2].split(".")[0]
        if hook.is_file() and (name == method or name.startswith(method + "_")):
            found.append(hook)
    return found


def _check_output_directory(ctx: Context, output: str, methods: list[str]) -> Path:
    """§1.10: forbidden places, and `copy` needs an empty folder."""
    path = os.path.abspath(output)
    if (
        path.startswith(REAL_ARCHIVES_PATH)
        or path.startswith(str(ctx.state.archives_dir))
        or re.match(FORBIDDEN_OUTPUT, path)
    ):
        raise YunohostValidationError("backup_output_directory_forbidden")
    if "copy" in methods and os.path.isdir(path) and os.listdir(path):
        raise YunohostValidationError("backup_output_directory_not_empty")
    return Path(path)


def _create_archive_dir(ctx: Context) -> None:
    """§1.1: create the archives folder if missing; a broken symlink is an error."""
    folder = ctx.state.archives_dir
    if folder.is_dir():
        return
    if os.path.lexists(folder):
        raise YunohostError("backup_output_symlink_dir_broken", path=str(folder))
    folder.mkdir(mode=0o770, parents=True)


def backup_create(
    ctx: Context,
    *,
    name: str | None,
    description: str | None,
    output_directory: str | None,
    methods: list[str] | None,
    system: list[str] | None,
    apps: list[str] | None,
    dry_run: bool,
) -> dict[str, Any]:
    """Create an archive; exit 0 as soon as one target succeeded (§2.1, §2.2)."""
    if name and name in archive_names(ctx):
        raise YunohostValidationError("backup_archive_name_exists", name=name)
    methods = methods or ["tar"]
    output = _check_output_directory(ctx, output_directory, methods) if output_directory else None
    if "copy" in methods and output is None:
        raise YunohostValidationError("backup_output_directory_required")
    if system is None and apps is None:
        system, apps = [], []

    operation = ctx.operation("backup_create")
    operation.start()
    _create_archive_dir(ctx)
    # No collision check for generated names (§1.9)
    run = BackupRun(
        ctx, name or time.strftime("%Y%m%d-%H%M%S", time.gmtime()), description or "", output
    )
    run.init_work_dir()
    parts = run.set_system_targets(system)
    run.set_app_targets(apps)
    operation.related = next(iter(run.targets.list("apps", exclude=["Skipped"])), None)
    run.collect_system(parts)
    run.collect_apps()
    run.finish_collection()
    if dry_run:
        # The work dir is left behind, as YunoHost does
        return {"size": run.size, "size_details": run.size_details}

    ctx.console.info(m18n("backup_actually_backuping"))
    ctx.console.info(m18n("backup_create_size_estimation", size=human_size(run.size)))
    for method in methods:
        run.run_method(method)
    ctx.console.success(m18n("backup_created", name=run.name))
    operation.success()
    return {"name": run.name, "size": run.size, "results": run.targets.results}
