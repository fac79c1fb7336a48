"""process.run: real programs, streamed lines, masked secrets, timeouts, stderr tail in errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from backupmanager import process

PY = sys.executable


def test_streams_lines_from_both_streams_in_order() -> None:
    seen: list[tuple[str, str]] = []
    script = "import sys\nfor i in range(3):\n    print(f'out {i}', flush=True)\n    print(f'err {i}', file=sys.stderr, flush=True)\n"
    result = process.run(
        (PY, "-c", script), on_line=lambda stream, line: seen.append((stream, line))
    )
    assert result.returncode == 0
    assert [line for stream, line in seen if stream == "stdout"] == ["out 0", "out 1", "out 2"]
    assert [line for stream, line in seen if stream == "stderr"] == ["err 0", "err 1", "err 2"]
    assert result.last_stdout_line == "out 2"


def test_secrets_are_masked_everywhere() -> None:
    secret = "s3cr3t-passw0rd"
    seen: list[str] = []
    script = f"import sys\nprint('password={secret}')\nprint('bad {secret}', file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(process.ProcessError) as error:
        process.run(
            (PY, "-c", script), secrets=[secret], on_line=lambda _s, line: seen.append(line)
        )
    assert secret not in str(error.value)
    assert all(secret not in line for line in seen)
    assert "password=********" in seen
    assert error.value.returncode == 3
    assert "bad ********" in str(error.value)


def test_error_carries_the_tail_of_stderr() -> None:
    script = "import sys\nfor i in range(50): print(f'line {i}', file=sys.stderr)\nsys.exit(2)"
    with pytest.raises(process.ProcessError) as error:
        process.run((PY, "-c", script))
    assert "line 49" in str(error.value)
    assert "line 0" not in str(error.value)
    assert len(error.value.stderr_tail) == process.TAIL_LINES


def test_check_false_returns_the_exit_code() -> None:
    result = process.run((PY, "-c", "import sys; sys.exit(5)"), check=False)
    assert result.returncode == 5


def test_timeout_stops_the_program(tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    script = f"import time, pathlib\ntime.sleep(30)\npathlib.Path({str(marker)!r}).touch()"
    with pytest.raises(process.ProcessTimeout, match="stopped after"):
        process.run((PY, "-c", script), timeout=0.5)
    assert not marker.exists()


def test_missing_program_says_how_to_fix() -> None:
    with pytest.raises(process.ProgramMissing, match=r"\[programs\]"):
        process.run(("/nonexistent/bin/tool", "--version"))


def test_environment_can_add_and_remove(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKUP_CORE_ONLY", "1")
    script = "import os; print(os.environ.get('BACKUP_CORE_ONLY'), os.environ.get('EXTRA'))"
    result = process.run((PY, "-c", script), env={"BACKUP_CORE_ONLY": None, "EXTRA": "x"})
    assert result.last_stdout_line == "None x"


def test_no_shell_is_involved(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    result = process.run(("/bin/echo", f"; touch {target}"))
    assert result.last_stdout_line == f"; touch {target}"
    assert not target.exists()


def test_partial_last_line_and_invalid_utf8() -> None:
    script = "import sys; sys.stdout.buffer.write(b'caf\\xe9 no newline')"
    result = process.run((PY, "-c", script))
    assert result.last_stdout_line == "caf\ufffd no newline"
