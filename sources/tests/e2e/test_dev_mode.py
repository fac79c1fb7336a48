"""The README's dev command: a scheduled ynh_app job produces a named archive within a minute."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.helpers import wait_for

BACKUPMANAGER = Path(sys.executable).parent / "backupmanager"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scheduled_runs(database: Path) -> list[tuple[str, str, str]]:
    if not database.exists():
        return []
    connection = sqlite3.connect(database)
    try:
        return connection.execute(
            "select status, trigger, coalesce(archive_name, '') from runs where trigger = 'schedule' and status = 'success'"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


def test_dev_mode_runs_a_scheduled_backup(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUPMANAGER_", "YNH_SIM_"))}
    port = free_port()
    data_dir = tmp_path / "var" / "dev"
    log = (tmp_path / "dev.log").open("w")
    dev = subprocess.Popen(
        [str(BACKUPMANAGER), "dev", "--data-dir", str(data_dir), "--bind", f"127.0.0.1:{port}"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        runs = wait_for(
            lambda: scheduled_runs(data_dir / "backupmanager.db"),
            timeout=100,
            what="the demo job's first scheduled run",
        )
        _status, _trigger, archive_name = runs[0]
        assert re.fullmatch(r"dev_nextcloud_\d{8}", archive_name)
        assert (data_dir / "archives" / f"{archive_name}.tar").exists()
        assert (data_dir / "archives" / f"{archive_name}.info.json").exists()
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "demo nextcloud" in page and archive_name in page
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=30)
        log.close()
