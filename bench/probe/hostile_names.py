"""Hostile job names, archive names, paths and database names through the CLI, API and form.

Usage (as root, from the repository root):
    .venv/bin/python -m bench.probe.hostile_names

About 160 names (`..`, `/`, a leading `-`, NUL, newline, 300 characters, unicode, shell
metacharacters, SQL quotes…) go through: `jobs add --name` (the CLI, in process with click's
runner) and the dashboard's job form (Flask test client, dev mode) as job names; `archives info`,
`archives delete`, `restore --plan` and the API's info, delete and restore routes as archive
names; a custom_dir job's `source_path` and a restore's `target` as paths; a restore's
`--database` / `database` as database names. Reports: anything dangerous that is accepted, any
5xx, any traceback, and any file written outside the instance's data and archives folders.
"""

from __future__ import annotations

import json
import os
import tempfile
import unicodedata
import urllib.parse
from pathlib import Path

from bench.probe.common import Instance, Tally, files_under, instance
from click.testing import CliRunner
from flask.testing import FlaskClient

from backupmanager import tokens
from backupmanager.app import create_app
from backupmanager.cli import main as cli
from backupmanager.clock import system_clock
from tests.helpers import add_job, csrf, run_job_now

BASE = [
    "..", ".", "/", "../etc", "../../../../etc/passwd", "a/b", "/etc/passwd", "/tmp/bm-probe",
    "-rf", "--help", "-", "--force", "-x=1", "a\x00b", "a\nb", "a\rb", "a\tb", "x" * 300,
    "x" * 64, "x" * 65, "é", "日本語", "🎉", "\u202etxt.exe", "\u200b", " ", "", " lead", "trail ",
    "$(touch /tmp/bm-probe-pwned)", "`touch /tmp/bm-probe-pwned`", "; touch /tmp/bm-probe-pwned",
    "| cat", "& echo", "> /tmp/bm-probe-out", "a'b", 'a"b', "' OR 1=1 --", "'; DROP TABLE jobs; --",
    "%00", "%2e%2e%2f", "..%2f", "\\..\\", "C:\\x", "~", "~root", "*", "?", "[a]", "{a,b}",
    "a:b", "a b", "<script>alert(1)</script>", "{{7*7}}", "${HOME}", "%s%n", "NUL",
    "bm-partial-r1", "jerry_x_20260101.tar", ".info.json", "a\\b", "\x7f", "\x1b[31mred",
]  # fmt: skip
NAMES = list(dict.fromkeys([*BASE, *(f"ok{n}" for n in BASE), *(f"{n}ok" for n in BASE)]))[:160]
PLANTED = [Path("/tmp/bm-probe-pwned"), Path("/tmp/bm-probe-out"), Path("/tmp/bm-probe")]


def controls(name: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cf") for char in name)


def bad_job_name(name: str) -> bool:
    return not name.strip() or controls(name) or any(c in name for c in "/:") or len(name) > 255


def bad_path(name: str) -> bool:
    parts = Path(name).parts
    return not name.startswith("/") or ".." in parts or controls(name) or name.rstrip("/") == ""


def bad_database(name: str) -> bool:
    return not name or name.startswith("-") or not all(c.isascii() and (c.isalnum() or c in "_$-")
                                                       for c in name) or len(name) > 64  # fmt: skip


class Surfaces:
    """The three ways in, each call one case: 5xx and tracebacks are findings."""

    def __init__(self, inst: Instance, tally: Tally) -> None:
        self.inst, self.tally = inst, tally
        self.runner = CliRunner()
        app = create_app(inst.settings, dev_mode=True)
        self.form: FlaskClient = app.test_client()
        self.api = create_app(inst.settings).test_client()
        self.token = tokens.create_token(inst.db, "probe", now=system_clock(), rounds=4).token

    def cli(self, *args: str) -> bool:
        """Whether the command succeeded."""
        result = self.runner.invoke(cli, list(args), env=self.inst.env, catch_exceptions=True)
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        self.tally.check(not crashed, f"CLI {args[:2]} crashed on {args!r}: {result.exception!r}")
        return result.exit_code == 0

    def api_call(self, method: str, name: str, suffix: str = "", body: object = None) -> int:
        path = f"/api/v1/archives/{urllib.parse.quote(name, safe='')}{suffix}"
        answer = self.api.open(path, method=method, headers={"X-BackupManager-Key": self.token},
                               json=body)  # fmt: skip
        self.tally.check(answer.status_code < 500, f"API {method} {path}: {answer.status_code}")
        return answer.status_code

    def job_form(self, name: str) -> int:
        form = {"csrf_token": csrf(self.form), "name": name, "type": "ynh_system",
                "parts": ["conf_ldap"], "cron": "0 3 * * *", "retention_mode": "count",
                "retention_value": "7", "enabled": "on"}  # fmt: skip
        answer = self.form.post("/jobs/new", data=form)
        self.tally.check(answer.status_code < 500, f"form /jobs/new {name!r}: {answer.status_code}")
        return answer.status_code


def job_names(surfaces: Surfaces, name: str) -> None:
    config = json.dumps({"parts": ["conf_ldap"]})
    cli_ok = surfaces.cli("jobs", "add", "--name", name, "--type", "ynh_system", "--config",
                          config, "--cron", "0 3 * * *")  # fmt: skip
    surfaces.tally.check(not (cli_ok and bad_job_name(name)), f"CLI accepted job name {name!r}")
    forget_jobs(surfaces.inst, name)
    status = surfaces.job_form(name)
    surfaces.tally.check(not (status == 302 and bad_job_name(name)),
                         f"form accepted job name {name!r}")  # fmt: skip
    forget_jobs(surfaces.inst, name)


def forget_jobs(inst: Instance, name: str) -> None:
    from sqlalchemy import delete

    from backupmanager.models import Job

    with inst.db.write() as session:
        session.execute(delete(Job).where(Job.name == name))


def archive_names(surfaces: Surfaces, name: str) -> None:
    """No archive has any of these names: every way must refuse them."""
    for args in (("archives", "info", name), ("archives", "delete", name),
                 ("restore", name, "--plan")):  # fmt: skip
        surfaces.tally.check(not surfaces.cli(*args), f"CLI {args[:2]} accepted {name!r}")
    for method, suffix, body in (("GET", "/info", None), ("DELETE", "", None),
                                 ("POST", "/restore", {"plan_only": True})):  # fmt: skip
        status = surfaces.api_call(method, name, suffix, body)
        surfaces.tally.check(status >= 400, f"API {method} archive {name!r}: {status}")


def paths_and_databases(surfaces: Surfaces, name: str, folder: str, dump: str) -> None:
    config = json.dumps({"source_path": name})
    accepted = surfaces.cli("jobs", "add", "--name", "probe-path", "--type", "custom_dir",
                            "--config", config, "--cron", "0 3 * * *")  # fmt: skip
    surfaces.tally.check(not (accepted and bad_path(name)), f"CLI accepted source_path {name!r}")
    forget_jobs(surfaces.inst, "probe-path")
    status = surfaces.api_call("POST", folder, "/restore", {"target": name, "plan_only": True})
    surfaces.tally.check(not (status < 300 and bad_path(name)), f"API accepted target {name!r}")
    accepted = surfaces.cli("restore", dump, "--database", name, "--plan")
    surfaces.tally.check(not (accepted and bad_database(name)), f"CLI accepted database {name!r}")
    status = surfaces.api_call("POST", dump, "/restore", {"database": name, "plan_only": True})
    surfaces.tally.check(not (status < 300 and bad_database(name)),
                         f"API accepted database {name!r}")  # fmt: skip
    from tests.helpers import work_restore_commands

    work_restore_commands(surfaces.inst.db, surfaces.inst.settings)  # plans only


def archives_to_aim_at(inst: Instance) -> tuple[str, str, object]:
    """A custom_dir archive and a MariaDB dump archive (a sample database, dropped afterwards)."""
    from tests.integration.db_support import create_sample, job_config

    tree = inst.base / "srv" / "app"
    tree.mkdir(parents=True)
    (tree / "a.txt").write_text("a\n")
    job = add_job(inst.db, inst.settings, name="folder", type="custom_dir",
                  config={"source_path": str(tree)})  # fmt: skip
    folder = run_job_now(inst.db, inst.settings, job).archive_name
    sample = create_sample("mysql")
    job = add_job(inst.db, inst.settings, name="dump", type="mysql", config=job_config(sample))
    dump = run_job_now(inst.db, inst.settings, job).archive_name
    assert folder and dump, "the two archives to aim at must be made"
    return folder, dump, sample


def main() -> None:
    tally = Tally("hostile_names")
    with tempfile.TemporaryDirectory(prefix="bm-probe-") as folder, instance(Path(folder)) as inst:
        (inst.base / "cwd").mkdir()
        os.chdir(inst.base / "cwd")  # relative names would land here
        folder_archive, dump, sample = archives_to_aim_at(inst)
        surfaces = Surfaces(inst, tally)
        kept = (inst.settings.data_dir, inst.settings.archives_dir, inst.base / "ynh")
        before = {p for p in files_under(inst.base) if not any(p.is_relative_to(k) for k in kept)}
        try:
            for name in NAMES:
                job_names(surfaces, name)
                archive_names(surfaces, name)
                paths_and_databases(surfaces, name, folder_archive, dump)
        finally:
            sample.drop()  # type: ignore[attr-defined]
        after = {p for p in files_under(inst.base) if not any(p.is_relative_to(k) for k in kept)}
        tally.check(after <= before, f"written outside the data folder: {sorted(after - before)}")
    for path in PLANTED:
        tally.check(not path.exists(), f"{path} exists: a name reached a shell")
    print(tally.summary(names=len(NAMES)))


if __name__ == "__main__":
    main()
