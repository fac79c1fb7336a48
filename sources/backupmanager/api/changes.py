"""Whether anyone committed to the database since we last looked: SQLite's `data_version`."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class ChangeWatch:
    """A cheap "has the database changed?" for in-memory caches of the web process.

    `PRAGMA data_version` changes whenever another connection, of this process or any other
    (the worker, the CLI), commits. It is asked on one connection of our own that never writes,
    so every commit counts; the answer costs microseconds, a read transaction does not.
    """

    def __init__(self, database_path: Path) -> None:
        self.database_path = database_path
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def version(self) -> int:
        with self._lock:
            if self._connection is None:
                # Not opened read-only: SQLite may need to create the WAL index file to read.
                self._connection = sqlite3.connect(
                    self.database_path,
                    timeout=30,
                    check_same_thread=False,  # shared by the server's threads, under the lock
                )
            row = self._connection.execute("PRAGMA data_version").fetchone()
            return int(row[0])

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
