"""The installed apps and system parts, fetched by the root worker and cached for the web process."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from backupmanager import commands, process, yunohost
from backupmanager.db import Database
from backupmanager.models import COMMAND_QUEUED, COMMAND_RUNNING, Command
from backupmanager.settings import Settings

# `yunohost app list` must run as root (YUNOHOST.md §2.4): the worker refreshes this file at
# start-up and this often, the web process only reads it.
REFRESH_EVERY = timedelta(minutes=5)
CACHE_FILE_NAME = "yunohost-catalog.json"
COMMAND_KIND = "refresh_apps"


@dataclass(frozen=True)
class Catalog:
    """What YunoHost can back up, as last seen by the worker."""

    apps: list[yunohost.InstalledApp] = field(default_factory=list)
    system_parts: list[str] = field(default_factory=list)
    refreshed_at: datetime | None = None
    error: str = ""  # why the last refresh failed (the previous lists are kept)


def cache_path(settings: Settings) -> Path:
    return settings.data_dir / CACHE_FILE_NAME


def read(settings: Settings) -> Catalog | None:
    """The cached catalog, or None when the worker has not written it yet."""
    try:
        data = json.loads(cache_path(settings).read_text())
        return Catalog(
            apps=[yunohost.InstalledApp(**app) for app in data.get("apps", [])],
            system_parts=[str(part) for part in data.get("system_parts", [])],
            refreshed_at=datetime.fromisoformat(data["refreshed_at"]),
            error=str(data.get("error", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def refresh(settings: Settings, now: datetime) -> Catalog:
    """Ask YunoHost (as root), then replace the cache file atomically, readable by the web user."""
    previous = read(settings) or Catalog()
    try:
        catalog = Catalog(
            apps=yunohost.list_apps(settings.programs.yunohost),
            system_parts=yunohost.list_backup_parts(settings.programs.yunohost),
            refreshed_at=now,
        )
    except (process.ProcessError, yunohost.YunohostError) as error:
        catalog = Catalog(previous.apps, previous.system_parts, now, f"{error}"[:500])
    data = {
        "apps": [asdict(app) for app in catalog.apps],
        "system_parts": catalog.system_parts,
        "refreshed_at": now.isoformat(),
        "error": catalog.error,
    }
    path = cache_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=1))
    temporary.chmod(0o644)  # app names are not secret; the web process runs as another user
    temporary.replace(path)
    return catalog


def queue_refresh(db: Database, *, now: datetime, requested_by: str) -> bool:
    """Queue a refresh unless one is already waiting; True when one was queued."""
    with db.write() as session:
        pending = session.scalar(
            select(Command.id).where(
                Command.kind == COMMAND_KIND,
                Command.status.in_((COMMAND_QUEUED, COMMAND_RUNNING)),
            )
        )
        if pending is not None:
            return False
        commands.enqueue(session, COMMAND_KIND, now=now, requested_by=requested_by)
        return True
