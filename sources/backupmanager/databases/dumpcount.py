"""Row counts of each table read from mysqldump's own output, as it streams (restore drills).

A separate `COUNT(*)` would see another moment than mysqldump's snapshot on a busy database;
the dump itself is exact. Each table's rows sit between `LOCK TABLES `t` WRITE;` and
`UNLOCK TABLES;` (--add-locks). mysqldump escapes newlines inside values, so a raw newline
never appears inside a string: statements and rows can be found by their line starts.
MariaDB ≥ 10.11.8 writes one row per line (`VALUES\\n(…),\\n(…);`): a row is a line starting
with `(`, counted at C speed. Older versions write a whole statement on one line
(`VALUES (…),(…);`): there the `(` outside string literals are counted. A dump has one
format, and no line starts with `(` in the older one: a block with such lines is not
searched for one-line statements.
"""

from __future__ import annotations

from backupmanager.databases.common import Contents

LOCK_PREFIX = b"LOCK TABLES `"
LOCK_SUFFIX = b"` WRITE;"
UNLOCK_LINE = b"UNLOCK TABLES;\n"
VIEW_PREFIX = b"/*!50001 VIEW `"


def _name(quoted_tail: bytes) -> str:
    """The identifier at the start of `quoted_tail` (after its opening backtick)."""
    index = 0
    while True:
        index = quoted_tail.index(b"`", index)
        if quoted_tail[index + 1 : index + 2] == b"`":
            index += 2
            continue
        return quoted_tail[:index].replace(b"``", b"`").decode("utf-8", errors="replace")


def _rows_in_statement_line(values: bytes) -> int:
    """Rows of a one-line `(…),(…);`: the `(` outside string literals."""
    clean = values.replace(b"\\\\", b"").replace(b"\\'", b"")
    pieces = clean.split(b"'")
    return clean.count(b"(") - b"".join(pieces[1::2]).count(b"(")


class MysqlDumpCounter:
    """Fed the dump's bytes in order; `contents()` at the end gives tables, counts and views."""

    def __init__(self) -> None:
        self._carry = b""
        self._table: str | None = None  # inside this table's data section
        self._insert_old = b""  # `INSERT INTO `t` VALUES (` of the current table
        self.tables: dict[str, int] = {}
        self.views: list[str] = []

    def feed(self, chunk: bytes) -> None:
        cut = chunk.rfind(b"\n") + 1
        if cut == 0:
            self._carry += chunk
            return
        start = 0
        if self._carry:  # complete the line cut by the previous chunk, without copying this one
            first = chunk.index(b"\n") + 1
            head = self._carry + chunk[:first]
            self._lines(head, 0, len(head))
            start = first
        self._carry = chunk[cut:]
        self._lines(chunk, start, cut)

    def finish(self) -> Contents:
        if self._carry:
            tail = self._carry + b"\n"
            self._lines(tail, 0, len(tail))
            self._carry = b""
        return Contents(dict(self.tables), list(self.views))

    def _lines(self, text: bytes, position: int, end: int) -> None:
        """The complete lines text[position:end], position being a line start (no copies)."""
        while position < end:
            if self._table is None:
                position = self._outside(text, position, end)
                continue
            stop = _find_line_start(text, UNLOCK_LINE, position, end)
            self._count(text, position, end if stop < 0 else stop)
            if stop < 0:
                return
            self._table = None
            position = stop + len(UNLOCK_LINE)

    def _outside(self, text: bytes, position: int, end: int) -> int:
        """Between data sections: find the next one, noting views on the way."""
        begin = _find_line_start(text, LOCK_PREFIX, position, end)
        self._views(text, position, end if begin < 0 else begin)
        if begin < 0:
            return end
        line_end = text.index(b"\n", begin, end)
        line = text[begin:line_end]
        if line.endswith(LOCK_SUFFIX):
            name = _name(line[len(LOCK_PREFIX) :])
            self._table = name
            self.tables.setdefault(name, 0)
            quoted = b"`" + name.encode().replace(b"`", b"``") + b"`"
            self._insert_old = b"INSERT INTO " + quoted + b" VALUES ("
        return line_end + 1

    def _views(self, text: bytes, start: int, end: int) -> None:
        position = start
        while (found := _find_line_start(text, VIEW_PREFIX, position, end)) >= 0:
            self.views.append(_name(text[found + len(VIEW_PREFIX) : end]))
            position = found + len(VIEW_PREFIX)

    def _count(self, text: bytes, start: int, end: int) -> None:
        """Rows in the lines text[start:end] of a data section."""
        assert self._table is not None
        rows = text.count(b"\n(", start, end) + (1 if text.startswith(b"(", start, end) else 0)
        if rows:  # one row per line: no one-line statement in this dump (saves a pass)
            self.tables[self._table] += rows
            return
        old = self._insert_old
        position = start
        while (begin := _find_line_start(text, old, position, end)) >= 0:
            line_end = text.find(b"\n", begin, end)
            line_end = end if line_end < 0 else line_end
            rows += _rows_in_statement_line(text[begin + len(old) - 1 : line_end])
            position = line_end
        self.tables[self._table] += rows


def _find_line_start(text: bytes, needle: bytes, position: int, end: int) -> int:
    """Where `needle` starts a line in text[position:end] (position is a line start), or -1."""
    if text.startswith(needle, position, end):
        return position
    found = text.find(b"\n" + needle, position, end)
    return -1 if found < 0 else found + 1
