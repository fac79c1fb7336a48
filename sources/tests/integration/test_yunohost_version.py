"""The installed YunoHost version, read from its package changelog as YunoHost does (§1.5)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from backupmanager import yunohost
from backupmanager.db import Database
from backupmanager.settings import Settings
from tests.helpers import add_job, member_bytes, run_job_now

MISSING_CLI = Path("/nonexistent/yunohost")


def write_changelog(path: Path, first_line: str) -> Path:
    with gzip.open(path, "wt") as handle:
        handle.write(f"{first_line}\n\n  * Some change\n\n -- Someone <a@b.c>  Mon, 2 Nov 2026\n")
    return path


def test_the_version_is_the_changelogs_first_line(tmp_path: Path) -> None:
    changelog = write_changelog(tmp_path / "changelog.gz", "yunohost (12.1.31) stable; urgency=low")
    # The CLI path does not exist: reading the changelog must not need it.
    assert yunohost.installed_version(MISSING_CLI, changelog) == "12.1.31"


def test_a_tilde_suffix_is_dropped(tmp_path: Path) -> None:
    changelog = write_changelog(
        tmp_path / "changelog.gz", "yunohost (12.2.0~beta3) testing; urgency=low"
    )
    assert yunohost.installed_version(MISSING_CLI, changelog) == "12.2.0"


@pytest.mark.parametrize(
    "content", [b"not gzip at all", gzip.compress(b""), gzip.compress(b"* no version here\n")]
)
def test_an_unreadable_changelog_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    changelog = tmp_path / "changelog.gz"
    changelog.write_bytes(content)
    with pytest.raises(yunohost.YunohostError, match=str(changelog)):
        yunohost.installed_version(MISSING_CLI, changelog)


def test_without_a_changelog_yunohost_is_asked(settings: Settings) -> None:
    assert not settings.yunohost_changelog.exists()
    version = yunohost.installed_version(settings.programs.yunohost, settings.yunohost_changelog)
    assert version == "12.1.25"  # the simulator's default


def test_a_custom_dir_archive_records_the_changelogs_version(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    changelog = write_changelog(tmp_path / "changelog.gz", "yunohost (12.1.40) stable; urgency=low")
    settings = settings.model_copy(update={"yunohost_changelog": changelog})
    source = tmp_path / "srv"
    source.mkdir()
    (source / "a.txt").write_text("a\n")
    job_id = add_job(
        db, settings, name="srv", type="custom_dir", config={"source_path": str(source)}
    )
    run = run_job_now(db, settings, job_id)
    assert run.status == "success", run.log_text
    tar_path = settings.archives_dir / f"{run.archive_name}.tar"
    assert json.loads(member_bytes(tar_path, "info.json"))["from_yunohost_version"] == "12.1.40"
