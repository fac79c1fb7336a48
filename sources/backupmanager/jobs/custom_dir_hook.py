"""The restore hook carried by custom_dir archives, run by YunoHost's own restore (SPEC §4, §7 "partial")."""

from __future__ import annotations

CUSTOM_PART = "data_custom"
HOOK_PRIORITY = "50"

# YunoHost runs it as `bash -x HOOK WORK_DIR` after extracting backup.csv and data/custom/ into
# WORK_DIR (YUNOHOST.md §1.7, §1.8). It must be the same for every archive: once copied to
# /etc/yunohost/hooks.d/restore/, YunoHost uses that copy for later restores of the same part.
# So it reads what to put where from backup.csv instead of carrying paths of its own.
RESTORE_HOOK = r"""#!/bin/bash
# BackupManager: restore hook of the data_custom system part (hook format 1).
# Copies every folder or file that backup.csv lists under data/custom/ back to its origin,
# keeping owners, modes, links and extended attributes where the filesystem allows.
# BackupManager's own restore (`backupmanager restore NAME`) also recreates the system user,
# installs the systemd service, applies permissions and runs the post-restore commands.
set -eu
workdir="${1:?usage: $0 RESTORE_WORK_DIR}"
exec python3 - "$workdir" <<'PYTHON'
import csv, os, subprocess, sys

workdir = sys.argv[1]
with open(os.path.join(workdir, "backup.csv"), newline="", encoding="utf-8") as handle:
    rows = [row for row in csv.reader(handle) if len(row) == 2]
restored = 0
for origin, dest in rows:
    if not dest.startswith("data/custom/"):
        continue
    parts = origin.split("/") + dest.split("/")
    if not origin.startswith("/") or ".." in parts or os.path.normpath(origin) in ("/", "//"):
        sys.exit(f"refusing the suspicious path {origin!r} -> {dest!r} in backup.csv")
    source = os.path.join(workdir, dest)
    if not os.path.lexists(source):
        sys.exit(f"{dest} is listed in backup.csv but missing from the archive")
    os.makedirs(os.path.dirname(origin), exist_ok=True)
    if os.path.isdir(source) and not os.path.islink(source):
        os.makedirs(origin, exist_ok=True)
        subprocess.run(["cp", "-a", "--", source + "/.", origin + "/"], check=True)
    else:
        subprocess.run(["cp", "-a", "--", source, origin], check=True)
    print(f"restored {origin}")
    restored += 1
if not restored:
    sys.exit("backup.csv lists nothing under data/custom/: nothing was restored")
PYTHON
"""
