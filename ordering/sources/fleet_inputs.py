"""Read the VMs of a fleet: libvirt per-domain logs, files of command lines, running QEMUs.

Every reader yields :class:`VmRecord` and never raises for one bad VM: a file that cannot be
read, a log with no command line after its last start or a line that is not shell-quoted
becomes a record with a ``problem``, which the fleet reports as a VM it did not understand.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LIBVIRT_START = re.compile(r"starting up libvirt version: .*?qemu version: (\d+\.\d+(?:\.\d+)?)")
"""The header libvirt writes to a domain's log at each start (``qemuLogOperation``: ``"%s: %s
%s, qemu version: %d.%d.%d%s, kernel: %s, hostname: %s"``): ``<date>: starting up libvirt
version: 9.0.0, package: ..., qemu version: 7.2.0Debian 1:7.2+dfsg-7, kernel: ..., hostname:
...``: the package string QEMU reports is glued to the version. Only the version numbers are
read, whatever follows them."""

_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_WORD = re.compile(r"""(?:[^\s'"\\]+|'[^']*'|"(?:[^"\\]|\\.)*"|\\.)+""", re.S)
_PIECE = re.compile(r"""'([^']*)'|"((?:[^"\\]|\\.)*)"|\\(.)|([^'"\\]+)""", re.S)
_QUOTE = re.compile(r"['\"\\]")
_DQ_ESCAPE = re.compile(r'\\([\\"$`\n])')
_QEMU_BINARY = re.compile(r"^(qemu(?:-[\w.]+)?-system-[\w.-]+|qemu-kvm)$")
SNIFF_BYTES = 65536
"""How much of a file is read to tell a libvirt log from a file of command lines."""


@dataclass(frozen=True)
class VmRecord:
    """One VM as read: its name, where it came from, its QEMU arguments (binary first)."""

    name: str
    where: str
    argv: tuple[str, ...] = ()
    qemu_version: str = ""
    """The QEMU version the input names (a libvirt log's header), ``""`` when it names none."""
    problem: str = ""
    """Why the VM could not be read (``argv`` is empty then)."""


def shell_words(text: str) -> list[str]:
    """Split a POSIX-shell-quoted command line (``shlex.split``'s result, by regular
    expressions: a fleet has 100,000 lines of 3 kB).

    Raises ``ValueError`` on an unbalanced quote.

    >>> shell_words('''qemu -name guest=a\\\\ b -device '{"driver":"e1000e"}' "x\\\\"y"''')
    ['qemu', '-name', 'guest=a b', '-device', '{"driver":"e1000e"}', 'x"y']
    """
    words = _WORD.findall(text)
    if not _QUOTE.search(text):
        return words
    if _WORD.sub("", text).strip():
        raise ValueError("no closing quotation")
    search = _QUOTE.search
    return [_unquote(w) if search(w) else w for w in words]


def _unquote(word: str) -> str:
    if word[0] == "'" and word[-1] == "'" and word.count("'") == 2:
        return word[1:-1]  # libvirt's JSON options: one single-quoted word
    out: list[str] = []
    for single, double, escaped, plain in _PIECE.findall(word):
        if plain:
            out.append(plain)
        elif escaped:
            out.append("" if escaped == "\n" else escaped)
        elif double:
            out.append(_DQ_ESCAPE.sub(lambda m: "" if m.group(1) == "\n" else m.group(1), double))
        else:
            out.append(single)
    return "".join(out)


def vm_name(argv: Iterable[str], default: str) -> str:
    """The VM's name from ``-name guest=NAME,...`` (libvirt) or ``-name NAME``.

    >>> vm_name(["qemu", "-name", "guest=web-01,debug-threads=on"], "x")
    'web-01'
    """
    it = iter(argv)
    for arg in it:
        if arg in ("-name", "--name"):
            value = next(it, "")
            first = value.replace(",,", "\0").split(",")[0].replace("\0", ",")
            return first.partition("=")[2] if first.startswith("guest=") else (first or default)
    return default


def _strip_env(words: list[str]) -> list[str]:
    """Drop the environment assignments libvirt writes before the binary (``LC_ALL=C ...``)."""
    i = 0
    while i < len(words) and _ENV.match(words[i]):
        i += 1
    return words[i:]


def parse_libvirt_log(text: str, where: str, default_name: str) -> VmRecord:
    """The last start in a libvirt domain log: its QEMU version and command line.

    >>> log = ("2025-01-01 10:00:00.000+0000: starting up libvirt version: 9.0.0, qemu version: "
    ...        "7.2.0 (Debian 1:7.2+dfsg-7), kernel: 6.1.0, hostname: h1\\nLC_ALL=C \\\\\\n"
    ...        "/usr/bin/qemu-system-x86_64 \\\\\\n-name guest=db1 \\\\\\n-nodefaults\\n")
    >>> r = parse_libvirt_log(log, "db1.log", "db1")
    >>> r.name, r.qemu_version, r.argv
    ('db1', '7.2.0', ('/usr/bin/qemu-system-x86_64', '-name', 'guest=db1', '-nodefaults'))

    Older libvirt glued the package to the version (``qemu version: 7.2.0Debian 1:7.2+dfsg-7``):

    >>> parse_libvirt_log(log.replace("7.2.0 (Debian", "7.2.0Debian ("), "db1.log", "db1").qemu_version
    '7.2.0'
    """
    starts = list(LIBVIRT_START.finditer(text))
    if not starts:
        return VmRecord(default_name, where, problem="expected a libvirt domain log: no 'starting up libvirt version: ..., qemu version: ...' line")
    last = starts[-1]
    line_no = text.count("\n", 0, last.start()) + 1
    here = f"{where}:{line_no}"
    version = last.group(1)
    rest = text[last.end() :].split("\n", 1)[1] if "\n" in text[last.end() :] else ""
    block: list[str] = []
    for line in rest.split("\n"):
        if line.endswith("\\"):
            block.append(line[:-1])
            continue
        block.append(line)
        break
    try:
        words = _strip_env(shell_words(" ".join(block)))
    except ValueError as exc:
        return VmRecord(default_name, here, qemu_version=version, problem=f"the command line after the last start is not shell-quoted ({exc})")
    if not words or not _QEMU_BINARY.match(os.path.basename(words[0])):
        return VmRecord(default_name, here, qemu_version=version, problem="expected QEMU's command line after the last 'starting up' line (after the environment)")
    return VmRecord(vm_name(words, default_name), here, tuple(words), version)


def is_libvirt_log(path: Path) -> bool:
    """Whether ``path`` looks like a libvirt domain log (a start header near its top)."""
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES).decode("utf-8", "replace")
    return LIBVIRT_START.search(head) is not None


def read_libvirt_log(path: Path) -> VmRecord:
    """One VM from its libvirt log (the last start)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return VmRecord(path.stem, str(path), problem=f"cannot read it ({exc.strerror})")
    return parse_libvirt_log(text, str(path), path.stem)


def command_line_record(path: Path, n: int, line: str) -> VmRecord | None:
    """Line ``n`` of a file of command lines as a VM (``None`` for a blank or ``#`` line)."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    where = f"{path}:{n}"
    try:
        words = shell_words(text)
    except ValueError as exc:
        return VmRecord(f"{path.name}:{n}", where, problem=f"expected a shell-quoted command line ({exc})")
    return VmRecord(vm_name(words, f"{path.name}:{n}"), where, tuple(_strip_env(words)))


def command_line_batches(path: Path, size: int = 2000) -> Iterator[tuple[int, list[str]]]:
    """``(first line number, lines)`` of a file of command lines, ``size`` lines at a time
    (for :func:`command_line_record` in other processes). Raises ``OSError``."""
    with path.open(encoding="utf-8", errors="replace") as f:
        batch: list[str] = []
        first = 1
        for n, line in enumerate(f, 1):
            batch.append(line)
            if len(batch) == size:
                yield first, batch
                batch, first = [], n + 1
        if batch:
            yield first, batch


def read_command_lines(path: Path) -> Iterator[VmRecord]:
    """One VM per non-empty line (``#`` starts a comment line), read lazily."""
    try:
        for first, lines in command_line_batches(path):
            for n, line in enumerate(lines, first):
                rec = command_line_record(path, n, line)
                if rec is not None:
                    yield rec
    except OSError as exc:
        yield VmRecord(path.name, str(path), problem=f"cannot read it ({exc.strerror})")


def is_command_line_file(path: Path) -> bool:
    """Whether ``path`` is a readable file that is not a libvirt log."""
    try:
        return path.is_file() and not is_libvirt_log(path)
    except OSError:
        return False


def read_inputs(paths: Iterable[Path]) -> Iterator[VmRecord]:
    """Every VM of the inputs: a directory's ``*.log`` files (libvirt's per-domain logs), a
    libvirt log, or a file of command lines."""
    for path in paths:
        if path.is_dir():
            logs = sorted(p for p in path.iterdir() if p.suffix == ".log" and p.is_file())
            if not logs:
                yield VmRecord(path.name, str(path), problem="expected libvirt domain logs (*.log) in this directory")
            for log in logs:
                yield read_libvirt_log(log)
        elif not path.exists():
            yield VmRecord(path.name, str(path), problem="no such file or directory")
        else:
            try:
                is_log = is_libvirt_log(path)
            except OSError as exc:
                yield VmRecord(path.name, str(path), problem=f"cannot read it ({exc.strerror})")
                continue
            if is_log:
                yield read_libvirt_log(path)
            else:
                yield from read_command_lines(path)


def read_running(proc: Path = Path("/proc")) -> Iterator[VmRecord]:
    """The QEMU processes of this host, from ``/proc/PID/cmdline`` (read-only; a process that
    ends meanwhile is skipped)."""
    pids = sorted(int(p.name) for p in proc.iterdir() if p.name.isdigit())
    for pid in pids:
        where = f"{proc}/{pid}/cmdline"
        try:
            raw = (proc / str(pid) / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue
        except OSError as exc:
            yield VmRecord(f"pid {pid}", where, problem=f"cannot read it ({exc.strerror})")
            continue
        argv = raw.decode("utf-8", "replace").split("\0")
        if argv and argv[-1] == "":
            argv.pop()
        if not argv or not _QEMU_BINARY.match(os.path.basename(argv[0])):
            continue
        yield VmRecord(vm_name(argv, f"pid {pid}"), where, tuple(argv))
