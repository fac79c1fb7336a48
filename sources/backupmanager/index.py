"""The archive index: keeps the `archives` table in step with the archives folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backupmanager.archive import (
    BACKUP_INFO_MEMBER,
    PRE_UPGRADE_PATTERN,
    FoundArchive,
    read_info_beside,
    read_member_json,
    scan_archives,
)
from backupmanager.models import Archive, Job

ORIGIN_LOCAL = "backupmanager"  # made by this instance's jobs: the only ones retention may touch
ORIGIN_YUNOHOST = "yunohost"  # webadmin or CLI backups
ORIGIN_PRE_UPGRADE = "yunohost-pre-upgrade"  # <app>-pre-upgrade1/2 safety backups
ORIGIN_OTHER_INSTANCE = (
    "instance"  # made by BackupManager on another server (prefix of "instance:NAME")
)


@dataclass(frozen=True)
class SyncReport:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    updated: tuple[str, ...]


def info_as_text(info: dict[str, Any] | None) -> str | None:
    """How YunoHost's info.json is kept in the index (None when the archive has none)."""
    return json.dumps(info, sort_keys=True) if info is not None else None


def stored_info(row: Archive) -> dict[str, Any] | None:
    """The info.json copied into the index, for readers that cannot open the archives folder."""
    if not row.yunohost_info_json:
        return None
    value = json.loads(row.yunohost_info_json)
    return value if isinstance(value, dict) else None


def _created_at(found: FoundArchive, info: dict[str, object] | None) -> datetime:
    created = info.get("created_at") if info else None
    if isinstance(created, int | float):
        return datetime.fromtimestamp(created, UTC)
    return datetime.fromtimestamp(found.ctime, UTC)


def _describe_foreign(
    session: Session, found: FoundArchive, archives_dir: Path, instance_name: str
) -> Archive:
    """Classify an archive the index does not know yet, from its metadata."""
    info = read_info_beside(archives_dir, found.name)
    ours = read_member_json(found.path, BACKUP_INFO_MEMBER)
    apps = list((info or {}).get("apps") or {})
    row = Archive(
        name=found.name,
        filename=found.path.name,
        size_bytes=found.size_bytes,
        created_at=_created_at(found, info),
        kind="yunohost",
        app=apps[0] if len(apps) == 1 else None,
        origin=ORIGIN_YUNOHOST,
        mtime_ns=found.mtime_ns,
        yunohost_info_json=info_as_text(info),
    )
    pre_upgrade = PRE_UPGRADE_PATTERN.match(found.name)
    if pre_upgrade:
        row.origin, row.app = ORIGIN_PRE_UPGRADE, pre_upgrade["app"]
    elif ours is not None:
        row.kind = str(ours.get("type", "yunohost"))
        row.app = str(ours.get("app")) if ours.get("app") else row.app
        row.instance_name = str(ours.get("instance_name", "")) or None
        if row.instance_name == instance_name:
            # One of ours that the index lost (a database restored from an older backup…):
            # adopt it back into its job, matched by the job name recorded in the archive.
            job = session.scalar(select(Job).where(Job.name == ours.get("job_name")))
            if job is not None:
                row.origin, row.job_id = ORIGIN_LOCAL, job.id
        else:
            row.origin = f"{ORIGIN_OTHER_INSTANCE}:{row.instance_name}"
    return row


def sync_index(session: Session, archives_dir: Path, instance_name: str) -> SyncReport:
    """Add archives that appeared, drop those that disappeared, refresh changed ones."""
    on_disk = {found.name: found for found in scan_archives(archives_dir)}
    indexed = {row.name: row for row in session.scalars(select(Archive))}
    added, removed, updated = [], [], []
    for name, row in indexed.items():
        if name not in on_disk:
            session.delete(row)
            removed.append(name)
        elif row.mtime_ns != on_disk[name].mtime_ns or row.size_bytes != on_disk[name].size_bytes:
            row.size_bytes = on_disk[name].size_bytes
            row.mtime_ns = on_disk[name].mtime_ns
            row.yunohost_info_json = info_as_text(read_info_beside(archives_dir, name))
            if row.origin != ORIGIN_LOCAL:
                row.sha256 = None  # changed behind our back: the old checksum no longer holds
            updated.append(name)
        elif row.yunohost_info_json is None:  # indexed before the copy existed (schema 0004)
            row.yunohost_info_json = info_as_text(read_info_beside(archives_dir, name))
    for name, found in on_disk.items():
        if name not in indexed:
            session.add(_describe_foreign(session, found, archives_dir, instance_name))
            added.append(name)
    return SyncReport(tuple(added), tuple(removed), tuple(updated))
