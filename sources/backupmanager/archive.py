"""YunoHost archive format: names, metadata, sealing of finished archives, reading what is on disk."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import IO, Any

# YunoHost's own pattern for `backup create --name` and `backup delete` (YUNOHOST.md §1.9).
YUNOHOST_NAME_PATTERN = re.compile(r"^[\w\-._]{1,50}(?<!\.)$")
MAX_NAME_LENGTH = 50
# Room kept for the same-day suffix "-HHMMSS" plus a possible "-N" (SPEC §3).
SUFFIX_ROOM = 10
DATE_LENGTH = 8
MAX_INSTANCE_IN_NAME = 12
# Archives being written carry this prefix until they are complete; never a final name.
PARTIAL_PREFIX = "bm-partial-"
BACKUP_INFO_MEMBER = "backup_info.json"
PRE_UPGRADE_PATTERN = re.compile(r"^(?P<app>.+)-pre-upgrade[12]$")
CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """An archive is missing, malformed or not what it claims to be."""


def validate_archive_name(name: str) -> str:
    """Refuse any name YunoHost would refuse, and anything that could leave the archives folder."""
    if not YUNOHOST_NAME_PATTERN.match(name) or name in {".", ".."} or name.startswith("."):
        raise ArchiveError(
            f"'{name}' is not a valid archive name: use 1 to 50 letters, digits, '-', '_' or '.', "
            "not starting or ending with '.'"
        )
    return name


def _safe_label(text: str) -> str:
    """Characters that YunoHost and every tool accept (S-FB10): others become '-'."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", text).strip("-") or "x"


def _shorten(text: str, limit: int) -> str:
    """Cut predictably; a short hash of the full text keeps two long names apart."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:4]
    return f"{text[: limit - 5]}-{digest}"


def archive_base_name(instance: str, label: str, day: datetime) -> str:
    """`{instance}_{label}_{YYYYMMDD}` (SPEC §3), shortened to leave room for a same-day suffix."""
    instance_part = _shorten(_safe_label(instance), MAX_INSTANCE_IN_NAME)
    room = MAX_NAME_LENGTH - SUFFIX_ROOM - DATE_LENGTH - 2 - len(instance_part)
    label_part = _shorten(_safe_label(label), room)
    return f"{instance_part}_{label_part}_{day:%Y%m%d}"


def choose_archive_name(base: str, started_at: datetime, taken: set[str]) -> str:
    """First archive of the day gets the bare base name; later ones get the run's local time.

    `-HHMMSS` sorts in creation order within a day and says when the run started; a clash in
    the same second adds `-2`, `-3`… Never reuses a name in `taken`.
    """
    if base not in taken:
        return validate_archive_name(base)
    timed = f"{base}-{started_at:%H%M%S}"
    candidate, counter = timed, 2
    while candidate in taken:
        candidate = f"{timed}-{counter}"
        counter += 1
    return validate_archive_name(candidate)


def backup_info(
    *,
    instance_name: str,
    instance_url: str,
    app: str,
    job_type: str,
    created_at: datetime,
    backupmanager_version: str,
    yunohost_version: str,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The BackupManager metadata embedded in every archive (SPEC §3)."""
    info: dict[str, Any] = {
        "instance_name": instance_name,
        "instance_url": instance_url,
        "app": app,
        "type": job_type,
        "created_at": created_at.isoformat(timespec="seconds"),
        "backupmanager_version": backupmanager_version,
        "yunohost_version": yunohost_version,
    }
    info.update(extra or {})
    return info


@dataclass(frozen=True)
class SealedArchive:
    sha256: str
    size_bytes: int
    embedded_backup_info: bool


def _hash_prefix(path: Path, length: int, digest: Any) -> None:
    with path.open("rb") as handle:
        remaining = length
        while remaining > 0:
            block = handle.read(min(CHUNK, remaining))
            if not block:
                raise ArchiveError(f"{path.name} ended early: the archive is truncated")
            digest.update(block)
            remaining -= len(block)


def seal_yunohost_archive(tar_path: Path, info: dict[str, Any]) -> SealedArchive:
    """Verify a tar YunoHost just wrote, append backup_info.json and compute its SHA256.

    YunoHost writes the tar itself, so its bytes cannot be hashed while written: this single
    read verifies the whole file (YUNOHOST.md §7.4 asks for it) and hashes it at the same
    time; the bytes we append are hashed as we write them. A .tar.gz cannot be appended to: it
    is hashed only.
    """
    digest = hashlib.sha256()
    if tar_path.name.endswith(".tar.gz"):
        _hash_prefix(tar_path, tar_path.stat().st_size, digest)
        return SealedArchive(digest.hexdigest(), tar_path.stat().st_size, False)
    try:
        with tarfile.open(tar_path, "r:") as tar:
            names = tar.getnames()
            end_of_members = tar.offset
    except (tarfile.TarError, EOFError, OSError) as error:
        raise ArchiveError(f"{tar_path.name} is not a readable tar archive: {error}") from error
    if "info.json" not in names and "./info.json" not in names:
        raise ArchiveError(f"{tar_path.name} has no info.json: YunoHost could not restore it")
    _hash_prefix(tar_path, end_of_members, digest)
    payload = json.dumps(info, indent=2, sort_keys=True).encode()
    member = tarfile.TarInfo(BACKUP_INFO_MEMBER)
    member.size = len(payload)
    member.mode = 0o644
    member.mtime = int(datetime.fromisoformat(info["created_at"]).timestamp())
    with tarfile.open(tar_path, "a", format=tarfile.PAX_FORMAT) as tar:
        if tar.offset != end_of_members:
            raise ArchiveError(f"{tar_path.name} changed while it was being sealed")
        tar.addfile(member, BytesIO(payload))
    with tar_path.open("rb+") as handle:
        handle.seek(end_of_members)
        while block := handle.read(CHUNK):
            digest.update(block)
        os.fsync(handle.fileno())
    return SealedArchive(digest.hexdigest(), tar_path.stat().st_size, True)


def read_member_json(tar_path: Path, member_name: str) -> dict[str, Any] | None:
    """A small JSON member of an uncompressed or gzip tar, or None when absent or unreadable."""
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            try:
                handle = tar.extractfile(member_name)
            except KeyError:
                return None
            if handle is None:
                return None
            data = json.loads(handle.read(1024 * 1024))
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_info_beside(archives_dir: Path, name: str) -> dict[str, Any] | None:
    """YunoHost's `<name>.info.json` beside the tar (YUNOHOST.md §1.3), or None."""
    try:
        data = json.loads((archives_dir / f"{name}.info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class FoundArchive:
    name: str
    path: Path
    size_bytes: int
    mtime_ns: int
    ctime: float


def archive_name_of(path: Path) -> str | None:
    for suffix in (".tar.gz", ".tar"):
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return None


def scan_archives(archives_dir: Path) -> list[FoundArchive]:
    """The archives YunoHost would list (YUNOHOST.md §1.2), minus our unfinished ones."""
    found: dict[Path, FoundArchive] = {}
    if not archives_dir.is_dir():
        return []
    for entry in archives_dir.iterdir():
        if archive_name_of(entry) is None:
            continue
        real = entry.resolve()
        name = archive_name_of(real)
        if name is None or name.startswith(PARTIAL_PREFIX) or real in found:
            continue
        try:
            stat = real.stat()
        except OSError:
            continue  # a broken symlink: YunoHost drops it silently too
        found[real] = FoundArchive(name, real, stat.st_size, stat.st_mtime_ns, stat.st_ctime)
    return sorted(found.values(), key=lambda archive: (archive.ctime, archive.name))


def remove_archive_files(archives_dir: Path, name: str) -> list[Path]:
    """Delete an archive as YunoHost does (§1.11): the tar, its info.json, a symlink's target."""
    removed: list[Path] = []
    for suffix in (".tar", ".tar.gz", ".info.json"):
        path = archives_dir / f"{name}{suffix}"
        if path.is_symlink():
            target = path.resolve()
            if target.exists():
                target.unlink()
                removed.append(target)
        if path.exists() or path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


class HashingReader:
    """Hashes every byte tarfile reads from the archive: the check and the checksum in one read."""

    def __init__(self, handle: IO[bytes], progress: Callable[[int], None]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.done = 0
        self.progress = progress
        self.last = time.monotonic()

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        self.done += len(data)
        if time.monotonic() - self.last >= 1.0:
            self.last = time.monotonic()
            self.progress(self.done)
        return data
