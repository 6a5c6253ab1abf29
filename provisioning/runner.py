"""Running one script: a subprocess in a fresh directory, its output file, its log, its timeout.

Knows nothing of jobs, runs or the database: ``script_run`` takes what to run and returns what
happened. Event values reach the script only as environment variables; the script text is
written to a file as given, so nothing of an event is ever parsed by a shell as code.

The script exports values as GitHub Actions' ``$GITHUB_OUTPUT`` does, by appending to the file
named by ``$SBT_OUTPUT``::

    echo "dbName=tenant_42" >> "$SBT_OUTPUT"
    {
      echo "certificate<<EOF"
      cat cert.pem
      echo "EOF"
    } >> "$SBT_OUTPUT"
"""

import contextlib
import ctypes
import os
import re
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OUTPUT_VARIABLE = "SBT_OUTPUT"
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What a script sees of the worker's environment besides its job's variables: enough to find
# programs and print text, nothing of the worker's configuration (database URL, secret key).
BASE_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "TZ")
_PR_SET_PDEATHSIG = 1


class OutputError(ValueError):
    """The output file is not in the ``NAME=value`` / ``NAME<<DELIMITER`` format."""


@dataclass
class ScriptResult:
    exit_code: int | None
    timed_out: bool
    log: str
    outputs: dict[str, str] = field(default_factory=dict)
    error: str = ""  # why the run failed besides a non-zero exit (bad output file, cannot start)


def outputs_parse(text: str) -> dict[str, str]:
    """Parse an output file: ``NAME=value`` lines, and ``NAME<<DELIMITER`` … ``DELIMITER`` for a
    multi-line value. A later line for a name replaces an earlier one; blank lines are skipped."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r")
        index += 1
        if not line.strip():
            continue
        heredoc = re.match(r"^([^=<]+)<<(.+)$", line)
        if heredoc and "=" not in line.split("<<", 1)[0]:
            name, delimiter = heredoc.group(1), heredoc.group(2)
            _check_name(name, index)
            body = []
            while index < len(lines) and lines[index].rstrip("\r") != delimiter:
                body.append(lines[index].rstrip("\r"))
                index += 1
            if index >= len(lines):
                raise OutputError(f"line {index}: {name}<<{delimiter} is never closed by a line {delimiter!r}")
            index += 1
            outputs[name] = "\n".join(body)
            continue
        if "=" not in line:
            raise OutputError(f"line {index}: expected NAME=value or NAME<<DELIMITER, got {line[:80]!r}")
        name, value = line.split("=", 1)
        _check_name(name, index)
        outputs[name] = value
    return outputs


def _check_name(name: str, line: int) -> None:
    if not NAME.match(name):
        raise OutputError(f"line {line}: {name[:80]!r} is not a variable name (letters, digits and _)")


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the worker dies, so a killed worker leaves no
    script running on behind its retry (Linux; elsewhere the timeout still bounds it)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _LogTail:
    """The last ``limit`` bytes a process printed, with a count of what was dropped before them."""

    def __init__(self, limit: int, echo: Callable[[str], None] | None):
        self.limit = limit
        self.echo = echo
        self.buffer = bytearray()
        self.dropped = 0
        self.lock = threading.Lock()

    def read_from(self, stream) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):
            with self.lock:
                self.buffer += chunk
                excess = len(self.buffer) - self.limit
                if excess > 0:
                    del self.buffer[:excess]
                    self.dropped += excess
            if self.echo is not None:
                self.echo(chunk.decode(errors="replace"))

    def text(self) -> str:
        with self.lock:
            body = self.buffer.decode(errors="replace").replace("\x00", "")
            dropped = self.dropped
        return f"[... {dropped} bytes of log dropped ...]\n{body}" if dropped else body


def script_run(
    *,
    interpreter: str,
    scripts: list[str],
    environment: dict[str, str],
    timeout_seconds: float,
    log_max_bytes: int,
    output_max_bytes: int,
    kill_grace_seconds: float = 5,
    on_progress: Callable[[str], None] | None = None,
    progress_every_seconds: float = 2,
    echo: Callable[[str], None] | None = None,
) -> ScriptResult:
    """Run ``scripts`` one after the other (the script, then a post-script), each as
    ``interpreter <file>`` in one fresh working directory, in a process group of their own.

    ``environment`` is the script's whole environment besides ``BASE_ENVIRONMENT`` and
    ``SBT_OUTPUT``. Every script runs even if an earlier one failed (SBT's post_build); the exit
    code is the first non-zero one. ``timeout_seconds`` bounds them all: at the timeout the
    group gets SIGTERM, and SIGKILL ``kill_grace_seconds`` later. ``on_progress(log)`` is called
    every ``progress_every_seconds`` while a script runs (the caller renews its lease there),
    and may return False to stop the scripts (killed as at the timeout); ``echo(text)`` receives
    each piece of output as it comes.
    """
    command = shlex.split(interpreter)
    deadline = time.monotonic() + timeout_seconds
    log = _LogTail(log_max_bytes, echo)
    with tempfile.TemporaryDirectory(prefix="sbt-run-") as scratch:
        scratch_dir = Path(scratch)
        workdir = scratch_dir / "work"
        workdir.mkdir()
        output_file = scratch_dir / "output"
        output_file.touch()
        base = {name: os.environ[name] for name in BASE_ENVIRONMENT if name in os.environ}
        env = {**base, "HOME": str(workdir), **environment, OUTPUT_VARIABLE: str(output_file)}
        exit_code = 0
        timed_out = False
        for index, script in enumerate(scripts):
            script_file = scratch_dir / f"script-{index}"
            script_file.write_text(script)
            try:
                code, timed_out = _run_one(
                    [*command, str(script_file)],
                    cwd=workdir,
                    env=env,
                    deadline=deadline,
                    log=log,
                    kill_grace_seconds=kill_grace_seconds,
                    on_progress=on_progress,
                    progress_every_seconds=progress_every_seconds,
                )
            except (OSError, ValueError) as exc:  # no such interpreter; a NUL in a value
                return ScriptResult(exit_code=None, timed_out=False, log=log.text(), error=f"cannot start: {exc}")
            if exit_code == 0:
                exit_code = code
            if timed_out:
                return ScriptResult(exit_code=code, timed_out=True, log=log.text())
        size = output_file.stat().st_size
        if size > output_max_bytes:
            error = f"the output file ($SBT_OUTPUT) holds {size} bytes, more than the {output_max_bytes} allowed"
            return ScriptResult(exit_code=exit_code, timed_out=False, log=log.text(), error=error)
        try:
            outputs = outputs_parse(output_file.read_text(errors="replace").replace("\x00", ""))
        except OutputError as exc:
            return ScriptResult(exit_code=exit_code, timed_out=False, log=log.text(), error=f"$SBT_OUTPUT {exc}")
        return ScriptResult(exit_code=exit_code, timed_out=False, log=log.text(), outputs=outputs)


def _run_one(
    argv: list[str],
    *,
    cwd: Path,
    env: dict,
    deadline: float,
    log: _LogTail,
    kill_grace_seconds: float,
    on_progress,
    progress_every_seconds: float,
) -> tuple[int, bool]:
    process = subprocess.Popen(  # noqa: S603 - the operator's interpreter and script file, no shell
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    reader = threading.Thread(target=log.read_from, args=(process.stdout,), daemon=True)
    reader.start()
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            _kill_group(process, kill_grace_seconds)
            break
        try:
            process.wait(timeout=min(remaining, progress_every_seconds))
            break
        except subprocess.TimeoutExpired:
            # False: the run is no longer ours (its lease was given up); stop spending on it.
            if on_progress is not None and on_progress(log.text()) is False:
                _kill_group(process, kill_grace_seconds)
                break
    _kill_group(process, 0)  # whatever the script started and left behind goes with it
    reader.join(timeout=5)
    process.stdout.close()
    return process.returncode, timed_out


def _kill_group(process: subprocess.Popen, grace_seconds: float) -> None:
    """SIGTERM the script's process group, then SIGKILL what is left after ``grace_seconds``."""
    try:
        if grace_seconds > 0:
            os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace_seconds)
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is gone already
    process.wait()
