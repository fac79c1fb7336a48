"""The moulinette lock: one YunoHost write operation at a time (YUNOHOST.md §2.1).

- taken by every action whose API verb is not GET (create, restore, delete, firewall allow…);
- a child process of the lock holder (an app script or hook calling `yunohost`) bypasses it;
- while waiting: a warning after W seconds, "Still waiting..." after 4W, 16W… (real W = 15 s,
  here YNH_SIM_LOCK_WARN_SECONDS) and, once acquired after a warning, a last warning;
- `--timeout N` expiry: error `instance_already_running`, exit 1.

The real lock is a file holding the holder's PID; the simulator uses fcntl.flock on
<root>/lock (a killed holder releases it at once) and writes the holder's PID in it so
that children can recognise their parent.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO

from .console import Console
from .messages import YunohostError, m18n

POLL_INTERVAL = 0.1  # seconds between two attempts (moulinette: 0.5)


def _parent_pid(pid: int) -> int | None:
    """Parent PID read from /proc (None when the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (2nd field) may contain spaces and parentheses: split after it
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[1])


def is_son_of(holder_pid: int) -> bool:
    """True when this process descends from `holder_pid` (moulinette's `_is_son_of`)."""
    pid: int | None = os.getpid()
    while pid and pid > 1:
        if pid == holder_pid:
            return True
        pid = _parent_pid(pid)
    return False


class SimLock:
    """Acquire / release the simulated moulinette lock."""

    def __init__(self, path: Path, console: Console, warn_seconds: float) -> None:
        self.path = path
        self.console = console
        self.warn_seconds = warn_seconds
        self._file: IO[str] | None = None

    def _holder_pid(self) -> int | None:
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def _try_lock(self, handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        return True

    def acquire(self, timeout: int | None) -> None:
        """Wait for the lock, warning on the real schedule, failing after `timeout` seconds."""
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        start = time.monotonic()
        threshold = self.warn_seconds
        warned = False
        while not self._try_lock(handle):
            holder = self._holder_pid()
            if holder is not None and is_son_of(holder):
                handle.close()
                return
            elapsed = time.monotonic() - start
            if timeout is not None and elapsed > timeout:
                handle.close()
                raise YunohostError("instance_already_running")
            if elapsed > threshold:
                key = (
                    "warn_the_user_about_waiting_lock_again"
                    if warned
                    else ("warn_the_user_about_waiting_lock")
                )
                self.console.warning(m18n(key))
                warned = True
                threshold *= 4
            time.sleep(POLL_INTERVAL)
        if warned:
            self.console.warning(m18n("warn_the_user_that_lock_is_acquired"))
        self._file = handle

    def release(self) -> None:
        """Empty the PID and unlock (also done by the kernel if we die)."""
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        self._file.flush()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
