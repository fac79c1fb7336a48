"""Token checks for the API: bcrypt once per token, a digest cache, and a failure rate limit."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from backupmanager.api.changes import ChangeWatch
from backupmanager.db import Database
from backupmanager.models import ApiToken
from backupmanager.tokens import TOKEN_PATTERN, token_matches

HEADER = "X-BackupManager-Key"
# Recording every use would be a write per request: once a minute per token is enough to see
# which tokens are still in use.
LAST_USED_EVERY = timedelta(minutes=1)
MAX_FAILURES = 10
FAILURE_WINDOW_SECONDS = 60.0
MAX_TRACKED_ADDRESSES = 10_000


@dataclass(frozen=True)
class Caller:
    """The token a request was made with (never its value)."""

    token_id: int
    name: str
    read_only: bool


@dataclass
class _Entry:
    token_id: int
    name: str
    read_only: bool
    last_used_at: datetime | None
    version: int  # the database's data_version when the row was last read


class TokenVerifier:
    """Checks presented tokens; bcrypt runs only the first time a process sees a token.

    The cache maps the SHA-256 of each verified token to what its row said. The row is read
    again whenever anything was committed to the database since (SQLite's data_version, see
    changes.py), so a revocation by the CLI, the dashboard or another process takes effect on
    the next request; while nothing changes, a request costs a hash and no query at all.
    """

    def __init__(self, db: Database, watch: ChangeWatch) -> None:
        self.db = db
        self.watch = watch
        self._cache: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self.bcrypt_checks = 0  # how many bcrypt comparisons this process made (tests, bench)

    def verify(
        self, presented: str, now: datetime, *, before_bcrypt: Callable[[], None] = lambda: None
    ) -> Caller | None:
        """The caller, or None; `before_bcrypt` may refuse (raise) before the slow check."""
        if not TOKEN_PATTERN.match(presented):
            return None  # not one of ours: no bcrypt for a malformed or oversized value
        digest = hashlib.sha256(presented.encode("ascii")).hexdigest()
        version = self.watch.version()  # before any read: a later change is never missed
        entry = self._cached(digest)
        if entry is None:
            before_bcrypt()
            token_id = self._verify_with_bcrypt(presented)
            entry = None if token_id is None else self._load(token_id, version)
        elif entry.version != version:
            entry = self._load(entry.token_id, version)
        with self._lock:
            if entry is None:
                self._cache.pop(digest, None)
                return None
            self._cache[digest] = entry
        if entry.last_used_at is None or now - entry.last_used_at >= LAST_USED_EVERY:
            entry.last_used_at = now
            with self.db.write() as session:
                session.execute(
                    update(ApiToken).where(ApiToken.id == entry.token_id).values(last_used_at=now)
                )
        return Caller(token_id=entry.token_id, name=entry.name, read_only=entry.read_only)

    def _cached(self, digest: str) -> _Entry | None:
        with self._lock:
            entries = list(self._cache.items())
        found = None
        for cached_digest, entry in entries:  # a handful of tokens: each compared in constant time
            if hmac.compare_digest(cached_digest, digest):
                found = entry
        return found

    def _verify_with_bcrypt(self, presented: str) -> int | None:
        with self.db.read() as session:
            candidates = session.execute(
                select(ApiToken.id, ApiToken.token_hash).where(ApiToken.revoked_at.is_(None))
            ).all()
        for token_id, token_hash in candidates:
            self.bcrypt_checks += 1
            if token_matches(presented, token_hash):
                return int(token_id)
        return None

    def _load(self, token_id: int, version: int) -> _Entry | None:
        """The token's row as it is now; None once it is revoked or gone."""
        with self.db.read() as session:
            row = session.execute(
                select(
                    ApiToken.name, ApiToken.read_only, ApiToken.revoked_at, ApiToken.last_used_at
                ).where(ApiToken.id == token_id)
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return _Entry(token_id, row.name, row.read_only, row.last_used_at, version)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


class FailureLimiter:
    """At most MAX_FAILURES failed authentications per client address in a sliding window."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_seconds: float = FAILURE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, address: str) -> int:
        """Seconds until this address may try a token again; 0 when it may now."""
        with self._lock:
            failures = self._recent(address)
            if failures is None or len(failures) < self.max_failures:
                return 0
            wait = failures[0] + self.window_seconds - self.clock()
        return max(1, math.ceil(wait))

    def record_failure(self, address: str) -> None:
        with self._lock:
            failures = self._recent(address)
            if failures is None:
                if len(self._failures) >= MAX_TRACKED_ADDRESSES:
                    # Forget the address tracked the longest: memory stays bounded under a flood.
                    self._failures.pop(next(iter(self._failures)))
                failures = self._failures[address] = deque()
            failures.append(self.clock())
            while len(failures) > self.max_failures:
                failures.popleft()

    def reset(self) -> None:
        with self._lock:
            self._failures.clear()

    def _recent(self, address: str) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        horizon = self.clock() - self.window_seconds
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures


def client_address(environ: Mapping[str, Any]) -> str:
    """The address failures are counted against.

    Behind our nginx (the only client on the loopback in production) the real address is the
    last entry of X-Forwarded-For, the one nginx appended; entries before it are the client's
    own claims. An IPv6 client is counted by its /64, which one machine usually owns whole.
    """
    address = str(environ.get("REMOTE_ADDR") or "")
    forwarded = str(environ.get("HTTP_X_FORWARDED_FOR") or "")
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if loopback and forwarded:
        address = forwarded.rsplit(",", 1)[-1].strip()
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
