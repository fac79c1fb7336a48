"""Simulated installed apps: their settings folder, files, backup rows and restore.

An app of apps.json stands for a helpers-2.1 app (YUNOHOST.md §1.4, §3.3) whose backup
script declares `$install_dir` (a "core" file of `core_size` bytes), `$data_dir` (a "big
data" file of `data_size` bytes) and `/var/log/$app`, and dumps its database to db.sql.
Those files live in the simulated host filesystem (<root>/fs) and are created on demand.
The app scripts written into the archive are illustrative: the simulator never runs them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .state import SimState

CHUNK = 1 << 20


def install_dir(app_id: str) -> str:
    return f"/var/www/{app_id}"


def data_dir(app_id: str) -> str:
    return f"/home/yunohost.app/{app_id}"


def log_dir(app_id: str) -> str:
    return f"/var/log/{app_id}"


def _write_sized(path: Path, size: int, label: str) -> None:
    """Write `size` bytes of a repeated, recognisable pattern (created only when needed)."""
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    pattern = f"{label}\n".encode()
    block = (pattern * (CHUNK // len(pattern) + 1))[:CHUNK]
    with open(path, "wb") as handle:
        remaining = size
        while remaining > 0:
            handle.write(block[: min(remaining, CHUNK)])
            remaining -= CHUNK


def materialize(state: SimState, app: dict[str, Any]) -> None:
    """Create the app's core, data and log files in the simulated filesystem."""
    app_id = app["id"]
    _write_sized(
        state.host_path(install_dir(app_id)) / "core.bin",
        int(app.get("core_size", 0)),
        f"{app_id} core",
    )
    _write_sized(
        state.host_path(data_dir(app_id)) / "data.bin",
        int(app.get("data_size", 0)),
        f"{app_id} data",
    )
    log = state.host_path(log_dir(app_id)) / f"{app_id}.log"
    if not log.exists():
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"{app_id} simulated log\n")


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def settings_files(app: dict[str, Any], *, with_backup: bool, with_restore: bool) -> dict[str, str]:
    """Content of /etc/yunohost/apps/<app>/ as copied into apps/<app>/settings/ (§1.4)."""
    app_id = app["id"]
    manifest = "\n".join(
        [
            "packaging_format = 2",
            f"id = {_toml_string(app_id)}",
            f"name = {_toml_string(app.get('name', app_id))}",
            f"description.en = {_toml_string(app.get('description', ''))}",
            f"version = {_toml_string(app.get('version', '1.0~ynh1'))}",
            'maintainers = ["ynh-simulator"]',
            "",
            "[integration]",
            'yunohost = ">= 12.0.9"',
            'helpers_version = "2.1"',
            "",
        ]
    )
    settings = "".join(
        f"{key}: {value}\n"
        for key, value in [
            ("app", app_id),
            ("id", app_id),
            ("domain", app.get("domain", "domain.tld")),
            ("path", app.get("path", f"/{app_id}")),
            ("install_dir", install_dir(app_id)),
            ("data_dir", data_dir(app_id)),
        ]
    )
    files = {
        "manifest.toml": manifest,
        "settings.yml": settings,
        "scripts/_common.sh": "#!/bin/bash\n# common definitions (simulated app)\n",
        "scripts/install": "#!/bin/bash\nsource _common.sh\nsource /usr/share/yunohost/helpers\n",
        "scripts/remove": "#!/bin/bash\nsource _common.sh\nsource /usr/share/yunohost/helpers\n",
        "scripts/upgrade": "#!/bin/bash\nsource _common.sh\nsource /usr/share/yunohost/helpers\n",
    }
    header = (
        "#!/bin/bash\nsource ../settings/scripts/_common.sh\nsource /usr/share/yunohost/helpers\n"
    )
    if with_backup:
        files["scripts/backup"] = header + (
            'ynh_backup "$install_dir"\nynh_backup "$data_dir"\nynh_backup "/var/log/$app/"\n'
            "ynh_mysql_dump_db > db.sql\n"
        )
    if with_restore:
        files["scripts/restore"] = header + (
            'ynh_restore "$install_dir"\nynh_restore "$data_dir"\nynh_restore "/var/log/$app/"\n'
            "ynh_mysql_db_shell < ./db.sql\n"
        )
    return files


def write_settings(settings_dir: Path, files: dict[str, str]) -> None:
    """Like shutil.copytree of the settings folder: fails if it already exists (§1.10)."""
    settings_dir.mkdir(parents=True, exist_ok=False)
    for relative, content in files.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if relative.startswith("scripts/"):
            path.chmod(0o755)


def db_dump(app: dict[str, Any]) -> str:
    return (
        f"-- simulated database dump of {app['id']} {app.get('version', '')}\n"
        f"CREATE TABLE {app['id']}_items (id INT PRIMARY KEY, label TEXT);\n"
        f"INSERT INTO {app['id']}_items VALUES (1, 'hello');\n"
    )


def restore_files(state: SimState, app_id: str, backup_dir: Path) -> dict[str, int]:
    """Put the app's backed-up files back into the simulated filesystem.

    Stands for the app's restore script: every folder under apps/<app>/backup/ mirrors a host
    path (`var/www/<app>` -> /var/www/<app>); top-level files (database dumps) are "loaded"
    by keeping a copy in /var/lib/ynh_sim/databases/. Returns the restored core and data
    sizes.
    """
    for entry in sorted(backup_dir.iterdir()) if backup_dir.is_dir() else []:
        if entry.is_dir():
            shutil.copytree(entry, state.fs / entry.name, symlinks=True, dirs_exist_ok=True)
        elif entry.is_file():
            target = state.host_path(f"/var/lib/ynh_sim/databases/{app_id}.{entry.name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry, target)
    core = state.host_path(install_dir(app_id)) / "core.bin"
    data = state.host_path(data_dir(app_id)) / "data.bin"
    return {
        "core_size": core.stat().st_size if core.exists() else 0,
        "data_size": data.stat().st_size if data.exists() else 0,
    }


def install_restored(
    state: SimState, app_id: str, info: dict[str, Any], settings_dir: Path, sizes: dict[str, int]
) -> None:
    """Register a restored app in apps.json (the app is now installed)."""
    scripts = settings_dir / "scripts"
    entry: dict[str, Any] = {
        "id": app_id,
        "name": info.get("name", app_id),
        "description": info.get("description", ""),
        "version": info.get("version", "-"),
        "supports_backup_restore": (scripts / "backup").is_file()
        and (scripts / "restore").is_file(),
        **sizes,
    }
    entry.update(_domain_and_path(settings_dir / "settings.yml"))
    apps = [a for a in state.load_apps() if a.get("id") != app_id]
    apps.append(entry)
    state.save_apps(apps)


def _domain_and_path(settings_yml: Path) -> dict[str, str]:
    """`domain` and `path` from a settings.yml (flat `key: value` lines are enough here)."""
    found: dict[str, str] = {}
    if settings_yml.is_file():
        for line in settings_yml.read_text(errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("domain", "path"):
                found[key.strip()] = value.strip().strip("'\"")
    return found
