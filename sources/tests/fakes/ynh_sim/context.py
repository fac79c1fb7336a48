"""What every simulated command receives: state, console, environment, operation log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .console import Console
from .messages import m18n
from .state import SimState


class Operation:
    """A YunoHost "unit operation" (operation log, YUNOHOST.md §2.1).

    Logs are not written; what matters is the INFO line printed when an operation that has
    started fails: "The operation '…' could not be completed. Please share the full log…".
    """

    def __init__(self, console: Console, operation: str, related: str | None = None) -> None:
        self.console = console
        self.operation = operation
        self.related = related
        self.started_at: datetime | None = None
        self.closed = False

    def start(self) -> None:
        self.started_at = datetime.now(UTC)

    @property
    def name(self) -> str:
        """Log id: `<YYYYMMDD-HHMMSS>-<operation>[-<related>]`."""
        assert self.started_at is not None
        parts = [self.started_at.strftime("%Y%m%d-%H%M%S"), self.operation]
        if self.related:
            parts.append(self.related)
        return "-".join(parts)

    def description(self) -> str:
        if self.operation == "backup_restore_app":
            return m18n("log_backup_restore_app", app=self.related)
        return m18n(f"log_{self.operation}")

    def success(self) -> None:
        self.closed = True

    def error(self) -> None:
        """Close as failed: print the "please share the log" INFO line once, if started."""
        if self.started_at is None or self.closed:
            return
        self.closed = True
        self.console.info(
            m18n("log_help_to_get_failed_log", desc=self.description(), name=self.name)
        )


@dataclass
class Context:
    """Shared by the command implementations of one invocation."""

    state: SimState
    console: Console
    environ: dict[str, str]
    operations: list[Operation] = field(default_factory=list)

    def behaviour(self) -> dict[str, Any]:
        return self.state.behaviour()

    def operation(self, operation: str, related: str | None = None) -> Operation:
        """A new operation, remembered so that an error escaping the command closes it."""
        op = Operation(self.console, operation, related)
        self.operations.append(op)
        return op
