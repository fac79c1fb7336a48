"""Checks every member of an archive before anything is extracted (DESIGN §4, §6; YUNOHOST.md §7.5)."""

from __future__ import annotations

import json
import os
import posixpath
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backupmanager.archive import BACKUP_INFO_MEMBER, CHUNK, HashingReader

METADATA_MEMBERS = ("info.json", "backup.csv", BACKUP_INFO_MEMBER)
HOOKS_PREFIX = "hooks/restore/"
MAX_METADATA_BYTES = 4 * 1024 * 1024
EXAMPLES = 10


class UnsafeArchive(Exception):
    """The archive has a member that could write outside the restore target, or is malformed."""


@dataclass
class ArchiveScan:
    """What the archive holds and what extracting it would do to the target."""

    info: dict[str, Any] = field(default_factory=dict)  # YunoHost's info.json
    backup_info: dict[str, Any] = field(default_factory=dict)  # ours (SPEC §3)
    entries: int = 0
    files: int = 0
    bytes: int = 0
    existing: int = 0  # non-folders already present at their restore path: overwritten
    existing_examples: list[str] = field(default_factory=list)
    sha256: str | None = None


def _clean_name(name: str) -> str:
    if not name or name.startswith("/") or "\0" in name:
        raise UnsafeArchive(f"member '{name}' has an absolute or empty name")
    parts = name.rstrip("/").split("/")
    if ".." in parts or "." in parts or "" in parts:
        raise UnsafeArchive(f"member '{name}' has '..', '.' or an empty part in its path")
    return "/".join(parts)


def declared_paths(backup_info: dict[str, Any]) -> list[str]:
    """The folders the archive says it holds, as names relative to `/` (checked)."""
    manifest = backup_info.get("custom_dir")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("paths"), list):
        raise UnsafeArchive(
            "backup_info.json does not list the archive's folders (custom_dir.paths)"
        )
    paths = []
    for path in manifest["paths"]:
        if not isinstance(path, str) or not path.startswith("/") or path.strip("/") == "":
            raise UnsafeArchive(f"backup_info.json names a suspicious folder: {path!r}")
        paths.append(_clean_name(path.lstrip("/")))
    return paths


class _Checker:
    """Member-by-member rules; keeps only the symlinks seen, so memory stays small."""

    def __init__(self, part_dir: str, target: Path | None) -> None:
        self.part_prefix = part_dir.rstrip("/") + "/"
        self.target = target
        self.roots: list[str] | None = None  # known once backup_info.json is read
        self.symlinks: set[str] = set()
        self.scan = ArchiveScan()

    def check(self, member: tarfile.TarInfo) -> str | None:
        """Validate one member; returns its path relative to the target for data members."""
        name = _clean_name(member.name)
        if name in METADATA_MEMBERS:
            if not member.isreg():
                raise UnsafeArchive(f"'{name}' must be a regular file")
            return None
        if name.startswith(HOOKS_PREFIX) and "/" not in name[len(HOOKS_PREFIX) :]:
            if not member.isreg():
                raise UnsafeArchive(f"restore hook '{name}' must be a regular file")
            return None
        if not name.startswith(self.part_prefix):
            raise UnsafeArchive(f"unexpected member '{name}': not under {self.part_prefix}")
        if self.roots is None:
            raise UnsafeArchive(f"'{name}' comes before backup_info.json: not one of our archives")
        relative = name[len(self.part_prefix) :]
        if not any(relative == root or relative.startswith(root + "/") for root in self.roots):
            raise UnsafeArchive(f"member '{name}' lies outside the folders the archive declares")
        self._check_type(member, name, relative)
        return relative

    def _check_type(self, member: tarfile.TarInfo, name: str, relative: str) -> None:
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in self.symlinks:
                raise UnsafeArchive(f"member '{name}' would be written through a symbolic link")
        if member.ischr() or member.isblk():
            raise UnsafeArchive(f"member '{name}' is a device node: refused")
        if member.issym():
            target = member.linkname
            if not target.startswith("/"):
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(relative), target))
                if resolved == ".." or resolved.startswith("../"):
                    raise UnsafeArchive(
                        f"symbolic link '{name}' -> '{target}' points outside the restore target"
                    )
            self.symlinks.add(relative)
        elif member.islnk():
            link = _clean_name(member.linkname)
            if not link.startswith(self.part_prefix):
                raise UnsafeArchive(
                    f"hard link '{name}' -> '{member.linkname}' points outside the archive's data"
                )
            link_parts = link[len(self.part_prefix) :].split("/")
            for depth in range(1, len(link_parts) + 1):
                if "/".join(link_parts[:depth]) in self.symlinks:
                    raise UnsafeArchive(f"hard link '{name}' goes through a symbolic link")
        elif not (member.isreg() or member.isdir() or member.isfifo()):
            raise UnsafeArchive(f"member '{name}' has an unsupported type ({member.type!r})")

    def account(self, member: tarfile.TarInfo, relative: str) -> None:
        scan = self.scan
        scan.entries += 1
        if member.isreg():
            scan.files += 1
            scan.bytes += member.size
        if (
            self.target is not None
            and not member.isdir()
            and os.path.lexists(self.target / relative)
        ):
            scan.existing += 1
            if len(scan.existing_examples) < EXAMPLES:
                scan.existing_examples.append(str(self.target / relative))

    def read_metadata(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        if member.name not in ("info.json", BACKUP_INFO_MEMBER):
            return
        if member.size > MAX_METADATA_BYTES:
            raise UnsafeArchive(f"'{member.name}' is too big to be metadata")
        handle = tar.extractfile(member)
        try:
            data = json.loads(handle.read() if handle is not None else b"")
        except ValueError:
            raise UnsafeArchive(f"'{member.name}' is not valid JSON") from None
        if not isinstance(data, dict):
            raise UnsafeArchive(f"'{member.name}' is not a JSON object")
        if member.name == "info.json":
            if self.scan.info:
                raise UnsafeArchive("the archive has two info.json members")
            self.scan.info = data
        else:
            if self.roots is not None:
                raise UnsafeArchive("the archive has two backup_info.json members")
            self.scan.backup_info = data
            self.roots = declared_paths(data)


def scan_archive(
    path: Path,
    *,
    part_dir: str,
    target: Path | None,
    verify: bool,
    progress: Callable[[int], None] = lambda _done: None,
) -> ArchiveScan:
    """Read every member header; with `verify`, also every byte (SHA256) in the same read.

    `target`: where the data would be extracted, to count what already exists there. Raises
    UnsafeArchive at the first member that breaks a rule. Members are not kept in memory.
    """
    checker = _Checker(part_dir, target)
    with path.open("rb") as handle:
        reader = HashingReader(handle, progress)
        try:
            # Stream mode reads every byte through the hashing reader; "r:" seeks over data.
            source: Any = reader if verify else handle
            with tarfile.open(fileobj=source, mode="r|" if verify else "r:") as tar:
                while (member := tar.next()) is not None:
                    # tarfile keeps every header it read (an attribute typeshed omits): drop them
                    tar.members = []  # type: ignore[attr-defined]
                    relative = checker.check(member)
                    checker.read_metadata(tar, member)
                    if relative is not None:
                        checker.account(member, relative)
        except (tarfile.TarError, EOFError, OSError) as error:
            raise UnsafeArchive(f"{path.name} is not a readable tar archive: {error}") from None
        if verify:
            while reader.read(CHUNK):
                pass
            checker.scan.sha256 = reader.digest.hexdigest()
            progress(reader.done)
    if not checker.scan.info:
        raise UnsafeArchive(f"{path.name} has no info.json: it is not a YunoHost archive")
    if checker.roots is None:
        raise UnsafeArchive(
            f"{path.name} has no backup_info.json: it was not made by BackupManager"
        )
    return checker.scan
