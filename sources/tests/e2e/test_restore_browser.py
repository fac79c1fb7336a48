"""A restore from the dashboard in Debian's chromium: Restore…, the plan (htmx polling under the
CSP), Restore now, the status page until success; a screenshot of the plan at desktop width."""
# ruff: noqa: F811  (pytest fixtures imported from custom_dir_support are parameters here)

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from backupmanager.app import create_app
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import WorkerState
from backupmanager.settings import Settings
from tests.e2e.browser import CHROMIUM, chromium, free_port
from tests.helpers import work_restore_commands
from tests.integration.custom_dir_support import (  # noqa: F401 (fixtures)
    cd_settings,
    systemctl_root,
)
from tests.integration.test_web_restore import folder_archive

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="chromium is missing: run ./tools/bootstrap.sh"
)
TIMEOUT_MS = 30_000


@pytest.fixture
def served(cd_settings: Settings, db: Database) -> Iterator[str]:
    """The dashboard (dev mode: no login) on a free port, in a thread of this process."""
    app: Flask = create_app(cd_settings, dev_mode=True)
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def _worker_until(page: Any, db: Database, settings: Settings, selector: str) -> None:
    """Do the worker's part while the page polls, until the selector shows up."""
    for _attempt in range(60):
        work_restore_commands(db, settings)
        if page.locator(selector).count():
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{selector} never showed up")


def test_restore_from_the_browser(
    served: str, db: Database, cd_settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    target = tmp_path / "restored"
    now = system_clock()
    with db.write() as session:  # this test does the worker's part: it is alive
        session.add(
            WorkerState(id=1, pid=os.getpid(), hostname="h", started_at=now, heartbeat_at=now)
        )
    problems: list[str] = []
    with chromium() as context:
        page: Any = context.new_page()  # type: ignore[attr-defined]
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(served + "/archives")
        page.click(f'.archive-row[data-name="{archive}"] >> text=Restore…')
        page.fill("#target", str(target))
        page.click("#show-plan")
        page.wait_for_url(re.compile(r"plan=\d+"))
        _worker_until(page, db, cd_settings, "#restore-plan[data-status=success]")
        shots = os.environ.get("BM_SCREENSHOTS_DIR")
        if shots:
            page.screenshot(path=str(Path(shots) / "restore-desktop.png"), full_page=True)
        assert not target.exists()
        page.click("#restore-now")
        page.wait_for_url("**/restores/*")
        _worker_until(page, db, cd_settings, "#restore-live[data-status=success]")
        page.wait_for_selector("#restore-result", timeout=TIMEOUT_MS)
    assert (target / str(root)[1:] / "sub" / "b.txt").read_text() == "beta\n"
    assert problems == []
