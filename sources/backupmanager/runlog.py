"""A run's log, streamed into its database row in small batches while the run goes on."""

from __future__ import annotations

import threading
import time
from datetime import datetime, tzinfo

from sqlalchemy import update

from backupmanager.db import Database
from backupmanager.models import Restore, Run

FLUSH_EVERY_SECONDS = 1.0
FLUSH_EVERY_LINES = 200
MAX_LOG_CHARS = 2_000_000  # a runaway tool must not fill the database: keep the start, say so


class RunLog:
    """Collects lines (time-stamped in the instance's zone) and appends them to the row's log_text.

    The row is a run, or a restore (`model=Restore`): both have `log_text` and `phase`.
    """

    def __init__(
        self, db: Database, run_id: int, timezone: tzinfo, *, model: type[Run | Restore] = Run
    ) -> None:
        self._db = db
        self._model = model
        self._run_id = run_id
        self._timezone = timezone
        self._pending: list[str] = []
        self._written = 0
        self._truncated = False
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        stamp = datetime.now(self._timezone).strftime("%H:%M:%S")
        with self._lock:
            self._pending.append(f"{stamp} {text}\n")
            due = (
                len(self._pending) >= FLUSH_EVERY_LINES
                or time.monotonic() - self._last_flush >= FLUSH_EVERY_SECONDS
            )
        if due:
            self.flush()

    def phase(self, phase: str) -> None:
        self.flush()
        with self._db.write() as session:
            session.execute(
                update(self._model).where(self._model.id == self._run_id).values(phase=phase)
            )

    def flush(self) -> None:
        with self._lock:
            chunk = "".join(self._pending)
            self._pending.clear()
            self._last_flush = time.monotonic()
            if not chunk or self._truncated:
                return
            if self._written + len(chunk) > MAX_LOG_CHARS:
                chunk = chunk[: max(0, MAX_LOG_CHARS - self._written)]
                chunk += "\n[log truncated: the rest was not kept]\n"
                self._truncated = True
            self._written += len(chunk)
        with self._db.write() as session:
            model = self._model
            session.execute(
                update(model)
                .where(model.id == self._run_id)
                .values(log_text=model.log_text + chunk)
            )
