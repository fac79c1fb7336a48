"""process.feed, process.Coprocess, process.secret_fd and pass_fds: real programs, real pipes."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator

import pytest

from backupmanager import process

PY = sys.executable
SHA_OF_STDIN = (
    "import hashlib, sys\n"
    "digest = hashlib.sha256()\n"
    "while block := sys.stdin.buffer.read(65536):\n"
    "    digest.update(block)\n"
    "print(digest.hexdigest())\n"
)


def _blocks(count: int, size: int) -> Iterator[bytes]:
    for index in range(count):
        yield bytes([index % 251]) * size


def test_feed_streams_big_input_and_reads_output_while_writing() -> None:
    # 64 MiB in, while the child also writes on stdout: no deadlock, every byte arrives.
    expected = hashlib.sha256()
    for block in _blocks(64, 1 << 20):
        expected.update(block)
    seen: list[str] = []
    result = process.feed(
        (PY, "-c", SHA_OF_STDIN),
        source=_blocks(64, 1 << 20),
        on_line=lambda _stream, line: seen.append(line),
    )
    assert result.returncode == 0
    assert seen == [expected.hexdigest()]


def test_feed_sends_stdout_to_a_sink_as_bytes() -> None:
    received = bytearray()
    process.feed(
        (PY, "-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])"),
        source=[b"abc", b"def"],
        sink=received.extend,
    )
    assert bytes(received) == b"fedcba"


def test_a_failing_source_stops_the_child_before_it_sees_the_end_of_its_input() -> None:
    # The child exits 0 on EOF: if the damaged source closed stdin, it would "succeed".
    def damaged() -> Iterator[bytes]:
        yield b"x" * 1000
        raise ValueError("the archive is damaged")

    with pytest.raises(ValueError, match="damaged"):
        process.feed(
            (PY, "-c", "import sys; sys.stdin.read(); open('/dev/null', 'w')"),
            source=damaged(),
        )


def test_feed_reports_a_child_that_stops_reading() -> None:
    with pytest.raises(process.ProcessError) as error:
        process.feed(
            (PY, "-c", "import sys; sys.stderr.write('Unknown database\\n'); sys.exit(1)"),
            source=_blocks(64, 1 << 20),
        )
    assert error.value.returncode == 1
    assert "Unknown database" in str(error.value)


def test_secret_fd_reaches_the_child_through_a_pipe_not_argv() -> None:
    secret = 'pa$$ w"ord é'
    with process.secret_fd(f"password={secret}\n".encode()) as fd:
        argv = (PY, "-c", "import sys; print(open(sys.argv[1]).read().strip())", f"/dev/fd/{fd}")
        seen: list[str] = []
        process.run(argv, pass_fds=(fd,), on_line=lambda _s, line: seen.append(line))
    assert seen == [f"password={secret}"]
    assert all(secret not in part for part in argv)


def test_coprocess_answers_in_turns_and_reports_its_exit() -> None:
    script = (
        "import sys\n"
        "for line in sys.stdin:\n"
        "    print(line.strip().upper(), flush=True)\n"
        "    print('END', flush=True)\n"
        "sys.stderr.write('bye\\n')\n"
    )
    seen: list[str] = []
    with process.Coprocess((PY, "-c", script), on_line=lambda _s, line: seen.append(line)) as co:
        co.send(b"hello\n")
        assert co.read_until(b"END", timeout=30) == b"HELLO\n"
        co.send(b"again\n")
        assert co.read_until(b"END", timeout=30) == b"AGAIN\n"
        result = co.finish(timeout=30)
    assert result.returncode == 0
    assert seen == ["bye"]


def test_coprocess_that_dies_raises_with_its_stderr() -> None:
    script = "import sys; sys.stderr.write('FATAL: no such database\\n'); sys.exit(2)"
    with process.Coprocess((PY, "-c", script)) as co, pytest.raises(process.ProcessError) as error:
        co.read_until(b"END", timeout=30)
    assert error.value.returncode == 2
    assert "no such database" in str(error.value)


def test_missing_program_is_named() -> None:
    with pytest.raises(process.ProgramMissing):
        process.feed(("/nonexistent/mysql",), source=[b""])


def test_stream_gathers_small_writes_without_losing_or_reordering_bytes() -> None:
    script = (
        "import sys, time\n"
        "for i in range(300):\n"
        "    sys.stdout.buffer.write(b'%05d,' % i)\n"
        "    sys.stdout.buffer.flush()\n"
        "    if i % 50 == 0:\n"
        "        time.sleep(0.01)\n"
    )
    received = bytearray()
    result = process.stream((PY, "-c", script), sink=received.extend, gather_seconds=0.002)
    assert result.returncode == 0
    assert bytes(received) == b"".join(b"%05d," % i for i in range(300))
