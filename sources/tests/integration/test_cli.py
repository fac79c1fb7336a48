"""The command line as scripts use it (SPEC §17): --json, exit codes, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import BACKUPMANAGER, run_cli, set_behaviour, wait_for


def cli_json(env: dict[str, str], *args: str) -> Any:
    result = run_cli(env, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def add_job(env: dict[str, str], *extra: str) -> int:
    job = cli_json(
        env,
        "jobs",
        "add",
        "--name",
        "cloud",
        "--type",
        "ynh_app",
        "--config",
        '{"app_id": "nextcloud"}',
        "--cron",
        "0 3 * * 1",
        "--retention",
        "count:2",
        *extra,
    )
    return int(job["id"])


def test_jobs_lifecycle(cli_env: dict[str, str], sim_root: Path) -> None:
    assert run_cli(cli_env, "db", "upgrade").returncode == 0
    assert run_cli(cli_env, "db", "upgrade").returncode == 0  # idempotent
    job_id = add_job(cli_env)
    shown = cli_json(cli_env, "jobs", "show", str(job_id))
    assert shown["schedule"] == "At 03:00, only on Monday"
    assert shown["config"] == {"app_id": "nextcloud", "core_only": False}
    edited = cli_json(
        cli_env, "jobs", "edit", str(job_id), "--core-only", "--retention", "daily:14"
    )
    assert edited["core_only"] is True and edited["config"]["core_only"] is True
    assert edited["retention"] == "daily:14"
    assert cli_json(cli_env, "jobs", "disable", str(job_id))["enabled"] is False
    assert cli_json(cli_env, "jobs", "enable", str(job_id))["enabled"] is True
    assert [job["id"] for job in cli_json(cli_env, "jobs", "list")] == [job_id]
    assert cli_json(cli_env, "jobs", "delete", str(job_id)) == {"deleted": job_id}
    assert cli_json(cli_env, "jobs", "list") == []


def test_bad_input_exits_2_with_a_clear_message(cli_env: dict[str, str], sim_root: Path) -> None:
    run_cli(cli_env, "db", "upgrade")
    base = ["jobs", "add", "--name", "x", "--type", "ynh_app", "--retention", "count:3"]
    bad_cron = run_cli(cli_env, *base, "--config", '{"app_id": "nextcloud"}', "--cron", "0 3 * *")
    assert bad_cron.returncode == 2 and "cron: '0 3 * *' has 4 fields" in bad_cron.stderr
    unknown_app = run_cli(cli_env, *base, "--config", '{"app_id": "ghost"}', "--cron", "0 3 * * *")
    assert unknown_app.returncode == 2 and "'ghost' is not an installed app" in unknown_app.stderr
    bad_json = run_cli(cli_env, *base, "--config", "{app_id: nextcloud}", "--cron", "0 3 * * *")
    assert bad_json.returncode == 2 and "--config is not valid JSON" in bad_json.stderr
    bad_retention = run_cli(
        cli_env,
        *base[:-2],
        "--retention",
        "forever:1",
        "--config",
        '{"app_id": "nextcloud"}',
        "--cron",
        "0 3 * * *",
    )
    assert bad_retention.returncode == 2 and "retention" in bad_retention.stderr
    unknown_job = run_cli(cli_env, "jobs", "show", "42")
    assert unknown_job.returncode == 2 and "there is no job 42" in unknown_job.stderr
    bad_name = run_cli(cli_env, "archives", "info", "../../etc/passwd")
    assert bad_name.returncode == 2 and "not a valid archive name" in bad_name.stderr
    assert cli_json(cli_env, "jobs", "list") == []  # nothing was created by any of these
    usage = run_cli(cli_env, "jobs", "frobnicate")
    assert usage.returncode == 2


def test_run_wait_without_worker_runs_in_process(cli_env: dict[str, str], sim_root: Path) -> None:
    run_cli(cli_env, "db", "upgrade")
    job_id = add_job(cli_env)
    run = cli_json(cli_env, "jobs", "run", str(job_id), "--wait")
    assert run["status"] == "success"
    assert set(run) >= {
        "id",
        "job_id",
        "status",
        "archive_name",
        "size_bytes",
        "started_at",
        "finished_at",
    }
    archives = cli_json(cli_env, "archives", "list")
    assert [archive["name"] for archive in archives] == [run["archive_name"]]
    assert set(archives[0]) >= {
        "name",
        "size_bytes",
        "created_at",
        "type",
        "job_id",
        "origin",
        "sha256",
    }
    info = cli_json(cli_env, "archives", "info", run["archive_name"])
    assert info["yunohost_info"]["apps"] == {
        "nextcloud": info["yunohost_info"]["apps"]["nextcloud"]
    }
    shown = cli_json(cli_env, "runs", "show", str(run["id"]))
    assert "Archive saved as" in shown["log"]
    assert [r["id"] for r in cli_json(cli_env, "runs", "list", "--job", str(job_id))] == [run["id"]]
    human = run_cli(cli_env, "jobs", "run", str(job_id), "--wait")
    assert human.returncode == 0 and "Run 2: success" in human.stdout
    assert "yunohost backup create" in human.stderr  # the log is streamed


def test_failed_run_exits_1(cli_env: dict[str, str], sim_root: Path) -> None:
    run_cli(cli_env, "db", "upgrade")
    job_id = add_job(cli_env)
    set_behaviour(sim_root, results={"nextcloud": "Error"})
    result = run_cli(cli_env, "jobs", "run", str(job_id), "--wait", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["status"] == "error"


def test_retention_preview_then_apply(cli_env: dict[str, str], sim_root: Path) -> None:
    run_cli(cli_env, "db", "upgrade")
    job_id = add_job(cli_env)
    runs = [cli_json(cli_env, "jobs", "run", str(job_id), "--wait") for _ in range(2)]
    cli_json(cli_env, "jobs", "edit", str(job_id), "--retention", "count:1")
    preview = cli_json(cli_env, "retention", "preview", str(job_id))
    assert preview["applied"] is False
    assert [d["name"] for d in preview["delete"]] == [runs[0]["archive_name"]]
    assert len(cli_json(cli_env, "archives", "list")) == 2  # the preview deleted nothing
    applied = cli_json(cli_env, "retention", "apply", str(job_id))
    assert [d["name"] for d in applied["delete"]] == [runs[0]["archive_name"]]
    assert [a["name"] for a in cli_json(cli_env, "archives", "list")] == [runs[1]["archive_name"]]


def test_run_goes_through_a_running_worker(
    cli_env: dict[str, str], sim_root: Path, tmp_path: Path
) -> None:
    run_cli(cli_env, "db", "upgrade")
    job_id = add_job(cli_env)
    worker = subprocess.Popen(
        [str(BACKUPMANAGER), "worker"],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "w.log").open("w"),
    )
    try:
        wait_for(lambda: _worker_alive(cli_env), what="the worker to start")
        result = run_cli(cli_env, "jobs", "run", str(job_id), "--wait")
        assert result.returncode == 0, result.stderr
        assert "No worker is running" not in result.stderr
        assert _run_pid(cli_env, 1) == worker.pid  # the worker ran it, not the CLI
        queued = cli_json(cli_env, "jobs", "run", str(job_id))
        assert queued["queued"] is True
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0


def _query(env: dict[str, str], sql: str, *params: object) -> Any:
    import sqlite3

    config = Path(env["BACKUPMANAGER_CONFIG"]).read_text()
    data_dir = next(
        line.split('"')[1] for line in config.splitlines() if line.startswith("data_dir")
    )
    connection = sqlite3.connect(Path(data_dir) / "backupmanager.db")
    try:
        row = connection.execute(sql, params).fetchone()
    finally:
        connection.close()
    return row[0] if row else None


def _worker_alive(env: dict[str, str]) -> bool:
    return bool(_query(env, "select count(*) from worker_state"))


def _run_pid(env: dict[str, str], run_id: int) -> int:
    return int(_query(env, "select pid from runs where id = ?", run_id))
