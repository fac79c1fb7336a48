"""ArchiveWriter: every byte of the archive hashed once, whether we write it or a program does."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
import tarfile
from pathlib import Path

import pytest

from backupmanager import archive_writer, process
from backupmanager.archive_writer import ArchiveWriteError, ArchiveWriter

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
