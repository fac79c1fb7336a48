"""Dashboard page latency with 5 and 500 jobs and 100,000 runs, over real HTTP on 127.0.0.1.

Usage: .venv/bin/python bench/bench_pages.py [--runs 100000] [--requests 30]

For each size, a fresh instance is seeded in bulk (tests.helpers.seed_history: one archive per
job, every 7th run failed), the dashboard is served by werkzeug's threaded server in dev mode
(the identity check is a group lookup either way), and each page is fetched --requests times
after one warm-up. Prints a markdown table of medians (and 90th percentiles) for
doc/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sources"))

from sqlalchemy import select  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from backupmanager.app import create_app  # noqa: E402
from backupmanager.clock import system_clock  # noqa: E402
from backupmanager.db import Database, upgrade_schema  # noqa: E402
from backupmanager.models import Run  # noqa: E402
from backupmanager.settings import load_settings  # noqa: E402
from tests.helpers import seed_history  # noqa: E402

PAGES = {
    "dashboard `/`": "/",
    "job history `/jobs/<id>`": "/jobs/{job}",
    "run page `/runs/<id>`": "/runs/{run}",
    "archives `/archives`": "/archives",
}


def measure(base: Path, *, jobs: int, runs: int, requests: int) -> dict[str, tuple[float, float]]:
    settings = load_settings(
        None,
        env={},
        defaults={
            "instance_name": "bench",
            "data_dir": str(base / "data"),
            "archives_dir": str(base / "archives"),
        },
    )
    settings.archives_dir.mkdir(parents=True)
    upgrade_schema(settings)
    db = Database(settings)
    job_ids = seed_history(db, jobs=jobs, runs=runs, now=system_clock())
    with db.read() as session:
        run_id = session.scalar(select(Run.id).where(Run.job_id == job_ids[1]).limit(1))
    db.dispose()
    server = make_server("127.0.0.1", 0, create_app(settings, dev_mode=True), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    results = {}
    try:
        for label, template in PAGES.items():
            path = url + template.format(job=job_ids[1], run=run_id)
            urllib.request.urlopen(path).read()  # warm-up
            samples = []
            for _ in range(requests):
                start = time.perf_counter()
                with urllib.request.urlopen(path) as answer:
                    answer.read()
                samples.append((time.perf_counter() - start) * 1000)
            samples.sort()
            results[label] = (statistics.median(samples), samples[int(len(samples) * 0.9) - 1])
    finally:
        server.shutdown()
    return results


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log per request
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    sizes = (5, 500)
    table = {}
    for jobs in sizes:
        with tempfile.TemporaryDirectory(prefix="bm-bench-pages-") as folder:
            table[jobs] = measure(Path(folder), jobs=jobs, runs=args.runs, requests=args.requests)
    print(f"{args.runs:,} runs, {args.requests} requests per page, median (p90) in ms\n")
    print("| page | " + " | ".join(f"{jobs} jobs" for jobs in sizes) + " |")
    print("|---|" + "---:|" * len(sizes))
    for label in PAGES:
        cells = [f"{table[jobs][label][0]:.1f} ({table[jobs][label][1]:.1f})" for jobs in sizes]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
