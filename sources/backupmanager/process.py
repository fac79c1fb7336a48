"""The one module that runs external programs: argv tuples, no shell, timeouts, streamed masked output."""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Called with ("stdout" | "stderr", line) for every line a program prints, secrets already masked.
LineSink = Callable[[str, str], None]
Argv = tuple[str, ...]
MASK = "********"
TAIL_LINES = 20


class ProcessError(Exception):
    """A program failed: says which one, its exit code and the last lines it wrote on stderr."""

    def __init__(self, argv: Argv, returncode: int, stderr_tail: Sequence[str]) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr_tail = tuple(stderr_tail)
        program = Path(argv[0]).name
        detail = "\n".join(self.stderr_tail[-5:]) or "(it printed nothing on stderr)"
        super().__init__(f"{program} failed with exit code {returncode}: {detail}")


class ProcessTimeout(ProcessError):
    """A program ran longer than allowed and was stopped."""

    def __init__(self, argv: Argv, timeout: float, stderr_tail: Sequence[str]) -> None:
        super().__init__(argv, -1, stderr_tail)
        self.args = (f"{Path(argv[0]).name} was stopped after running for {timeout:.0f} seconds",)


class ProgramMissing(ProcessError):
    """The program is not installed where the settings say."""

    def __init__(self, argv: Argv) -> None:
        super().__init__(argv, 127, ())
        self.args = (
            f"{argv[0]} was not found: install it, or set its path under [programs] in the configuration",
        )


@dataclass(frozen=True)
class ProcessResult:
    argv: Argv
    returncode: int
    stdout_tail: tuple[str, ...]
    stderr_tail: tuple[str, ...]

    @property
    def last_stdout_line(self) -> str:
        """The last non-empty stdout line: where YunoHost prints its JSON answer (YUNOHOST.md §2.1)."""
        for line in reversed(self.stdout_tail):
            if line.strip():
                return line
        return ""


def mask(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


class _LineSplitter:
    """Turns raw chunks of one stream into complete lines, keeping a bounded tail."""

    def __init__(self, name: str, sink: LineSink | None, secrets: Sequence[str], tail: int) -> None:
        self.name = name
        self.sink = sink
        self.secrets = secrets
        self.pending = b""
        self.tail: deque[str] = deque(maxlen=tail)

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        for raw in lines:
            self._emit(raw)

    def close(self) -> None:
        if self.pending:
            self._emit(self.pending)
            self.pending = b""

    def _emit(self, raw: bytes) -> None:
        line = mask(raw.decode("utf-8", errors="replace").rstrip("\r"), self.secrets)
        self.tail.append(line)
        if self.sink is not None:
            self.sink(self.name, line)


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    on_line: LineSink | None = None,
    secrets: Sequence[str] = (),
    cwd: Path | None = None,
    check: bool = True,
    tail_lines: int = TAIL_LINES,
) -> ProcessResult:
    """Run argv (never through a shell), streaming its output line by line to on_line.

    env adds to (or, with a None value, removes from) this process's environment. Secrets are
    masked in every line before it leaves this function. With check, a non-zero exit raises
    ProcessError carrying the tail of stderr.
    """
    command: Argv = tuple(str(part) for part in argv)
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            cwd=cwd,
        )
    except FileNotFoundError as error:
        raise ProgramMissing(command) from error
    stdout = _LineSplitter("stdout", on_line, secrets, tail_lines)
    stderr = _LineSplitter("stderr", on_line, secrets, tail_lines)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        _pump(child, {"stdout": stdout, "stderr": stderr}, deadline)
    except TimeoutError:
        _stop(child)
        raise ProcessTimeout(command, timeout or 0, tuple(stderr.tail)) from None
    except BaseException:
        _stop(child)
        raise
    finally:
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    returncode = child.wait()
    result = ProcessResult(command, returncode, tuple(stdout.tail), tuple(stderr.tail))
    if check and returncode != 0:
        raise ProcessError(command, returncode, result.stderr_tail)
    return result


# Bytes of a program's stdout handed to a sink as they come (stream()); the pipe is enlarged so
# that a fast producer (tar) and its reader exchange big blocks instead of 64 KiB ones.
ChunkSink = Callable[[bytes], None]
STREAM_PIPE_BYTES = 1024 * 1024


def stream(
    argv: Sequence[str | Path],
    *,
    sink: ChunkSink,
    on_line: LineSink | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    cwd: Path | None = None,
    secrets: Sequence[str] = (),
) -> ProcessResult:
    """Run argv and hand its stdout, as raw bytes, to `sink`; stderr goes line by line to on_line.

    For programs whose output is data (tar writing an archive to stdout): the caller hashes
    and writes it as it comes, so memory stays flat whatever the size. A non-zero exit is
    returned, not raised: tar's exit code 1 ("file changed as we read it") is the caller's call.
    """
    command: Argv = tuple(str(part) for part in argv)
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            cwd=cwd,
        )
    except FileNotFoundError as error:
        raise ProgramMissing(command) from error
    assert child.stdout is not None and child.stderr is not None
    with contextlib.suppress(OSError):  # a smaller pipe only costs speed
        fcntl.fcntl(child.stdout.fileno(), fcntl.F_SETPIPE_SZ, STREAM_PIPE_BYTES)
    stderr = _LineSplitter("stderr", on_line, secrets, TAIL_LINES)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        _pump(child, {"stderr": stderr}, deadline, data_sink=sink)
    except TimeoutError:
        _stop(child)
        raise ProcessTimeout(command, timeout or 0, tuple(stderr.tail)) from None
    except BaseException:
        _stop(child)
        raise
    finally:
        for pipe in (child.stdout, child.stderr):
            pipe.close()
    returncode = child.wait()
    return ProcessResult(command, returncode, (), tuple(stderr.tail))


def _pump(
    child: subprocess.Popen[bytes],
    splitters: dict[str, _LineSplitter],
    deadline: float | None,
    *,
    data_sink: ChunkSink | None = None,
) -> None:
    assert child.stdout is not None and child.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ, "stdout")
        selector.register(child.stderr, selectors.EVENT_READ, "stderr")
        while selector.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise TimeoutError
            for key, _ in selector.select(timeout=wait):
                if key.data == "stdout" and data_sink is not None:
                    chunk = os.read(key.fd, STREAM_PIPE_BYTES)
                    if chunk:
                        data_sink(chunk)
                    else:
                        selector.unregister(key.fileobj)
                    continue
                chunk = os.read(key.fd, 65536)
                splitter = splitters[key.data]
                if chunk:
                    splitter.feed(chunk)
                else:
                    splitter.close()
                    selector.unregister(key.fileobj)


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Ask politely, then insist: a stuck program must not outlive its run."""
    if child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
