"""The YunoHost package: manifest, units, scripts (shellcheck), and the install steps that are ours.

The install check runs our own scripts/_common.sh functions (venv from the lock file, config
rendering, permissions, db upgrade) with stand-ins for the few YunoHost helpers they call
(tests/fakes/ynh_helpers.sh), then starts the worker and the web process exactly as the systemd
units say — the web process as a real unprivileged user — and drives a backup through them.
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FAKES, SIMULATOR
from tests.helpers import wait_for
from tests.integration.custom_dir_support import system_user  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[3]


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "conf" / name)
    return parser


def test_manifest_declares_what_the_spec_asks() -> None:
    manifest = tomllib.loads((ROOT / "manifest.toml").read_text())
    assert manifest["id"] == "backupmanager" and manifest["packaging_format"] == 2
    assert manifest["integration"]["helpers_version"] == "2.1"
    assert manifest["integration"]["yunohost"] == ">= 12.0.9"
    permissions = manifest["resources"]["permissions"]
    main, api = permissions["main"], permissions["api"]
    assert main["url"] == "/" and main["allowed"] == "admins" and main["auth_header"] is True
    assert api["url"] == "/api" and api["allowed"] == "visitors" and api["auth_header"] is False
    assert api["show_tile"] is False and api["protected"] is True
    packages = {name.strip() for name in manifest["resources"]["apt"]["packages"].split(",")}
    assert {"python3-venv", "rsync", "mariadb-client", "postgresql-client"} <= packages
    pyproject = tomllib.loads((ROOT / "sources" / "pyproject.toml").read_text())
    assert manifest["version"].split("~ynh")[0] == pyproject["project"]["version"]


def test_web_unit_is_hardened_and_not_root() -> None:
    service = unit("systemd.service")["Service"]
    assert service["User"] == "__APP__"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["CapabilityBoundingSet"] == ""
    assert "@privileged" in service["SystemCallFilter"]
    assert "127.0.0.1:__PORT__" in service["ExecStart"]


def test_worker_unit_is_root() -> None:
    service = unit("worker.service")["Service"]
    assert service["User"] == "root"
    assert service["ExecStart"].endswith("backupmanager worker")


def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(path) for path in (ROOT / "scripts").iterdir())
    result = subprocess.run(
        ["shellcheck", "-s", "bash", *scripts], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout


@pytest.fixture
def app_user(system_user: str) -> str:  # noqa: F811 (the fixture, requested by name)
    """The app's system user, as YunoHost's system_user resource creates it."""
    return system_user


@pytest.fixture
def install_root() -> Iterator[Path]:
    # Not under pytest's tmp dir: that one is root-only, the app user could not enter it.
    root = Path("/var/tmp") / f"bm-package-{uuid.uuid4().hex[:8]}"
    root.mkdir(mode=0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def exec_start(unit_name: str, values: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    service = unit(unit_name)["Service"]
    command, environment = service["ExecStart"], service["Environment"]
    for key, value in values.items():
        command = command.replace(f"__{key.upper()}__", value)
        environment = environment.replace(f"__{key.upper()}__", value)
    name, _, value = environment.partition("=")
    return shlex.split(command), {name: value}


def test_install_steps_then_web_and_worker_as_units(
    app_user: str, install_root: Path, tmp_path: Path
) -> None:
    install_dir, data_dir = install_root / "install", install_root / "data"
    install_dir.mkdir()
    data_dir.mkdir()
    port = 18000 + int(uuid.uuid4().hex[:3], 16) % 1000
    values = {
        "app": app_user,
        "install_dir": str(install_dir),
        "data_dir": str(data_dir),
        "port": str(port),
    }
    script = f"""
        set -euo pipefail
        # Debian's python3, as on a YunoHost server (a python under /root would be out of the app user's reach)
        export PATH=/usr/bin:/bin:/usr/sbin:/sbin
        export YNH_APP_BASEDIR={shlex.quote(str(ROOT))} YNH_SIM_SETTINGS={shlex.quote(str(tmp_path / "settings.yml"))}
        app={app_user} install_dir={install_dir} data_dir={data_dir} domain=backup.example.org path=/backupmanager
        instance_name=jerry
        source {FAKES / "ynh_helpers.sh"}
        cd {ROOT / "scripts"}
        source _common.sh
        ynh_app_setting_set --key=hook_commands --value=false
        _backupmanager_build_venv
        _backupmanager_render_config
        _backupmanager_permissions
        _backupmanager_as_app db upgrade
        _backupmanager_first_token
    """
    build = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    config = install_dir / "config.toml"
    rendered = tomllib.loads(config.read_text())
    assert rendered["instance_name"] == "jerry"
    assert rendered["instance_url"] == "https://backup.example.org/backupmanager"
    assert rendered["data_dir"] == str(data_dir)
    assert rendered["features"]["hook_commands"] is False
    assert oct(config.stat().st_mode & 0o777) == "0o640" and config.stat().st_uid == 0
    assert pwd.getpwuid((data_dir / "backupmanager.db").stat().st_uid).pw_name == app_user
    token_file = data_dir / "api-token-created-at-install.txt"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600" and token_file.stat().st_uid == 0
    token = json.loads(token_file.read_text())["token"]
    assert token not in (data_dir / "backupmanager.db").read_bytes().decode("latin-1")  # hash only

    archives = install_root / "archives"
    archives.mkdir()
    overrides = {  # what this machine lacks: YunoHost itself and its archives folder
        "BACKUPMANAGER_ARCHIVES_DIR": str(archives),
        "BACKUPMANAGER_PROGRAMS_YUNOHOST": str(SIMULATOR),
        "YNH_SIM_ROOT": str(install_root / "ynh"),
        "YNH_SIM_ARCHIVES_DIR": str(archives),
        # The dashboard lets in members of the admins group only: here, the app user's own group.
        "BACKUPMANAGER_ADMINS_GROUP": app_user,
    }
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BACKUPMANAGER_", "YNH_SIM_"))
    }
    worker_argv, worker_env = exec_start("worker.service", values)
    web_argv, web_env = exec_start("systemd.service", values)
    worker = subprocess.Popen(
        worker_argv,
        env={**base_env, **worker_env, **overrides},
        stdout=(tmp_path / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    web = subprocess.Popen(
        ["setpriv", f"--reuid={app_user}", f"--regid={app_user}", "--init-groups", "--", *web_argv],
        env={**base_env, **web_env, **overrides},
        cwd=install_dir,
        stdout=(tmp_path / "web.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    cli = [str(install_dir / "venv" / "bin" / "backupmanager"), "--json"]
    cli_env = {**base_env, **worker_env, **overrides}
    try:
        job = json.loads(
            subprocess.run(
                [
                    *cli,
                    "jobs",
                    "add",
                    "--name",
                    "nightly",
                    "--type",
                    "ynh_app",
                    "--config",
                    '{"app_id": "nextcloud"}',
                    "--cron",
                    "0 3 * * *",
                ],
                env=cli_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        run = json.loads(
            subprocess.run(
                [*cli, "jobs", "run", str(job["id"]), "--wait"],
                env=cli_env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert run["status"] == "success"
        page = wait_for(
            lambda: _get(f"http://127.0.0.1:{port}/", as_user=app_user),
            timeout=60,
            what="the web process",
        )
        # the unprivileged web process reads what root's worker wrote
        assert run["archive_name"] in page
        health = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/health", headers={"X-BackupManager-Key": token}
        )
        answer = json.loads(urllib.request.urlopen(health, timeout=10).read())
        assert answer["worker_alive"] is True and answer["instance_name"] == "jerry"
        assert answer["token"] == {"name": "install", "read_only": False}
    finally:
        for process in (web, worker):
            process.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()
        web.wait(timeout=60)
    wal = data_dir / "backupmanager.db-wal"
    if wal.exists():  # SQLite gives it the database's owner even when root created it
        assert pwd.getpwuid(wal.stat().st_uid).pw_name == app_user


def _get(url: str, *, as_user: str) -> str | None:
    """The page as SSOwat and our nginx would forward it for a logged-in user (doc/dashboard.md)."""
    basic = base64.b64encode(f"{as_user}:-".encode()).decode()
    headers = {"Authorization": f"Basic {basic}", "X-Ynh-User": as_user}
    try:
        request = urllib.request.Request(url, headers=headers)
        return urllib.request.urlopen(request, timeout=5).read().decode()
    except OSError:
        return None
