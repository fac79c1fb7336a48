"""A refusal to replace what exists names the way to allow it in the words of the face that asked."""

from __future__ import annotations

import pytest

from backupmanager.restore.refusals import (
    API,
    CLI,
    WEB,
    database_exists,
    face_of,
    files_exist,
    refusal_text,
)

ALLOW = {CLI: "--overwrite", API: '"overwrite": true', WEB: "“Overwrite files that already exist”"}
ALLOW_DATABASE = {
    CLI: "--overwrite",
    API: '"overwrite": true',
    WEB: "“Replace the existing database”",
}


@pytest.mark.parametrize("face", [CLI, API, WEB])
def test_each_face_names_its_own_way_to_allow_it(face: str) -> None:
    files = refusal_text({"refusal_reason": files_exist(12, ["/srv/a", "/srv/b"])}, face)
    assert files is not None and files.startswith("12 files already exist")
    assert "/srv/a, /srv/b, …" in files  # the examples, and more than those
    assert ALLOW[face] in files
    assert all(ALLOW[other] not in files for other in ALLOW if other != face)
    database = refusal_text({"refusal_reason": database_exists("nextcloud", 42)}, face)
    assert database is not None and "nextcloud" in database and "42 tables" in database
    assert ALLOW_DATABASE[face] in database
    assert all(ALLOW_DATABASE[o] not in database for o in ALLOW_DATABASE if o != face)


def test_the_face_comes_from_who_asked() -> None:
    assert face_of("web:admin") == WEB and face_of("api:backup-script") == API
    assert face_of("cli") == CLI and face_of("scheduler") == CLI and face_of(None) == CLI
    assert refusal_text({"refusal": "as the CLI says"}, WEB) == "as the CLI says"
    assert refusal_text({}, API) is None
