"""Console output of the simulated CLI: log lines and the final result (YUNOHOST.md §2.1).

- INFO / SUCCESS / DEBUG log lines go to stdout, WARNING / ERROR to stderr;
- not on a tty a line is `LEVEL message`; on a tty `Info: message`, `Success! message`…;
- `--quiet` drops every log line (errors included) but still prints the result;
- the result is printed once at the end: one JSON line (`--output-as json`), `#key`/value
  lines (`plain`), nothing (`none` or a None result), or a YAML-like listing by default.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Labels and colours used on a tty (moulinette's TTYHandler)
_TTY_LABELS = {
    "DEBUG": ("DEBUG", "\033[1m"),
    "INFO": ("Info:", "\033[34;1m"),
    "SUCCESS": ("Success!", "\033[32;1m"),
    "WARNING": ("Warning:", "\033[33;1m"),
    "ERROR": ("Error:", "\033[31;1m"),
}
_END_COLOR = "\033[m"


class Console:
    """Writes log lines and the final result the way the real CLI does."""

    def __init__(self, *, quiet: bool = False, debug: bool = False) -> None:
        self.quiet = quiet
        self.debug_enabled = debug

    # -- log lines -------------------------------------------------------------------------

    def log(self, level: str, message: str) -> None:
        """Print one log line on the right stream (§2.1), flushed at once for live readers."""
        if self.quiet or (level == "DEBUG" and not self.debug_enabled):
            return
        stream: TextIO = sys.stderr if level in ("WARNING", "ERROR") else sys.stdout
        if stream.isatty():
            label, color = _TTY_LABELS[level]
            line = f"{color}{label}{_END_COLOR} {message}"
        else:
            line = f"{level} {message}"
        stream.write(line + "\n")
        stream.flush()

    def debug(self, message: str) -> None:
        self.log("DEBUG", message)

    def info(self, message: str) -> None:
        self.log("INFO", message)

    def success(self, message: str) -> None:
        self.log("SUCCESS", message)

    def warning(self, message: str) -> None:
        self.log("WARNING", message)

    def error(self, message: str) -> None:
        self.log("ERROR", message)

    # -- final result ------------------------------------------------------------------------

    def result(self, value: Any, output_as: str | None) -> None:
        """Print the command's return value once, at the end, in the requested format."""
        if value is None or output_as == "none":
            return
        if output_as == "json":
            # moulinette's JSONExtendedEncoder: one line, datetimes as ISO 8601 with tz
            print(json.dumps(value, default=_json_default))
        elif output_as == "plain":
            _plain_print(value)
        elif isinstance(value, dict):
            _pretty_print(value)
        else:
            print(value)
        sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.isoformat()
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _scalar_text(value: Any) -> str:
    if isinstance(value, datetime):
        # moulinette's pretty_date: the server's local time, without tz
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _plain_print(value: Any, depth: int = 0) -> None:
    """`--output-as plain`: `#key` lines then values; a lone top-level key is skipped."""
    if depth == 0 and isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, list | tuple | set):
        for item in value:
            _plain_print(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            print("#" * (depth + 1) + str(key))
            _plain_print(item, depth + 1)
    else:
        print(_scalar_text(value))


def _pretty_print(value: dict[Any, Any], depth: int = 0) -> None:
    """Default output: sorted `key: value` lines, nested dicts indented by two spaces."""
    indent = "  " * depth
    for key in sorted(value, key=str):
        item = value[key]
        if isinstance(item, list | tuple | set):
            item = list(item)
            if len(item) == 1:
                item = item[0]
        if isinstance(item, dict):
            print(f"{indent}{key}: ")
            _pretty_print(item, depth + 1)
        elif isinstance(item, list):
            print(f"{indent}{key}: ")
            for index, element in enumerate(item):
                if isinstance(element, dict):
                    _pretty_print({index: element}, depth + 1)
                else:
                    print(f"{indent}  - {_scalar_text(element)}")
        else:
            print(f"{indent}{key}: {_scalar_text(item)}")
