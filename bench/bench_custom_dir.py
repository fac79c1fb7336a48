"""custom_dir backup vs `tar -cf` of the same tree, in the same run: wall time and peak memory.

Usage: .venv/bin/python bench/bench_custom_dir.py [--size-gib 1] [--rounds 5] [--dir /work/bench-tmp]

Builds a mixed tree (thousands of small files, some large ones), then alternates, each after
reading the whole tree once (so every side starts with it in the page cache) and a `sync`:

- `tar -cf` of the tree, and `tar -cf` followed by an fsync of the tar (the durability our
  archive gets);
- the custom_dir backup as the worker runs it: a resident process (started once, as the worker
  is) queues a run and executes it: the walk, the archive with GNU tar writing into it, SHA256,
  fsync, final name and index row (the run is then a success), then retention (which deletes
  the previous round's archive), timed separately. Its peak memory is that process's VmHWM,
  Python and every module included;
- `backupmanager jobs run ID --wait`, the command an admin types, in a process of its own
  (Python start-up and imports, its log polling) — for reference.

The instance reads YunoHost's version from a package changelog, as it does on a server (the
simulator stands in for the `yunohost` CLI). Prints markdown tables for doc/benchmarks.md.
Everything it creates is removed at the end (unless --keep, which also keeps the tree for the
next run with the same --dir and --size-gib).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BACKUPMANAGER = ROOT / ".venv" / "bin" / "backupmanager"
SIMULATOR = ROOT / "sources" / "tests" / "fakes" / "yunohost"
MIB = 1024 * 1024


def build_tree(root: Path, size_bytes: int) -> tuple[int, int]:
    """About 30 % of the bytes in small files (1-32 KiB), the rest in files of 64-256 MiB."""
    rng = random.Random(42)
    block = os.urandom(MIB)
    small_budget = size_bytes * 3 // 10
    files = written = 0
    folder_index = 0
    while written < small_budget:
        folder = root / f"small/d{folder_index // 200:04d}/e{folder_index % 200:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            size = rng.randint(1024, 32 * 1024)
            offset = rng.randint(0, MIB - size)
            (folder / f"f{files:07d}.dat").write_bytes(block[offset : offset + size])
            files += 1
            written += size
        folder_index += 1
    (root / "large").mkdir(parents=True, exist_ok=True)
    while written < size_bytes:
        size = min(rng.randint(64, 256) * MIB, size_bytes - written)
        with (root / "large" / f"big{files:04d}.bin").open("wb") as handle:
            remaining = size
            while remaining > 0:
                chunk = block[: min(MIB, remaining)]
                handle.write(chunk)
                remaining -= len(chunk)
        files += 1
        written += size
    return files, written


def tree_stats(root: Path) -> tuple[int, int]:
    files = size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(folder, name)).st_size
    return files, size


def warm_and_sync(root: Path) -> None:
    """Every side starts alike: the tree in the page cache, nothing left to write back."""
    buffer = bytearray(MIB)
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb", buffering=0) as handle:
                while handle.readinto(buffer):
                    pass
    os.sync()


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of a command (wait4)."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"{argv[0]} failed: {child.stderr.read().decode() if child.stderr else ''}"
        )
    return elapsed, usage.ru_maxrss


def fsync_file(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def prepare_instance(base: Path, tree: Path) -> tuple[dict[str, str], int]:
    changelog = base / "changelog.gz"
    with gzip.open(changelog, "wt") as handle:
        handle.write("yunohost (12.1.25) stable; urgency=low\n")
    config = base / "config.toml"
    config.write_text(
        'instance_name = "bench"\n'
        f'data_dir = "{base / "data"}"\n'
        f'archives_dir = "{base / "archives"}"\n'
        f'yunohost_changelog = "{changelog}"\n'
        f'[programs]\nyunohost = "{SIMULATOR}"\n'
    )
    (base / "archives").mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("BACKUPMANAGER_")}
    env.update(
        BACKUPMANAGER_CONFIG=str(config),
        YNH_SIM_ROOT=str(base / "ynh"),
        YNH_SIM_ARCHIVES_DIR=str(base / "archives"),
    )
    subprocess.run([str(BACKUPMANAGER), "db", "upgrade"], env=env, check=True, capture_output=True)
    added = subprocess.run(
        [str(BACKUPMANAGER), "--json", "jobs", "add", "--name", "bench", "--type", "custom_dir",
         "--config", json.dumps({"source_path": str(tree)}), "--cron", "0 3 * * *",
         "--retention", "count:1"],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return env, int(json.loads(added.stdout)["id"])


def serve_runs(job_id: int) -> None:
    """The resident side (`--serve JOB_ID`): one run per line read, its timings as JSON."""
    sys.path.insert(0, str(ROOT / "sources"))
    from backupmanager import runlog, runner, services
    from backupmanager.db import Database
    from backupmanager.settings import load_settings

    settings = load_settings(None)
    db = Database(settings)
    phases: list[tuple[str, float]] = []
    original_phase = runlog.RunLog.phase

    def timed_phase(self: runlog.RunLog, phase: str) -> None:
        phases.append((phase, time.perf_counter()))
        original_phase(self, phase)

    runlog.RunLog.phase = timed_phase  # type: ignore[method-assign]
    for _ in sys.stdin:
        phases.clear()
        queued = services.queue_run(
            db, job_id, trigger="manual", requested_by="bench", now=datetime.now(UTC)
        )
        start = time.perf_counter()
        status = runner.execute_run(db, settings, queued.run_id)
        end = time.perf_counter()
        marks = [("starting", start), *phases, ("end", end)]
        durations: dict[str, float] = {}
        for (name, at), (_, until) in itertools.pairwise(marks):
            durations[name] = durations.get(name, 0.0) + until - at
        peak = next(
            int(line.split()[1])
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        )
        # The archive is published (final name, index row, run marked success) when retention
        # starts: that is the backup; deleting the previous archive comes after it.
        published = dict(phases).get("retention", end)
        answer = {
            "status": status,
            "seconds": published - start,
            "with_retention": end - start,
            "peak_kib": peak,
            "phases": durations,
        }
        print(json.dumps(answer), flush=True)


class ResidentWorker:
    """A process started once, like the worker, that runs the job on request."""

    def __init__(self, env: dict[str, str], job_id: int) -> None:
        self.child = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(job_id)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self) -> dict[str, Any]:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write("run\n")
        self.child.stdin.flush()
        answer: dict[str, Any] = json.loads(self.child.stdout.readline())
        if answer["status"] != "success":
            raise SystemExit(f"the backup failed: {answer}")
        return answer

    def close(self) -> None:
        if self.child.stdin is not None:
            self.child.stdin.close()
        self.child.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path("/work/bench-tmp"))
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve_runs(args.serve)
        return
    base = args.dir
    tree = base / "tree"
    size_file = base / "tree.size"
    wanted = f"{args.size_gib}"
    if not (size_file.exists() and size_file.read_text() == wanted):
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        build_tree(tree, int(args.size_gib * 1024 * MIB))
        size_file.write_text(wanted)
    for leftover in (
        "archives",
        "data",
        "ynh",
        "config.toml",
        "changelog.gz",
        "plain.tar",
    ):
        path = base / leftover
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    files, size = tree_stats(tree)
    print(f"tree: {files} files, {size / MIB:.0f} MiB", file=sys.stderr)
    env, job_id = prepare_instance(base, tree)
    worker = ResidentWorker(env, job_id)
    results: dict[str, list[tuple[float, int]]] = {
        "tar": [],
        "tar+fsync": [],
        "ours": [],
        "ours+retention": [],
        "cli": [],
    }
    phases: list[dict[str, float]] = []
    plain = base / "plain.tar"
    try:
        for round_number in range(args.rounds):
            warm_and_sync(tree)
            results["tar"].append(measure(["tar", "-cf", str(plain), "-C", str(base), "tree"]))
            plain.unlink()
            warm_and_sync(tree)
            elapsed, rss = measure(["tar", "-cf", str(plain), "-C", str(base), "tree"])
            start = time.perf_counter()
            fsync_file(plain)
            results["tar+fsync"].append((elapsed + time.perf_counter() - start, rss))
            plain.unlink()
            warm_and_sync(tree)
            answer = worker.run()
            results["ours"].append((answer["seconds"], answer["peak_kib"]))
            results["ours+retention"].append((answer["with_retention"], answer["peak_kib"]))
            phases.append(answer["phases"])
            warm_and_sync(tree)
            results["cli"].append(
                measure([str(BACKUPMANAGER), "jobs", "run", str(job_id), "--wait"], env=env)
            )
            print(f"round {round_number + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        worker.close()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    report(results, phases, files, size, args)


def report(
    results: dict[str, list[tuple[float, int]]],
    phases: list[dict[str, float]],
    files: int,
    size: int,
    args: argparse.Namespace,
) -> None:
    labels = {
        "tar": "`tar -cf` (no fsync, no checksum)",
        "tar+fsync": "`tar -cf` + fsync of the tar",
        "ours": "**custom_dir backup, run by the resident worker** (walk, tar into the archive, "
        "SHA256, fsync, final name, index)",
        "ours+retention": "the same run until its end, retention included (deletes the "
        "previous round's archive)",
        "cli": "`backupmanager jobs run ID --wait` (own process: start-up, imports, log polling)",
    }
    print(f"\n{files} files, {size / MIB / 1024:.2f} GiB, {args.rounds} rounds\n")
    print("| path | median (s) | min (s) | max (s) | peak RSS (MiB) |")
    print("|---|---:|---:|---:|---:|")
    medians = {}
    for key, runs in results.items():
        times = [elapsed for elapsed, _ in runs]
        medians[key] = statistics.median(times)
        peak = max(rss for _, rss in runs) / 1024
        print(
            f"| {labels[key]} | {medians[key]:.2f} | {min(times):.2f} | {max(times):.2f} | {peak:.0f} |"
        )
    print(
        f"\nRatio (median): backup by the worker {medians['ours'] / medians['tar']:.2f}x "
        f"`tar -cf`, {medians['ours'] / medians['tar+fsync']:.2f}x `tar -cf` + fsync; "
        f"the CLI command {medians['cli'] / medians['tar']:.2f}x `tar -cf`."
    )
    print("\nPhases of the worker's run (median seconds):\n")
    print("| phase | median (s) |")
    print("|---|---:|")
    for name in phases[0]:
        print(f"| {name} | {statistics.median(run.get(name, 0.0) for run in phases):.3f} |")


if __name__ == "__main__":
    main()
