"""Latency of an authenticated `GET /api/v1/health` against the 401 answer, over real HTTP.

Usage: .venv/bin/python bench/bench_api.py [--requests 2000]

Starts `backupmanager web` (gunicorn, gthread, as in production) and `backupmanager worker`
(its heartbeat commits every 2 s, so the web process's caches are re-validated as they would be
on a server) over a fresh instance with one real token (bcrypt cost 12), then sends the two
kinds of request alternately on two keep-alive connections. The token is verified with bcrypt
once; later requests hash it with SHA-256 and read its row again only after a commit (see
sources/backupmanager/api/auth.py). Prints a markdown table for doc/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "sources"))

from sqlalchemy import text  # noqa: E402

from backupmanager.clock import system_clock  # noqa: E402
from backupmanager.db import Database, upgrade_schema  # noqa: E402
from backupmanager.settings import load_settings  # noqa: E402
from backupmanager.tokens import create_token, token_matches  # noqa: E402

BACKUPMANAGER = Path(sys.executable).parent / "backupmanager"
HEADER = "X-BackupManager-Key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def timed_get(connection: http.client.HTTPConnection, headers: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    connection.request("GET", "/api/v1/health", headers=headers)
    answer = connection.getresponse()
    answer.read()
    return (time.perf_counter() - start) * 1000, answer.status


def wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the web process did not start")


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9)]
    return f"| {name} | {statistics.median(samples):.3f} | {p90:.3f} | {ordered[0]:.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="requests of each kind")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder)
        config = base / "config.toml"
        config.write_text(
            f'instance_name = "bench"\ndata_dir = "{base / "data"}"\n'
            f'archives_dir = "{base / "archives"}"\n'
        )
        settings = load_settings(config, env={})
        upgrade_schema(settings)
        database = Database(settings)
        token = create_token(database, "bench", now=system_clock()).token
        with database.read() as session:
            token_hash = session.execute(text("SELECT token_hash FROM api_tokens")).scalar_one()
        database.dispose()
        start = time.perf_counter()
        token_matches(token, token_hash)
        bcrypt_ms = (time.perf_counter() - start) * 1000

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKUPMANAGER_")}
        env["BACKUPMANAGER_CONFIG"] = str(config)
        processes = [
            subprocess.Popen(
                [str(BACKUPMANAGER), *command],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for command in (["worker"], ["web", "--bind", f"127.0.0.1:{port}"])
        ]
        try:
            wait_until_listening(port)
            with_token = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            without = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            first_ms, status = timed_get(with_token, {HEADER: token})
            assert status == 200, status
            for _ in range(100):  # warm-up of both paths
                timed_get(with_token, {HEADER: token})
                timed_get(without, {})
            authenticated, refused = [], []
            for index in range(arguments.requests):
                pairs = [
                    (with_token, {HEADER: token}, authenticated, 200),
                    (without, {}, refused, 401),
                ]
                for connection, headers, samples, expected in pairs[:: 1 if index % 2 else -1]:
                    elapsed, status = timed_get(connection, headers)
                    assert status == expected, status
                    samples.append(elapsed)
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    ratio = statistics.median(authenticated) / statistics.median(refused)
    print(
        f"{arguments.requests} requests of each kind, alternated, keep-alive, "
        "gunicorn gthread, worker running\n"
    )
    print("| request | median (ms) | p90 (ms) | min (ms) |")
    print("|---|---:|---:|---:|")
    print(summary("`GET /api/v1/health` with a valid token (200)", authenticated))
    print(summary("`GET /api/v1/health` without a token (401)", refused))
    print(f"\nMedian ratio authenticated / 401: {ratio:.2f} (target: at most 1.5).")
    print(f"First authenticated request (bcrypt check included): {first_ms:.1f} ms;")
    print(f"one bcrypt check at cost 12 alone: {bcrypt_ms:.1f} ms.")
    print("\n" + json.dumps({"ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
