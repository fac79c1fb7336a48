"""Database archives: where the dump sits in a YunoHost-compatible tar, and the part's restore hook.

    data/mysqldump/<db>.sql.zst.000001 …   the dump (zstd stream or plain), cut in members
    data/mysqldump/<db>.accounts.json      users/roles and grants to recreate (password hashes)
    backup.csv, hooks/restore/50-data_mysqldump, info.json, backup_info.json   (at the end)

A tar member's size comes before its bytes, and a dump's size is known only at its end: the
stream is cut into members of at most CHUNK_BYTES (4 MiB), so the archive is written once,
hashed as written, with no temporary file. Compressed, each member is buffered in memory
(CompressedMembers); uncompressed, the kernel splices it from the tool's pipe into the archive behind
room left for its header, written once the member is complete (SplicedMembers). Concatenating
the members in order gives the dump back (`cat …sql.zst.* | zstd -d`). The metadata goes last
because the row counts (restore drills) are known only when the dump ends.
"""

from __future__ import annotations

import queue
import re
import tarfile
import threading
from collections import deque
from collections.abc import Callable

import zstandard

from backupmanager.archive_writer import ArchiveWriteError, ArchiveWriter, part_directory

CHUNK_BYTES = 4 * 1024 * 1024  # memory held per member; members of 4 MiB add 0.01 % of headers
ZSTD_LEVEL = 3  # DESIGN §6: about 8 times faster than gzip -6, with a better ratio
HOOK_PRIORITY = "50"
PARTS = {"mysql": "data_mysqldump", "postgresql": "data_pgdump"}
DUMP_EXTENSIONS = {"mysql": ".sql", "postgresql": ".pgdump"}
TOOLS = {"mysql": "mysqldump", "postgresql": "pg_dump"}
FORMAT = 1
# zstd's own threads buffer several MiB per job; one Python thread of ours (zstandard releases
# the GIL while compressing) overlaps compression with reading the pipe for much less memory.
COMPRESS_QUEUE_DEPTH = 4
Watcher = Callable[[bytes], None]  # sees the dump's bytes in order (row counts, format checks)


def safe_file_name(database: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", database).strip(".-") or "database"


def dump_prefix(engine: str, database: str, compression: str) -> str:
    """Member names of the dump's pieces, before their 6-digit number."""
    directory = part_directory(PARTS[engine])
    extension = DUMP_EXTENSIONS[engine] + (".zst" if compression == "zstd" else "")
    return f"{directory}/{safe_file_name(database)}{extension}."


def accounts_member(engine: str, database: str) -> str:
    return f"{part_directory(PARTS[engine])}/{safe_file_name(database)}.accounts.json"


def hook_name(engine: str) -> str:
    return f"{HOOK_PRIORITY}-{PARTS[engine]}"


def restore_hook(engine: str) -> str:
    """YunoHost's restore of the part: explains how to restore, and fails on purpose.

    SPEC §7: YunoHost's webadmin does not restore databases. The hook must be the same for every
    archive (YunoHost keeps the first copy it installs), so it names nothing archive-specific.
    """
    part, tool = PARTS[engine], TOOLS[engine]
    label = "MariaDB/MySQL" if engine == "mysql" else "PostgreSQL"
    return f"""#!/bin/bash
# BackupManager: restore hook of the {part} system part (hook format {FORMAT}).
# The archive holds a {label} dump made with {tool}. YunoHost cannot load it by itself:
# BackupManager restores it completely (database, owner, grants), after showing its plan.
workdir="${{1:-.}}"
echo "This archive holds a {label} dump made by BackupManager:" >&2
ls -1 "$workdir/{part_directory(part)}" >&2 2>/dev/null || true
echo "YunoHost cannot restore it. Restore it with BackupManager instead:" >&2
echo "  backupmanager restore ARCHIVE_NAME [--database NEW_NAME]   (or from its dashboard)" >&2
exit 1
"""


class CompressedMembers:
    """Receives the dump as it streams: compresses it (zstd, in a thread), cuts it into members.

    Blocks go through a small queue to the compressing thread, which cuts the compressed stream
    into members and hands them to the ArchiveWriter (whose own threads hash and write). Order
    is kept: one producer, one consumer. An error in the thread is raised by the next `write`
    or by `finish`.
    """

    def __init__(self, writer: ArchiveWriter, prefix: str, *, mtime: int) -> None:
        self.writer = writer
        self.prefix = prefix
        self.mtime = mtime
        self.members: list[str] = []
        self.dump_bytes = 0  # what the tool wrote
        self.stored_bytes = 0  # what the archive holds (compressed)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._watchers: list[Watcher] = []
        self._compressor = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, write_checksum=True
        ).compressobj()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=COMPRESS_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = threading.Thread(
            target=self._compress_loop, name="dump-zstd", daemon=True
        )
        self._thread.start()

    def _compress_loop(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so that the producer never blocks forever
            try:
                self._store(self._compressor.compress(data))
            except BaseException as error:  # handed to the producer's thread
                self._error = error
        if self._error is None:
            try:
                self._store(self._compressor.flush())
            except BaseException as error:
                self._error = error

    def watch(self, watcher: Watcher) -> None:
        """`watcher` gets every block of the dump, in order, before compression."""
        self._watchers.append(watcher)

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        for watcher in self._watchers:
            watcher(data)
        self.dump_bytes += len(data)
        self._queue.put(data)

    def _store(self, data: bytes) -> None:
        while data:
            room = CHUNK_BYTES - self._pending_bytes
            piece, data = (data, b"") if len(data) <= room else (data[:room], data[room:])
            self._pending.append(piece)
            self._pending_bytes += len(piece)
            if self._pending_bytes == CHUNK_BYTES:
                self._flush_member()

    def _flush_member(self) -> None:
        """One member: its header, then the buffered pieces as they are (no joined copy)."""
        if not self._pending_bytes and self.members:
            return
        name = next_member_name(self.prefix, self.members)
        self.writer.write(member_header(name, self._pending_bytes, self.mtime))
        for piece in self._pending:
            self.writer.write(piece)
        padding = -self._pending_bytes % tarfile.BLOCKSIZE
        if padding:
            self.writer.write(b"\0" * padding)
        self.members.append(name)
        self.stored_bytes += self._pending_bytes
        self._pending, self._pending_bytes = [], 0

    def close(self) -> None:
        """Stop the thread (after the last block, or when the backup failed)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def finish(self) -> None:
        self.close()
        if self._error is not None:
            raise self._error
        self._flush_member()


def next_member_name(prefix: str, members: list[str]) -> str:
    """The next piece of a dump: its number, from 1, on six digits (they sort in order)."""
    return f"{prefix}{len(members) + 1:06d}"


def member_header(name: str, size: int, mtime: int) -> bytes:
    """A dump piece's tar header (PAX like YunoHost's tars; same length whatever the size)."""
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = size, 0o600, mtime
    member.uname = member.gname = "root"
    return member.tobuf(format=tarfile.PAX_FORMAT)


class SplicedMembers:
    """An uncompressed dump moved by the kernel from the tool's pipe into the archive (splice).

    The bytes never pass through Python on their way in: each member's data is spliced after
    room left for its header, the header is written once its size is known (CHUNK_BYTES, or
    less for the last), and the member is committed. The writer's follower thread then reads
    it back from the page cache to hash it and hands its data to the watchers (row counts).
    Members named as CompressedMembers names them, so restores do not care which one wrote them.
    """

    def __init__(self, writer: ArchiveWriter, prefix: str, *, mtime: int) -> None:
        self.writer = writer
        self.prefix = prefix
        self.mtime = mtime
        self.members: list[str] = []
        self.dump_bytes = 0
        self._watchers: list[Watcher] = []
        self._data: deque[tuple[int, int]] = deque()  # committed data ranges not yet watched
        self._direct = writer.start_direct(observe=self._observe, committed_only=True)
        self._member_at = self._direct.start
        self._in_member = 0
        self._header_bytes = len(member_header(next_member_name(prefix, []), CHUNK_BYTES, mtime))
        self._open = True

    @property
    def stored_bytes(self) -> int:
        return self.dump_bytes

    def watch(self, watcher: Watcher) -> None:
        """`watcher` gets every block of the dump, in order, from the follower's thread."""
        self._watchers.append(watcher)

    def take(self, pipe_fd: int) -> int:
        """Move what the pipe holds (up to the member's end) into the archive; 0 at the end."""
        data_at = self._member_at + self._header_bytes
        room = CHUNK_BYTES - self._in_member
        moved = self._direct.splice_at(pipe_fd, room, data_at + self._in_member)
        self._in_member += moved
        self.dump_bytes += moved
        if self._in_member == CHUNK_BYTES:
            self._end_member()
        return moved

    def _end_member(self) -> None:
        name = next_member_name(self.prefix, self.members)
        header = member_header(name, self._in_member, self.mtime)
        if len(header) != self._header_bytes:
            raise ArchiveWriteError("a dump member's header changed length")
        data_at = self._member_at + self._header_bytes
        data_end = data_at + self._in_member
        padding = -self._in_member % tarfile.BLOCKSIZE
        self._direct.write_at(header, self._member_at)
        self._direct.write_at(b"\0" * padding, data_end)
        self._data.append((data_at, data_end))
        self.members.append(name)
        self._member_at, self._in_member = data_end + padding, 0
        self._direct.commit(self._member_at)

    def _observe(self, offset: int, block: bytes) -> None:
        """A hashed block of the archive: its parts that are dump data go to the watchers."""
        end = offset + len(block)
        while self._data:
            start, stop = self._data[0]
            if start >= end:
                return
            low, high = max(start, offset), min(stop, end)
            if low < high:
                part = (
                    block if (low, high) == (offset, end) else block[low - offset : high - offset]
                )
                for watcher in self._watchers:
                    watcher(part)
            if stop > end:
                return
            self._data.popleft()

    def finish(self) -> None:
        """The tool ended: the last member (an empty one for an empty dump), then the follower."""
        if self._in_member or not self.members:
            self._end_member()
        self._open = False
        self.writer.end_direct()

    def close(self) -> None:
        """After a failure: stop the follower; the partial archive is the runner's to remove."""
        if self._open:
            self._open = False
            self.writer.abandon_direct()
