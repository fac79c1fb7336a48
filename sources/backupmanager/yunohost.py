"""Calls to the `yunohost` CLI (YUNOHOST.md §2): argv builders and JSON answers."""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backupmanager import process
from backupmanager.process import Argv

# YunoHost allows one write operation at a time; serialize ours inside this process so the
# run log can say we wait for each other, and let YunoHost's own lock (with --timeout) handle
# every other process.
WRITE_LOCK = threading.Lock()
GET_TIMEOUT_SECONDS = 300
RESULT_OK = "Success"
# First line of a Debian changelog: `yunohost (12.1.25) stable; urgency=low`.
CHANGELOG_FIRST_LINE = re.compile(r"^\S+ \(([^()\s]+)\)")


class YunohostError(Exception):
    """YunoHost answered with an error, or with something that is not its JSON answer."""


def create_argv(
    yunohost: Path,
    *,
    name: str,
    apps: Sequence[str] | None,
    system: Sequence[str] | None,
    lock_timeout: int,
    description: str = "",
) -> Argv:
    """`yunohost backup create` for apps and/or system parts (an empty list means all)."""
    argv: list[str] = [str(yunohost), "backup", "create", "--name", name]
    if description:
        argv += ["--description", description]
    if apps is not None:
        argv += ["--apps", *apps]
    if system is not None:
        argv += ["--system", *system]
    argv += ["--output-as", "json", "--timeout", str(lock_timeout)]
    return tuple(argv)


def parse_json_answer(result: process.ProcessResult) -> Any:
    """YunoHost prints log lines then its answer as one JSON line, last on stdout (§2.1)."""
    line = result.last_stdout_line
    try:
        return json.loads(line)
    except ValueError:
        raise YunohostError(
            f"YunoHost did not answer with JSON (last line: {line[:200]!r})"
        ) from None


@dataclass(frozen=True)
class CreateOutcome:
    name: str
    size: int
    failed_items: tuple[str, ...]  # "app nextcloud: Error", "system data_mail: Skipped"


def read_create_answer(answer: Any) -> CreateOutcome:
    """Exit code 0 can hide failed items (§2.2): list every result other than Success."""
    if not isinstance(answer, dict) or "results" not in answer:
        raise YunohostError("YunoHost's answer to backup create has no results")
    failed: list[str] = []
    for section, label in (("apps", "app"), ("system", "system part")):
        for item, status in sorted((answer["results"].get(section) or {}).items()):
            if status != RESULT_OK:
                failed.append(f"{label} {item}: {status}")
    return CreateOutcome(str(answer.get("name", "")), int(answer.get("size", 0)), tuple(failed))


def run_write(
    argv: Argv,
    *,
    env: dict[str, str | None],
    timeout: float,
    log: Callable[[str], None],
    on_line: process.LineSink,
) -> process.ProcessResult:
    """Run a YunoHost write operation, one at a time in this process, showing any wait."""
    if not WRITE_LOCK.acquire(blocking=False):
        log("Waiting for another BackupManager operation on YunoHost to finish…")
        WRITE_LOCK.acquire()
    try:
        return process.run(argv, env=env, timeout=timeout, on_line=on_line, check=False)
    finally:
        WRITE_LOCK.release()


@dataclass(frozen=True)
class InstalledApp:
    id: str
    name: str
    version: str
    supports_backup_restore: bool


def list_apps(yunohost: Path) -> list[InstalledApp]:
    """The installed apps (`yunohost app list --full`), for the job form and for validation."""
    result = process.run(
        (str(yunohost), "app", "list", "--full", "--output-as", "json"),
        timeout=GET_TIMEOUT_SECONDS,
    )
    answer = parse_json_answer(result)
    apps = []
    for app in answer.get("apps", []):
        apps.append(
            InstalledApp(
                id=str(app["id"]),
                name=str(app.get("name") or app.get("label") or app["id"]),
                version=str(app.get("version", "")),
                supports_backup_restore=bool(app.get("supports_backup_restore", True)),
            )
        )
    return sorted(apps, key=lambda app: app.id)


def list_backup_parts(yunohost: Path) -> list[str]:
    """System parts YunoHost can back up (`yunohost hook list backup`)."""
    result = process.run(
        (str(yunohost), "hook", "list", "backup", "--output-as", "json"),
        timeout=GET_TIMEOUT_SECONDS,
    )
    hooks = parse_json_answer(result).get("hooks", [])
    return sorted(str(hook) for hook in hooks)


def delete_argv(yunohost: Path, name: str) -> Argv:
    return (str(yunohost), "backup", "delete", name, "--output-as", "json")


def installed_version(yunohost: Path, changelog: Path) -> str:
    """The installed YunoHost version, for info.json's from_yunohost_version (YUNOHOST.md §1.5).

    YunoHost itself reads it from the first line of its package's changelog (`tools versions`
    does exactly that); reading it ourselves takes a millisecond where starting the `yunohost`
    CLI takes about a second on a small server. The CLI stays the fallback if that file is
    missing.
    """
    if changelog.is_file():
        return _plain_version(version_from_changelog(changelog))
    result = process.run(
        (str(yunohost), "tools", "versions", "--output-as", "json"), timeout=GET_TIMEOUT_SECONDS
    )
    answer = parse_json_answer(result)
    try:
        version = str(answer["yunohost"]["version"])
    except (KeyError, TypeError):
        raise YunohostError("YunoHost did not say its version (tools versions)") from None
    return _plain_version(version)


def version_from_changelog(changelog: Path) -> str:
    """`yunohost (12.1.25) stable; urgency=low` → `12.1.25`: the Debian changelog's first line."""
    try:
        with gzip.open(changelog, "rt", encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
    except (OSError, EOFError) as error:
        raise YunohostError(
            f"could not read YunoHost's version from {changelog}: {error}"
        ) from None
    match = CHANGELOG_FIRST_LINE.match(first)
    if match is None:
        raise YunohostError(f"{changelog} does not start with a version line: {first[:80]!r}")
    return match.group(1)


def _plain_version(version: str) -> str:
    # `12.1.25~beta1` passes YunoHost's first check but breaks a later one (YUNOHOST.md §7.1).
    return version.split("~", 1)[0]


def firewall_allow_argv(yunohost: Path, protocol: str, port: int) -> Argv:
    return (str(yunohost), "firewall", "allow", protocol, str(port), "--output-as", "json")
