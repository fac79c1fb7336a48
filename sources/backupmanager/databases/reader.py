"""Reads a database archive: every member checked first, then the dump streamed and verified."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import zstandard

from backupmanager.archive import BACKUP_INFO_MEMBER, CHUNK, HashingReader
from backupmanager.databases.common import Contents
from backupmanager.databases.layout import FORMAT, PARTS, accounts_member, dump_prefix, hook_name

MAX_METADATA_BYTES = 16 * 1024 * 1024
DATABASE_TYPES = ("mysql", "postgresql")


class DumpArchiveError(Exception):
    """The archive is not a readable database archive of ours, or is damaged."""


@dataclass
class DumpArchive:
    path: Path
    engine: str
    meta: dict[str, Any]  # backup_info.json "database"
    backup_info: dict[str, Any]
    info: dict[str, Any]  # YunoHost's info.json
    accounts: dict[str, Any] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)

    @property
    def database(self) -> str:
        return str(self.meta["database"])

    @property
    def compressed(self) -> bool:
        return self.meta.get("compression") == "zstd"

    @property
    def recorded_contents(self) -> Contents | None:
        recorded = self.meta.get("contents")
        if not isinstance(recorded, dict):
            return None
        tables = {str(name): int(count) for name, count in dict(recorded["tables"]).items()}
        return Contents(tables, [str(view) for view in recorded.get("views", [])])


def archive_type(path: Path) -> str | None:
    """`type` from backup_info.json (read from the tar's headers, not its data), or None."""
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                if member.name == BACKUP_INFO_MEMBER and member.isreg():
                    handle = tar.extractfile(member)
                    data = json.loads(handle.read(MAX_METADATA_BYTES) if handle else b"")
                    return str(data.get("type")) if isinstance(data, dict) else None
    except (tarfile.TarError, EOFError, OSError, ValueError):
        return None
    return None


def _read_json(tar: tarfile.TarFile, member: tarfile.TarInfo) -> dict[str, Any]:
    if not member.isreg() or member.size > MAX_METADATA_BYTES:
        raise DumpArchiveError(f"'{member.name}' is not a small regular file")
    handle = tar.extractfile(member)
    try:
        data = json.loads(handle.read() if handle is not None else b"")
    except ValueError:
        raise DumpArchiveError(f"'{member.name}' is not valid JSON") from None
    if not isinstance(data, dict):
        raise DumpArchiveError(f"'{member.name}' is not a JSON object")
    return data


def open_dump_archive(path: Path) -> DumpArchive:
    """Check every member's name and type from the headers (the data is not read)."""
    metadata: dict[str, dict[str, Any]] = {}
    seen: list[tarfile.TarInfo] = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                seen.append(member)
                if member.name in ("info.json", BACKUP_INFO_MEMBER) or member.name.endswith(
                    ".accounts.json"
                ):
                    metadata[member.name] = _read_json(tar, member)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise DumpArchiveError(f"{path.name} is not a readable tar archive: {error}") from None
    backup_info = metadata.get(BACKUP_INFO_MEMBER, {})
    engine = backup_info.get("type")
    meta = backup_info.get("database")
    if engine not in DATABASE_TYPES or not isinstance(meta, dict):
        raise DumpArchiveError(f"{path.name} is not a database archive made by BackupManager")
    if meta.get("format") != FORMAT or not isinstance(meta.get("database"), str):
        raise DumpArchiveError(f"{path.name} has a database format this version cannot read")
    if "info.json" not in metadata:
        raise DumpArchiveError(f"{path.name} has no info.json: it is not a YunoHost archive")
    archive = DumpArchive(path, str(engine), meta, backup_info, metadata["info.json"])
    _check_members(archive, seen, metadata)
    return archive


def _check_members(
    archive: DumpArchive, seen: list[tarfile.TarInfo], metadata: dict[str, dict[str, Any]]
) -> None:
    """Only the members we write, each a regular file, the dump's pieces numbered in order."""
    engine, database = archive.engine, archive.database
    prefix = dump_prefix(engine, database, "zstd" if archive.compressed else "none")
    allowed = {
        "info.json",
        "backup.csv",
        BACKUP_INFO_MEMBER,
        f"hooks/restore/{hook_name(engine)}",
        accounts_member(engine, database),
    }
    piece = re.compile(re.escape(prefix) + r"(\d{6})$")
    for member in seen:
        if not member.isreg():
            raise DumpArchiveError(f"member '{member.name}' is not a regular file")
        match = piece.match(member.name)
        if match:
            if int(match[1]) != len(archive.members) + 1:
                raise DumpArchiveError(f"member '{member.name}' is out of order")
            archive.members.append(member.name)
        elif member.name not in allowed:
            raise DumpArchiveError(f"unexpected member '{member.name}' in a database archive")
    if not archive.members:
        raise DumpArchiveError(f"{archive.path.name} holds no dump")
    part = PARTS[engine]
    if part not in dict(archive.info.get("system") or {}):
        raise DumpArchiveError(f"info.json does not declare the {part} part")
    archive.accounts = metadata.get(accounts_member(engine, database), {})


class _Pieces:
    """The dump's members, concatenated, as a file object (zstd reads from it)."""

    def __init__(self, tar: tarfile.TarFile, names: list[str]) -> None:
        self.blocks = self._blocks(tar, names)
        self.buffer = b""

    @staticmethod
    def _blocks(tar: tarfile.TarFile, names: list[str]) -> Iterator[bytes]:
        wanted = iter(names)
        expected = next(wanted, None)
        while expected is not None and (member := tar.next()) is not None:
            tar.members = []  # type: ignore[attr-defined]  # tarfile keeps every header otherwise
            if member.name != expected:
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            while block := handle.read(CHUNK):
                yield block
            expected = next(wanted, None)
        if expected is not None:
            raise DumpArchiveError(f"member '{expected}' is missing: the archive is truncated")

    def read(self, size: int = -1) -> bytes:
        if not self.buffer:
            self.buffer = next(self.blocks, b"")
        if size < 0 or size >= len(self.buffer):
            data, self.buffer = self.buffer, b""
            return data
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data


def dump_blocks(
    archive: DumpArchive,
    *,
    expected_sha256: str | None,
    progress: Callable[[int], None] = lambda _done: None,
) -> Iterator[bytes]:
    """The dump, decompressed, block by block; raises DumpArchiveError once all is read if the
    archive's SHA256, the zstd checksum or the dump's length says it is damaged."""
    with archive.path.open("rb") as handle:
        reader = HashingReader(handle, progress)
        try:
            # Big reads: tarfile's stream mode reads 10 KiB at a time otherwise.
            with tarfile.open(  # type: ignore[call-overload]
                fileobj=reader, mode="r|", bufsize=CHUNK
            ) as tar:
                pieces = _Pieces(tar, archive.members)
                total = 0
                if archive.compressed:
                    stream = zstandard.ZstdDecompressor().stream_reader(
                        cast("IO[bytes]", pieces), read_size=CHUNK
                    )
                    while block := stream.read(CHUNK):
                        total += len(block)
                        yield block
                else:
                    while block := pieces.read(CHUNK):
                        total += len(block)
                        yield block
                while tar.next() is not None:
                    tar.members = []
            while reader.read(CHUNK):
                pass
        except (tarfile.TarError, EOFError, zstandard.ZstdError) as error:
            raise DumpArchiveError(f"the dump in {archive.path.name} is damaged: {error}") from None
    progress(reader.done)
    if expected_sha256 and reader.digest.hexdigest() != expected_sha256:
        raise DumpArchiveError(
            f"the archive's SHA256 ({reader.digest.hexdigest()}) is not the one recorded when it "
            f"was written ({expected_sha256}): it is damaged or was replaced"
        )
    if total != archive.meta.get("dump_bytes"):
        raise DumpArchiveError(
            f"the dump in {archive.path.name} has {total} bytes, {archive.meta.get('dump_bytes')} "
            "were written: it is truncated or damaged"
        )
