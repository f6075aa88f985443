"""Capture a real migration stream from a QEMU binary over QMP.

QEMU is started paused (``-S``) with a QMP socket, optionally gets devices or vCPUs hot-plugged
(``device_add``), then migrates to ``exec:cat > FILE`` (every release has ``exec:``; 7.2 has
no ``file:`` URI) with the bandwidth limit raised. The process is always killed at the end.
When QEMU refuses (a migration blocker, a bad ``-device``), :class:`QemuRefused` carries
QEMU's own words: the QMP error ``desc``, query-migrate's ``error-desc``, or its stderr.

Uses QEMU's own QMP library (PyPI ``qemu.qmp``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError, QMPClient, QMPError

from ordering.errors import QemuRefused, UsageError
from ordering.sources._limits import shown

__all__ = ["CaptureResult", "capture_stream", "check_qemu_binary", "qemu_command"]

VERSION_TIMEOUT = 20.0
"""Seconds ``BINARY --version`` may take (a chroot wrapper is slower than the binary)."""

_QEMU_VERSION = re.compile(rb"^QEMU emulator version (\d+)\.(\d+)")

MAX_BANDWIDTH = 1 << 40
"""bytes/s for ``migrate-set-parameters max-bandwidth`` (7.2's default is 32 MiB/s)."""


@dataclass(frozen=True)
class CaptureResult:
    """Where a captured stream went and what QEMU said about itself."""

    out: Path
    argv: tuple[str, ...]
    """The command line QEMU was really started with (``-S`` and ``-qmp`` added)."""
    version: tuple[int, int, int]
    """``query-version``: (major, minor, micro)."""
    package: str
    seconds: float
    size: int
    """Bytes written to ``out``."""
    hotplug: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def release(self) -> str:
        """``"7.2"``: the release name as ``--qemu`` takes it."""
        return f"{self.version[0]}.{self.version[1]}"


def qemu_command(qemu_argv: Sequence[str], socket: str) -> list[str]:
    """The argv QEMU is started with: the user's, plus ``-S`` and a QMP server on ``socket``.

    Raises
    ------
    UsageError
        An empty command line.

    Examples
    --------
    >>> qemu_command(["qemu-system-x86_64", "-machine", "q35"], "/tmp/s")
    ['qemu-system-x86_64', '-machine', 'q35', '-S', '-qmp', 'unix:/tmp/s,server=on,wait=off']
    >>> qemu_command(["qemu", "-S", "-m", "64"], "/tmp/s")[:4]
    ['qemu', '-S', '-m', '64']
    """
    argv = list(qemu_argv)
    if not argv or argv[0].startswith("-"):
        raise UsageError(
            "expected a QEMU binary and its arguments after --, e.g. "
            "`migorder capture -- qemu-system-x86_64 -machine q35 -m 128`"
        )
    if "-S" not in argv[1:]:
        argv.append("-S")
    argv += ["-qmp", f"unix:{socket},server=on,wait=off"]
    return argv


def check_qemu_binary(binary: str) -> str:
    """Run ``binary --version`` alone and return its first line, which must be QEMU's.

    Nothing else is started with a binary that does not answer ``QEMU emulator version X.Y``:
    ``migorder capture -- sh -c '...'`` is refused here, before ``sh`` gets any command.

    Raises
    ------
    UsageError
        The binary cannot be run, takes longer than :data:`VERSION_TIMEOUT`, or answers
        something else (its answer is shown, cut to 200 characters).

    Examples
    --------
    >>> check_qemu_binary("/nonexistent/qemu-system-x86_64")
    Traceback (most recent call last):
    ...
    ordering.errors.UsageError: '/nonexistent/qemu-system-x86_64': expected a QEMU binary to run (No such file or directory)
    """
    try:
        done = subprocess.run([binary, "--version"], stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=VERSION_TIMEOUT, check=False)
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"{shown(binary)}: expected a QEMU binary to run ({why})") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"{shown(binary)}: expected a QEMU binary, which answers --version "
                         f"at once (no answer in {VERSION_TIMEOUT:g} s)") from None
    first = done.stdout.lstrip().split(b"\n", 1)[0].strip()
    if _QEMU_VERSION.match(first) is None:
        answer = shown(first.decode(errors="replace")) if first else "an empty answer"
        raise UsageError(f"{shown(binary)}: expected a QEMU binary, which answers --version "
                         f"with 'QEMU emulator version X.Y...', found {answer}")
    return first.decode(errors="replace")


def _stderr_reason(text: str, binary: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    name = Path(binary).name
    cleaned = [ln.removeprefix(f"{binary}: ").removeprefix(f"{name}: ") for ln in lines]
    return "; ".join(cleaned[-3:]) if cleaned else "QEMU exited without a message"


class _Run:
    def __init__(self, argv: list[str], sock: Path, err: Path) -> None:
        self.argv = argv
        self.sock = sock
        self.err = err
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.err.open("wb") as errf:
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=errf,
                    start_new_session=True,
                )
            except OSError as exc:
                raise QemuRefused(f"cannot start {self.argv[0]}: {exc.strerror}") from None

    def refused_at_start(self) -> QemuRefused:
        return QemuRefused(_stderr_reason(self.err.read_text(errors="replace"), self.argv[0]))

    def died(self, exc: BaseException) -> QemuRefused:
        """QMP broke: QEMU's stderr when it exited (e.g. a bad -device), else the QMP error."""
        proc = self.proc
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)
            if proc.poll() is not None:
                return self.refused_at_start()
        return QemuRefused(f"lost QMP connection to {self.argv[0]}: {exc}")

    async def wait_socket(self, deadline: float) -> None:
        assert self.proc is not None
        while not self.sock.exists():
            if self.proc.poll() is not None:
                raise self.refused_at_start()
            if time.monotonic() > deadline:
                raise QemuRefused(f"QEMU did not open its QMP socket in time ({self.argv[0]})")
            await asyncio.sleep(0.01)

    def kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


async def _execute(
    qmp: QMPClient, cmd: str, args: Mapping[str, Any] | None = None, *, what: str = ""
) -> Any:
    try:
        return await qmp.execute(cmd, dict(args) if args else None)
    except ExecuteError as exc:
        desc = exc.error.error.desc
        raise QemuRefused(f"{what}: {desc}" if what else desc) from None


async def _capture(
    run: _Run, out: Path, timeout: float, hotplug: Sequence[Mapping[str, Any]]
) -> tuple[tuple[int, int, int], str]:
    deadline = time.monotonic() + timeout
    await run.wait_socket(deadline)
    qmp = QMPClient("migorder")
    try:
        while True:  # the socket file exists a moment before QEMU listens on it
            try:
                await qmp.connect(str(run.sock))
                break
            except QMPError:
                if time.monotonic() > deadline or (run.proc and run.proc.poll() is not None):
                    raise
                await asyncio.sleep(0.02)
        ver = await _execute(qmp, "query-version")
        q = ver["qemu"]
        version = (int(q["major"]), int(q["minor"]), int(q["micro"]))
        for step in hotplug:
            if "execute" in step:
                cmd = str(step["execute"])
                await _execute(qmp, cmd, step.get("arguments"), what=cmd)
            else:
                await _execute(qmp, "device_add", step, what=f"device_add {step.get('driver', '')}")
        await _execute(qmp, "migrate-set-parameters", {"max-bandwidth": MAX_BANDWIDTH})
        await _execute(qmp, "migrate", {"uri": f"exec:cat > {shlex.quote(str(out))}"})
        while True:
            info = await _execute(qmp, "query-migrate")
            status = info.get("status", "")
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                raise QemuRefused(
                    str(info.get("error-desc") or f"migration {status} without a reason")
                )
            if time.monotonic() > deadline:
                raise QemuRefused(f"migration still {status!r} after {timeout:g} s")
            await asyncio.sleep(0.01)
        with contextlib.suppress(QMPError, ExecuteError, EOFError, OSError):
            await qmp.execute("quit")
        return version, str(ver.get("package", "")).strip()
    finally:
        with contextlib.suppress(Exception):
            await qmp.disconnect()


def _run_coroutine(coro: Any, timeout: float) -> Any:
    async def bounded() -> Any:
        try:
            return await asyncio.wait_for(coro, timeout + 5)
        except TimeoutError:
            raise QemuRefused(f"QEMU did not finish within {timeout:g} s") from None

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bounded())
    # Called from inside an event loop (a notebook): run in a thread of our own.
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(bounded())
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def capture_stream(
    qemu_argv: Sequence[str],
    out: Path,
    *,
    timeout: float = 60,
    hotplug: Sequence[Mapping[str, Any]] = (),
) -> CaptureResult:
    """Start QEMU paused, hot-plug, migrate to ``out``, and stop it.

    Parameters
    ----------
    qemu_argv
        The QEMU binary and its arguments (``-S`` and a ``-qmp`` socket are added).
    out
        Where the stream is written (``migrate "exec:cat > OUT"``).
    timeout
        Seconds for the whole run; QEMU is killed when they are up.
    hotplug
        QMP steps applied before migrating, in order: a ``device_add`` argument dict
        (``{"driver": "e1000e", "id": "hp0", "bus": "rp2"}``), or ``{"execute": CMD,
        "arguments": {...}}`` for any other command.

    Returns
    -------
    CaptureResult
        The stream's path, QEMU's version and the argv it ran with.

    Raises
    ------
    QemuRefused
        QEMU's own reason: it did not start (stderr), a command failed (the QMP ``desc``), or
        the migration failed (``error-desc``, e.g. "State blocked by non-migratable device
        '0000:00:01.0/nvme'").
    UsageError
        No QEMU binary given, or one that does not answer ``--version`` as QEMU does
        (:func:`check_qemu_binary`; nothing else is run then).

    Examples
    --------
    >>> capture_stream([], Path("x.mig"))
    Traceback (most recent call last):
    ...
    ordering.errors.UsageError: expected a QEMU binary and its arguments after --, e.g. `migorder capture -- qemu-system-x86_64 -machine q35 -m 128`
    """
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="migorder-") as tmp:
        sock = Path(tmp) / "qmp.sock"
        argv = qemu_command(qemu_argv, str(sock))
        check_qemu_binary(argv[0])
        run = _Run(argv, sock, Path(tmp) / "stderr")
        began = time.monotonic()
        run.start()
        try:
            try:
                version, package = _run_coroutine(_capture(run, out, timeout, hotplug), timeout)
            except (QMPError, EOFError, OSError) as exc:
                raise run.died(exc) from None
        finally:
            run.kill()
        seconds = time.monotonic() - began
    size = out.stat().st_size if out.exists() else 0
    return CaptureResult(out, tuple(argv), version, package, seconds, size, tuple(hotplug))
