"""The one module that runs external programs: argv tuples, no shell, timeouts, streamed masked output."""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import subprocess
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Called with ("stdout" | "stderr", line) for every line a program prints, secrets already masked.
LineSink = Callable[[str, str], None]
Argv = tuple[str, ...]
MASK = "********"
TAIL_LINES = 20
# How often a long-running program's caller gets a chance to report progress (on_tick).
TICK_SECONDS = 1.0


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
    pass_fds: Sequence[int] = (),
) -> ProcessResult:
    """Run argv (never through a shell), streaming its output line by line to on_line.

    env adds to (or, with a None value, removes from) this process's environment. Secrets are
    masked in every line before it leaves this function. With check, a non-zero exit raises
    ProcessError carrying the tail of stderr. pass_fds: descriptors the child inherits (a
    secret_fd() for an option file read as /dev/fd/N).
    """
    command: Argv = tuple(str(part) for part in argv)
    child = _spawn(command, env, cwd, pass_fds, stdin=subprocess.DEVNULL)
    stdout = _LineSplitter("stdout", on_line, secrets, tail_lines)
    stderr = _LineSplitter("stderr", on_line, secrets, tail_lines)
    returncode = _pump_to_the_end(child, command, {"stdout": stdout, "stderr": stderr}, timeout)
    result = ProcessResult(command, returncode, tuple(stdout.tail), tuple(stderr.tail))
    if check and returncode != 0:
        raise ProcessError(command, returncode, result.stderr_tail)
    return result


# Bytes of a program's stdout handed to a sink as they come (stream()); the pipe is enlarged so
# that a fast producer (a dump tool) and its reader exchange big blocks instead of 64 KiB ones.
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
    pass_fds: Sequence[int] = (),
    gather_seconds: float = 0.0,
) -> ProcessResult:
    """Run argv and hand its stdout, as raw bytes, to `sink`; stderr goes line by line to on_line.

    gather_seconds: after a small read, wait this long before reading again, so that a program
    writing a few KiB at a time (mysqldump, pg_dump) is read in big blocks: far fewer wakeups,
    while the enlarged pipe keeps the program from ever waiting for us.

    For programs whose output is data (a database dump): the caller hashes and writes it as it
    comes, so memory stays flat whatever the size. A non-zero exit is returned, not raised: what
    it means is the caller's call.
    """
    command: Argv = tuple(str(part) for part in argv)
    child, big_pipe = _spawn_with_big_pipe(command, env, cwd, pass_fds)
    if not big_pipe:
        gather_seconds = 0.0  # a small pipe would fill while we wait: read as data comes

    def take(fd: int) -> int:
        chunk = os.read(fd, STREAM_PIPE_BYTES)
        if chunk:
            sink(chunk)
            if gather_seconds and len(chunk) < STREAM_PIPE_BYTES // 4:
                time.sleep(gather_seconds)
        return len(chunk)

    return _run_taking_stdout(child, command, take, on_line, secrets, timeout)


def splice(
    argv: Sequence[str | Path],
    *,
    take: Callable[[int], int],
    on_line: LineSink | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    cwd: Path | None = None,
    secrets: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
) -> ProcessResult:
    """Run argv and let `take` move its stdout on from the pipe itself (os.splice into a file).

    take(fd) is called whenever the pipe has data and returns how many bytes it moved, 0 at
    the end. The bytes never pass through Python: the kernel copies them from the pipe into
    the file, which costs a dump tool on a busy 2-CPU server far less than reading them here.
    A non-zero exit is returned, not raised, as with stream().
    """
    command: Argv = tuple(str(part) for part in argv)
    child, _big_pipe = _spawn_with_big_pipe(command, env, cwd, pass_fds)
    return _run_taking_stdout(child, command, take, on_line, secrets, timeout)


def _spawn_with_big_pipe(
    command: Argv, env: Mapping[str, str | None] | None, cwd: Path | None, pass_fds: Sequence[int]
) -> tuple[subprocess.Popen[bytes], bool]:
    """Start a program whose stdout is data (stream, splice), its pipe enlarged to
    STREAM_PIPE_BYTES; the flag is False if the system keeps it smaller (only slower)."""
    child = _spawn(command, env, cwd, pass_fds, stdin=subprocess.DEVNULL)
    assert child.stdout is not None
    fd = child.stdout.fileno()
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, STREAM_PIPE_BYTES)
    return child, fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ) >= STREAM_PIPE_BYTES


def _run_taking_stdout(
    child: subprocess.Popen[bytes],
    command: Argv,
    take: Callable[[int], int],
    on_line: LineSink | None,
    secrets: Sequence[str],
    timeout: float | None,
) -> ProcessResult:
    stderr = _LineSplitter("stderr", on_line, secrets, TAIL_LINES)
    returncode = _pump_to_the_end(child, command, {"stderr": stderr}, timeout, take_stdout=take)
    return ProcessResult(command, returncode, (), tuple(stderr.tail))


def write_into(
    argv: Sequence[str | Path],
    *,
    stdout_fd: int,
    on_line: LineSink | None = None,
    on_tick: Callable[[], None] | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    cwd: Path | None = None,
) -> ProcessResult:
    """Run argv with its stdout going straight into an open file (no pipe, no copy through us).

    For a program whose output is a big file we write anyway (GNU tar writing into our
    archive): it writes as fast as it would to a file of its own. stderr goes line by line to
    on_line; on_tick is called about every TICK_SECONDS (progress). A non-zero exit is
    returned, not raised, as with stream().
    """
    command: Argv = tuple(str(part) for part in argv)
    child = _spawn(command, env, cwd, (), stdin=subprocess.DEVNULL, stdout=stdout_fd)
    stderr = _LineSplitter("stderr", on_line, (), TAIL_LINES)
    returncode = _pump_to_the_end(child, command, {"stderr": stderr}, timeout, on_tick=on_tick)
    return ProcessResult(command, returncode, (), tuple(stderr.tail))


def _pump_to_the_end(
    child: subprocess.Popen[bytes],
    command: Argv,
    splitters: dict[str, _LineSplitter],
    timeout: float | None,
    *,
    take_stdout: Callable[[int], int] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> int:
    """Read the child's output until it ends, then its exit code; stopped on a timeout or error."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        _pump(child, splitters, deadline, take_stdout=take_stdout, on_tick=on_tick)
    except TimeoutError:
        _stop(child)
        raise ProcessTimeout(command, timeout or 0, tuple(splitters["stderr"].tail)) from None
    except BaseException:
        _stop(child)
        raise
    finally:
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()
    return child.wait()


def _pump(
    child: subprocess.Popen[bytes],
    splitters: dict[str, _LineSplitter],
    deadline: float | None,
    *,
    take_stdout: Callable[[int], int] | None = None,
    on_tick: Callable[[], None] | None = None,
) -> None:
    """Read the child's pipes until both are closed; on_tick about every TICK_SECONDS."""
    assert child.stderr is not None
    next_tick = time.monotonic() + TICK_SECONDS
    with selectors.DefaultSelector() as selector:
        if child.stdout is not None:
            selector.register(child.stdout, selectors.EVENT_READ, "stdout")
        selector.register(child.stderr, selectors.EVENT_READ, "stderr")
        while selector.get_map():
            now = time.monotonic()
            wait = None if deadline is None else deadline - now
            if wait is not None and wait <= 0:
                raise TimeoutError
            if on_tick is not None:
                if now >= next_tick:
                    on_tick()
                    next_tick = now + TICK_SECONDS
                wait = next_tick - now if wait is None else min(wait, next_tick - now)
            for key, _ in selector.select(timeout=wait):
                if key.data == "stdout" and take_stdout is not None:
                    if not take_stdout(key.fd):
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


# ---------------------------------------------------------------- pipes: feeding, coprocesses

# A secret handed to a child through a pipe it reads as /dev/fd/N (DESIGN §3): never on argv,
# never in a file. A pipe holds 64 KiB before a write blocks; option files are far smaller.
SECRET_FD_MAX_BYTES = 60_000


@contextlib.contextmanager
def secret_fd(content: bytes) -> Iterator[int]:
    """A readable descriptor holding `content`, for one child (`pass_fds`), closed afterwards."""
    if len(content) > SECRET_FD_MAX_BYTES:
        raise ValueError("secret_fd is for small option files")
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, content)
    finally:
        os.close(write_end)
    try:
        yield read_end
    finally:
        os.close(read_end)


def _spawn(
    command: Argv,
    env: Mapping[str, str | None] | None,
    cwd: Path | None,
    pass_fds: Sequence[int],
    *,
    stdin: int = subprocess.PIPE,
    stdout: int = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start the program with piped output; env adds to (None: removes from) our environment."""
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value
    try:
        return subprocess.Popen(
            command,
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=child_env,
            cwd=cwd,
            pass_fds=tuple(pass_fds),
        )
    except FileNotFoundError as error:
        raise ProgramMissing(command) from error


def feed(
    argv: Sequence[str | Path],
    *,
    source: Iterable[bytes],
    sink: ChunkSink | None = None,
    on_line: LineSink | None = None,
    env: Mapping[str, str | None] | None = None,
    timeout: float | None = None,
    cwd: Path | None = None,
    secrets: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
    check: bool = True,
) -> ProcessResult:
    """Run argv with the blocks of `source` as its stdin (`mysql < dump`, `pg_restore`).

    stdout goes to `sink` as raw bytes when given, else line by line to on_line like stderr.
    If `source` raises (a damaged archive), the child is stopped before its stdin is closed,
    so it never takes a truncated input for a complete one; the error is raised again.
    """
    command: Argv = tuple(str(part) for part in argv)
    child = _spawn(command, env, cwd, pass_fds)
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    os.set_blocking(child.stdin.fileno(), False)
    stdout = _LineSplitter("stdout", on_line, secrets, TAIL_LINES)
    stderr = _LineSplitter("stderr", on_line, secrets, TAIL_LINES)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        _pump_with_input(child, iter(source), {"stdout": stdout, "stderr": stderr}, sink, deadline)
    except TimeoutError:
        _stop(child)
        raise ProcessTimeout(command, timeout or 0, tuple(stderr.tail)) from None
    except BaseException:
        _stop(child)
        raise
    finally:
        for pipe in (child.stdin, child.stdout, child.stderr):
            with contextlib.suppress(OSError):
                pipe.close()
    returncode = child.wait()
    result = ProcessResult(command, returncode, tuple(stdout.tail), tuple(stderr.tail))
    if check and returncode != 0:
        raise ProcessError(command, returncode, result.stderr_tail)
    return result


def _pump_with_input(
    child: subprocess.Popen[bytes],
    blocks: Iterator[bytes],
    splitters: dict[str, _LineSplitter],
    sink: ChunkSink | None,
    deadline: float | None,
) -> None:
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    pending = memoryview(b"")
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ, "stdout")
        selector.register(child.stderr, selectors.EVENT_READ, "stderr")
        selector.register(child.stdin, selectors.EVENT_WRITE, "stdin")
        while selector.get_map():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                raise TimeoutError
            for key, _ in selector.select(timeout=wait):
                if key.data == "stdin":
                    if not pending:
                        block = next(blocks, None)  # a damaged source raises here
                        if block is None:
                            selector.unregister(child.stdin)
                            child.stdin.close()  # end of input: the child may finish
                            continue
                        pending = memoryview(block)
                    try:
                        pending = pending[os.write(key.fd, pending) :]
                    except BlockingIOError:
                        pass
                    except BrokenPipeError:  # the child stopped reading: its status says why
                        selector.unregister(child.stdin)
                        pending = memoryview(b"")
                    continue
                chunk = os.read(key.fd, STREAM_PIPE_BYTES)
                if key.data == "stdout" and sink is not None:
                    if chunk:
                        sink(chunk)
                    else:
                        selector.unregister(key.fileobj)
                    continue
                if chunk:
                    splitters[key.data].feed(chunk)
                else:
                    splitters[key.data].close()
                    selector.unregister(key.fileobj)


class Coprocess:
    """A program kept running to talk to in turns (psql holding a snapshot open, DESIGN §6).

    `send` writes to its stdin; `read_until` reads its stdout up to a marker line the caller
    asked it to print (e.g. psql's `\\echo`). stderr lines go to on_line as they come. Use as
    a context manager: on exit the program is stopped if `finish` was not called.
    """

    def __init__(
        self,
        argv: Sequence[str | Path],
        *,
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
        on_line: LineSink | None = None,
        secrets: Sequence[str] = (),
        pass_fds: Sequence[int] = (),
    ) -> None:
        self.argv: Argv = tuple(str(part) for part in argv)
        self._child = _spawn(self.argv, env, cwd, pass_fds)
        assert self._child.stdout is not None and self._child.stderr is not None
        self._stderr = _LineSplitter("stderr", on_line, secrets, TAIL_LINES)
        self._stdout = b""
        self._open = {self._child.stdout.fileno(): "stdout", self._child.stderr.fileno(): "stderr"}

    def __enter__(self) -> Coprocess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        _stop(self._child)
        for pipe in (self._child.stdin, self._child.stdout, self._child.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _failed(self, deadline: float) -> ProcessError:
        """The program ended (or broke the pipe): its exit status and last stderr lines."""
        while self._open:
            self._read_some(deadline)
        self._stderr.close()
        try:
            returncode = self._child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            _stop(self._child)
            returncode = -1
        return ProcessError(self.argv, returncode, tuple(self._stderr.tail))

    def send(self, data: bytes) -> None:
        assert self._child.stdin is not None
        try:
            self._child.stdin.write(data)
            self._child.stdin.flush()
        except BrokenPipeError:
            raise self._failed(time.monotonic() + 10) from None

    def read_until(self, marker: bytes, *, timeout: float) -> bytes:
        """Everything the program printed before the line `marker` (which is consumed)."""
        deadline = time.monotonic() + timeout
        needle = marker + b"\n"
        while True:
            position = self._stdout.find(needle)
            if position >= 0 and (position == 0 or self._stdout[position - 1] == 0x0A):
                answer = self._stdout[:position]
                self._stdout = self._stdout[position + len(needle) :]
                return answer
            if "stdout" not in self._open.values():
                raise self._failed(deadline)
            self._read_some(deadline)

    def _read_some(self, deadline: float) -> None:
        """Wait for output on the open streams (until the deadline) and take what is there."""
        wait = deadline - time.monotonic()
        if wait <= 0:
            _stop(self._child)
            raise ProcessTimeout(self.argv, 0, tuple(self._stderr.tail))
        with selectors.DefaultSelector() as selector:
            for fd, name in self._open.items():
                selector.register(fd, selectors.EVENT_READ, name)
            for key, _ in selector.select(timeout=wait):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    del self._open[key.fd]
                elif key.data == "stderr":
                    self._stderr.feed(chunk)
                else:
                    self._stdout += chunk

    def finish(self, *, timeout: float, check: bool = True) -> ProcessResult:
        """Close stdin, let the program end, and return (or raise) its exit status."""
        assert self._child.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._child.stdin.close()
        failure = self._failed(time.monotonic() + timeout)
        result = ProcessResult(self.argv, failure.returncode, (), failure.stderr_tail)
        if check and failure.returncode != 0:
            raise failure
        return result
