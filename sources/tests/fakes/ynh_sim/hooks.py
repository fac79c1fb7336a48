"""System parts (backup / restore hooks) of the simulated server, and running hooks.

Three kinds of system parts (YUNOHOST.md §1.4, §1.8, §2.2):

- core parts, simulated in Python: `05-conf_ldap 17-data_home 18-data_multimedia
  20-conf_ynh_settings 21-conf_ynh_certs 23-data_mail 50-conf_manually_modified_files`;
- extra simulated parts declared in <root>/hooks.json;
- custom parts: real bash hooks dropped in <root>/hooks.d/backup/NN-name (and
  hooks.d/restore/NN-name), run like YunoHost runs them.

Simulated parts read their files from the simulated host filesystem (<root>/fs) and get a
generated bash restore hook (under fs/usr/share/yunohost/hooks/restore) that copies the
files back there.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .console import Console
from .state import REAL_CORE_HOOKS, REAL_CUSTOM_HOOKS, SimState

HELPERS_SHIM = Path(__file__).resolve().parent / "helpers.sh"
FAKES_DIR = Path(__file__).resolve().parent.parent  # holds the `yunohost` simulator


@dataclass
class SystemPart:
    """One system part: its hook name, priority and (for simulated parts) its files."""

    name: str
    priority: str
    custom: bool = False  # a real hook in hooks.d/backup
    is_big: bool = False  # declared with ynh_backup --is_big=1: skipped by BACKUP_CORE_ONLY=1
    # (host path, archive dest, seed content for a file or None for a directory)
    files: list[tuple[str, str, bytes | None]] = field(default_factory=list)
    # files the hook writes into the work dir (archive dest, content)
    generated: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return f"{self.priority}-{self.name}"

    @property
    def backup_hook_path(self) -> str:
        """Path recorded in info.json["system"] (§1.5)."""
        base = REAL_CUSTOM_HOOKS if self.custom else REAL_CORE_HOOKS
        return f"{base}/backup/{self.filename}"


def _core_parts(state: SimState) -> list[SystemPart]:
    """The seven core parts of §1.4, with small seed files."""
    admins = state.admins()
    ldif_users = "".join(f"dn: uid={u},ou=users,dc=yunohost,dc=org\nuid: {u}\n\n" for u in admins)
    return [
        SystemPart(
            "conf_ldap",
            "05",
            files=[("/etc/ldap/ldap.conf", "conf/ldap/ldap.conf", b"BASE dc=yunohost,dc=org\n")],
            generated=[
                ("conf/ldap/cn=config.master.ldif", b"dn: cn=config\nobjectClass: olcGlobal\n"),
                ("conf/ldap/dc=yunohost-dc=org.ldif", ldif_users.encode()),
            ],
        ),
        SystemPart(
            "data_home",
            "17",
            is_big=True,
            files=[(f"/home/{u}", f"data/home/{u}", None) for u in admins],
        ),
        SystemPart(
            "data_multimedia",
            "18",
            is_big=True,
            files=[("/home/yunohost.multimedia", "data/multimedia", None)],
        ),
        SystemPart(
            "conf_ynh_settings",
            "20",
            files=[
                ("/etc/yunohost/firewall.yml", "conf/ynh/firewall.yml", b"ipv4: {}\n"),
                ("/etc/yunohost/permissions.yml", "conf/ynh/permissions.yml", b"{}\n"),
                ("/etc/yunohost/current_host", "conf/ynh/current_host", b"domain.tld\n"),
                ("/etc/yunohost/settings.yml", "conf/ynh/settings.yml", b"{}\n"),
                ("/etc/yunohost/domains", "conf/ynh/domains", None),
            ],
        ),
        SystemPart(
            "conf_ynh_certs",
            "21",
            files=[("/etc/yunohost/certs", "conf/ynh/certs", None)],
        ),
        SystemPart("data_mail", "23", is_big=True, files=[("/var/mail", "data/mail", None)]),
        SystemPart(
            "conf_manually_modified_files",
            "50",
            generated=[("conf/manually_modified_files/files_to_restore.md", b"")],
        ),
    ]


def _extra_parts(state: SimState) -> list[SystemPart]:
    """Parts of hooks.json: "NN-name" strings or {"name", "priority", "is_big", "size"}."""
    parts = []
    for entry in state.extra_hooks():
        if isinstance(entry, str):
            priority, _, name = entry.partition("-")
            entry = {"name": name, "priority": priority}
        name = str(entry["name"])
        size = int(entry.get("size", 1024))
        seed = (f"{name} simulated data\n".encode() * (size // 10 + 1))[:size]
        parts.append(
            SystemPart(
                name,
                str(entry.get("priority", "50")).zfill(2),
                is_big=bool(entry.get("is_big", False)),
                files=[(f"/srv/{name}/{name}.dat", f"{name.replace('_', '/')}/{name}.dat", seed)],
            )
        )
    return parts


def _custom_parts(state: SimState) -> list[SystemPart]:
    """Real hooks in hooks.d/backup: `NN-name`, the name is what follows the first `-`."""
    parts = []
    folder = state.hooks_d / "backup"
    for hook in sorted(folder.iterdir()) if folder.is_dir() else []:
        if hook.name.startswith(".") or hook.name.endswith("~") or not hook.is_file():
            continue
        priority, _, name = hook.name.partition("-")
        if name:
            parts.append(SystemPart(name, priority, custom=True))
    return parts


def backup_parts(state: SimState) -> dict[str, SystemPart]:
    """`yunohost hook list backup`: every part, ordered by priority then name."""
    all_parts = _core_parts(state) + _extra_parts(state) + _custom_parts(state)
    all_parts.sort(key=lambda p: (p.priority, p.name))
    parts: dict[str, SystemPart] = {}
    for part in all_parts:
        parts.setdefault(part.name, part)
    return parts


def materialize(state: SimState, part: SystemPart) -> None:
    """Create the part's seed files in the simulated host filesystem if missing."""
    for host, _dest, content in part.files:
        path = state.host_path(host)
        if path.exists():
            continue
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            (path / "README.txt").write_text(f"simulated content of {host}\n")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)


# -- restore hooks ---------------------------------------------------------------------------


def _simulated_restore_script(part: SystemPart) -> str:
    lines = [
        "#!/bin/bash",
        f"# Restore hook of the simulated system part '{part.name}' (yunohost simulator).",
        "# Copies the part's files from the restore work dir ($1) back into the simulated",
        "# host filesystem ($YNH_SIM_FS), as the real hook does on the real filesystem.",
        "set -eu",
        'workdir="$1"',
        'fs="${YNH_SIM_FS:?}"',
        "put() {",
        '    local from="$workdir/$1" to="$fs$2"',
        '    [ -e "$from" ] || return 0',
        '    if [ -d "$from" ]; then mkdir -p "$to"; cp -a "$from/." "$to/";',
        '    else mkdir -p "$(dirname "$to")"; cp -a "$from" "$to"; fi',
        "}",
    ]
    if part.name == "data_home":
        lines.append(
            'for home in "$workdir"/data/home/*; do [ -e "$home" ] || continue; '
            'put "data/home/$(basename "$home")" "/home/$(basename "$home")"; done'
        )
    lines += [f'put "{dest}" "{host}"' for host, dest, _ in part.files if part.name != "data_home"]
    return "\n".join(lines) + "\n"


def system_restore_hooks(state: SimState) -> dict[str, list[Path]]:
    """`hook list restore` of the current system: simulated parts + hooks.d/restore files."""
    hooks: dict[str, list[Path]] = {}
    core_dir = state.host_path(f"{REAL_CORE_HOOKS}/restore")
    for part in _core_parts(state) + _extra_parts(state):
        path = core_dir / part.filename
        if not path.exists():
            core_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(_simulated_restore_script(part))
            path.chmod(0o755)
        hooks.setdefault(part.name, []).append(path)
    custom_dir = state.hooks_d / "restore"
    for hook in sorted(custom_dir.iterdir()) if custom_dir.is_dir() else []:
        name = hook.name.partition("-")[2]
        if name and hook.is_file() and not hook.name.startswith("."):
            # A custom hook with the same name replaces the simulated one
            if name not in hooks or hooks[name][0].parent != custom_dir:
                hooks[name] = []
            hooks[name].append(hook)
    return hooks


def real_restore_hook_path(state: SimState, hook: Path) -> str:
    """Host path of a restore hook, as written in backup.csv."""
    if hook.parent == state.hooks_d / "restore":
        return f"{REAL_CUSTOM_HOOKS}/restore/{hook.name}"
    return f"{REAL_CORE_HOOKS}/restore/{hook.name}"


# -- running a hook ------------------------------------------------------------------------


def run_hook(
    state: SimState,
    console: Console,
    hook: Path,
    args: list[str],
    env: dict[str, str],
    cwd: Path,
) -> int:
    """Run a hook like YunoHost's hook_exec (§2.6) and log its output; return its exit code.

    `sh -c '/bin/bash -x HOOK ARGS 7>&1'` with BASH_XTRACEFD=7, env = our env + `env` +
    YNH_CWD, YNH_INTERFACE, YNH_STDRETURN, HOME removed. stdout (and the xtrace) is logged at
    DEBUG, stderr at WARNING, and `ynh_print_info` lines of the helper shim at INFO.
    Simulator additions: YNH_SIM_FS, the helper shim as BASH_ENV, and this simulator first
    on PATH so that a hook calling `yunohost` reaches it (and bypasses the lock as a child).
    """
    with tempfile.TemporaryDirectory(prefix="ynh_sim_hook_") as scratch:
        info_file = Path(scratch) / "stdinfo"
        full_env = dict(os.environ)
        full_env.pop("HOME", None)
        full_env.update(env)
        full_env.update(
            {
                "YNH_CWD": str(cwd),
                "YNH_INTERFACE": "cli",
                "YNH_STDRETURN": str(Path(scratch) / "stdreturn"),
                "YNH_SIM_STDINFO": str(info_file),
                "YNH_SIM_FS": str(state.fs),
                "BASH_XTRACEFD": "7",
                "BASH_ENV": str(HELPERS_SHIM),
                "PATH": f"{FAKES_DIR}:{full_env.get('PATH', '/usr/bin:/bin')}",
            }
        )
        command = ["sh", "-c", '/bin/bash -x "$0" "$@" 7>&1', str(hook), *args]
        proc = subprocess.run(
            command, cwd=cwd, env=full_env, capture_output=True, text=True, check=False
        )
        for line in proc.stdout.splitlines():
            console.debug(line)
        for line in proc.stderr.splitlines():
            console.warning(line)
        if info_file.exists():
            for line in info_file.read_text().splitlines():
                console.info(line)
    return proc.returncode
