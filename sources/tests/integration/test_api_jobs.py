"""API endpoints for health, jobs and runs over the fixed world; the JSON error shape."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select

from backupmanager.clock import system_clock
from backupmanager.commands import run_inline
from backupmanager.db import Database
from backupmanager.models import Run, WorkerState
from backupmanager.settings import Settings
from tests.api_world import World, make_world


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return make_world(db, settings)


def follow_run(world: World, run_id: int, *, timeout: float = 60) -> tuple[dict[str, Any], str]:
    """Poll runs/<id> as a client would, reading the log by offsets; the final view and log."""
    deadline = time.monotonic() + timeout
    log, offset = "", 0
    while time.monotonic() < deadline:
        answer = world.get(f"/api/v1/runs/{run_id}?log_offset={offset}")
        assert answer.status_code == 200
        view = answer.get_json()
        assert view["log_offset"] == offset
        log += view["log"]
        offset = view["log_next_offset"]
        if view["finished"]:
            return view, log
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


def test_health_says_who_is_asking_and_whether_the_worker_lives(world: World) -> None:
    answer = world.get("/api/v1/health")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    health = answer.get_json()
    assert health["status"] == "degraded" and health["worker_alive"] is False
    assert health["instance_name"] == "jerry" and health["api_version"] == "v1"
    assert health["token"] == {"name": "admin", "read_only": False}
    now = system_clock()
    with world.db.write() as session:
        session.add(WorkerState(id=1, pid=1, hostname="h", started_at=now, heartbeat_at=now))
    assert world.get("/api/v1/health").get_json()["status"] == "ok"


def test_jobs_are_listed_with_pagination_and_filters(world: World) -> None:
    everything = world.get("/api/v1/jobs").get_json()
    assert everything["total"] == 2 and everything["next_offset"] is None
    first = everything["items"][0]
    assert first["id"] == world.job_id and first["name"] == "nextcloud daily"
    assert first["last_run"] is None and first["archive_count"] == 0
    assert first["schedule"] and first["next_run_at"]
    one = world.get("/api/v1/jobs?limit=1").get_json()
    assert [job["id"] for job in one["items"]] == [world.job_id] and one["next_offset"] == 1
    rest = world.get("/api/v1/jobs?limit=1&offset=1").get_json()
    assert [job["id"] for job in rest["items"]] == [world.disabled_job_id]
    disabled = world.get("/api/v1/jobs?enabled=false").get_json()
    assert [job["id"] for job in disabled["items"]] == [world.disabled_job_id]
    assert world.get("/api/v1/jobs?type=custom_dir").get_json()["total"] == 0
    assert world.get(f"/api/v1/jobs/{world.job_id}").get_json()["id"] == world.job_id


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/v1/jobs?limit=0", 400, "limit"),
        ("/api/v1/jobs?limit=501", 400, "limit"),
        ("/api/v1/jobs?offset=-1", 400, "offset"),
        ("/api/v1/jobs?enabeld=true", 400, "unknown field"),
        ("/api/v1/jobs?limit=1&limit=2", 400, "once"),
        ("/api/v1/health?verbose=1", 400, "unknown field"),
        ("/api/v1/runs?status=lost", 400, "status"),
        ("/api/v1/jobs/999", 404, "no job 999"),
        ("/api/v1/jobs/0", 404, "no job 0"),
        ("/api/v1/jobs/abc/runs", 404, "no such API endpoint"),
        ("/api/v1/jobs/99999999999999999999999", 404, "no job 9999"),
        ("/api/v1/runs/42", 404, "no run 42"),
        ("/api/v1/commands/42", 404, "no command 42"),
        ("/api/v1/nothing-here", 404, "no such API endpoint"),
        ("/api/v2/health", 404, "no such API endpoint"),
        ("/api/v1/jobs/", 404, "no such API endpoint"),
    ],
)
def test_errors_are_json_with_the_right_status(
    world: World, path: str, status: int, words: str
) -> None:
    answer = world.get(path)
    assert answer.status_code == status
    assert answer.is_json and words in answer.get_json()["error"]


def test_wrong_methods_get_a_json_405_with_allow(world: World) -> None:
    answer = world.call("DELETE", "/api/v1/health", token=world.admin)
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD"
    assert answer.get_json() == {"error": "this method is not allowed here"}
    options = world.call("OPTIONS", f"/api/v1/jobs/{world.job_id}/run", token=world.admin)
    assert options.status_code == 405 and options.headers["Allow"] == "POST"


def test_bodies_are_small_json_objects_without_unknown_fields(world: World) -> None:
    path = f"/api/v1/jobs/{world.job_id}/run"

    def post(**kwargs: Any) -> tuple[int, str]:
        answer = world.call("POST", path, token=world.admin, **kwargs)
        return answer.status_code, answer.get_json()["error"]

    assert post(json={"wait": True}) == (400, "wait: unknown field (check its spelling)")
    assert post(json=[1]) == (400, "the request body must be a JSON object, e.g. {}")
    status, error = post(data="{not json", content_type="application/json")
    assert status == 400 and "not valid JSON" in error
    assert post(data="job=1", content_type="application/x-www-form-urlencoded")[0] == 415
    status, error = post(data="{" + " " * 70_000 + "}", content_type="application/json")
    assert status == 413 and "too large" in error
    with world.db.read() as session:  # nothing was queued by any refused request
        assert session.scalar(select(func.count(Run.id))) == 0


def test_a_run_started_through_the_api_is_followed_to_success(world: World) -> None:
    path = f"/api/v1/jobs/{world.job_id}/run"
    answer = world.call("POST", path, token=world.admin)  # no body at all is fine
    assert answer.status_code == 202
    queued = answer.get_json()
    run_id = queued["run_id"]
    assert queued == {
        "run_id": run_id,
        "created": True,
        "status": "queued",
        "url": f"/api/v1/runs/{run_id}",
    }
    assert answer.headers["Location"] == queued["url"]
    again = world.call("POST", path, token=world.admin, json={})
    assert again.status_code == 200 and again.get_json()["run_id"] == run_id
    assert again.get_json()["created"] is False
    worker = threading.Thread(target=run_inline, args=(world.db, world.settings, run_id))
    worker.start()  # the worker's part, in this process (nothing ran in the web request)
    view, log = follow_run(world, run_id)
    worker.join()
    assert view["status"] == "success" and view["trigger"] == "api"
    assert view["archive_name"].startswith("jerry_nextcloud_") and view["sha256"]
    assert set(view["progress"]) == {"bytes", "total_bytes", "percent"}
    assert log == world.get(f"/api/v1/runs/{run_id}").get_json()["log"]
    assert "backup create" in log or "Backup" in log
    runs = world.get(f"/api/v1/jobs/{world.job_id}/runs").get_json()
    assert [run["id"] for run in runs["items"]] == [run_id] and "log" not in runs["items"][0]
    assert world.get(f"/api/v1/jobs/{world.job_id}/runs?status=error").get_json()["total"] == 0
    assert world.get(f"/api/v1/runs?job_id={world.job_id}&status=success").get_json()["total"] == 1
    assert world.get(f"/api/v1/runs?job_id={world.disabled_job_id}").get_json()["total"] == 0
    job = world.get(f"/api/v1/jobs/{world.job_id}").get_json()
    assert job["last_run"]["id"] == run_id and job["last_run"]["status"] == "success"
    assert job["archive_count"] == 1
