"""The simulated server's state, kept in the folder named by YNH_SIM_ROOT.

Layout of the root (missing pieces are created on first use):

    apps.json            installed apps (seeded with nextcloud, wordpress, nocodb, my_webapp)
    hooks.json           optional extra simulated system parts
    hooks.d/{backup,restore,backup_method}/NN-name   custom hooks, as /etc/yunohost/hooks.d
    behaviour.json       optional failure / timing injection, read at every call
    admins.json          members of the `admins` group (default ["admin"])
    firewall.json        ports opened with `yunohost firewall allow`
    calls.jsonl          one JSON line per invocation
    lock                 the moulinette lock (fcntl.flock)
    archives/            default archives folder (YNH_SIM_ARCHIVES_DIR overrides it)
    tmp/<name>/          backup and restore work dirs (/home/yunohost.backup/tmp)
    fs/                  the simulated host filesystem: host path /x/y lives at fs/x/y
    not_postinstalled    create it to simulate a server before `tools postinstall`
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_VERSION = "12.1.25"

# Real locations, used in messages, info.json and backup.csv (YUNOHOST.md §1.1, §1.4)
REAL_BACKUP_PATH = "/home/yunohost.backup"
REAL_ARCHIVES_PATH = "/home/yunohost.backup/archives"
REAL_CUSTOM_HOOKS = "/etc/yunohost/hooks.d"
REAL_CORE_HOOKS = "/usr/share/yunohost/hooks"

KIB = 1024

# Seed of apps.json: three backup-capable apps and one without backup support (§2.4)
DEFAULT_APPS: list[dict[str, Any]] = [
    {
        "id": "nextcloud",
        "name": "Nextcloud",
        "description": "Online storage, file sharing platform and various other applications",
        "version": "31.0.8~ynh1",
        "supports_backup_restore": True,
        "core_size": 4 * KIB,
        "data_size": 8 * KIB,
        "domain": "domain.tld",
        "path": "/nextcloud",
    },
    {
        "id": "wordpress",
        "name": "WordPress",
        "description": "Create a beautiful blog or website easily",
        "version": "6.8.2~ynh1",
        "supports_backup_restore": True,
        "core_size": 3 * KIB,
        "data_size": 2 * KIB,
        "domain": "domain.tld",
        "path": "/blog",
    },
    {
        "id": "nocodb",
        "name": "NocoDB",
        "description": "Open source Airtable alternative",
        "version": "0.264.4~ynh1",
        "supports_backup_restore": True,
        "core_size": 2 * KIB,
        "data_size": 4 * KIB,
        "domain": "domain.tld",
        "path": "/nocodb",
    },
    {
        "id": "my_webapp",
        "name": "My Webapp",
        "description": "Custom Web app with SFTP access to serve static files",
        "version": "1.0~ynh21",
        "supports_backup_restore": False,
        "core_size": 1 * KIB,
        "data_size": 1 * KIB,
        "domain": "domain.tld",
        "path": "/site",
    },
]


class SimConfigError(Exception):
    """The simulator itself is misconfigured (not a YunoHost error)."""


class SimState:
    """Paths and JSON state files of one simulated server."""

    def __init__(self, root: Path, environ: dict[str, str]) -> None:
        self.root = root
        self.environ = environ
        archives = environ.get("YNH_SIM_ARCHIVES_DIR")
        self.archives_dir = Path(archives) if archives else root / "archives"
        self.tmp_dir = root / "tmp"
        self.fs = root / "fs"
        self.hooks_d = root / "hooks.d"
        self.version = environ.get("YNH_SIM_VERSION") or DEFAULT_VERSION

    @classmethod
    def from_environ(cls, environ: dict[str, str]) -> SimState:
        """Build the state from YNH_SIM_ROOT (required) and create what is missing."""
        root = environ.get("YNH_SIM_ROOT")
        if not root:
            raise SimConfigError(
                "yunohost simulator: YNH_SIM_ROOT is not set; point it at a folder that "
                "holds the simulated server's state (see tests/fakes/README.md)"
            )
        state = cls(Path(root).absolute(), environ)
        state.ensure()
        return state

    def ensure(self) -> None:
        """Create the root's folders and seed apps.json on first use."""
        for folder in (self.root, self.tmp_dir, self.fs):
            folder.mkdir(parents=True, exist_ok=True)
        for action in ("backup", "restore"):
            (self.hooks_d / action).mkdir(parents=True, exist_ok=True)
        if not (self.root / "apps.json").exists():
            self.save_apps(DEFAULT_APPS)

    # -- JSON files --------------------------------------------------------------------------

    def _read_json(self, filename: str, default: Any) -> Any:
        path = self.root / filename
        if not path.exists():
            return default
        text = path.read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else default

    def _write_json(self, filename: str, value: Any) -> None:
        path = self.root / filename
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    def load_apps(self) -> list[dict[str, Any]]:
        apps: list[dict[str, Any]] = self._read_json("apps.json", [])
        return apps

    def save_apps(self, apps: list[dict[str, Any]]) -> None:
        self._write_json("apps.json", apps)

    def app(self, app_id: str) -> dict[str, Any] | None:
        return next((a for a in self.load_apps() if a.get("id") == app_id), None)

    def behaviour(self) -> dict[str, Any]:
        """behaviour.json, re-read at every call so tests can change it between calls."""
        value: dict[str, Any] = self._read_json("behaviour.json", {})
        return value

    def extra_hooks(self) -> list[Any]:
        value: list[Any] = self._read_json("hooks.json", [])
        return value

    def admins(self) -> list[str]:
        value: list[str] = self._read_json("admins.json", ["admin"])
        return value

    def load_firewall(self) -> dict[str, dict[str, Any]]:
        value: dict[str, dict[str, Any]] = self._read_json("firewall.json", {"tcp": {}, "udp": {}})
        return value

    def save_firewall(self, value: dict[str, dict[str, Any]]) -> None:
        self._write_json("firewall.json", value)

    # -- server facts --------------------------------------------------------------------------

    def is_postinstalled(self) -> bool:
        """Real: /etc/yunohost/installed exists. Simulated: no `not_postinstalled` marker."""
        return not (self.root / "not_postinstalled").exists()

    def mark_postinstalled(self) -> None:
        (self.root / "not_postinstalled").unlink(missing_ok=True)

    def free_space(self, path: Path) -> int:
        """Free bytes where `path` lives; behaviour.json `free_space_bytes` overrides it."""
        override = self.behaviour().get("free_space_bytes")
        if override is not None:
            return int(override)
        probe = path
        while not probe.exists():
            probe = probe.parent
        return shutil.disk_usage(probe).free

    def host_path(self, real_path: str) -> Path:
        """Where a host path of the simulated server lives on this machine."""
        if real_path == REAL_CUSTOM_HOOKS or real_path.startswith(REAL_CUSTOM_HOOKS + "/"):
            return self.hooks_d / real_path[len(REAL_CUSTOM_HOOKS) :].lstrip("/")
        return self.fs / real_path.lstrip("/")

    # -- calls.jsonl ---------------------------------------------------------------------------

    def record_call(self, argv: list[str]) -> None:
        """Append what we were called with, environment included, to calls.jsonl."""
        entry = {
            "argv": argv,
            "env": {"BACKUP_CORE_ONLY": self.environ.get("BACKUP_CORE_ONLY")},
            "pid": os.getpid(),
            "time": datetime.now(UTC).isoformat(),
        }
        line = json.dumps(entry) + "\n"
        # One write() on an O_APPEND file: concurrent invocations do not interleave lines
        fd = os.open(self.root / "calls.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
