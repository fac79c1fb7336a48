"""The configuration of mysql and postgresql jobs (SPEC §1 S-K4, S-K5), validated by one schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backupmanager import cron
from backupmanager.databases.common import (
    DATABASE_NAME_PATTERN,
    HOST_PATTERN,
    USER_NAME_PATTERN,
    Endpoint,
)
from backupmanager.secret_store import SECRET_NAME_PATTERN, SecretStore
from backupmanager.settings import Settings


class DatabaseJobConfig(BaseModel):
    """`{"database": "mabase", "user": "mabase_user"}` plus optional remote host and drills.

    `user` is the database's own user (its owner): its grants are recorded and it is
    recreated on restore. Locally BackupManager connects as root (MariaDB, unix_socket) or
    postgres (PostgreSQL, peer) without a password; with `host` (or `password_secret`) it
    connects as `user` with the password stored under `password_secret`.
    """

    model_config = ConfigDict(extra="forbid")

    database: str
    user: str
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    password_secret: str | None = None  # a name in `backupmanager secrets`, never the password
    compression: Literal["zstd", "none"] = "zstd"
    drill_cron: str | None = None  # restore drills on a schedule (cron), besides on demand

    @field_validator("host", "password_secret", "drill_cron", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        if not DATABASE_NAME_PATTERN.match(value):
            raise ValueError(
                "use 1 to 63 letters, digits, '_', '$' or '-' (a database name such as mabase)"
            )
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not USER_NAME_PATTERN.match(value):
            raise ValueError("use 1 to 63 letters, digits, '_', '.', '$' or '-' (like mabase_user)")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        if value is not None and not HOST_PATTERN.match(value):
            raise ValueError("a host name or IP address, such as db.example.org or 10.0.0.5")
        return value

    @field_validator("password_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not SECRET_NAME_PATTERN.match(value):
            raise ValueError(
                "the NAME of a stored secret (see 'backupmanager secrets set NAME'), not a password"
            )
        return value

    @field_validator("drill_cron")
    @classmethod
    def _drill_cron(cls, value: str | None) -> str | None:
        return None if value is None else cron.validate(value)

    @property
    def remote(self) -> bool:
        return self.host is not None or self.password_secret is not None

    def endpoint(self, settings: Settings) -> Endpoint:
        """Where to connect; reads the password from the secret store (SecretError if missing)."""
        if not self.remote:
            return Endpoint()
        password = None
        if self.password_secret is not None:
            password = SecretStore(settings.data_dir).get(self.password_secret)
        return Endpoint(self.host, self.port, self.user, password)
