"""Time plan_retention over a large archive index, for each retention mode (run on demand)."""

import argparse
import platform
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

try:
    from backupmanager.retention import ArchiveRef, RetentionPlan, RetentionPolicy, plan_retention
except ImportError:  # not installed: use the package from this checkout's sources/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sources"))
    from backupmanager.retention import ArchiveRef, RetentionPlan, RetentionPolicy, plan_retention

JOB_ID = 1
NOW = datetime(2026, 5, 10, 12, 0, tzinfo=UTC)
POLICIES = [("count", "30"), ("daily", "14"), ("gfs", "7/4/3")]
# The server's zone rather than UTC, so day/week/month bucketing pays for real conversions.
SERVER_ZONE = ZoneInfo("Europe/Paris")


def make_archives(total: int) -> list[ArchiveRef]:
    """One archive every 2 hours going back from NOW; one in ten foreign or of another job."""
    archives = []
    for index in range(total):
        created_at = NOW - timedelta(hours=2 * index, minutes=index % 7)
        if index % 10 == 3:
            archives.append(ArchiveRef(f"webadmin-{index}", created_at, None, False))
        elif index % 10 == 7:
            archives.append(ArchiveRef(f"job2-{index}", created_at, 2, True))
        else:
            archives.append(ArchiveRef(f"job1-{index}", created_at, JOB_ID, True))
    return archives


def time_mode(
    archives: list[ArchiveRef], policy: RetentionPolicy, repeat: int
) -> tuple[RetentionPlan, list[float]]:
    """Plan `repeat` times; return the last plan and the durations in milliseconds."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = plan_retention(
            archives, policy, job_id=JOB_ID, now=NOW, last_run_succeeded=True, tz=SERVER_ZONE
        )
        timings.append((time.perf_counter() - started) * 1000)
    return result, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--archives", type=int, default=10_000, help="size of the index")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per mode")
    options = parser.parse_args()
    if options.archives < 1 or options.repeat < 1:
        parser.error("--archives and --repeat must be at least 1")
    archives = make_archives(options.archives)
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print(f"`{command}`\n")
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {options.archives} archives, "
        f"{options.repeat} runs per mode, tz {SERVER_ZONE}\n"
    )
    print("| mode | value | kept | deleted | min (ms) | median (ms) | max (ms) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for mode, value in POLICIES:
        result, timings = time_mode(archives, RetentionPolicy.parse(mode, value), options.repeat)
        print(
            f"| {mode} | {value} | {len(result.keep)} | {len(result.delete)} "
            f"| {min(timings):.1f} | {statistics.median(timings):.1f} | {max(timings):.1f} |"
        )


if __name__ == "__main__":
    main()
