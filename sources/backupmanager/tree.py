"""What a custom_dir backup takes: a walk of the declared paths with exclude patterns (doc/custom_dir.md)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO


class ExcludeError(ValueError):
    """An exclude pattern that cannot mean anything useful."""


def _glob_to_regex(pattern: str) -> str:
    """`*` and `?` stay within one folder, `**` crosses folders, `[...]` is a character class."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
            continue
        if pattern.startswith("**", index):
            out.append(".*")
            index += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index + 2)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[index + 1 : end]
                negate = body.startswith(("!", "^"))
                body = body[1:] if negate else body
                out.append("[" + ("^/" if negate else "") + body.replace("\\", "\\\\") + "]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


@dataclass(frozen=True)
class ExcludePattern:
    """One pattern, gitignore-like: anchored when it has a '/' before its end, else any depth."""

    text: str
    regex: re.Pattern[str]
    anchored: bool
    folders_only: bool

    @classmethod
    def parse(cls, text: str) -> ExcludePattern:
        pattern = text.strip()
        if not pattern or pattern in {"/", "*", "**", "**/"}:
            raise ExcludeError(f"exclude '{text}' would exclude everything")
        if any(part == ".." for part in pattern.split("/")):
            raise ExcludeError(f"exclude '{text}': '..' is not allowed, patterns are relative")
        folders_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        anchored = "/" in pattern
        pattern = pattern.removeprefix("/").removeprefix("./")
        return cls(text, re.compile(_glob_to_regex(pattern) + r"\Z"), anchored, folders_only)

    def matches(self, relative: str, *, is_dir: bool) -> bool:
        if self.folders_only and not is_dir:
            return False
        subject = relative if self.anchored else relative.rsplit("/", 1)[-1]
        return self.regex.match(subject) is not None


def parse_excludes(patterns: Iterable[str]) -> list[ExcludePattern]:
    return [ExcludePattern.parse(pattern) for pattern in patterns]


@dataclass
class TreeSummary:
    """What the walk found: counts for the log, sizes for info.json and the progress bar."""

    entries: int = 0
    files: int = 0
    bytes: int = 0
    excluded: dict[str, int] = field(default_factory=dict)  # pattern → entries skipped
    skipped_special: list[str] = field(default_factory=list)  # sockets, device nodes
    bytes_per_path: dict[str, int] = field(default_factory=dict)


def _size_of(status: os.stat_result) -> int:
    if stat.S_ISREG(status.st_mode) or stat.S_ISLNK(status.st_mode):
        return status.st_size
    return 0


class TreeWalker:
    """Walks the declared paths without following symlinks and writes tar's NUL-separated list.

    Names are written relative to `/` (tar runs with --directory=/). Sockets cannot be archived
    and device nodes are refused by our restore, so both are skipped and reported.
    """

    def __init__(
        self,
        excludes: Sequence[ExcludePattern],
        *,
        never: Sequence[str] = (),
    ) -> None:
        self.excludes = excludes
        self.never = tuple(os.path.normpath(path) for path in never)
        self.summary = TreeSummary()

    def write_list(self, roots: Sequence[str], out: BinaryIO) -> TreeSummary:
        for root in roots:
            before = self.summary.bytes
            status = os.lstat(root)
            self._emit(root, status, out)
            if stat.S_ISDIR(status.st_mode):
                self._walk(root, root, out)
            self.summary.bytes_per_path[root] = self.summary.bytes - before
        return self.summary

    def _excluded(self, relative: str, is_dir: bool) -> ExcludePattern | None:
        for pattern in self.excludes:
            if pattern.matches(relative, is_dir=is_dir):
                return pattern
        return None

    def _walk(self, root: str, folder: str, out: BinaryIO) -> None:
        stack = [folder]
        while stack:
            current = stack.pop()
            with os.scandir(current) as entries:
                ordered = sorted(entries, key=lambda entry: entry.name)
            subfolders = []
            for entry in ordered:
                path = entry.path
                is_dir = entry.is_dir(follow_symlinks=False)
                relative = path[len(root) + 1 :]
                pattern = self._excluded(relative, is_dir)
                if pattern is not None or path in self.never:
                    key = pattern.text if pattern is not None else "(BackupManager's own folders)"
                    self.summary.excluded[key] = self.summary.excluded.get(key, 0) + 1
                    continue
                status = entry.stat(follow_symlinks=False)
                if not self._emit(path, status, out):
                    continue
                if is_dir:
                    subfolders.append(path)
            # Depth first in name order: parents always come before their contents.
            stack.extend(reversed(subfolders))

    def _emit(self, path: str, status: os.stat_result, out: BinaryIO) -> bool:
        mode = status.st_mode
        if stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            self.summary.skipped_special.append(path)
            return False
        out.write(os.fsencode(path.lstrip("/")) + b"\0")
        self.summary.entries += 1
        if stat.S_ISREG(mode):
            self.summary.files += 1
        self.summary.bytes += _size_of(status)
        return True


def is_inside(path: str, folder: str) -> bool:
    """Lexically: is `path` the folder itself or under it (both absolute, normalized)?"""
    return (
        PurePosixPath(path) == PurePosixPath(folder)
        or PurePosixPath(folder) in PurePosixPath(path).parents
    )
