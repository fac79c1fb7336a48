"""The OpenAPI document: in step with the routes, and schemathesis finds every answer conforms."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from backupmanager import commands
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import Restore
from backupmanager.settings import Settings
from tests.api_world import HEADER, World, make_world
from tests.helpers import run_job_now

IGNORED_METHODS = {"HEAD", "OPTIONS"}
EXAMPLES = 40  # per operation and mode: the whole file stays well under a minute


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return make_world(db, settings)


def code_routes(world: World) -> set[tuple[str, str]]:
    routes = set()
    for rule in world.app.url_map.iter_rules():
        if rule.rule.startswith("/api") and rule.endpoint != "api.fallback":
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            routes |= {(path, method) for method in (rule.methods or set()) - IGNORED_METHODS}
    return routes


def test_the_document_lists_exactly_the_routes_of_the_code(world: World) -> None:
    answer = world.get("/api/v1/openapi.json", token=world.reader)
    assert answer.status_code == 200
    document = answer.get_json()
    assert document["openapi"].startswith("3.1")
    documented = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert documented == code_routes(world)
    key = document["components"]["securitySchemes"]["ApiKey"]
    assert key == {"type": "apiKey", "in": "header", "name": HEADER}


def known_values(world: World) -> dict[str, object]:
    """A run, an archive, a queued command and a restore, so that some cases find something."""
    run = run_job_now(world.db, world.settings, world.job_id)
    assert run.archive_name
    with world.db.write() as session:
        session.add(
            Restore(archive_name=run.archive_name, status="error", error_message="disk full")
        )
        command = commands.enqueue(
            session,
            "delete_archive",
            now=system_clock(),
            requested_by="test",
            payload={"name": "x"},
        )
        command_id = command.id
    return {
        "job_id": world.job_id,
        "run_id": run.id,
        "command_id": command_id,
        "name": run.archive_name,
    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_conforms_to_the_document(world: World, mode: GenerationMode) -> None:
    """schemathesis on every operation: no 5xx, every status, header and body as documented."""
    known = known_values(world)
    # The token as schemathesis's own auth for the ApiKey scheme: it then sends it on every
    # case, and negative cases only leave it out on purpose (then 401 is the right answer).
    config = schemathesis.Config.from_dict(
        {"auth": {"openapi": {"ApiKey": {"api_key": world.admin}}}}
    )
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/openapi.json", world.app, config=config, headers={HEADER: world.admin}
    )
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {parameter.name for parameter in operation.path_parameters}
        strategy = operation.as_strategy(generation_mode=mode)
        if names:
            fixed = {name: known[name] for name in names}
            strategy = strategy | operation.as_strategy(generation_mode=mode, path_parameters=fixed)

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate()
            statuses.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)

        check()
    # The cases did reach the endpoints with the token, not only the token check.
    if mode == GenerationMode.NEGATIVE:
        assert 400 in statuses["GET /api/v1/jobs"] and 400 in statuses["GET /api/v1/runs"]
    else:
        assert 200 in statuses["GET /api/v1/health"]
        assert 202 in statuses["POST /api/v1/jobs/{job_id}/run"]
        assert 202 in statuses["DELETE /api/v1/archives/{name}"]
        assert 200 in statuses["GET /api/v1/archives/{name}/restore/status"]
