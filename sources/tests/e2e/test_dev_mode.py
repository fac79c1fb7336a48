"""The README's dev command: a scheduled ynh_app job produces a named archive within a minute."""

from __future__ import annotations

import re
import sqlite3
import urllib.request
from pathlib import Path

from tests.e2e.browser import dev_server
from tests.helpers import wait_for


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
    with dev_server(tmp_path, stop_within=30) as dev:
        runs = wait_for(
            lambda: scheduled_runs(dev.data_dir / "backupmanager.db"),
            timeout=100,
            what="the demo job's first scheduled run",
        )
        _status, _trigger, archive_name = runs[0]
        assert re.fullmatch(r"dev_nextcloud_\d{8}", archive_name)
        assert (dev.data_dir / "archives" / f"{archive_name}.tar").exists()
        assert (dev.data_dir / "archives" / f"{archive_name}.info.json").exists()
        page = urllib.request.urlopen(f"{dev.url}/", timeout=10).read().decode()
        assert "demo nextcloud" in page and archive_name in page
