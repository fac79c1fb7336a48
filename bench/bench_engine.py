"""Engine overhead per run: a ynh_app job through BackupManager vs the YunoHost simulator alone.

Usage: .venv/bin/python bench/bench_engine.py [--runs 20] [--data-kib 10240]

Both sides make the same archive with the same simulator; the difference is what BackupManager
adds (database writes, log streaming, verification + SHA256 of the tar, renaming, index,
retention). Prints a markdown table for doc/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sources"))

from backupmanager import services  # noqa: E402
from backupmanager.clock import system_clock  # noqa: E402
from backupmanager.commands import run_inline  # noqa: E402
from backupmanager.db import Database, upgrade_schema  # noqa: E402
from backupmanager.settings import load_settings  # noqa: E402

SIMULATOR = ROOT / "sources" / "tests" / "fakes" / "yunohost"


def prepare(base: Path, data_kib: int) -> None:
    root = base / "ynh"
    root.mkdir(parents=True)
    apps = [
        {
            "id": "bench",
            "name": "Bench",
            "description": "",
            "version": "1.0~ynh1",
            "supports_backup_restore": True,
            "core_size": 64 * 1024,
            "data_size": data_kib * 1024,
        }
    ]
    (root / "apps.json").write_text(json.dumps(apps))
    os.environ["YNH_SIM_ROOT"] = str(root)
    os.environ["YNH_SIM_ARCHIVES_DIR"] = str(base / "archives")
    (base / "archives").mkdir()


def direct(runs: int) -> list[float]:
    times = []
    for index in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [
                str(SIMULATOR),
                "backup",
                "create",
                "--name",
                f"direct-{index}",
                "--apps",
                "bench",
                "--output-as",
                "json",
            ],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    return times


def engine(base: Path, runs: int) -> list[float]:
    settings = load_settings(
        None,
        env={},
        defaults={
            "instance_name": "bench",
            "data_dir": str(base / "data"),
            "archives_dir": str(base / "archives"),
            "programs": {"yunohost": str(SIMULATOR)},
        },
    )
    upgrade_schema(settings)
    database = Database(settings)
    job = services.create_job(
        database,
        settings,
        {
            "name": "bench",
            "type": "ynh_app",
            "config": {"app_id": "bench"},
            "cron": "0 3 * * *",
            "retention": f"count:{runs + 1}",
        },
    )
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        queued = services.queue_run(
            database, job.id, trigger="manual", requested_by="bench", now=system_clock()
        )
        status = run_inline(database, settings, queued.run_id)
        times.append(time.perf_counter() - start)
        assert status == "success", status
    database.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--data-kib", type=int, default=10240)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        prepare(base, options.data_kib)
        raw = direct(options.runs)
        ours = engine(base, options.runs)
    raw_median, ours_median = statistics.median(raw), statistics.median(ours)
    print(
        f"`{' '.join([Path(sys.executable).name, *sys.argv])}` — {options.runs} runs, app data {options.data_kib} KiB\n"
    )
    print("| path | median (ms) | min (ms) | max (ms) |")
    print("|---|---:|---:|---:|")
    for label, times in (("simulator alone", raw), ("through BackupManager", ours)):
        print(
            f"| {label} | {statistics.median(times) * 1000:.1f} | {min(times) * 1000:.1f} | {max(times) * 1000:.1f} |"
        )
    print(
        f"\nOverhead per run (median): {(ours_median - raw_median) * 1000:.1f} ms ({ours_median / raw_median:.2f}x)"
    )


if __name__ == "__main__":
    main()
