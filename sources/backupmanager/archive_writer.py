"""Writes YunoHost-compatible archives ourselves: metadata members, streamed data, SHA256 as written."""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import queue
import re
import tarfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from backupmanager.archive import BACKUP_INFO_MEMBER

BLOCK = tarfile.BLOCKSIZE  # 512
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
# Custom system parts live in YunoHost's custom hooks folder (YUNOHOST.md §1.8); the backup
# hook path is only recorded in info.json, the restore hook travels inside the archive.
CUSTOM_HOOKS_DIR = "/etc/yunohost/hooks.d"
# data_<x> with <x> free of '_': YunoHost extracts `data/<x>/` for it (`_` becomes `/`, §1.8).
SYSTEM_PART_PATTERN = re.compile(r"^data_[a-z0-9]+$")
PROGRESS_EVERY_SECONDS = 1.0
# Blocks in flight between the reader, the hashing thread and the writing thread: memory stays
# at a few MiB whatever the archive's size, and the three overlap (doc/benchmarks.md).
PIPELINE_DEPTH = 4
# Reading back what a program writes into the archive (ArchiveWriter.append_output_of): blocks
# of 1 MiB, a short wait when it has not written more yet, and the kernel asked to start
# writing to disk every 32 MiB so that the final fsync finds little left to do.
FOLLOW_BLOCK = 1024 * 1024
FOLLOW_WAIT_SECONDS = 0.005
WRITEBACK_EVERY = 32 * 1024 * 1024
# Leaving SCHED_IDLE takes this capability (root has it): without it, the follower never
# enters it, or the hashing left when the program ends would crawl on a busy server.
CAP_SYS_NICE = 23

T = TypeVar("T")


class ArchiveWriteError(Exception):
    """The archive could not be written as YunoHost needs it."""


def part_directory(part: str) -> str:
    """Where a system part's files live in the archive: `data_custom` → `data/custom`."""
    if not SYSTEM_PART_PATTERN.match(part):
        raise ArchiveWriteError(
            f"'{part}' cannot be a YunoHost system part of ours: use data_<letters and digits>, "
            "without another '_' (YunoHost turns every '_' into '/')"
        )
    return part.replace("_", "/")


def backup_csv(rows: Sequence[tuple[str, str]]) -> bytes:
    """`backup.csv` as YunoHost writes it (§1.6): no header, every field quoted, CRLF."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for source, dest in rows:
        writer.writerow([source, dest])
    return out.getvalue().encode()


def yunohost_info(
    *,
    created_at: int,
    size: int,
    system_parts: dict[str, tuple[str, int]],
    yunohost_version: str,
    description: str = "",
) -> bytes:
    """info.json as YunoHost writes it (§1.5, §7.1, §7.2): one line, default separators.

    `system_parts` maps a part to (the backup hook path recorded for it, its size in bytes).
    size_details is always there: without it YunoHost skips a custom part (§7.2).
    """
    info = {
        "description": description,
        "created_at": int(created_at),
        "size": int(size),
        "size_details": {
            "system": {part: int(part_size) for part, (_, part_size) in system_parts.items()},
            "apps": {},
        },
        "apps": {},
        "system": {part: [hook] for part, (hook, _) in system_parts.items()},
        "from_yunohost_version": yunohost_version,
    }
    return json.dumps(info).encode()


def restore_hook_name(part: str, priority: str = "50") -> str:
    """The hook's file name, the same for the backup and restore hooks (§1.7)."""
    part_directory(part)
    return f"{priority}-{part}"


@dataclass(frozen=True)
class WrittenArchive:
    tar_path: Path
    info_json_path: Path
    sha256: str
    size_bytes: int


class ArchiveWriter:
    """One archive under its partial name: members appended in order, every byte hashed once.

    Use as a context manager: on an exception the partial files are left for the runner to
    remove (it owns partial names), never renamed. `finish()` ends the tar (unless a tar
    stream already did), writes `<partial>.info.json` byte-identical to the inner info.json,
    and fsyncs both files and the folder.
    """

    def __init__(
        self,
        archives_dir: Path,
        partial_name: str,
        *,
        progress: Callable[[int], None] = lambda _done: None,
    ) -> None:
        self.tar_path = archives_dir / f"{partial_name}.tar"
        self.info_json_path = archives_dir / f"{partial_name}.info.json"
        self._digest = hashlib.sha256()
        self._written = 0
        self._progress = progress
        self._last_progress = time.monotonic()
        self._info_json: bytes | None = None
        self._ended = False
        # O_EXCL: a partial name is unique per run; finding one means something is wrong.
        self._fd = os.open(self.tar_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        # Hashing and writing each get a thread (hashlib and os.write release the GIL), so the
        # caller can go on reading a dump tool's output meanwhile (tar writes into the file
        # itself: append_output_of).
        self._to_hash: queue.Queue[bytes | None] = queue.Queue(maxsize=PIPELINE_DEPTH)
        self._to_write: queue.Queue[bytes | None] = queue.Queue(maxsize=PIPELINE_DEPTH)
        self._error: OSError | None = None
        self._follower: _Follower | None = None
        self._threads = [
            threading.Thread(target=self._hash_loop, name="archive-hash", daemon=True),
            threading.Thread(target=self._write_loop, name="archive-write", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _hash_loop(self) -> None:
        while (data := self._to_hash.get()) is not None:
            self._digest.update(data)
            self._to_write.put(data)
            self._to_hash.task_done()
        self._to_write.put(None)
        self._to_hash.task_done()

    def _write_loop(self) -> None:
        unadvised = 0
        while (data := self._to_write.get()) is not None:
            if self._error is None:  # after an error, keep draining so the producer never blocks
                view = memoryview(data)
                try:
                    while view:
                        view = view[os.write(self._fd, view) :]
                    unadvised += len(data)
                    if unadvised >= WRITEBACK_EVERY:
                        end = os.lseek(self._fd, 0, os.SEEK_CUR)
                        start_writeback(self._fd, end - unadvised, end)
                        unadvised = 0
                except OSError as error:
                    self._error = error
            self._to_write.task_done()
        self._to_write.task_done()

    def _wait_written(self) -> None:
        """Every block handed to write() so far is hashed and in the file."""
        self._to_hash.join()
        self._to_write.join()
        if self._error is not None:
            raise self._error

    def append_output_of(self, run_program: Callable[[int], T]) -> T:
        """Let a program (GNU tar) write the archive's next bytes straight into the file.

        Far cheaper than reading its output through a pipe and writing it again: the program
        writes as fast as into a file of its own, while a thread reads the new bytes back behind
        it (from the page cache) to hash them. `run_program` gets the descriptor to use as the
        program's stdout (it shares our file offset, so the bytes land right after ours) and
        returns once the program has exited.
        """
        self.start_direct()
        try:
            result = run_program(self._fd)
        except BaseException:
            self.abandon_direct()
            raise
        self.end_direct()
        return result

    def start_direct(
        self, *, observe: Callable[[int, bytes], None] | None = None, committed_only: bool = False
    ) -> DirectAppend:
        """From here the archive's bytes are appended without write(): by a program sharing our
        descriptor (tar) or by the kernel (splice). A follower thread hashes them behind.

        committed_only: hash only up to what DirectAppend.commit() allowed (members whose header
        is rewritten once their size is known); otherwise up to the file's end. observe(offset,
        block) sees every hashed block (row counts of a dump).
        """
        if self._ended:
            raise ArchiveWriteError("the archive already ended")
        self._wait_written()
        limit = self._written if committed_only else None
        self._follower = _Follower(self.tar_path, self._written, self._digest, observe, limit)
        return DirectAppend(self._fd, self._follower, self._written)

    def end_direct(self) -> None:
        """The direct appending is over: hash what is left, go on writing after it."""
        follower, self._follower = self._follower, None
        assert follower is not None
        follower.finish()
        if os.fstat(self._fd).st_size != follower.position:
            raise ArchiveWriteError("the archive holds bytes that were not hashed")
        self._written = follower.position
        os.lseek(self._fd, self._written, os.SEEK_SET)  # splice and pwrite leave the offset

    def abandon_direct(self) -> None:
        """Direct appending failed: stop the follower (the failure is the one to report)."""
        follower, self._follower = self._follower, None
        if follower is not None:
            with contextlib.suppress(Exception):  # a read or observer error would hide the cause
                follower.finish()

    def report_progress(self) -> None:
        """Pass on the bytes written so far, at most every PROGRESS_EVERY_SECONDS."""
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_EVERY_SECONDS:
            self._last_progress = now
            follower = self._follower
            self._progress(follower.position if follower is not None else self._written)

    def _drain(self) -> None:
        """Wait until every block is hashed and written; raise a write error (ENOSPC…)."""
        if self._threads:
            self._to_hash.put(None)
            for thread in self._threads:
                thread.join()
            self._threads = []
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        if self._threads:
            # The caller is already failing; partial files are the runner's to remove.
            with contextlib.suppress(OSError):
                self._drain()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def bytes_written(self) -> int:
        return self._written

    def write(self, data: bytes) -> None:
        """Raw tar bytes (ours or a tar program's output): hashed, then written, in order."""
        if self._ended:
            raise ArchiveWriteError("the archive already ended")
        if self._error is not None:
            raise self._error
        self._to_hash.put(bytes(data))
        self._written += len(data)
        self.report_progress()

    def add_bytes(self, name: str, payload: bytes, *, mode: int = 0o644, mtime: int) -> None:
        """A small regular file member (metadata, a hook), PAX format like YunoHost's tars."""
        member = tarfile.TarInfo(name)
        member.size = len(payload)
        member.mode = mode
        member.mtime = mtime
        member.uname = member.gname = "root"
        self.write(member.tobuf(format=tarfile.PAX_FORMAT))
        self.write(payload + b"\0" * (-len(payload) % BLOCK))

    def add_info_json(self, payload: bytes, *, mtime: int) -> None:
        """info.json: kept to be written byte-identical beside the tar (§1.5, §1.7)."""
        self._info_json = payload
        self.add_bytes("info.json", payload, mtime=mtime)

    def add_backup_info(self, info: dict[str, Any], *, mtime: int) -> None:
        """BackupManager's own metadata (SPEC §3)."""
        payload = json.dumps(info, indent=2, sort_keys=True).encode()
        self.add_bytes(BACKUP_INFO_MEMBER, payload, mtime=mtime)

    def mark_ended(self) -> None:
        """The last bytes written were a complete tar's end (a tar program's own output)."""
        self._ended = True

    def finish(self) -> WrittenArchive:
        if self._info_json is None:
            raise ArchiveWriteError("an archive without info.json cannot be restored by YunoHost")
        if not self._ended:
            self.write(END_OF_ARCHIVE)
            self._ended = True
        self._drain()
        self._progress(self._written)
        os.fsync(self._fd)
        self.close()
        with self.info_json_path.open("wb") as handle:
            handle.write(self._info_json)
            handle.flush()
            os.fsync(handle.fileno())
        directory = os.open(self.tar_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return WrittenArchive(
            self.tar_path, self.info_json_path, self._digest.hexdigest(), self._written
        )


def start_writeback(fd: int, start: int, end: int) -> None:
    """Ask the kernel to start writing a range of the archive to disk now, without waiting.

    POSIX_FADV_DONTNEED starts the writeback of dirty pages and frees the pages already on disk,
    so the final fsync finds little left to do and a big backup does not push everything else
    out of the page cache. Only a hint: a filesystem that refuses it costs speed, not the backup.
    """
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)


class DirectAppend:
    """The archive while bytes are appended without write() (ArchiveWriter.start_direct).

    Bytes are placed at explicit offsets from `start` (pwrite, splice): the follower hashes
    them once commit() says they are final.
    """

    def __init__(self, fd: int, follower: _Follower, start: int) -> None:
        self.fd = fd
        self.start = start
        self._follower = follower
        self._can_splice = True

    def write_at(self, data: bytes, offset: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def splice_at(self, pipe_fd: int, count: int, offset: int) -> int:
        """Up to `count` bytes moved from a pipe into the archive; 0 at the pipe's end.

        The kernel moves them (splice) unless the archives' filesystem cannot take a splice
        (some FUSE or network filesystems answer EINVAL): then they are read and written here.
        """
        if self._can_splice:
            try:
                return os.splice(pipe_fd, self.fd, count, offset_dst=offset)
            except OSError as error:
                if error.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                self._can_splice = False
        data = os.read(pipe_fd, count)
        self.write_at(data, offset)
        return len(data)

    def commit(self, end: int) -> None:
        """The bytes before `end` are final: the follower may hash them."""
        self._follower.allow(end)


def _may_leave_idle_priority() -> bool:
    """Whether this process holds CAP_SYS_NICE (needed to come back from SCHED_IDLE)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_SYS_NICE & 1)
    return False


def _set_policy(thread: threading.Thread, policy: int) -> bool:
    """Give a running thread a scheduling policy; False if the system refused."""
    assert thread.native_id is not None
    try:
        os.sched_setscheduler(thread.native_id, policy, os.sched_param(0))
    except OSError:  # refused, or the thread has just ended: only speed is at stake
        return False
    return True


class _Follower:
    """Hashes a file from `start` as bytes are appended to it, until told it is done.

    A read never returns bytes beyond the file's size, and the kernel grows the size only
    after copying the written bytes in: what is read is what was written. With a `limit`, it
    reads no further than allow() said (bytes that may still be rewritten wait). Every
    WRITEBACK_EVERY bytes it starts the writeback of what it has hashed. It runs at idle
    priority until finish() when the process may come back from it (CAP_SYS_NICE).
    """

    def __init__(
        self,
        path: Path,
        start: int,
        digest: Any,
        observe: Callable[[int, bytes], None] | None = None,
        limit: int | None = None,
    ) -> None:
        self.position = start
        self._digest = digest
        self._observe = observe
        self._limit = limit
        self._fd = os.open(path, os.O_RDONLY)
        self._advised = start
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="archive-follow", daemon=True)
        self._thread.start()
        # While the program writes, our reading, hashing and counting take only CPU time nobody
        # else wants: on 2 CPUs a dump tool and its server leave little, and taking a fair
        # share would slow the dump (and the server's own services) by more than it costs us
        # (doc/benchmarks.md). Set from here, not by the thread: finish() must come after it.
        self._idle = _may_leave_idle_priority() and _set_policy(self._thread, os.SCHED_IDLE)

    def allow(self, limit: int) -> None:
        self._limit = limit

    def _loop(self) -> None:
        view = memoryview(bytearray(FOLLOW_BLOCK))
        try:
            while True:
                last_pass = self._done.is_set()  # read to the end once more after the program
                wanted = FOLLOW_BLOCK
                if self._limit is not None:
                    wanted = min(wanted, self._limit - self.position)
                count = self._read(view, wanted) if wanted > 0 else 0
                if count:
                    self.position += count
                    if self.position - self._advised >= WRITEBACK_EVERY:
                        self._start_writeback()
                elif last_pass:
                    return
                else:
                    self._done.wait(FOLLOW_WAIT_SECONDS)
        except BaseException as error:  # handed to finish() in the caller's thread
            self._error = error

    def _read(self, view: memoryview, wanted: int) -> int:
        if self._observe is None:
            count = os.preadv(self._fd, [view[:wanted]], self.position)
            self._digest.update(view[:count])
            return count
        block = os.pread(self._fd, wanted, self.position)  # bytes the observer may keep
        self._digest.update(block)
        self._observe(self.position, block)
        return len(block)

    def _start_writeback(self) -> None:
        start_writeback(self._fd, self._advised, self.position)
        self._advised = self.position

    def finish(self) -> None:
        """Appending is over: hash what is left, then stop; raise a read or observer error."""
        self._done.set()
        if self._idle and self._thread.is_alive():  # the rest is on the job's way: full speed
            _set_policy(self._thread, os.SCHED_OTHER)
        self._thread.join()
        os.close(self._fd)
        if self._error is not None:
            raise self._error
