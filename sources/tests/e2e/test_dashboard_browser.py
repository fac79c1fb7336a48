"""The dashboard in Debian's chromium: create a job (a bad cron refused), run it, watch it, find
and delete its archive; screenshots of each main screen at desktop and phone widths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import CHROMIUM, DESKTOP, PHONE, DevServer, chromium, dev_server

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="chromium is missing: run ./tools/bootstrap.sh"
)
RUN_TIMEOUT_MS = 90_000
# BACKUPMANAGER_SCREENSHOTS=doc/screenshots refreshes the committed screenshots; by default they go
# to the test's temporary folder (so a test run leaves the work tree alone).
SCREENSHOTS_ENV = "BM_SCREENSHOTS_DIR"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with dev_server(tmp_path_factory.mktemp("dashboard")) as running:
        yield running


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get(SCREENSHOTS_ENV)
    path = Path(folder).resolve() if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _watch_console(page: Any, problems: list[str]) -> None:
    """Any Content-Security-Policy violation, failed load or script error fails the test (the
    refused form's 422 answer is expected)."""

    def on_console(message: Any) -> None:
        if message.type == "error" and "(UNPROCESSABLE ENTITY)" not in message.text:
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(str(error)))


def _wait_for_catalog(page: Any, server: DevServer) -> None:
    """The worker fetches the installed apps at start-up; the form offers them once it has."""
    for _attempt in range(60):
        page.goto(server.url + "/jobs/new")
        if page.locator("#app_id option[value=wordpress]").count():
            return
        page.wait_for_timeout(500)
    raise AssertionError("the job form never offered the installed apps")


def _run_and_wait(page: Any) -> str:
    """Click Run now on a job page, follow the run page until it reaches its end."""
    page.click("#run-now")
    page.wait_for_url("**/runs/*")
    page.wait_for_selector("#run-live[data-status=success]", timeout=RUN_TIMEOUT_MS)
    return str(page.locator("#run-result a").inner_text()).strip()


def test_create_run_watch_find_and_delete(server: DevServer, shots: Path) -> None:
    from playwright.sync_api import expect

    problems: list[str] = []
    with chromium() as context:
        page = context.new_page()  # type: ignore[attr-defined]
        _watch_console(page, problems)
        _wait_for_catalog(page, server)
        # Apps without backup support are shown, disabled, with the reason (S-FB3).
        expect(page.locator("#app_id option[value=my_webapp]")).to_be_disabled()

        page.fill("#name", "WordPress nightly")
        page.select_option("#app_id", "wordpress")
        page.fill("#cron", "61 3 * * *")
        expect(page.locator("#cron-live-error")).to_be_visible()  # checked as you type
        page.click("#save")
        expect(page.locator("#form-errors")).to_be_visible()
        expect(page.locator("#cron-preview .field-error[data-field=cron]")).to_contain_text("61")
        page.screenshot(path=str(shots / "job-form-error-desktop.png"), full_page=True)

        page.fill("#cron", "0 3 * * 1")
        expect(page.locator("#cron-words")).to_contain_text("Monday")
        expect(page.locator("#cron-next li")).to_have_count(5)
        page.click("#save")
        expect(page.locator("#job-name")).to_have_text("WordPress nightly")
        job_url = page.url

        first_archive = _run_and_wait(page)
        expect(page.locator("#run-log")).to_contain_text("Run finished: success")
        page.screenshot(path=str(shots / "run-desktop.png"), full_page=True)

        page.goto(job_url)
        second_archive = _run_and_wait(page)
        assert second_archive != first_archive
        page.goto(job_url)
        expect(page.locator("#chart svg")).to_be_visible()
        page.screenshot(path=str(shots / "job-history-desktop.png"), full_page=True)

        page.goto(server.url + "/archives")
        row = page.locator(f"tr.archive-row[data-name='{second_archive}']")
        expect(row).to_be_visible()
        page.screenshot(path=str(shots / "archives-desktop.png"), full_page=True)

        row.get_by_role("link").click()
        expect(page.locator("#confirm-delete")).to_be_visible()
        page.screenshot(path=str(shots / "archive-delete-desktop.png"), full_page=True)
        page.click("#confirm-delete")
        expect(page.locator("[role=status]")).to_contain_text(second_archive)
        for _attempt in range(60):  # the worker deletes it: reload until it is gone
            page.goto(server.url + "/archives")
            if not page.locator(f"tr.archive-row[data-name='{second_archive}']").count():
                break
            page.wait_for_timeout(500)
        expect(page.locator(f"tr.archive-row[data-name='{second_archive}']")).to_have_count(0)
        expect(page.locator(f"tr.archive-row[data-name='{first_archive}']")).to_be_visible()
        assert not (server.data_dir / "archives" / f"{second_archive}.tar").exists()

        page.goto(server.url + "/")
        expect(page.locator("#dev-banner")).to_be_visible()
        expect(page.locator("tr.job-row", has_text="WordPress nightly")).to_be_visible()

        # A dashboard left open follows a run started elsewhere to its end, without a reload.
        other = context.new_page()  # type: ignore[attr-defined]
        other.goto(job_url)
        third_archive = _run_and_wait(other)
        other.close()
        row_archive = page.locator("tr.job-row", has_text="WordPress nightly")
        expect(row_archive).to_contain_text(third_archive, timeout=30_000)
        page.screenshot(path=str(shots / "dashboard-desktop.png"), full_page=True)
        page.goto(server.url + "/jobs/new")
        page.wait_for_selector("#cron-words")
        page.screenshot(path=str(shots / "job-form-desktop.png"), full_page=True)
    assert problems == []


def test_phone_width_and_french(server: DevServer, shots: Path) -> None:
    """Usable on a phone; French when the browser asks for it."""
    from playwright.sync_api import expect

    problems: list[str] = []
    with chromium(locale="fr-FR", viewport=PHONE) as context:
        page = context.new_page()  # type: ignore[attr-defined]
        _watch_console(page, problems)
        page.goto(server.url + "/")
        expect(page.locator("h1")).to_have_text("Tâches de sauvegarde")
        # Nothing wider than the screen: the page never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(shots / "dashboard-phone.png"), full_page=True)
        job_link = page.locator("tr.job-row a").first
        job_link.click()
        page.wait_for_selector("#job-name")
        page.screenshot(path=str(shots / "job-history-phone.png"), full_page=True)
        page.goto(server.url + "/jobs/new")
        page.wait_for_selector("#cron-words")
        expect(page.locator("#cron-words")).to_contain_text("03:00")
        page.screenshot(path=str(shots / "job-form-phone.png"), full_page=True)
        page.goto(server.url + "/archives")
        page.screenshot(path=str(shots / "archives-phone.png"), full_page=True)
        page.goto(server.url + "/runs/1")
        page.wait_for_selector("#run-live")
        page.screenshot(path=str(shots / "run-phone.png"), full_page=True)
    with chromium(locale="fr-FR", viewport=DESKTOP) as context:
        page = context.new_page()  # type: ignore[attr-defined]
        page.goto(server.url + "/")
        page.screenshot(path=str(shots / "dashboard-fr-desktop.png"), full_page=True)
    assert problems == []
