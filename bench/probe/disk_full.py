"""Backups onto a small filesystem that fills: a clear message, nothing half-written kept.

Usage (as root, from the repository root):
    .venv/bin/python -m bench.probe.disk_full [--size-mb 24]

Mounts a tmpfs of `--size-mb` as the archives folder and backs up a custom_dir tree there: once
with room to spare (its size gives the archive's size), once with a tree twice the filesystem's
size, then with a filler file leaving free space from 12 KiB below to 12 KiB above the
archive's size, in 1 KiB steps, so that the disk fills during the tar, its rename or the
`.info.json`. Each failed run's message must say the disk is full (no raw `[Errno 28]`); no
`.tar` or `.info.json` may remain under a final name without its index row; no `bm-partial-*`
may remain after the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.probe.common import Instance, Tally, instance
from sqlalchemy import delete, select

from backupmanager.models import Archive
from tests.helpers import add_job, run_job_now

KIB = 1024


@contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                   check=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def fill_leaving(archives: Path, free: int) -> None:
    """Write a filler file so that `free` bytes stay available on the filesystem."""
    filler = archives / "filler"
    filler.unlink(missing_ok=True)
    stats = os.statvfs(archives)
    available = stats.f_bavail * stats.f_frsize
    with filler.open("wb") as handle:
        handle.truncate(0)
        remaining = max(available - free, 0)
        while remaining > 0:
            handle.write(b"\0" * min(remaining, 1 << 20))  # tmpfs: zeros take real pages
            remaining -= min(remaining, 1 << 20)


def one_run(inst: Instance, job_id: int, tally: Tally, label: str) -> int | None:
    """Run the job once; check what it left; the archive's size when it succeeded."""
    run = run_job_now(inst.db, inst.settings, job_id)
    archives = inst.settings.archives_dir
    message = run.error_message or ""
    if run.status != "success":
        tally.check("[Errno" not in message, f"{label}: raw error: {message[:200]!r}")
        tally.check("full" in message.lower(), f"{label}: unclear message: {message[:200]!r}")
    with inst.db.read() as session:
        indexed = set(session.scalars(select(Archive.filename)))
    for path in archives.iterdir():
        if path.name == "filler" or path.name.startswith("bm-partial-"):
            tally.check(path.name == "filler", f"{label}: {path.name} left after the run")
            continue
        stem = path.name.removesuffix(".info.json")
        tally.check(f"{stem.removesuffix('.tar')}.tar" in indexed or stem in indexed,
                    f"{label}: {path.name} under a final name but not indexed")  # fmt: skip
    size = run.size_bytes if run.status == "success" else None
    clean_up(inst)
    return size


def clean_up(inst: Instance) -> None:
    """Forget the archives, so that every run starts with the same free space."""
    for path in inst.settings.archives_dir.iterdir():
        if path.name != "filler":
            path.unlink()
    with inst.db.write() as session:
        session.execute(delete(Archive))


def make_tree(root: Path, megabytes: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for number in range(megabytes):
        (root / f"f{number}.bin").write_bytes(os.urandom(1 << 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=24)
    arguments = parser.parse_args()
    tally = Tally("disk_full")
    outcomes = {"success": 0, "error": 0}
    with tempfile.TemporaryDirectory(prefix="bm-probe-") as folder:
        base = Path(folder)
        with (
            tmpfs(base / "small", arguments.size_mb) as archives,
            instance(base, archives_dir=archives) as inst,
        ):
            small, big = base / "srv" / "small", base / "srv" / "big"
            make_tree(small, arguments.size_mb // 3)
            make_tree(big, arguments.size_mb * 2)
            job_small = add_job(inst.db, inst.settings, name="small", type="custom_dir",
                                config={"source_path": str(small)})  # fmt: skip
            job_big = add_job(inst.db, inst.settings, name="big", type="custom_dir",
                              config={"source_path": str(big)})  # fmt: skip
            size = one_run(inst, job_small, tally, "room to spare")
            assert size is not None, "the first backup, with room to spare, must succeed"
            one_run(inst, job_big, tally, "tree twice the disk")
            for free in range(size - 12 * KIB, size + 12 * KIB + 1, KIB):
                fill_leaving(archives, free)
                result = one_run(inst, job_small, tally, f"{free - size:+d} bytes around the tar")
                outcomes["success" if result else "error"] += 1
    print(tally.summary(runs=2 + sum(outcomes.values()), **outcomes))


if __name__ == "__main__":
    main()
