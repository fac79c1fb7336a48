"""Debian's chromium driven by Playwright (DESIGN §6), and a dev-mode server to point it at."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import BACKUPMANAGER, wait_for

CHROMIUM = Path("/usr/bin/chromium")
# Never `playwright install`: the browser is Debian's (tools/bootstrap.sh installs it).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class DevServer:
    url: str
    data_dir: Path
    log_path: Path


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def dev_server(tmp_path: Path, *, stop_within: float = 60) -> Iterator[DevServer]:
    """`backupmanager dev` as a person runs it, on a free port, stopped with Ctrl+C at the end
    (which must take less than `stop_within` seconds)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKUPMANAGER_", "YNH_SIM_"))}
    port = free_port()
    data_dir = tmp_path / "dev"
    log_path = tmp_path / "dev.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(BACKUPMANAGER), "dev", "--data-dir", str(data_dir), "--bind", f"127.0.0.1:{port}"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: _answers(url + "/"), timeout=60, what="the dev-mode dashboard")
            yield DevServer(url, data_dir, log_path)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=stop_within)


@contextmanager
def chromium(*, locale: str = "en-US", viewport: dict[str, int] | None = None) -> Iterator[object]:
    """A browser context with a fresh profile (playwright.sync_api.BrowserContext)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bm-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            locale=locale,
            viewport=viewport or DESKTOP,
        )
        try:
            yield context
        finally:
            context.close()
