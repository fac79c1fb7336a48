"""custom_dir backup vs `tar -cf` of the same tree, in the same run: wall time and peak memory.

Usage: .venv/bin/python bench/bench_custom_dir.py [--size-gib 1] [--rounds 3] [--dir /work/bench-tmp]

Builds a mixed tree (thousands of small files, some large ones), then alternates, on a warm page
cache: `tar -cf` alone, `tar -cf` followed by an fsync of the tar (the durability our archive
gets), and a custom_dir job run by `backupmanager jobs run ID --wait` without a worker (walk,
GNU tar streamed through BackupManager, SHA256 while writing, fsync, rename, index). Peak
memory is the maximum resident size of each process (wait4). Prints a markdown table for
doc/benchmarks.md. Everything it creates is removed at the end (unless --keep).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

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


def measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of a command and its children, after a sync.

    The sync first: writeback of the previous round's gigabytes must not slow this one.
    """
    os.sync()
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
    config = base / "config.toml"
    config.write_text(
        'instance_name = "bench"\n'
        f'data_dir = "{base / "data"}"\n'
        f'archives_dir = "{base / "archives"}"\n'
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path("/work/bench-tmp"))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    base = args.dir
    if base.exists():
        shutil.rmtree(base)
    tree = base / "tree"
    try:
        files, size = build_tree(tree, int(args.size_gib * 1024 * MIB))
        print(f"tree: {files} files, {size / MIB:.0f} MiB", file=sys.stderr)
        env, job_id = prepare_instance(base, tree)
        results: dict[str, list[tuple[float, int]]] = {"tar": [], "tar+fsync": [], "ours": []}
        plain = base / "plain.tar"
        for _ in range(args.rounds):
            plain.unlink(missing_ok=True)
            results["tar"].append(measure(["tar", "-cf", str(plain), "-C", str(base), "tree"]))
            plain.unlink()
            elapsed, rss = measure(["tar", "-cf", str(plain), "-C", str(base), "tree"])
            start = time.perf_counter()
            fsync_file(plain)
            results["tar+fsync"].append((elapsed + time.perf_counter() - start, rss))
            plain.unlink()
            results["ours"].append(
                measure([str(BACKUPMANAGER), "jobs", "run", str(job_id), "--wait"], env=env)
            )
        report(results, files, size, args)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def report(
    results: dict[str, list[tuple[float, int]]], files: int, size: int, args: argparse.Namespace
) -> None:
    labels = {
        "tar": "`tar -cf` (no fsync, no checksum)",
        "tar+fsync": "`tar -cf` + fsync of the tar",
        "ours": "custom_dir backup (walk, tar stream, SHA256, fsync, index)",
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
        f"\nRatio (median): {medians['ours'] / medians['tar+fsync']:.2f}x `tar -cf` + fsync, "
        f"{medians['ours'] / medians['tar']:.2f}x `tar -cf` alone."
    )


if __name__ == "__main__":
    main()
