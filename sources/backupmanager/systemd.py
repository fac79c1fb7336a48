"""systemd services through `systemctl`: stop and start around a backup, install a unit on restore."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

from backupmanager import process
from backupmanager.settings import Settings

UNIT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._:-]{0,127}$")
SYSTEMCTL_TIMEOUT_SECONDS = 300


class ServiceError(Exception):
    """systemctl refused or failed; the message names the service and the action."""


def unit_name(name: str) -> str:
    """`hermes-agent` and `hermes-agent.service` both name the unit hermes-agent.service."""
    if not UNIT_NAME_PATTERN.match(name):
        raise ValueError(f"'{name}' is not a systemd service name (like hermes-agent)")
    return name if "." in name else f"{name}.service"


def _systemctl(settings: Settings, *args: str, log: Callable[[str], None]) -> process.ProcessResult:
    argv = (str(settings.programs.systemctl), *args)
    log("$ " + " ".join(argv))
    return process.run(
        argv,
        timeout=SYSTEMCTL_TIMEOUT_SECONDS,
        on_line=lambda _stream, line: log(line),
        check=False,
    )


def is_active(settings: Settings, name: str) -> bool:
    argv = (str(settings.programs.systemctl), "is-active", "--quiet", unit_name(name))
    return process.run(argv, timeout=SYSTEMCTL_TIMEOUT_SECONDS, check=False).returncode == 0


def _act(settings: Settings, action: str, name: str, log: Callable[[str], None]) -> None:
    _act_plain(settings, (action, unit_name(name)), log)


def _ledger(settings: Settings, key: str) -> Path:
    return settings.data_dir / "stopped-services" / f"{key}.json"


def _record_stopped(settings: Settings, key: str | None, names: list[str]) -> None:
    """Write down which services a run has stopped, before stopping the next one.

    If the process dies with services stopped (SIGKILL, power cut), the worker finds this file
    and starts them again (FreedomBox S-FB8). Written atomically; removed when nothing is left.
    """
    if key is None:
        return
    path = _ledger(settings, key)
    if not names:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(".new")
    temporary.write_text(json.dumps(names))
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    temporary.replace(path)


def stop_services(
    settings: Settings,
    names: list[str],
    log: Callable[[str], None],
    *,
    ledger_key: str | None = None,
) -> list[str]:
    """Stop the running ones, in order; returns those stopped (to start again, reversed).

    A stop that fails raises ServiceError after the ones already stopped are listed in the
    exception's `stopped` attribute, so the caller still starts them again. With a ledger key,
    each service is written down before it is stopped (see `restart_left_stopped`).
    """
    stopped: list[str] = []
    for name in names:
        if not is_active(settings, name):
            log(f"Service {unit_name(name)} is not running: nothing to stop.")
            continue
        _record_stopped(settings, ledger_key, [*stopped, name])
        try:
            _act(settings, "stop", name, log)
        except ServiceError as error:
            error.stopped = stopped  # type: ignore[attr-defined]
            raise
        stopped.append(name)
        log(f"Stopped {unit_name(name)} for the backup.")
    return stopped


def start_again(
    settings: Settings,
    stopped: list[str],
    log: Callable[[str], None],
    *,
    ledger_key: str | None = None,
) -> list[str]:
    """Start every stopped service again, in reverse order, whatever fails; returns the errors."""
    errors: list[str] = []
    for name in reversed(stopped):
        try:
            _act(settings, "start", name, log)
        except (ServiceError, process.ProcessError) as error:
            errors.append(str(error))
            log(f"Could NOT start {unit_name(name)} again: {error}")
        else:
            log(f"Started {unit_name(name)} again.")
    _record_stopped(settings, ledger_key, [])
    return errors


def restart_left_stopped(
    settings: Settings, *, active_keys: set[str], log: Callable[[str, str], None]
) -> dict[str, list[str]]:
    """Start again the services that runs which are over (crashed) left stopped.

    Returns {ledger key: errors}; `log(key, line)` says what happens, per interrupted run.
    """
    folder = settings.data_dir / "stopped-services"
    outcome: dict[str, list[str]] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        key = path.stem
        if key in active_keys:
            continue
        try:
            names = [str(name) for name in json.loads(path.read_text())]
        except (OSError, ValueError):
            names = []
        log(key, f"This run stopped {', '.join(names)} and was interrupted: starting them again.")
        outcome[key] = start_again(settings, names, partial(log, key), ledger_key=key)
    return outcome


def install_unit(
    settings: Settings, name: str, service_file: Path, log: Callable[[str], None]
) -> Path:
    """Copy the unit file into the systemd folder, reload systemd, enable and start the unit."""
    unit = unit_name(name)
    settings.systemd_unit_dir.mkdir(parents=True, exist_ok=True)
    destination = settings.systemd_unit_dir / unit
    temporary = destination.with_name(f".{unit}.bm-new")
    shutil.copyfile(service_file, temporary)
    temporary.chmod(0o644)
    temporary.replace(destination)
    log(f"Installed {service_file} as {destination}.")
    _act_plain(settings, ("daemon-reload",), log)
    _act_plain(settings, ("enable", "--now", unit), log)
    return destination


def _act_plain(settings: Settings, args: tuple[str, ...], log: Callable[[str], None]) -> None:
    result = _systemctl(settings, *args, log=log)
    if result.returncode != 0:
        detail = "; ".join(result.stderr_tail[-3:]) or f"exit code {result.returncode}"
        raise ServiceError(f"systemctl {' '.join(args)} failed: {detail}")
