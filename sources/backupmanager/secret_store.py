"""Passwords for remote database hosts, encrypted (Fernet) in a root-only file (SPEC §10, issue 4).

Layout under data_dir: `secrets/store.json` maps a secret's name to its Fernet token and
`keys/secrets.key` holds the key; both mode 0600 in 0700 folders. Job configurations only name
a secret (`password_secret`), so a configuration export, a page or an API answer never carries
a password. The key sits on the same disk: this keeps passwords out of plain sight (copies of
the store, exports, screenshots), not away from root on this server, who must be able to log
in unattended anyway.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

SECRET_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_SECRET_CHARS = 4096


class SecretError(Exception):
    """A secret is missing, unreadable or badly named; the message says what to do."""


def validate_secret_name(name: str) -> str:
    if not SECRET_NAME_PATTERN.match(name):
        raise SecretError(
            f"'{name}' is not a valid secret name: use 1 to 64 lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return name


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, readable by the owner only from the first byte."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    temporary.replace(path)


class SecretStore:
    def __init__(self, data_dir: Path) -> None:
        self.store_path = data_dir / "secrets" / "store.json"
        self.key_path = data_dir / "keys" / "secrets.key"

    def _fernet(self, *, create: bool) -> Fernet:
        if not self.key_path.exists():
            if not create:
                raise SecretError(
                    f"no secrets are stored on this server yet ({self.key_path} is missing): "
                    "set one with 'backupmanager secrets set NAME'"
                )
            _private_dir(self.key_path.parent)
            _write_private(self.key_path, Fernet.generate_key())
        try:
            return Fernet(self.key_path.read_bytes().strip())
        except (OSError, ValueError) as error:
            raise SecretError(f"the secrets key {self.key_path} is unreadable: {error}") from None

    def _tokens(self) -> dict[str, str]:
        try:
            data = json.loads(self.store_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise SecretError(
                f"the secrets file {self.store_path} is unreadable: {error}"
            ) from None
        if not isinstance(data, dict):
            raise SecretError(f"the secrets file {self.store_path} is not a JSON object")
        return {str(name): str(token) for name, token in data.items()}

    def names(self) -> list[str]:
        return sorted(self._tokens())

    def exists(self, name: str) -> bool:
        return name in self._tokens()

    def set(self, name: str, value: str) -> None:
        validate_secret_name(name)
        if not value or len(value) > MAX_SECRET_CHARS or "\n" in value or "\0" in value:
            raise SecretError("a password must be 1 to 4096 characters on one line")
        token = self._fernet(create=True).encrypt(value.encode()).decode()
        tokens = self._tokens()
        tokens[name] = token
        _private_dir(self.store_path.parent)
        _write_private(self.store_path, json.dumps(tokens, indent=2, sort_keys=True).encode())

    def get(self, name: str) -> str:
        tokens = self._tokens()
        if name not in tokens:
            raise SecretError(
                f"there is no secret named '{name}': set it with 'backupmanager secrets set {name}'"
            )
        try:
            return self._fernet(create=False).decrypt(tokens[name].encode()).decode()
        except InvalidToken:
            raise SecretError(
                f"the secret '{name}' cannot be decrypted with {self.key_path} (the key was "
                f"replaced?): set it again with 'backupmanager secrets set {name}'"
            ) from None

    def delete(self, name: str) -> bool:
        tokens = self._tokens()
        if tokens.pop(name, None) is None:
            return False
        _write_private(self.store_path, json.dumps(tokens, indent=2, sort_keys=True).encode())
        return True
