"""API tokens (SPEC §10): every route needs one, read-only scope, revocation, rate limit, CLI."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from backupmanager import tokens
from backupmanager.api import EXTENSION, ApiState
from backupmanager.api.auth import FailureLimiter, client_address
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import ApiToken
from backupmanager.settings import Settings
from tests.api_world import World, make_world
from tests.helpers import BACKUPMANAGER, run_cli

WRONG = "0" * 64  # well formed, matches no token
SAMPLE_ARGUMENTS = {"job_id": "1", "run_id": "1", "command_id": "1", "name": "jerry_x_20260101"}


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return make_world(db, settings)


def api_state(world: World) -> ApiState:
    api_state: ApiState = world.app.extensions[EXTENSION]
    return api_state


def api_routes(world: World) -> list[tuple[str, str, str]]:
    """(endpoint, method, concrete path) for every rule and method under /api."""
    routes = []
    for rule in world.app.url_map.iter_rules():
        if not rule.rule.startswith("/api"):
            continue
        path = rule.rule
        for argument in rule.arguments:
            value = SAMPLE_ARGUMENTS.get(argument, "x")
            path = re.sub(rf"<[^>]*{argument}>", value, path)
        for method in sorted(rule.methods or ()):
            routes.append((rule.endpoint, method, path))
    return routes


def test_every_api_route_refuses_a_missing_or_invalid_token(world: World) -> None:
    routes = api_routes(world)
    endpoints = {endpoint for endpoint, _, _ in routes}
    assert {"api.health", "api.start_run", "api.delete_archive", "api.fallback"} <= endpoints
    assert all(endpoint.startswith("api.") for endpoint in endpoints)  # nothing else under /api
    credentials = [None, "", WRONG, world.revoked, "not-a-token", world.admin.upper(), "x" * 500]
    for number, (endpoint, method, path) in enumerate(routes):
        for credential in credentials:
            address = f"10.{number}.{len(credential or '') % 250}.1"  # keep clear of the rate limit
            answer = world.call(
                method, path, token=credential, environ_base={"REMOTE_ADDR": address}
            )
            assert answer.status_code == 401, (endpoint, method, path, credential)
            assert "X-BackupManager-Key" in answer.headers["WWW-Authenticate"]
            if method != "HEAD":
                assert answer.is_json and set(answer.get_json()) == {"error"}
                assert "X-BackupManager-Key" in answer.get_json()["error"]
            for secret in (world.admin, world.revoked):
                assert secret not in answer.get_data(as_text=True)


def test_read_only_token_reads_but_changes_nothing(world: World) -> None:
    for endpoint, method, path in api_routes(world):
        if method in ("GET", "HEAD") or endpoint == "api.fallback":
            continue
        answer = world.call(method, path, token=world.reader, json={})
        assert answer.status_code == 403, (endpoint, method, path)
        assert "read-only" in answer.get_json()["error"]
    health = world.get("/api/v1/health", token=world.reader)
    assert health.status_code == 200
    assert health.get_json()["token"] == {"name": "monitoring", "read_only": True}
    assert world.get("/api/v1/jobs", token=world.reader).status_code == 200


def test_a_verified_token_costs_no_bcrypt_on_later_requests(world: World) -> None:
    verifier = api_state(world).verifier
    for _ in range(5):
        assert world.get("/api/v1/health").status_code == 200
    # At most one check per active token (admin, monitoring) the first time, none afterwards.
    first = verifier.bcrypt_checks
    assert 1 <= first <= 2
    for _ in range(20):
        assert world.get("/api/v1/health").status_code == 200
        assert world.get("/api/v1/health", token=world.reader).status_code == 200
    assert verifier.bcrypt_checks <= first + 2  # the reader's first check, then nothing


def test_revocation_from_the_cli_takes_effect_on_the_next_request(
    world: World, cli_env: dict[str, str]
) -> None:
    assert world.get("/api/v1/health").status_code == 200  # now cached in the web process
    subprocess.run(
        [str(BACKUPMANAGER), "tokens", "revoke", "admin"], env=cli_env, check=True, timeout=60
    )
    assert world.get("/api/v1/health").status_code == 401
    assert world.get("/api/v1/health", token=world.reader).status_code == 200


def test_revocation_by_the_token_service_in_this_process_takes_effect_too(world: World) -> None:
    """The dashboard's token page calls the same service inside the web process."""
    assert world.get("/api/v1/jobs").status_code == 200
    assert world.get("/api/v1/jobs").status_code == 200  # served from the cache
    tokens.revoke_token(world.db, "admin", now=system_clock())
    assert world.get("/api/v1/jobs").status_code == 401
    assert world.get("/api/v1/jobs", token=world.reader).status_code == 200


def test_failed_authentications_are_rate_limited_per_address(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="backupmanager.api")
    attacker = {"REMOTE_ADDR": "192.0.2.7"}
    assert world.get("/api/v1/health", environ_base=attacker).status_code == 200  # cached
    for _ in range(10):
        assert world.get("/api/v1/health", token=WRONG, environ_base=attacker).status_code == 401
    blocked = world.get("/api/v1/health", token=WRONG, environ_base=attacker)
    assert blocked.status_code == 429
    retry_after = int(blocked.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert blocked.get_json()["retry_after"] == retry_after
    assert "too many failed" in blocked.get_json()["error"]
    # From the blocked address: a token not yet verified is not even checked, a verified one works.
    assert world.get("/api/v1/health", token=world.reader, environ_base=attacker).status_code == 429
    assert world.get("/api/v1/health", environ_base=attacker).status_code == 200
    # Other addresses are not affected.
    other = {"REMOTE_ADDR": "198.51.100.20"}
    assert world.get("/api/v1/health", token=WRONG, environ_base=other).status_code == 401
    assert world.get("/api/v1/health", token=world.reader, environ_base=other).status_code == 200
    refused = [record.getMessage() for record in caplog.records]
    assert any("192.0.2.7" in message and "refused" in message for message in refused)
    assert not any(WRONG in message or world.admin in message for message in refused)


def test_behind_nginx_the_address_is_the_one_nginx_appended() -> None:
    proxied = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9, 198.51.100.7"}
    assert client_address(proxied) == "198.51.100.7"
    # A direct client cannot choose its address by sending the header itself.
    direct = {"REMOTE_ADDR": "192.0.2.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    assert client_address(direct) == "192.0.2.1"
    # An IPv6 client is counted by its /64; an IPv4-mapped one as IPv4.
    assert client_address({"REMOTE_ADDR": "2001:db8:1:2:aaaa::1"}) == "2001:db8:1:2::/64"
    assert client_address({"REMOTE_ADDR": "::ffff:192.0.2.5"}) == "192.0.2.5"


def test_the_rate_limit_forgets_failures_after_its_window() -> None:
    now = [1000.0]
    limiter = FailureLimiter(max_failures=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.record_failure("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 60
    now[0] += 45
    assert limiter.retry_after("192.0.2.1") == 15
    assert limiter.retry_after("192.0.2.2") == 0
    now[0] += 15
    assert limiter.retry_after("192.0.2.1") == 0


def test_last_use_is_recorded_at_most_once_a_minute(world: World) -> None:
    def last_used() -> object:
        with world.db.read() as session:
            return session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == "admin"))

    assert last_used() is None
    world.get("/api/v1/health")
    first = last_used()
    assert first is not None
    world.get("/api/v1/jobs")
    assert last_used() == first  # no write per request
    earlier = system_clock() - timedelta(minutes=2)
    with world.db.write() as session:
        session.execute(
            update(ApiToken).where(ApiToken.name == "admin").values(last_used_at=earlier)
        )
    world.get("/api/v1/jobs")
    assert last_used() != earlier


def test_tokens_cli_creates_once_lists_and_revokes(
    db: Database, settings: Settings, cli_env: dict[str, str]
) -> None:
    created = run_cli(cli_env, "tokens", "create", "ci", "--json", timeout=60)
    assert created.returncode == 0, created.stderr
    answer = json.loads(created.stdout)
    token = answer["token"]
    assert answer["name"] == "ci" and re.fullmatch(r"[0-9a-f]{64}", token)
    human = run_cli(cli_env, "tokens", "create", "grafana", "--read-only", timeout=60)
    assert human.returncode == 0
    assert re.fullmatch(r"[0-9a-f]{64}\n", human.stdout)  # alone on stdout, for $(…)
    assert "cannot be shown again" in human.stderr
    with db.read() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == "ci"))
        assert row is not None and row.token_hash.startswith("$2b$12$")  # bcrypt, default cost
    assert token.encode() not in settings.database_path.read_bytes()  # only the hash is stored
    listed = run_cli(cli_env, "tokens", "list", "--json", timeout=60)
    rows = json.loads(listed.stdout)
    assert [(row["name"], row["scope"], row["active"]) for row in rows] == [
        ("ci", "full", True),
        ("grafana", "read-only", True),
    ]
    assert all(set(row) & {"token", "token_hash"} == set() for row in rows)
    assert token not in listed.stdout and "$2b$" not in listed.stdout
    again = run_cli(cli_env, "tokens", "create", "ci", timeout=60)
    assert again.returncode == 2 and "already called 'ci'" in again.stderr
    bad = run_cli(cli_env, "tokens", "create", "../x", timeout=60)
    assert bad.returncode == 2 and "not a valid token name" in bad.stderr
    revoked = run_cli(cli_env, "tokens", "revoke", "ci", "--json", timeout=60)
    assert revoked.returncode == 0 and json.loads(revoked.stdout)["active"] is False
    assert run_cli(cli_env, "tokens", "revoke", "nope", timeout=60).returncode == 2
    active = json.loads(run_cli(cli_env, "tokens", "list", "--active", "--json", timeout=60).stdout)
    assert [row["name"] for row in active] == ["grafana"]
