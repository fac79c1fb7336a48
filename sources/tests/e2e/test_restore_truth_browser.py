"""Restores that tell the truth, in Debian's chromium (issue 14, points 2-4), in English and
French: files in the way are refused until the checkbox is ticked, a changed option makes the
plan out of date, a plan is never listed as a restore; screenshots at desktop and phone width."""
# ruff: noqa: F811  (pytest fixtures imported from other test modules are parameters here)

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import WorkerState
from backupmanager.settings import Settings
from tests.e2e.browser import CHROMIUM, DESKTOP, PHONE, chromium
from tests.e2e.test_restore_browser import (
    _worker_until,
    served,  # noqa: F401 (a fixture)
)
from tests.integration.custom_dir_support import (  # noqa: F401 (fixtures)
    cd_settings,
    systemctl_root,
)
from tests.integration.test_web_restore import folder_archive

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="chromium is missing: run ./tools/bootstrap.sh"
)
# What the page must say, per language: the checkbox's label (named by the refusal), the notice
# of a plan out of date, the empty restores list.
WORDS = {
    "en": ("Overwrite files that already exist", "out of date", "No restore yet."),
    "fr": ("Écraser les fichiers qui existent déjà", "plus à jour", "Aucune restauration"),
}


def _shoot(page: Any, name: str, language: str) -> None:
    """Desktop and phone screenshots of the page, when BM_SCREENSHOTS_DIR asks for them."""
    folder = os.environ.get("BM_SCREENSHOTS_DIR")
    if not folder:
        return
    suffix = "" if language == "en" else f"-{language}"
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(Path(folder) / f"{name}{suffix}-{width}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def _show_plan(page: Any, db: Database, settings: Settings, status: str) -> None:
    page.click("#show-plan")
    page.wait_for_url(re.compile(r"plan=\d+"))
    _worker_until(page, db, settings, f"#restore-plan[data-status={status}]")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_restore_does_what_its_plan_said(
    served: str, db: Database, cd_settings: Settings, tmp_path: Path, language: str
) -> None:
    label, stale, no_restore = WORDS[language]
    root = tmp_path / "srv" / "app"
    archive = folder_archive(db, cd_settings, root)
    target = tmp_path / "restored"
    in_the_way = target / str(root)[1:] / "a.txt"
    in_the_way.parent.mkdir(parents=True)
    in_the_way.write_text("already here\n")
    now = system_clock()
    with db.write() as session:  # this test does the worker's part: it is alive
        session.add(
            WorkerState(id=1, pid=os.getpid(), hostname="h", started_at=now, heartbeat_at=now)
        )
    problems: list[str] = []
    with chromium(locale="fr-FR" if language == "fr" else "en-US") as context:
        page: Any = context.new_page()  # type: ignore[attr-defined]
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))

        # 2. A file in the target folder: refused, naming it and the checkbox; no "Restore now".
        page.goto(f"{served}/archives/{archive}/restore")
        page.fill("#target", str(target))
        _show_plan(page, db, cd_settings, "error")
        refusal = page.inner_text("#plan-refusal")
        assert label in refusal and str(in_the_way) in refusal and "--" not in refusal
        assert page.locator("#restore-now").count() == 0
        _shoot(page, "restore-refused", language)
        page.check("input[name=overwrite]")
        _show_plan(page, db, cd_settings, "success")
        assert page.is_visible("#restore-now")

        # 4. Another folder typed after the plan: the plan is out of date, no "Restore now".
        page.fill("#target", str(tmp_path / "elsewhere"))
        assert page.is_visible("#plan-stale") and stale in page.inner_text("#plan-stale")
        assert not page.is_visible("#restore-now")
        _shoot(page, "restore-stale", language)

        # The plan shown again (the page as the plan left it): "Restore now" restores it.
        page.goto(page.url)
        _shoot(page, "restore-plan", language)
        page.click("#restore-now")
        page.wait_for_url("**/restores/*")
        _worker_until(page, db, cd_settings, "#restore-live[data-status=success]")

        # 3. The restores page lists the restore, not the two plans shown before it.
        page.goto(f"{served}/restores")
        assert page.locator(".restore-row").count() == 1
        _shoot(page, "restores", language)
        assert no_restore not in page.content()
    assert in_the_way.read_text() == "alpha\n"
    assert not (tmp_path / "elsewhere").exists()
    assert problems == []
