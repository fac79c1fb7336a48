"""What every probe script shares: a throw-away instance on the YunoHost simulator, and a tally.

The instance is the one the test suite builds (tests/conftest.py): real SQLite, real tar, the
`yunohost` and `systemctl` simulators of tests/fakes/. Scripts run from the repository root as
`.venv/bin/python -m bench.probe.NAME`; nothing here is collected by pytest (testpaths = tests).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.probe import ROOT

from backupmanager.db import Database, upgrade_schema
from backupmanager.settings import Settings, load_settings

FAKES = ROOT / "sources" / "tests" / "fakes"


@dataclass
class Tally:
    """Cases run and findings, printed as one summary line at the end."""

    probe: str
    cases: int = 0
    findings: list[str] = field(default_factory=list)

    def case(self) -> None:
        self.cases += 1

    def finding(self, what: str) -> None:
        self.findings.append(what)
        print(f"FINDING {self.probe}: {what}", flush=True)

    def check(self, ok: bool, what: str) -> None:
        """One case; a finding when `ok` is false."""
        self.case()
        if not ok:
            self.finding(what)

    def summary(self, **counts: Any) -> str:
        extra = "".join(f" {key}={value}" for key, value in counts.items())
        return f"probe {self.probe}: cases={self.cases} findings={len(self.findings)}{extra}"


@dataclass
class Instance:
    base: Path
    config: Path
    settings: Settings
    db: Database
    env: dict[str, str]  # for `backupmanager` subprocesses: this instance, these simulators


def _config_text(base: Path, archives: Path) -> str:
    return (
        f'instance_name = "jerry"\ninstance_url = "https://jerry.example.org"\n'
        f'data_dir = "{base / "data"}"\narchives_dir = "{archives}"\n'
        f'timezone = "Europe/Paris"\npoll_seconds = 0.2\nyunohost_lock_timeout_seconds = 30\n'
        f'systemd_unit_dir = "{base / "units"}"\n'
        f'yunohost_changelog = "{base / "no-changelog.gz"}"\n'
        f'[programs]\nyunohost = "{FAKES / "yunohost"}"\nsystemctl = "{FAKES / "systemctl"}"\n'
        f"[features]\nhook_commands = true\n"
    )


@contextmanager
def instance(base: Path, *, archives_dir: Path | None = None) -> Iterator[Instance]:
    """A fresh instance under `base` (archives in `archives_dir` when given)."""
    archives = archives_dir or base / "archives"
    for folder in (archives, base / "units", base / "systemctl"):
        folder.mkdir(parents=True, exist_ok=True)
    config = base / "config.toml"
    config.write_text(_config_text(base, archives))
    # The simulators read their state from the environment, in this process and in children.
    os.environ.update(
        YNH_SIM_ROOT=str(base / "ynh"),
        YNH_SIM_ARCHIVES_DIR=str(archives),
        YNH_SIM_LOCK_WARN_SECONDS="1",
        SYSTEMCTL_SIM_ROOT=str(base / "systemctl"),
        SYSTEMCTL_SIM_UNIT_DIR=str(base / "units"),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKUPMANAGER_")}
    env["BACKUPMANAGER_CONFIG"] = str(config)
    settings = load_settings(config, env={})
    upgrade_schema(settings)
    database = Database(settings)
    try:
        yield Instance(base, config, settings, database, env)
    finally:
        database.dispose()


def files_under(root: Path) -> set[Path]:
    """Every path under root (symbolic links not followed)."""
    return {Path(folder) / name for folder, dirs, files in os.walk(root) for name in dirs + files}


def listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
