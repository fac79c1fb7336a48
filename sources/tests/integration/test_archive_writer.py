"""ArchiveWriter: every byte of the archive hashed once, whether we write it or a program does."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from backupmanager import archive_writer, process
from backupmanager.archive_writer import ArchiveWriteError, ArchiveWriter
from backupmanager.databases import layout
from tests.helpers import wait_for

# Writes 3 MiB + 123 bytes to stdout in uneven pieces with pauses, like tar on a busy disk.
SLOW_WRITER = """
import os, sys, time
data = bytes(range(256)) * 4096
for index in range(12):
    os.write(1, data[: 262144 + (index % 3)])
    time.sleep(0.01 * (index % 2))
os.write(1, b"x" * (123 - 12 // 3 * 3))
"""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_programs_output_is_hashed_as_it_lands_in_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_writer, "WRITEBACK_EVERY", 100_000)  # exercise the writeback path
    progress: list[int] = []
    with ArchiveWriter(tmp_path, "partial", progress=progress.append) as writer:
        writer.add_info_json(b'{"size": 0}', mtime=0)
        result = writer.append_output_of(
            lambda fd: process.write_into(
                (sys.executable, "-c", SLOW_WRITER), stdout_fd=fd, on_tick=writer.report_progress
            )
        )
        assert result.returncode == 0
        writer.add_bytes("after.txt", b"written by us after the program\n", mtime=0)
        written = writer.finish()
    tar_path = tmp_path / "partial.tar"
    assert written.size_bytes == tar_path.stat().st_size
    assert written.sha256 == file_sha256(tar_path)
    content = tar_path.read_bytes()
    # Our info.json member (header + one block), then the program's bytes, then ours again.
    program_output = content[1024 : 1024 + 12 * 262144 + 12 + 111]
    assert program_output.endswith(b"x" * 111)
    assert content[1024 + len(program_output) :].startswith(b"after.txt")
    assert progress[-1] == written.size_bytes


def test_our_own_blocks_are_hashed_and_written_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(archive_writer, "WRITEBACK_EVERY", 3000)
    with ArchiveWriter(tmp_path, "partial") as writer:
        writer.add_info_json(b"{}", mtime=0)
        for index in range(50):
            writer.add_bytes(f"m{index}", bytes([index]) * (1000 + index), mtime=0)
        written = writer.finish()
    tar_path = tmp_path / "partial.tar"
    assert written.sha256 == file_sha256(tar_path)
    with tarfile.open(tar_path) as archive:
        names = archive.getnames()
        assert names == ["info.json"] + [f"m{index}" for index in range(50)]
        member = archive.extractfile("m49")
        assert member is not None and member.read() == bytes([49]) * 1049


def test_a_failing_program_is_reported_not_raised(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, "partial") as writer:
        writer.add_info_json(b"{}", mtime=0)
        script = "import os, sys; os.write(1, b'half'); sys.exit(2)"
        result = writer.append_output_of(
            lambda fd: process.write_into((sys.executable, "-c", script), stdout_fd=fd)
        )
        assert result.returncode == 2
        assert writer.bytes_written == 1024 + 4


def test_nothing_is_appended_after_the_end(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, "partial") as writer:
        writer.add_info_json(b"{}", mtime=0)
        writer.mark_ended()
        with pytest.raises(ArchiveWriteError):
            writer.append_output_of(lambda fd: None)


def test_a_filesystem_refusing_the_writeback_hint_costs_nothing_but_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(archive_writer, "WRITEBACK_EVERY", 4096)
    monkeypatch.setattr(os, "posix_fadvise", refuse)  # as some network filesystems answer
    with ArchiveWriter(tmp_path, "partial") as writer:
        writer.add_info_json(b"{}", mtime=0)
        writer.add_bytes("ours", b"o" * 20_000, mtime=0)
        writer.append_output_of(
            lambda fd: process.write_into((sys.executable, "-c", SLOW_WRITER), stdout_fd=fd)
        )
        written = writer.finish()
    assert written.sha256 == file_sha256(tmp_path / "partial.tar")


# Writes SIZE bytes (a counter pattern) in uneven pieces, like a dump tool behind a pipe.
PATTERN_WRITER = """
import os, sys
size = int(sys.argv[1])
data = bytes(index % 251 for index in range(size))
position = 0
for piece in range(10**9):
    if position >= size:
        break
    step = (7919, 65536, 300_001, 1)[piece % 4]
    os.write(1, data[position : position + step])
    position += step
"""


@pytest.mark.parametrize("size", [0, 1000, 65536, 65537, 2 * 65536 + 777, 1_000_003])
def test_a_dump_spliced_from_a_pipe_is_cut_into_members_hashed_and_watched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setattr(layout, "CHUNK_BYTES", 65536)  # many members from a small dump
    monkeypatch.setattr(archive_writer, "WRITEBACK_EVERY", 100_000)
    watched: list[bytes] = []
    with ArchiveWriter(tmp_path, "partial") as writer:
        writer.add_bytes("before.txt", b"ours first\n", mtime=0)
        members = layout.SplicedMembers(writer, "data/x/dump.sql.", mtime=0)
        members.watch(watched.append)
        try:
            argv = (sys.executable, "-c", PATTERN_WRITER, str(size))
            result = process.splice(argv, take=members.take)
            members.finish()
        finally:
            members.close()
        assert result.returncode == 0
        writer.add_info_json(b"{}", mtime=0)
        written = writer.finish()
    expected = bytes(index % 251 for index in range(size))
    tar_path = tmp_path / "partial.tar"
    assert written.sha256 == file_sha256(tar_path)
    assert written.size_bytes == tar_path.stat().st_size
    assert b"".join(watched) == expected  # the data, in order, without headers or padding
    assert members.dump_bytes == size
    with tarfile.open(tar_path) as archive:
        names = archive.getnames()
        pieces = [name for name in names if name.startswith("data/x/dump.sql.")]
        assert names == ["before.txt", *pieces, "info.json"]
        assert pieces == [f"data/x/dump.sql.{index:06d}" for index in range(1, len(pieces) + 1)]
        assert pieces == members.members
        sizes = [archive.getmember(name).size for name in pieces]
        assert sizes[:-1] == [65536] * (len(sizes) - 1)
        assert 0 < sizes[-1] <= 65536 if size else sizes == [0]  # an empty dump: one empty member
        stored = b""
        for name in pieces:
            handle = archive.extractfile(name)
            assert handle is not None
            stored += handle.read()
    assert stored == expected


def test_a_spliced_dump_that_fails_leaves_the_follower_stopped(tmp_path: Path) -> None:
    with ArchiveWriter(tmp_path, "partial") as writer:
        members = layout.SplicedMembers(writer, "data/x/dump.sql.", mtime=0)
        script = "import os, sys; os.write(1, b'half a dump'); sys.exit(3)"
        try:
            result = process.splice((sys.executable, "-c", script), take=members.take)
        finally:
            members.close()
        assert result.returncode == 3
    followers = [thread for thread in threading.enumerate() if thread.name == "archive-follow"]
    assert not any(thread.is_alive() for thread in followers)


def test_a_filesystem_that_cannot_splice_gets_the_dump_written_the_usual_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object, **_kwargs: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")  # as a FUSE filesystem may answer

    monkeypatch.setattr(os, "splice", refuse)
    monkeypatch.setattr(layout, "CHUNK_BYTES", 65536)
    watched: list[bytes] = []
    with ArchiveWriter(tmp_path, "partial") as writer:
        members = layout.SplicedMembers(writer, "data/x/dump.sql.", mtime=0)
        members.watch(watched.append)
        try:
            argv = (sys.executable, "-c", PATTERN_WRITER, "200000")
            assert process.splice(argv, take=members.take).returncode == 0
            members.finish()
        finally:
            members.close()
        writer.add_info_json(b"{}", mtime=0)
        written = writer.finish()
    expected = bytes(index % 251 for index in range(200_000))
    assert b"".join(watched) == expected
    assert written.sha256 == file_sha256(tmp_path / "partial.tar")
    with tarfile.open(tmp_path / "partial.tar") as archive:
        assert len(archive.getnames()) == 5  # four dump members, then info.json


def test_the_hashing_yields_the_cpu_while_the_program_writes_then_finishes_at_full_speed(
    tmp_path: Path,
) -> None:
    """The follower runs at SCHED_IDLE during the append and at normal priority for the rest."""
    policies: list[int] = []
    follower_ids: list[int] = []
    released = threading.Event()

    def observe(_offset: int, block: bytes) -> None:
        if not block:  # a read that found nothing new yet
            return
        policies.append(os.sched_getscheduler(0))
        follower_ids.append(threading.get_native_id())
        released.wait(30)  # the first block waits until the append is declared over

    with ArchiveWriter(tmp_path, "partial") as writer:
        writer.add_info_json(b"{}", mtime=0)
        direct = writer.start_direct(observe=observe)
        direct.write_at(b"first", direct.start)
        wait_for(lambda: follower_ids, what="the follower on the first block")
        direct.write_at(b"second", direct.start + 5)  # read after end_direct() began
        ender = threading.Thread(target=writer.end_direct)
        ender.start()
        wait_for(  # end_direct() gives the follower its priority back before waiting for it
            lambda: os.sched_getscheduler(follower_ids[0]) == os.SCHED_OTHER,
            what="the follower back at normal priority",
        )
        released.set()
        ender.join()
        written = writer.finish()
    assert policies == [os.SCHED_IDLE, os.SCHED_OTHER]
    assert written.sha256 == file_sha256(tmp_path / "partial.tar")


# Run without CAP_SYS_NICE: the follower reports its own policy on the block it hashes.
FOLLOWER_POLICY = """
import os, sys
from pathlib import Path
from backupmanager.archive_writer import ArchiveWriter
seen = []
with ArchiveWriter(Path(sys.argv[1]), "partial") as writer:
    writer.add_info_json(b"{}", mtime=0)
    direct = writer.start_direct(observe=lambda _o, b: b and seen.append(os.sched_getscheduler(0)))
    direct.write_at(b"data", direct.start)
    writer.end_direct()
    writer.finish()
print(seen == [os.SCHED_OTHER])
"""


def test_without_the_right_to_come_back_the_hashing_never_goes_idle(tmp_path: Path) -> None:
    """Leaving SCHED_IDLE needs CAP_SYS_NICE: a process without it keeps normal priority."""
    argv = ["setpriv", "--inh-caps=-sys_nice", "--bounding-set=-sys_nice", sys.executable, "-c"]
    result = subprocess.run(
        [*argv, FOLLOWER_POLICY, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "True", result.stderr
