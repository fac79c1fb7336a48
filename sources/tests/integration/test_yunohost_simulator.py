"""Tests of the `yunohost` CLI simulator (tests/fakes/yunohost), run as a subprocess.

The simulator stands for the real CLI in every other test and in dev mode, so these
tests pin the YunoHost behaviours it reproduces (YUNOHOST.md §1, §2, §7).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SIMULATOR = Path(__file__).resolve().parents[1] / "fakes" / "yunohost"
CORE_PARTS = [
    "conf_ldap",
    "data_home",
    "data_multimedia",
    "conf_ynh_settings",
    "conf_ynh_certs",
    "data_mail",
    "conf_manually_modified_files",
]
INFO_KEYS = [
    "description",
    "created_at",
    "size",
    "size_details",
    "apps",
    "system",
    "from_yunohost_version",
]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        """The return value: the last non-empty stdout line (§2.1)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return json.loads(lines[-1])


class Sim:
    """One simulated server (a YNH_SIM_ROOT folder) and ways to call its CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("YNH_", "BACKUP_CORE"))}
        env["YNH_SIM_ROOT"] = str(self.root)
        env.update(extra or {})
        return env

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [str(SIMULATOR), *args],
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(SIMULATOR), *args],
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def create(self, name: str, *args: str, env: dict[str, str] | None = None) -> Result:
        result = self.run("backup", "create", "-n", name, *args, "--output-as", "json", env=env)
        return result

    @property
    def archives(self) -> Path:
        return self.root / "archives"

    def write_json(self, filename: str, value: Any) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / filename).write_text(json.dumps(value))

    def read_json(self, filename: str) -> Any:
        return json.loads((self.root / filename).read_text())

    def calls(self) -> list[dict[str, Any]]:
        lines = (self.root / "calls.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines]

    def installed(self) -> list[str]:
        return [app["id"] for app in self.read_json("apps.json")]

    def uninstall(self, app_id: str) -> None:
        """Like `yunohost app remove`: drop the app and its files."""
        self.write_json("apps.json", [a for a in self.read_json("apps.json") if a["id"] != app_id])
        for folder in (f"var/www/{app_id}", f"home/yunohost.app/{app_id}", f"var/log/{app_id}"):
            path = self.root / "fs" / folder
            if path.exists():
                for item in sorted(path.rglob("*"), reverse=True):
                    item.unlink() if item.is_file() else item.rmdir()
                path.rmdir()


@pytest.fixture
def sim(tmp_path: Path) -> Sim:
    return Sim(tmp_path / "ynh")


def members(archive: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return tar.getmembers()


def member_bytes(archive: Path, name: str) -> bytes:
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


# -- backup create: archive layout -----------------------------------------------------------


def test_app_archive_has_yunohost_layout(sim: Sim) -> None:
    result = sim.create("app1", "--apps", "nextcloud")

    assert result.code == 0, result.stderr
    ret = result.json()
    assert ret["name"] == "app1"
    assert ret["results"] == {"system": {}, "apps": {"nextcloud": "Success"}}
    assert isinstance(ret["size"], int) and ret["size"] > 0
    assert "INFO Collecting files to be backed up for nextcloud…" in result.stdout
    assert "INFO Creating a backup archive from the collected files…" in result.stdout
    assert "INFO The archive will contain about " in result.stdout
    assert "SUCCESS Backup created: app1" in result.stdout

    archive = sim.archives / "app1.tar"
    infos = members(archive)
    names = [m.name for m in infos]
    assert not any(n.startswith(("./", "/")) for n in names)
    for expected in (
        "apps/nextcloud/settings/manifest.toml",
        "apps/nextcloud/settings/settings.yml",
        "apps/nextcloud/settings/scripts/backup",
        "apps/nextcloud/settings/scripts/restore",
        "apps/nextcloud/backup/db.sql",
        "backup.csv",
        "info.json",
    ):
        assert expected in names
    sizes = {m.name: m.size for m in infos}
    assert sizes["apps/nextcloud/backup/var/www/nextcloud/core.bin"] == 4096
    assert sizes["apps/nextcloud/backup/home/yunohost.app/nextcloud/data.bin"] == 8192
    # App-only backups have no hooks/, conf/ or data/ (§1.4)
    assert not any(n.startswith(("hooks/", "conf", "data")) for n in names)
    # Order of §1.4: declared paths, then backup.csv, info.json, then the apps/<app> dir
    assert names.index("apps/nextcloud/backup/var/www/nextcloud") < names.index("backup.csv")
    assert names.index("backup.csv") < names.index("info.json") < names.index("apps/nextcloud")
    # The work dir is removed after the backup
    assert not (sim.root / "tmp" / "app1").exists()


def test_backup_csv_is_crlf_quoted_without_header(sim: Sim) -> None:
    sim.create("csv1", "--apps", "wordpress")

    data = member_bytes(sim.archives / "csv1.tar", "backup.csv")
    lines = data.split(b"\r\n")
    assert lines[-1] == b""  # every line ends with CRLF
    assert lines[0] == b'"/var/www/wordpress","apps/wordpress/backup/var/www/wordpress"'
    assert b'"/home/yunohost.backup/tmp/csv1/backup.csv","backup.csv"' in lines
    assert b'"/home/yunohost.backup/tmp/csv1/info.json","info.json"' in lines
    assert b'"/home/yunohost.backup/tmp/csv1/apps/wordpress","apps/wordpress"' in lines
    assert all(line.startswith(b'"') and line.endswith(b'"') for line in lines[:-1])
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_info_json_inside_equals_beside_byte_for_byte(sim: Sim) -> None:
    sim.create("info1", "-d", "nightly", "--apps", "nocodb")

    inner = member_bytes(sim.archives / "info1.tar", "info.json")
    beside = (sim.archives / "info1.info.json").read_bytes()
    assert inner == beside
    info = json.loads(inner)
    assert list(info) == INFO_KEYS
    assert inner.decode() == json.dumps(info)  # one line, default separators, no newline
    assert info["description"] == "nightly"
    assert isinstance(info["created_at"], int)
    assert isinstance(info["size"], int)
    assert set(info["size_details"]) == {"system", "apps"}
    assert info["apps"] == {
        "nocodb": {
            "version": "0.264.4~ynh1",
            "name": "NocoDB",
            "description": "Open source Airtable alternative",
        }
    }
    assert info["system"] == {}
    assert info["from_yunohost_version"] == "12.1.25"


def test_version_comes_from_environment(sim: Sim) -> None:
    sim.create("v1", "--apps", "nocodb", env={"YNH_SIM_VERSION": "12.1.28"})

    info = json.loads((sim.archives / "v1.info.json").read_text())
    assert info["from_yunohost_version"] == "12.1.28"


# -- BACKUP_CORE_ONLY ------------------------------------------------------------------------


def test_core_only_1_skips_big_data_and_calls_record_env(sim: Sim) -> None:
    result = sim.create("core1", "--apps", "nextcloud", env={"BACKUP_CORE_ONLY": "1"})

    assert result.code == 0
    names = [m.name for m in members(sim.archives / "core1.tar")]
    assert "apps/nextcloud/backup/var/www/nextcloud/core.bin" in names
    assert not any(n.startswith("apps/nextcloud/backup/home/yunohost.app") for n in names)
    assert not any(n.startswith("apps/nextcloud/backup/var/log") for n in names)
    assert (
        "INFO /home/yunohost.app/nextcloud will not be saved, because 'BACKUP_CORE_ONLY' is set."
        in result.stdout
    )
    last = sim.calls()[-1]
    assert last["argv"][:4] == ["backup", "create", "-n", "core1"]
    assert last["env"] == {"BACKUP_CORE_ONLY": "1"}
    assert isinstance(last["pid"], int) and last["time"].endswith("+00:00")


def test_core_only_true_is_not_1(sim: Sim) -> None:
    sim.create("coretrue", "--apps", "nextcloud", env={"BACKUP_CORE_ONLY": "true"})
    sim.create("corenone", "--apps", "nextcloud")

    for name in ("coretrue", "corenone"):
        names = [m.name for m in members(sim.archives / f"{name}.tar")]
        assert "apps/nextcloud/backup/home/yunohost.app/nextcloud/data.bin" in names
    envs = [call["env"]["BACKUP_CORE_ONLY"] for call in sim.calls()]
    assert envs == ["true", None]


# -- system parts --------------------------------------------------------------------------


def test_system_backup_of_all_parts(sim: Sim) -> None:
    result = sim.create("sys1", "--system")

    assert result.code == 0, result.stderr
    assert result.json()["results"] == {
        "system": dict.fromkeys(CORE_PARTS, "Success"),
        "apps": {},
    }
    names = [m.name for m in members(sim.archives / "sys1.tar")]
    for restore_hook in (
        "05-conf_ldap",
        "17-data_home",
        "18-data_multimedia",
        "20-conf_ynh_settings",
        "21-conf_ynh_certs",
        "23-data_mail",
        "50-conf_manually_modified_files",
    ):
        assert f"hooks/restore/{restore_hook}" in names
    assert "hooks/" not in names and "hooks/restore" not in names  # no dir members
    assert "conf/ldap/ldap.conf" in names and "conf/ynh/current_host" in names
    assert "data/home/admin/README.txt" in names and "data/mail" in names
    assert not any(n.startswith("apps/") for n in names)
    info = json.loads((sim.archives / "sys1.info.json").read_text())
    assert info["system"]["conf_ldap"] == ["/usr/share/yunohost/hooks/backup/05-conf_ldap"]
    assert set(info["size_details"]["system"]) == set(CORE_PARTS)


def test_system_backup_of_some_parts_with_core_only(sim: Sim) -> None:
    result = sim.create("sys2", "--system", "conf_ldap", "data_mail", env={"BACKUP_CORE_ONLY": "1"})

    assert result.json()["results"]["system"] == {"conf_ldap": "Success", "data_mail": "Success"}
    names = [m.name for m in members(sim.archives / "sys2.tar")]
    assert "hooks/restore/05-conf_ldap" in names and "hooks/restore/23-data_mail" in names
    assert not any(n.startswith("data/") for n in names)  # data_mail is "is_big"


def test_unknown_part_and_app_are_skipped(sim: Sim) -> None:
    result = sim.create("unk", "--system", "conf_ldap", "nope", "--apps", "ghost", "wordpress")

    assert result.code == 0
    assert "ERROR The backup hook 'nope' is unknown" in result.stderr
    assert "ERROR ghost will not be saved" in result.stderr
    results = result.json()["results"]
    assert results["system"] == {"nope": "Skipped", "conf_ldap": "Success"}
    assert results["apps"] == {"ghost": "Skipped", "wordpress": "Success"}


def test_everything_by_default_and_app_without_backup_is_skipped(sim: Sim) -> None:
    result = sim.create("all1")

    results = result.json()["results"]
    assert results["system"] == dict.fromkeys(CORE_PARTS, "Success")
    assert results["apps"] == {
        "nextcloud": "Success",
        "wordpress": "Success",
        "nocodb": "Success",
        "my_webapp": "Skipped",
    }
    assert "WARNING The app 'my_webapp' has no backup script. Ignoring." in result.stderr


def test_custom_hook_from_hooks_d_is_backed_up(sim: Sim, tmp_path: Path) -> None:
    source = tmp_path / "srv" / "notes"
    source.mkdir(parents=True)
    (source / "a.txt").write_text("hello")
    sim.run("hook", "list", "backup")  # creates the root
    backup_hook = sim.root / "hooks.d" / "backup" / "50-data_custom"
    backup_hook.write_text(
        "#!/bin/bash\nsource /usr/share/yunohost/helpers\n"
        f'ynh_backup "{source}" "$1/data/custom/notes"\n'
    )
    (sim.root / "hooks.d" / "restore" / "50-data_custom").write_text("#!/bin/bash\ntrue\n")

    listed = sim.run("hook", "list", "backup", "--output-as", "json").json()["hooks"]
    result = sim.create("cust1", "--system", "data_custom")

    assert set(CORE_PARTS) | {"data_custom"} == set(listed)
    assert result.json()["results"]["system"] == {"data_custom": "Success"}
    names = [m.name for m in members(sim.archives / "cust1.tar")]
    assert "data/custom/notes/a.txt" in names
    assert "hooks/restore/50-data_custom" in names
    info = json.loads((sim.archives / "cust1.info.json").read_text())
    assert info["system"] == {"data_custom": ["/etc/yunohost/hooks.d/backup/50-data_custom"]}


# -- failures ----------------------------------------------------------------------------------


def test_partial_failure_exits_0_with_error_in_results(sim: Sim) -> None:
    sim.write_json("behaviour.json", {"results": {"nextcloud": "Error", "data_mail": "Error"}})

    result = sim.create("part1", "--apps", "nextcloud", "wordpress", "--system", "data_mail")

    assert result.code == 0
    assert result.json()["results"] == {
        "system": {"data_mail": "Error"},
        "apps": {"nextcloud": "Error", "wordpress": "Success"},
    }
    assert "ERROR Failed to collect files to backed up for nextcloud." in result.stderr
    assert "ERROR Could not backup the 'data_mail' system part" in result.stderr
    info = json.loads((sim.archives / "part1.info.json").read_text())
    assert list(info["apps"]) == ["wordpress"] and info["system"] == {}
    names = [m.name for m in members(sim.archives / "part1.tar")]
    assert not any(n.startswith("apps/nextcloud") for n in names)


def test_nothing_collected_exits_1(sim: Sim) -> None:
    result = sim.create("none1", "--apps", "my_webapp")

    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ERROR Failed to collect files to be backed up"
    )
    assert "Please share the full log of this operation" in result.stdout
    assert not (sim.archives / "none1.tar").exists()
    assert not (sim.root / "tmp" / "none1").exists()


def test_injected_failure(sim: Sim) -> None:
    sim.write_json("behaviour.json", {"fail": {"backup create": "Some YunoHost error message"}})

    result = sim.create("fail1", "--apps", "nocodb")

    assert result.code == 1
    assert result.stderr.strip() == "ERROR Some YunoHost error message"
    assert sim.run("backup", "list", "--output-as", "json").json() == {"archives": []}


@pytest.mark.parametrize("name", ["bad name", "a" * 51, "ends.with.dot.", "slash/no"])
def test_invalid_names_are_refused(sim: Sim, name: str) -> None:
    result = sim.create(name, "--apps", "nocodb")

    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "ERROR Invalid argument 'name': Must be a valid filename with max 30 characters, "
        "alphanumeric and -_. characters only"
    )
    assert not sim.archives.exists() or not list(sim.archives.iterdir())


def test_fifty_chars_default_name_and_duplicate(sim: Sim) -> None:
    long_name = "n" * 50
    assert sim.create(long_name, "--apps", "nocodb").code == 0

    duplicate = sim.create(long_name, "--apps", "nocodb")
    default = sim.run("backup", "create", "--apps", "nocodb", "--output-as", "json")

    assert duplicate.code == 1
    assert f"ERROR A backup archive with the name '{long_name}' already exists." in (
        duplicate.stderr
    )
    name = default.json()["name"]
    assert len(name) == 15 and name[8] == "-" and name.replace("-", "").isdigit()


def test_usage_errors_exit_2(sim: Sim) -> None:
    assert sim.run("app", "list", "--installed").code == 2
    assert sim.run("backup", "create", "--bogus").code == 2
    assert sim.run("app", "list", "--output-as", "yaml").code == 2


def test_missing_root_is_a_clear_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("YNH_")}
    proc = subprocess.run(
        [str(SIMULATOR), "app", "list"], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1
    assert "YNH_SIM_ROOT" in proc.stderr


# -- output formats ---------------------------------------------------------------------------


def test_quiet_plain_and_none_outputs(sim: Sim) -> None:
    quiet = sim.run("--quiet", "backup", "create", "-n", "q1", "--apps", "nocodb", "--json")
    plain = sim.run("backup", "list", "--output-as", "plain")
    none = sim.run("backup", "list", "--output-as", "none")

    assert quiet.code == 0
    assert quiet.stdout.count("\n") == 1 and quiet.json()["name"] == "q1"
    assert quiet.stderr == ""
    assert plain.stdout == "q1\n"
    assert none.stdout == ""


# -- lock ----------------------------------------------------------------------------------------


@pytest.fixture
def slow_backup(sim: Sim) -> Iterator[subprocess.Popen[str]]:
    """A `backup create -n slow` paused mid-tar while it holds the lock."""
    sim.write_json("behaviour.json", {"delay_seconds": 2.5})
    proc = sim.start(
        "backup", "create", "-n", "slow", "--apps", "nocodb", "--output-as", "json", "--debug"
    )
    assert proc.stdout is not None
    for line in proc.stdout:  # the simulator says when it pauses (a DEBUG line)
        if "archive partly written, pausing" in line:
            break
    yield proc
    proc.kill()
    proc.wait()


def test_lock_timeout_and_waiting_while_another_create_runs(
    sim: Sim, slow_backup: subprocess.Popen[str]
) -> None:
    # GET commands take no lock: the half-written archive is listed, its info fails (§1.3)
    listed = sim.run("backup", "list", "--output-as", "json")
    info = sim.run("backup", "info", "slow")
    timed_out = sim.run("--timeout", "1", "backup", "create", "-n", "late", "--apps", "wordpress")
    waiter = sim.start(
        "backup",
        "create",
        "-n",
        "queued",
        "--apps",
        "wordpress",
        "--output-as",
        "json",
        env={"YNH_SIM_LOCK_WARN_SECONDS": "0.2"},
    )
    waiter_out, waiter_err = waiter.communicate(timeout=30)
    assert slow_backup.stdout is not None
    slow_out = slow_backup.stdout.read()  # the rest, after the "pausing" line
    slow_backup.wait(timeout=30)

    assert listed.json() == {"archives": ["slow"]}
    assert info.code == 1 and "The info.json file cannot be retrieved" in info.stderr
    assert timed_out.code == 1
    assert timed_out.stderr.strip() == (
        "ERROR There is already a YunoHost operation running. "
        "Please wait for it to finish before running another one."
    )
    assert waiter.returncode == 0
    assert (
        "WARNING Another YunoHost command is running right now, we are waiting for it to "
        "finish before running this one" in waiter_err
    )
    assert "WARNING The other command just completed, now starting this command" in waiter_err
    assert json.loads(waiter_out.splitlines()[-1])["name"] == "queued"
    assert slow_backup.returncode == 0 and "SUCCESS Backup created: slow" in slow_out
    assert (sim.archives / "slow.info.json").exists()


def test_killed_backup_leaves_partial_tar_and_frees_the_lock(
    sim: Sim, slow_backup: subprocess.Popen[str]
) -> None:
    slow_backup.kill()
    slow_backup.wait()
    sim.write_json("behaviour.json", {})

    after = sim.run("--timeout", "5", "backup", "create", "-n", "next", "--apps", "nocodb")

    assert after.code == 0
    assert (sim.archives / "slow.tar").exists()
    assert not (sim.archives / "slow.info.json").exists()
    assert (sim.root / "tmp" / "slow").is_dir()  # nothing cleaned a killed run


# -- list / info / delete ------------------------------------------------------------------------


def test_list_info_and_delete(sim: Sim, tmp_path: Path) -> None:
    sim.create("first", "-d", "one", "--apps", "nocodb")
    sim.create("second", "--apps", "wordpress", "-o", str(tmp_path / "out"))

    listed = sim.run("backup", "list", "--output-as", "json").json()
    with_info = sim.run("backup", "list", "-i", "-H", "--output-as", "json").json()
    info = sim.run("backup", "info", "first", "--output-as", "json").json()
    details = sim.run("backup", "info", "first.tar", "-d", "--output-as", "json").json()

    assert listed == {"archives": ["first", "second"]}
    assert list(with_info["archives"]) == ["first", "second"]
    assert with_info["archives"]["first"]["size"].endswith("B")
    assert set(info) == {"path", "created_at", "description", "size"}
    assert info["path"] == str(sim.archives / "first.tar")
    assert info["created_at"].endswith("+00:00") and info["description"] == "one"
    assert details["apps"]["nocodb"]["size"] > 0
    assert details["system"] == {} and details["from_yunohost_version"] == "12.1.25"
    # -o: archive in the output folder, symlinked from archives/; info gives the real path
    assert (sim.archives / "second.tar").is_symlink()
    second = sim.run("backup", "info", "second", "--output-as", "json").json()
    assert second["path"] == str(tmp_path / "out" / "second.tar")

    deleted = sim.run("backup", "delete", "second", "--output-as", "json")
    assert deleted.code == 0 and deleted.stdout.strip() == "SUCCESS Backup deleted: second"
    assert not (tmp_path / "out" / "second.tar").exists()
    assert not os.path.lexists(sim.archives / "second.tar")
    assert not (sim.archives / "second.info.json").exists()

    unknown = sim.run("backup", "delete", "second")
    assert unknown.code == 1
    assert "ERROR Unknown local backup archive named 'second'" in unknown.stderr
    assert sim.run("backup", "info", "nope").code == 1


def test_info_is_extracted_and_cached_when_missing(sim: Sim) -> None:
    sim.create("cache1", "--apps", "nocodb")
    beside = sim.archives / "cache1.info.json"
    original = beside.read_bytes()
    beside.unlink()

    result = sim.run("backup", "info", "cache1", "--output-as", "json")

    assert result.code == 0
    assert beside.read_bytes() == original


# -- restore ---------------------------------------------------------------------------------------


def test_restore_app_installs_it_then_refuses_a_second_time(sim: Sim) -> None:
    sim.create("wp1", "--apps", "wordpress")
    core = sim.root / "fs" / "var" / "www" / "wordpress" / "core.bin"
    expected = core.read_bytes()

    installed_already = sim.run("backup", "restore", "wp1", "--apps", "wordpress", "--force")
    sim.uninstall("wordpress")
    restored = sim.run("backup", "restore", "wp1", "--apps", "wordpress", "--output-as", "json")
    again = sim.run("backup", "restore", "wp1", "--apps", "wordpress")

    assert installed_already.code == 1
    assert restored.code == 0, restored.stderr
    assert restored.json() == {"system": {}, "apps": {"wordpress": "Success"}}
    assert "INFO Restoring the app 'wordpress'…" in restored.stdout
    assert "SUCCESS Restoration completed" in restored.stdout
    assert "wordpress" in sim.installed()
    assert core.read_bytes() == expected
    assert not (sim.root / "tmp" / "wp1").exists()
    assert again.code == 1
    assert (
        "ERROR The following apps can't be restored because they are already installed: wordpress"
        in again.stderr
    )


def test_restore_system_needs_force_when_not_a_tty(sim: Sim) -> None:
    sim.create("sysr", "--system", "conf_ldap")
    ldap_conf = sim.root / "fs" / "etc" / "ldap" / "ldap.conf"
    ldap_conf.write_text("changed\n")

    refused = sim.run("backup", "restore", "sysr", "--system", "conf_ldap")
    forced = sim.run("backup", "restore", "sysr", "--system", "conf_ldap", "--force", "--json")

    assert refused.code == 1
    assert "WARNING YunoHost is already installed" in refused.stderr
    assert "ERROR Not a tty, can't do interactive prompts" in refused.stderr
    assert forced.code == 0
    assert forced.json() == {"system": {"conf_ldap": "Success"}, "apps": {}}
    assert ldap_conf.read_text() == "BASE dc=yunohost,dc=org\n"


def build_custom_archive(
    folder: Path, name: str, target: Path, *, size_details: bool = True, extra: bool = False
) -> None:
    """A BackupManager-style custom_dir archive: part data_custom + its restore hook."""
    hook = (
        "#!/bin/bash\nset -eu\n"
        f'mkdir -p "{target}"\n'
        f'cp -a "$1/data/custom/opt/myapp/." "{target}/"\n'
        'echo "$YNH_BACKUP_CSV" > "' + str(target) + '/.csv_path"\n'
    )
    info: dict[str, Any] = {
        "description": "custom",
        "created_at": 1732233600,
        "size": 11,
        "apps": {},
        "system": {"data_custom": ["/etc/yunohost/hooks.d/backup/50-data_custom"]},
        "from_yunohost_version": "12.1.25",
    }
    if size_details:
        info["size_details"] = {"system": {"data_custom": 11}, "apps": {}}
    info_bytes = json.dumps(info).encode()
    files = {
        "data/custom/opt/myapp/config.ini": b"key=value\n",
        "data/custom/opt/myapp/sub/file.txt": b"x",
        "hooks/restore/50-data_custom": hook.encode(),
        "backup.csv": b'"/opt/myapp","data/custom/opt/myapp"\r\n',
        "info.json": info_bytes,
    }
    if extra:
        files["../escaped.txt"] = b"should not be written"
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / f"{name}.tar", "w") as tar:
        for member_name, content in files.items():
            member = tarfile.TarInfo(member_name)
            member.size = len(content)
            member.mode = 0o755 if member_name.startswith("hooks/") else 0o644
            tar.addfile(member, io.BytesIO(content))
    (folder / f"{name}.info.json").write_bytes(info_bytes)


def test_restore_custom_part_runs_the_hook_from_the_archive(sim: Sim, tmp_path: Path) -> None:
    target = tmp_path / "restored" / "opt" / "myapp"
    build_custom_archive(sim.archives, "custom1", target)

    result = sim.run(
        "backup", "restore", "custom1", "--system", "data_custom", "--force", "--output-as", "json"
    )

    assert result.code == 0, result.stderr
    assert result.json() == {"system": {"data_custom": "Success"}, "apps": {}}
    assert (target / "config.ini").read_text() == "key=value\n"
    assert (target / "sub" / "file.txt").read_text() == "x"
    work_dir = sim.root / "tmp" / "custom1"
    assert (target / ".csv_path").read_text().strip() == str(work_dir / "backup.csv")
    assert (sim.root / "hooks.d" / "restore" / "50-data_custom").is_file()
    assert not work_dir.exists()


def test_restore_custom_part_without_size_details_restores_nothing(
    sim: Sim, tmp_path: Path
) -> None:
    target = tmp_path / "restored"
    build_custom_archive(sim.archives, "nodetails", target, size_details=False)

    result = sim.run("backup", "restore", "nodetails", "--system", "data_custom", "--force")

    assert result.code == 1
    assert "ERROR Restoration script for 'data_custom' not available" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "ERROR Nothing was restored"
    assert not target.exists()


def test_restore_never_writes_outside_its_folder(sim: Sim, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    build_custom_archive(sim.archives, "evil", target, extra=True)
    # A member named ../escaped.txt only matches no extraction prefix; make it match one
    with tarfile.open(sim.archives / "evil.tar", "a") as tar:
        member = tarfile.TarInfo("data/custom/../../../escaped.txt")
        member.size = 1
        tar.addfile(member, io.BytesIO(b"!"))

    result = sim.run("backup", "restore", "evil", "--system", "data_custom", "--force")

    assert result.code == 0
    assert "SIMULATOR: member 'data/custom/../../../escaped.txt'" in result.stderr
    assert not (sim.root / "escaped.txt").exists()
    assert not (sim.root / "tmp" / "escaped.txt").exists()


def test_restore_of_too_old_or_unversioned_archive(sim: Sim, tmp_path: Path) -> None:
    build_custom_archive(sim.archives, "old", tmp_path / "x")
    info = json.loads((sim.archives / "old.info.json").read_text())
    info["from_yunohost_version"] = "4.1.7"
    (sim.archives / "old.info.json").write_text(json.dumps(info))

    too_old = sim.run("backup", "restore", "old", "--force")
    del info["from_yunohost_version"]
    (sim.archives / "old.info.json").write_text(json.dumps(info))
    unversioned = sim.run("backup", "restore", "old", "--force")

    assert too_old.code == 1
    assert "ERROR This backup archive can not be restored because it comes from a too-old" in (
        too_old.stderr
    )
    assert unversioned.code == 1 and "TypeError" in unversioned.stderr  # §7.1


def test_restore_of_a_part_whose_hook_is_missing_crashes(sim: Sim, tmp_path: Path) -> None:
    build_custom_archive(sim.archives, "nohook", tmp_path / "x")
    info = json.loads((sim.archives / "nohook.info.json").read_text())
    info["system"]["data_custom"] = ["/etc/yunohost/hooks.d/backup/60-data_custom"]
    (sim.archives / "nohook.info.json").write_text(json.dumps(info))

    result = sim.run("backup", "restore", "nohook", "--system", "data_custom", "--force")

    assert result.code == 1
    assert "KeyError" in result.stderr  # uncaught, as in YunoHost (§7.3)


def test_dry_run_and_server_before_postinstall(sim: Sim) -> None:
    dry = sim.run("backup", "create", "-n", "dry1", "--apps", "nocodb", "--dry-run", "--json")
    sim.create("full", "--system", "conf_ynh_settings", "conf_ldap")
    (sim.root / "not_postinstalled").touch()
    refused = sim.run("backup", "create", "-n", "x", "--apps", "nocodb")
    listed = sim.run("backup", "list", "--json")
    restored = sim.run("backup", "restore", "full", "--json")

    assert set(dry.json()) == {"size", "size_details"}
    assert dry.json()["size_details"]["apps"]["nocodb"] > 0
    assert (sim.root / "tmp" / "dry1").is_dir()  # left behind, as YunoHost does
    assert refused.code == 1
    assert refused.stdout.strip() == (
        "Error: YunoHost is not correctly installed. Please run 'yunohost tools postinstall'"
    )
    assert listed.json() == {"archives": ["full"]}
    # No prompt before post-install; conf/ynh/current_host makes the post-install possible
    assert restored.code == 0, restored.stderr
    assert restored.json()["system"] == {"conf_ldap": "Success", "conf_ynh_settings": "Success"}
    assert not (sim.root / "not_postinstalled").exists()


# -- other commands ------------------------------------------------------------------------------


def test_app_list_group_info_and_firewall(sim: Sim) -> None:
    apps = sim.run("app", "list", "--output-as", "json").json()["apps"]
    full = sim.run("app", "list", "-f", "--output-as", "json").json()["apps"]
    admins = sim.run("user", "group", "info", "admins", "--output-as", "json").json()
    unknown_group = sim.run("user", "group", "info", "nobody")
    sim.write_json("admins.json", ["alice", "bob"])
    admins_after = sim.run("user", "group", "info", "admins", "--output-as", "json").json()
    allow = sim.run("firewall", "allow", "TCP", "8080")
    again = sim.run("firewall", "allow", "TCP", "8080")
    ports = sim.run("firewall", "list", "--output-as", "json").json()

    assert [a["id"] for a in apps] == ["my_webapp", "nextcloud", "nocodb", "wordpress"]
    assert set(apps[0]) == {"id", "name", "description", "version", "domain_path"}
    assert {a["id"]: a["supports_backup_restore"] for a in full} == {
        "my_webapp": False,
        "nextcloud": True,
        "nocodb": True,
        "wordpress": True,
    }
    assert admins["members"] == ["admin"]
    assert unknown_group.code == 1 and "The group 'nobody' is unknown" in unknown_group.stderr
    assert admins_after["members"] == ["alice", "bob"]
    assert allow.code == 0 and "SUCCESS Firewall reloaded" in allow.stdout
    assert "WARNING Port 8080 is already opened" in again.stderr
    assert ports == {"tcp": [8080]}
    assert sim.read_json("firewall.json")["tcp"]["8080"]["open"] is True


def test_require_root_refuses_other_users() -> None:
    """YNH_SIM_REQUIRE_ROOT=1: a non-root caller gets bin/yunohost's refusal (§2.1)."""
    root = Path(tempfile.mkdtemp(prefix="ynh_sim_root_"))
    root.chmod(0o777)  # writable by the unprivileged user below
    command = [str(SIMULATOR), "app", "list"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("needs setpriv to drop root privileges")
        command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]
    env = {**Sim(root).env(), "YNH_SIM_REQUIRE_ROOT": "1"}
    try:
        refused = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        env.pop("YNH_SIM_REQUIRE_ROOT")
        allowed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    finally:
        shutil.rmtree(root)

    assert refused.returncode == 1
    assert "Error:" in refused.stderr
    assert "yunohost command must be run as root or with sudo." in refused.stderr
    assert refused.stdout == ""
    assert allowed.returncode == 0
