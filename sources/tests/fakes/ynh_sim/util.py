"""Small helpers shared by the simulated commands (sizes, names, versions, CSV)."""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Literal

# YUNOHOST.md §1.9: actionsmap pattern of `backup create --name` and `backup delete name`
ARCHIVE_NAME_PATTERN = r"^[\w\-\._]{1,50}(?<!\.)$"


def name_matches_pattern(name: str) -> bool:
    """Moulinette's check: an empty value is not validated; re.match with re.UNICODE."""
    return not name or re.match(ARCHIVE_NAME_PATTERN, name, re.UNICODE) is not None


def space_used(path: Path) -> int:
    """`du -sb PATH` (apparent sizes, directories included, symlinks not followed)."""
    try:
        stat = path.lstat()
    except OSError:
        return 0
    total = stat.st_size
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            for entry in dirnames + filenames:
                try:
                    total += os.lstat(os.path.join(dirpath, entry)).st_size
                except OSError:
                    continue
    return total


def binary_to_human(size: int) -> str:
    """YunoHost's size format: base 1024, one decimal below 10 ("1.2M", "42K", "512")."""
    symbols = ("K", "M", "G", "T", "P", "E", "Z", "Y")
    for index in range(len(symbols) - 1, -1, -1):
        unit = 1 << (index + 1) * 10
        if size >= unit:
            value = size / unit
            return f"{value:.1f}{symbols[index]}" if value < 10 else f"{value:.0f}{symbols[index]}"
    return str(size)


def human_size(size: int) -> str:
    """`-H` sizes and the size estimation line: binary_to_human + "B" (§1.7)."""
    return binary_to_human(size) + "B"


def version_tuple(version: str) -> tuple[int, ...]:
    """Release part of a PEP 440 version; raises like packaging's InvalidVersion when invalid."""
    match = re.fullmatch(
        r"v?(\d+(?:\.\d+)*)((a|b|rc|alpha|beta|c|pre|preview)\.?\d*)?"
        r"(\.?post\d*)?(\.?dev\d*)?(\+[a-z0-9.]+)?",
        version.strip().lower(),
    )
    if match is None:
        raise ValueError(f"InvalidVersion: Invalid version: '{version}'")
    return tuple(int(part) for part in match.group(1).split("."))


def csv_bytes(rows: list[tuple[str, str]]) -> bytes:
    """backup.csv (§1.6): excel dialect, QUOTE_ALL, CRLF line ends, no header."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL)
    for source, dest in rows:
        writer.writerow([source, dest])
    return buffer.getvalue().encode("utf-8")


def read_csv_rows(path: Path) -> list[tuple[str, str]]:
    """Rows of a backup.csv-like file (LF or CRLF), as YunoHost's csv.DictReader reads them."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [(row[0], row[1]) for row in csv.reader(handle) if len(row) >= 2]


def tar_read_mode(path: str) -> Literal["r", "r:gz"]:
    """How YunoHost opens an archive for reading: gzip when the name ends in .gz."""
    return "r:gz" if path.endswith(".gz") else "r"
