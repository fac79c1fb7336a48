"""API tokens (SPEC §10): made once, stored only as bcrypt hashes, listed and revoked by name.

The CLI (`backupmanager tokens`) and the dashboard's token page both call these functions.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bcrypt
from sqlalchemy import select

from backupmanager.db import Database
from backupmanager.models import ApiToken, as_dict
from backupmanager.services import InputError, NotFound

# bcrypt's default cost: about a quarter of a second per check here (DESIGN §6), paid once per
# token and process thanks to the verifier's cache (api/auth.py).
BCRYPT_ROUNDS = 12
# Short enough to fit in `requested_by` ("api:<name>") and in a terminal column.
TOKEN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")
# secrets.token_hex(32): 64 lowercase hex characters, under bcrypt 5's 72-byte limit.
TOKEN_PATTERN = re.compile(r"^[0-9a-f]{64}$")
TOKEN_FIELDS = ("name", "read_only", "created_at", "last_used_at", "revoked_at")


@dataclass(frozen=True)
class NewToken:
    """A token just made: the only moment its value exists outside the client."""

    name: str
    token: str
    read_only: bool


def validate_token_name(name: str) -> str:
    if not TOKEN_NAME_PATTERN.match(name):
        raise InputError(
            f"name: '{name}' is not a valid token name: use 1 to 48 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (e.g. 'monitoring')"
        )
    return name


def hash_token(token: str, *, rounds: int = BCRYPT_ROUNDS) -> str:
    return bcrypt.hashpw(token.encode("ascii"), bcrypt.gensalt(rounds)).decode("ascii")


def token_matches(token: str, token_hash: str) -> bool:
    """bcrypt's own comparison, constant-time; a malformed token or hash never matches."""
    if not TOKEN_PATTERN.match(token):
        return False
    try:
        return bcrypt.checkpw(token.encode("ascii"), token_hash.encode("ascii"))
    except ValueError:
        return False


def token_view(row: ApiToken) -> dict[str, Any]:
    """What may be shown about a token: never its value, never its hash."""
    view = as_dict(row, TOKEN_FIELDS)
    view["scope"] = "read-only" if row.read_only else "full"
    view["active"] = row.revoked_at is None
    return view


def create_token(
    db: Database,
    name: str,
    *,
    now: datetime,
    read_only: bool = False,
    rounds: int = BCRYPT_ROUNDS,
) -> NewToken:
    """Make a token; its value is returned once and only its bcrypt hash is stored."""
    validate_token_name(name)
    token = secrets.token_hex(32)
    token_hash = hash_token(token, rounds=rounds)  # outside the write transaction: it is slow
    with db.write() as session:
        existing = session.scalar(select(ApiToken).where(ApiToken.name == name))
        if existing is not None:
            state = "an active" if existing.revoked_at is None else "a revoked"
            raise InputError(
                f"name: {state} token is already called '{name}'; choose another name "
                "(revoked tokens stay listed so that their use can be traced)"
            )
        session.add(ApiToken(name=name, token_hash=token_hash, read_only=read_only, created_at=now))
    return NewToken(name=name, token=token, read_only=read_only)


def list_tokens(db: Database, *, include_revoked: bool = True) -> list[dict[str, Any]]:
    query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    with db.read() as session:
        return [token_view(row) for row in session.scalars(query)]


def revoke_token(db: Database, name: str, *, now: datetime) -> dict[str, Any]:
    """Revoke a token at once (every process re-reads the token's row on each request).

    Revoking a revoked token changes nothing and is not an error.
    """
    with db.write() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == name))
        if row is None:
            raise NotFound(f"there is no token named '{name}' (see 'backupmanager tokens list')")
        if row.revoked_at is None:
            row.revoked_at = now
        session.flush()
        return token_view(row)
