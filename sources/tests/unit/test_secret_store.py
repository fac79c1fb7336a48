"""The encrypted password store: root-only files, nothing in clear, clear errors."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from backupmanager.secret_store import SecretError, SecretStore


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_encrypted_in_owner_only_files(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    store.set("remote-db", "s3cr3t 'pass' é")
    assert store.get("remote-db") == "s3cr3t 'pass' é"
    assert store.names() == ["remote-db"]
    assert b"s3cr3t" not in store.store_path.read_bytes()
    assert mode(store.store_path) == 0o600 and mode(store.key_path) == 0o600
    assert mode(store.store_path.parent) == 0o700 and mode(store.key_path.parent) == 0o700
    store.set("remote-db", "changed")
    assert store.get("remote-db") == "changed"
    assert store.delete("remote-db") and not store.delete("remote-db")
    assert store.names() == []


def test_errors_say_what_to_do(tmp_path: Path) -> None:
    store = SecretStore(tmp_path)
    with pytest.raises(SecretError, match="secrets set missing"):
        store.get("missing")
    with pytest.raises(SecretError, match="not a valid secret name"):
        store.set("Bad Name", "x")
    with pytest.raises(SecretError, match="one line"):
        store.set("multi", "a\nb")
    store.set("kept", "value")
    store.key_path.write_bytes(b"bm5vdC1hLWtleS1ub3QtYS1rZXktbm90LWEta2V5eHg=")
    with pytest.raises(SecretError, match=r"cannot be decrypted|unreadable"):
        store.get("kept")
