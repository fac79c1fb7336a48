"""`kill -9` of the worker at random moments of custom_dir backups, then a restart and checks.

Usage (as root, from the repository root):
    .venv/bin/python -m bench.probe.kill_runs [--kills 26] [--megabytes 64] [--seed 13]

Each round starts `backupmanager worker`, queues a run of a custom_dir job over a tree of random
data, waits a random time, kills the worker's whole process group with SIGKILL (as systemd
kills the unit's cgroup) and starts the worker again. Then: every archive under a final name
reads to its end and has the SHA-256 of the index; index and disk list the same archives; the
killed run is marked interrupted (or succeeded, when the kill came after its end); and nothing
the run left remains (`bm-partial-*` in the archives folder or the data folder).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from bench.probe.common import Instance, Tally, files_under, instance
from sqlalchemy import select

from backupmanager import services
from backupmanager.clock import system_clock
from backupmanager.models import Archive, Run
from tests.helpers import BACKUPMANAGER, add_job, wait_for


def start_worker(inst: Instance, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen(
            [str(BACKUPMANAGER), "worker"],
            env=inst.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the kill reaches tar too
        )


def run_row(inst: Instance, run_id: int) -> Run:
    with inst.db.read() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def sha256_and_read(path: Path) -> str | None:
    """The file's SHA-256 when it is a tar that reads to its end, else None."""
    try:
        with tarfile.open(path) as tar:
            for _member in tar:
                pass
    except (tarfile.TarError, OSError):
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_disk_and_index(inst: Instance, tally: Tally) -> None:
    with inst.db.read() as session:
        indexed = {row.filename: row.sha256 for row in session.scalars(select(Archive))}
    on_disk = {
        path.name: path
        for path in inst.settings.archives_dir.glob("*.tar")
        if not path.name.startswith("bm-partial-")
    }
    tally.check(set(indexed) == set(on_disk), f"index {sorted(indexed)} != disk {sorted(on_disk)}")
    for name, path in on_disk.items():
        digest = sha256_and_read(path)
        tally.check(digest is not None, f"{name}: unreadable archive under a final name")
        tally.check(digest == indexed.get(name, digest), f"{name}: SHA-256 differs from the index")


def leftovers(inst: Instance) -> list[str]:
    found = files_under(inst.settings.archives_dir) | files_under(inst.settings.data_dir)
    return sorted(str(path) for path in found if "bm-partial" in path.name)


def one_round(inst: Instance, job_id: int, delay: float, tally: Tally, log: Path) -> str:
    worker = start_worker(inst, log)
    queued = services.queue_run(
        inst.db, job_id, trigger="manual", requested_by="probe", now=system_clock()
    )
    wait_for(lambda: run_row(inst, queued.run_id).status != "queued", what="the run to start")
    time.sleep(delay)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    restarted = start_worker(inst, log)
    try:
        wait_for(
            lambda: run_row(inst, queued.run_id).status not in ("queued", "running"),
            what="the restarted worker to settle the killed run",
        )
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=60)
    run = run_row(inst, queued.run_id)
    tally.check(run.status in ("interrupted", "success"), f"run {run.id} ended as {run.status}")
    check_disk_and_index(inst, tally)
    return run.status


def make_tree(root: Path, megabytes: int) -> None:
    root.mkdir(parents=True)
    for number in range(megabytes):
        (root / f"file{number:03d}.bin").write_bytes(os.urandom(1 << 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=26)
    parser.add_argument("--megabytes", type=int, default=256, help="size of the backed-up tree")
    parser.add_argument("--seed", type=int, default=13)
    arguments = parser.parse_args()
    rng = random.Random(arguments.seed)
    tally = Tally("kill_runs")
    outcomes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bm-probe-") as folder, instance(Path(folder)) as inst:
        source = inst.base / "srv" / "app"
        make_tree(source, arguments.megabytes)
        config = {"source_path": str(source)}
        job_id = add_job(inst.db, inst.settings, name="app", type="custom_dir", config=config)
        log = inst.base / "worker.log"
        for _ in range(arguments.kills):
            status = one_round(inst, job_id, rng.uniform(0.0, 1.0), tally, log)
            outcomes[status] = outcomes.get(status, 0) + 1
        left = leftovers(inst)
        for path in left:
            tally.finding(f"leftover {path} mode {oct(Path(path).stat().st_mode & 0o777)}")
    print(tally.summary(kills=arguments.kills, leftovers=len(left), **outcomes))


if __name__ == "__main__":
    main()
