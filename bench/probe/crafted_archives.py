"""Hostile archives restored into temporary targets: nothing outside, no false success.

Usage (as root, from the repository root):
    .venv/bin/python -m bench.probe.crafted_archives

Builds 24 archives that look like BackupManager's custom_dir archives, each with one hostile
part (`..`, absolute names, devices, links out of the target, a link then a file of the same
name, a truncated tar, a wrong header checksum, 20,000 members…), and asks for 4 restores of
each (plan only; into a new target; again over it with --overwrite; at the origin, which lies in
the temporary folder too): 96 attempts. Reports anything written outside the target and origin
folders, any exception, and any restore that says success while its files differ from what GNU
`tar -x` of the same members gives.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.probe.common import Instance, Tally, files_under, instance

from backupmanager.restore.execute import RestoreRefused
from backupmanager.restore.plan import RestoreOptions
from backupmanager.restore.service import RestoreInputError
from tests.helpers import restore_now

Build = Callable[[tarfile.TarFile, str], None]  # adds the hostile members under prefix


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> Build:
    def add(tar: tarfile.TarFile, prefix: str) -> None:
        info = tarfile.TarInfo(name.replace("PREFIX", prefix))
        info.type, info.linkname, info.mode = kind, link.replace("PREFIX", prefix), mode
        payload = f"evil {info.name}\n".encode() if kind == tarfile.REGTYPE else b""
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))

    return add


def several(*builds: Build) -> Build:
    def add(tar: tarfile.TarFile, prefix: str) -> None:
        for build in builds:
            build(tar, prefix)

    return add


def many(count: int) -> Build:
    return several(*(member(f"PREFIX/many/{number}") for number in range(count)))


CASES: dict[str, Build] = {
    "dotdot": member("PREFIX/../../../../etc/cron.d/bm-probe-evil"),
    "absolute": member("/etc/cron.d/bm-probe-evil"),
    "undeclared": member("data/custom/etc/cron.d/bm-probe-evil"),
    "symlink-relative-out": member("PREFIX/up", tarfile.SYMTYPE, "../../../../../../../etc"),
    "symlink-absolute-out": member("PREFIX/up", tarfile.SYMTYPE, "/etc"),
    "hardlink-absolute": member("PREFIX/hl", tarfile.LNKTYPE, "/etc/shadow"),
    "hardlink-outside": member("PREFIX/hl", tarfile.LNKTYPE, "etc/shadow"),
    "char-device": member("PREFIX/null", tarfile.CHRTYPE),
    "block-device": member("PREFIX/disk", tarfile.BLKTYPE),
    "fifo": member("PREFIX/fifo", tarfile.FIFOTYPE),
    "unexpected-top": member("unexpected.sh"),
    "through-symlink": several(
        member("PREFIX/out", tarfile.SYMTYPE, "/tmp"), member("PREFIX/out/bm-probe-planted")
    ),
    "link-then-file": several(
        member("PREFIX/same", tarfile.SYMTYPE, "elsewhere"), member("PREFIX/same")
    ),
    "dirlink-then-file": several(
        member("PREFIX/sub", tarfile.DIRTYPE, mode=0o755),
        member("PREFIX/same", tarfile.SYMTYPE, "sub"),
        member("PREFIX/same"),
    ),
    "file-then-link": several(
        member("PREFIX/same"), member("PREFIX/same", tarfile.SYMTYPE, "good.txt")
    ),
    "dir-then-file": several(member("PREFIX/d", tarfile.DIRTYPE), member("PREFIX/d")),
    "setuid": member("PREFIX/suid", mode=0o4755),
    "newline-name": member("PREFIX/line\nbreak"),
    "long-name": member("PREFIX/" + "n" * 300),
    "hardlink-inside": member("PREFIX/hl", tarfile.LNKTYPE, "PREFIX/good.txt"),
    "huge-member-count": many(20_000),
    "truncated": member("PREFIX/fine"),  # cut in half below
    "bad-checksum": member("PREFIX/fine"),  # a header byte changed below
    "no-metadata": member("PREFIX/fine"),  # backup_info.json left out below
}


def build(archives: Path, name: str, origin: Path, hostile: Build) -> None:
    """Metadata like ours (tests/integration/test_restore.py), a good file, then the hostile part."""
    info = {"description": "", "created_at": 1, "size": 1, "apps": {}, "system": {},
            "size_details": {"apps": {}, "system": {}}, "from_yunohost_version": "12.1.25"}  # fmt: skip
    backup_info = {"type": "custom_dir", "instance_name": "jerry",
                   "custom_dir": {"paths": [str(origin)], "source_path": str(origin)}}  # fmt: skip
    metadata = {"info.json": info, "backup_info.json": backup_info}
    if name == "no-metadata":
        del metadata["backup_info.json"]
    path = archives / f"{name}.tar"
    prefix = f"data/custom{origin}"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for member_name, content in metadata.items():
            payload = json.dumps(content).encode()
            entry = tarfile.TarInfo(member_name)
            entry.size = len(payload)
            tar.addfile(entry, io.BytesIO(payload))
        member(f"{prefix}/good.txt")(tar, prefix)
        hostile(tar, prefix)
    (archives / f"{name}.info.json").write_text(json.dumps(info))
    with tarfile.open(path) as tar:
        last = tar.getmembers()[-1]
    data = bytearray(path.read_bytes())
    if name == "truncated":  # inside the last member's data (tar pads the end with zeros)
        path.write_bytes(data[: last.offset_data + 2])
    elif name == "bad-checksum":
        data[last.offset + 100] ^= 0x01  # the last member's mode field: its checksum is wrong
        path.write_bytes(bytes(data))


def what_tar_extracts(archive: Path, origin: Path, scratch: Path) -> dict[str, bytes | str]:
    """GNU tar's result for the origin's members: name → content (files) or link target."""
    scratch.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(scratch)], capture_output=True)
    return snapshot(scratch / "data" / "custom" / str(origin).lstrip("/"))


def snapshot(root: Path) -> dict[str, bytes | str]:
    result: dict[str, bytes | str] = {}
    for path in files_under(root):
        key = str(path.relative_to(root))
        if path.is_symlink():
            result[key] = "-> " + str(path.readlink())
        elif path.is_file():
            result[key] = path.read_bytes()
    return result


def attempts(target: Path) -> list[tuple[str, RestoreOptions]]:
    return [
        ("plan", RestoreOptions(target=str(target), plan_only=True)),
        ("target", RestoreOptions(target=str(target))),
        ("overwrite", RestoreOptions(target=str(target), overwrite=True)),
        ("origin", RestoreOptions(skip_commands=True)),
    ]


def restore(inst: Instance, name: str, options: RestoreOptions) -> dict[str, object]:
    try:
        return restore_now(inst.db, inst.settings, name, options)
    except (
        RestoreInputError,
        RestoreRefused,
    ) as error:  # refused before queueing, with a message: fine
        return {"status": "refused", "error_message": str(error)}


def probe_one(inst: Instance, name: str, hostile: Build, tally: Tally) -> list[str]:
    work = inst.base / "work" / name
    origin, target = work / "origin" / "app", work / "target"
    origin.mkdir(parents=True)
    build(inst.settings.archives_dir, name, origin, hostile)
    expected = what_tar_extracts(inst.settings.archives_dir / f"{name}.tar", origin, work / "tar")
    before = files_under(inst.base)
    statuses = []
    for kind, options in attempts(target):
        status = restore(inst, name, options)
        statuses.append(f"{kind}={status['status']}")
        tally.case()
        if status["status"] == "success" and kind != "plan":
            written = origin if kind == "origin" else target / str(origin).lstrip("/")
            got = snapshot(written)
            if got != expected:
                tally.finding(f"{name} ({kind}): success reported, but {sorted(got)} != tar's "
                              f"{sorted(expected)}: {status.get('error_message')}")  # fmt: skip
    allowed = (work, inst.settings.data_dir, inst.settings.archives_dir)
    outside = [p for p in files_under(inst.base) - before if not p.is_relative_to(allowed[0])]
    outside = [p for p in outside if not any(p.is_relative_to(a) for a in allowed[1:])]
    tally.check(not outside, f"{name}: written outside the target: {outside}")
    return statuses


def main() -> None:
    tally = Tally("crafted_archives")
    planted = [Path("/etc/cron.d/bm-probe-evil"), Path("/tmp/bm-probe-planted")]
    with tempfile.TemporaryDirectory(prefix="bm-probe-") as folder, instance(Path(folder)) as inst:
        for name, hostile in CASES.items():
            statuses = probe_one(inst, name, hostile, tally)
            print(f"{name}: {' '.join(statuses)}", flush=True)
    for path in planted:
        tally.check(not path.exists(), f"{path} was written")
        path.unlink(missing_ok=True)
    print(tally.summary(archives=len(CASES), restores=4 * len(CASES)))


if __name__ == "__main__":
    main()
