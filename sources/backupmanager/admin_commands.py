"""Commands written by the admin (S-FB7 hooks, post-restore commands): gated, logged, run by /bin/sh."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from backupmanager import process
from backupmanager.settings import Settings

# Said whenever a command is refused, so the admin knows exactly what to change (DESIGN §1).
ENABLE_HINT = (
    "commands are off on this server: to allow them, set `hook_commands = true` under "
    "[features] in BackupManager's configuration file (or BACKUPMANAGER_FEATURES_HOOK_COMMANDS=true "
    "for the worker), then restart the worker"
)


class CommandsDisabled(Exception):
    """The job or archive has commands but [features] hook_commands is off."""


class AdminCommandFailed(Exception):
    """An admin command exited with an error; the message names it."""


def require_enabled(settings: Settings, commands: Sequence[str], *, what: str) -> None:
    if commands and not settings.features.hook_commands:
        raise CommandsDisabled(f"{what}: {ENABLE_HINT}")


def run_commands(
    settings: Settings,
    commands: Sequence[str],
    *,
    hook: str,
    log: Callable[[str], None],
    env: Mapping[str, str] | None = None,
) -> None:
    """Run each command with `sh -c`, in order; stop at the first failure."""
    require_enabled(settings, commands, what=hook)
    for command in commands:
        log(f"[{hook}] $ {command}")
        result = process.run(
            (str(settings.programs.sh), "-c", command),
            env={"BACKUPMANAGER_HOOK": hook, **(env or {})},
            timeout=settings.run_timeout_seconds,
            on_line=lambda _stream, line: log(f"[{hook}] {line}"),
            check=False,
        )
        if result.returncode != 0:
            detail = "; ".join(result.stderr_tail[-3:]) or "(nothing on stderr)"
            raise AdminCommandFailed(
                f"{hook} command `{command}` failed with exit code {result.returncode}: {detail}"
            )
