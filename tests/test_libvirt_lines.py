"""Differential harness over libvirt-style command lines (tests/libvirt_lines.py).

For every line and release: migorder accepts it, or refuses it exactly where QEMU does (in
QEMU's words); where QEMU runs it, `derive` gives the section list a real capture shows
(type, section_id, idstr, instance_id; a run of PART sections counts once: how many
iterations RAM takes depends on the host, not on the order). 7.2 runs the system binary
(marker ``qemu``: CI has it); 10.0 and 11.1 run where an environment variable names a
wrapper binary; their captures are also committed as tests/data/captured/*-lv-line-*.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import qemu_binary
from libvirt_lines import LINES, Line
from real_orders import Step, collapse_parts

from ordering.check import blockers
from ordering.errors import MigOrderError, QemuRefused
from ordering.order import derive
from ordering.sources.capture import capture_stream
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.stream import read_stream

K = load_knowledge()
RELEASES = ("7.2", "10.0", "11.1")


def wrapper_variable(release: str, arch: str) -> str:
    """The environment variable naming a release's binary: ``MIGORDER_QEMU_10_0_X86_64``."""
    return f"MIGORDER_QEMU_{release.replace('.', '_')}_{arch.upper()}"


def _files(tmp: Path, line: Line) -> dict[str, str]:
    big = line.arch == "aarch64"  # virt's flash banks are 64 MiB; pc's firmware at most 8 MiB
    sizes = {"code": 64 << 20 if big else 2 << 20, "vars": 64 << 20 if big else 128 << 10, "disk": 64 << 20}
    out = {}
    for name, size in sizes.items():
        path = tmp / f"{name}.img"
        with path.open("wb") as f:
            f.truncate(size)
        out[name] = str(path)
    (tmp / "dir").mkdir(exist_ok=True)
    out["dir"] = str(tmp / "dir")
    return out


def _args(line: Line, files: dict[str, str]) -> list[str]:
    return [a.format(**files) if "{" in a and "}" in a and not a.startswith("{\"") else _fill(a, files) for a in line.args]


def _fill(text: str, files: dict[str, str]) -> str:
    for key, value in files.items():
        text = text.replace("{" + key + "}", value)
    return text


def predicted(release: str, line: Line, args: list[str]) -> tuple[list[Step] | None, str, list[str]]:
    """migorder's section list (or None and its refusal) and its blockers."""
    try:
        order = derive(K.release(release), parse_command_line([line.binary, *args], require_nodefaults=True))
    except MigOrderError as exc:
        return None, str(exc), []
    steps = [(s.type.value, s.section.section_id, s.section.idstr, s.section.instance_id) for s in order.steps]
    return collapse_parts(steps), "", [b.message for b in blockers(order)]


def test_every_line_is_accepted_or_refused_as_qemu_refuses_it() -> None:
    """Acceptance, without QEMU: every (line, release) migorder refuses is one QEMU refuses."""
    files = {"code": "code.fd", "vars": "vars.fd", "disk": "disk.img", "dir": "share"}
    judged = 0
    for line in LINES:
        for release in RELEASES:
            steps, why, _ = predicted(release, line, _args(line, files))
            judged += 1
            if release in line.refused:
                assert steps is None, f"{line.name} on {release}: QEMU refuses it, migorder accepted it"
                assert line.refused[release] in why, f"{line.name} on {release}: {why}"
            else:
                assert steps is not None, f"{line.name} on {release}: {why}"
    assert judged == len(LINES) * len(RELEASES)


def _binary(release: str, arch: str) -> str:
    if release == "7.2":
        return qemu_binary(f"qemu-system-{arch}")
    var = wrapper_variable(release, arch)
    path = os.environ.get(var, "")
    if not path:
        pytest.skip(f"set {var} to a QEMU {release} qemu-system-{arch} (wrapper) binary to capture on it")
    return path


def _captured(binary: str, args: list[str], out: Path) -> tuple[list[Step] | None, str]:
    try:
        capture_stream([binary, "-display", "none", "-S", *args], out, timeout=120)
    except QemuRefused as exc:
        return None, str(exc)
    stream = read_stream(out)
    return collapse_parts([(s.type.name, s.section_id, s.idstr, s.instance_id) for s in stream.sections]), ""


CASES = [(line, release) for line in LINES if line.runnable for release in RELEASES]


@pytest.mark.qemu
@pytest.mark.parametrize(("line", "release"), CASES, ids=[f"{line.name}-{r}" for line, r in CASES])
def test_line_is_exact_against_a_real_capture(line: Line, release: str, tmp_path: Path) -> None:
    binary = _binary(release, line.arch)
    args = _args(line, _files(tmp_path, line))
    want, qemu_says = _captured(binary, args, tmp_path / "out.mig")
    got, why, blocked = predicted(release, line, args)
    if want is None and "State blocked by non-migratable device" in qemu_says:
        assert line.blocked, qemu_says
        assert line.blocked in qemu_says
        assert blocked == [line.blocked]
        return
    if want is None:
        assert got is None, f"QEMU refuses it ({qemu_says}); migorder accepted it"
        assert line.refused.get(release, "\0") in qemu_says
        return
    assert got is not None, f"QEMU runs it; migorder refused it: {why}"
    assert got == want
