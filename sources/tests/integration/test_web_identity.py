"""Who may use the dashboard (YUNOHOST.md §5): real system users and group, real HTTP requests
through the Flask app, as SSOwat and our nginx would forward them."""

from __future__ import annotations

import base64
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from backupmanager.app import create_app
from backupmanager.db import Database
from backupmanager.devmode import is_loopback
from backupmanager.settings import DEFAULT_DATA_DIR, Settings
from tests.helpers import add_job

pytestmark = pytest.mark.root


@dataclass(frozen=True)
class World:
    """A fixed small world: an admin, a plain user, and the admins group (healthchecks' style)."""

    group: str
    admin: str
    primary_admin: str  # in the group through their primary group, not the member list
    stranger: str


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.skip("creating system users and groups needs root")
    tag = secrets.token_hex(3)
    made = World(f"bmadm{tag}", f"bmalice{tag}", f"bmcarol{tag}", f"bmbob{tag}")
    _run("groupadd", made.group)
    users = []
    try:
        for user, options in (
            (made.admin, ("-G", made.group)),
            (made.primary_admin, ("-g", made.group)),
            (made.stranger, ()),
        ):
            _run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", *options, user)
            users.append(user)
        yield made
    finally:
        for user in users:
            subprocess.run(["userdel", user], check=False, capture_output=True)
        subprocess.run(["groupdel", made.group], check=False, capture_output=True)


@pytest.fixture
def app(settings: Settings, db: Database, world: World) -> Flask:
    add_job(db, settings)
    return create_app(settings.model_copy(update={"admins_group": world.group}))


def sso(user: str, *, header_user: str | None = None, password: str = "-") -> dict[str, str]:
    """The headers SSOwat (Authorization) and our nginx (X-Ynh-User) give a logged-in user."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "X-Ynh-User": header_user or user}


def test_no_identity_is_refused(app: Flask) -> None:
    answer = app.test_client().get("/")
    assert answer.status_code == 403
    assert b"YunoHost portal" in answer.data


def test_a_user_outside_the_admins_group_is_refused(app: Flask, world: World) -> None:
    answer = app.test_client().get("/", headers=sso(world.stranger))
    assert answer.status_code == 403
    assert world.stranger.encode() in answer.data
    for path in ("/jobs/new", "/archives", "/jobs/1", "/jobs/preview/cron?cron=*+*+*+*+*"):
        assert app.test_client().get(path, headers=sso(world.stranger)).status_code == 403


def test_an_admin_is_let_in(app: Flask, world: World) -> None:
    client = app.test_client()
    for user in (world.admin, world.primary_admin):
        answer = client.get("/", headers=sso(user, password="their-real-password"))
        assert answer.status_code == 200
        assert b"nextcloud daily" in answer.data
        assert b"their-real-password" not in answer.data


def test_one_forged_header_alone_is_not_enough(app: Flask, world: World) -> None:
    client = app.test_client()
    # X-Ynh-User without SSOwat's Authorization (a client reaching the app around SSOwat)…
    assert client.get("/", headers={"X-Ynh-User": world.admin}).status_code == 403
    # …Authorization without the header our nginx sets…
    headers = sso(world.admin)
    del headers["X-Ynh-User"]
    assert client.get("/", headers=headers).status_code == 403
    # …or the two naming different people.
    assert client.get("/", headers=sso(world.stranger, header_user=world.admin)).status_code == 403
    assert client.get("/", headers=sso(world.admin, header_user=world.stranger)).status_code == 403
    # Garbage instead of base64 is no identity either.
    garbage = {"Authorization": "Basic !!!", "X-Ynh-User": world.admin}
    assert client.get("/", headers=garbage).status_code == 403


def test_forms_need_the_csrf_token(app: Flask, world: World) -> None:
    client = app.test_client()
    page = client.get("/jobs/1", headers=sso(world.admin)).data.decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    refused = client.post("/jobs/1/run", headers=sso(world.admin))
    assert refused.status_code == 400
    wrong = client.post("/jobs/1/run", headers=sso(world.admin), data={"csrf_token": "x" * 43})
    assert wrong.status_code == 400
    accepted = client.post("/jobs/1/run", headers=sso(world.admin), data={"csrf_token": token[1]})
    assert accepted.status_code == 302 and "/runs/" in accepted.headers["Location"]
    # A token is bound to the session of the user it was given to.
    other = app.test_client()
    stolen = other.post("/jobs/1/run", headers=sso(world.admin), data={"csrf_token": token[1]})
    assert stolen.status_code == 400


def test_every_page_carries_a_strict_content_security_policy(app: Flask, world: World) -> None:
    answer = app.test_client().get("/", headers=sso(world.admin))
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert b"<script>" not in answer.data and b" style=" not in answer.data


def test_the_api_is_not_behind_the_dashboard_login(app: Flask) -> None:
    """The SSO and CSRF checks belong to dashboard blueprints only; /api/ has its own token auth."""
    from backupmanager.web import auth

    hooks = app.before_request_funcs
    for check in (auth.require_admin, auth.check_csrf):
        assert check not in hooks.get(None, [])
        for name in ("dashboard", "jobs", "runs", "archives"):
            assert check in hooks[name]
        for name in app.blueprints:
            if name.startswith("api"):
                assert check not in hooks.get(name, [])


def test_dev_mode_is_explicit_and_local(settings: Settings, db: Database, tmp_path: Path) -> None:
    answer = create_app(settings, dev_mode=True).test_client().get("/")
    assert answer.status_code == 200 and b"Dev mode: no login" in answer.data
    assert b"Dev mode" not in create_app(settings).test_client().get("/").data
    production = settings.model_copy(update={"data_dir": DEFAULT_DATA_DIR})
    with pytest.raises(RuntimeError, match="production data folder"):
        create_app(production, dev_mode=True)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
