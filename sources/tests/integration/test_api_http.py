"""The API over real HTTP: gunicorn (`backupmanager web`), the worker and the CLI as processes."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backupmanager.db import Database
from backupmanager.settings import Settings
from tests.api_world import HEADER
from tests.helpers import BACKUPMANAGER, add_job, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(
    base: str, method: str, path: str, *, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(base + path, method=method)
    if token is not None:
        request.add_header(HEADER, token)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.fixture
def server(
    db: Database, settings: Settings, cli_env: dict[str, str], tmp_path: Path
) -> Iterator[str]:
    port = free_port()
    log = (tmp_path / "processes.log").open("ab")
    processes = [
        subprocess.Popen([str(BACKUPMANAGER), "worker"], env=cli_env, stdout=log, stderr=log),
        subprocess.Popen(
            [str(BACKUPMANAGER), "web", "--bind", f"127.0.0.1:{port}"],
            env=cli_env,
            stdout=log,
            stderr=log,
        ),
    ]
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return call(base, "GET", "/api/v1/health")[0] == 401
        except OSError:
            return False

    try:
        wait_for(answers, what="the web process to listen")
        yield base
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def cli(cli_env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [str(BACKUPMANAGER), "--json", *args],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_run_started_over_http_is_followed_to_success(
    db: Database, settings: Settings, cli_env: dict[str, str], server: str
) -> None:
    job_id = add_job(db, settings)
    token = cli(cli_env, "tokens", "create", "ci")["token"]
    status, headers, answer = call(server, "GET", "/api/v1/health", token=token)
    assert status == 200 and answer["token"]["name"] == "ci"
    wait_for(
        lambda: call(server, "GET", "/api/v1/health", token=token)[2]["worker_alive"],
        what="the worker's heartbeat",
    )
    status, headers, queued = call(server, "POST", f"/api/v1/jobs/{job_id}/run", token=token)
    assert status == 202 and headers["Location"] == queued["url"]
    log, offset, deadline = "", 0, time.monotonic() + 60
    while time.monotonic() < deadline:
        status, _, run = call(server, "GET", f"{queued['url']}?log_offset={offset}", token=token)
        assert status == 200
        log, offset = log + run["log"], run["log_next_offset"]
        if run["finished"]:
            break
        time.sleep(0.2)
    assert run["status"] == "success" and run["archive_name"], log
    assert run["archive_name"] in log
    wait_for(
        lambda: call(server, "GET", "/api/v1/archives", token=token)[2]["total"] == 1,
        what="the archive in the index",
    )
    # Revoked from the CLI (another process), refused by the web process at once.
    cli(cli_env, "tokens", "revoke", "ci")
    status, headers, answer = call(server, "GET", "/api/v1/health", token=token)
    assert status == 401 and answer == {"error": "a valid X-BackupManager-Key header is required"}
    assert headers["Content-Type"] == "application/json"
