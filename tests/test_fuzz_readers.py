"""Fuzz every reader: only migorder's own error type may escape, and it says where.

Stream bytes are fuzzed in test_stream_fuzz.py; here: QEMU command lines, models and
scenario TOML, the MigrationPriority header, and -dump-vmstate JSON.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordering.errors import MigOrderError
from ordering.order import derive
from ordering.sources.cheader import parse_priority_enum
from ordering.sources.cmdline import parse_command_line
from ordering.sources.dump_vmstate import parse_dump
from ordering.sources.models import bundled_models_dir, load_knowledge, read_knowledge
from ordering.sources.scenario import read_scenario

K = load_knowledge()
MODELS = bundled_models_dir()


def raised(fn: Callable[[], object]) -> MigOrderError | None:
    """The MigOrderError ``fn`` raised, or None; any other exception escapes (a bug)."""
    try:
        fn()
    except MigOrderError as exc:
        return exc
    return None

TOKENS = [
    "-machine", "q35", "pc", "virt", "virt,gic-version=3", "pc-q35-7.2", "-smp", "4", "2,maxcpus=4",
    "3,sockets=2", "-m", "128", "4G,maxmem=8G", "-device", "intel-iommu", "e1000e",
    "pcie-root-port,id=rp1", "virtio-net-pci,bus=rp1", "vfio-pci,host=0000:01:00.0",
    "e1000,addr=0x1f", "e1000,addr=zz", "pci-bridge,id=b,chassis_nr=1", "virtio-blk-pci,bus=b",
    "virtio-mem-pci,memdev=m", "nvme", "-object", "memory-backend-ram,id=m,size=1G", "-nodefaults",
    "-S", "-accel", "kvm", "-nic", "-global", "--", ",", ",,", "=", "id=", "", "-smp", "0",
]


@given(st.lists(st.sampled_from(TOKENS) | st.text(max_size=12), max_size=14), st.sampled_from(sorted(K.releases)))
def test_command_lines(argv: list[str], release: str) -> None:
    exc = raised(lambda: derive(K.release(release), parse_command_line(argv)))
    assert exc is None or (str(exc) and "\n" not in str(exc))


FILES = [
    MODELS / "rules.toml",
    MODELS / "kinds.toml",
    MODELS / "devices.toml",
    MODELS / "releases" / "10.2.toml",
    MODELS / "machines" / "7.2" / "q35.toml",
]


def _mutate(text: str, data: st.DataObject) -> str:
    lines = text.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "dup", "chars", "value"]))
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "chars":
            junk = data.draw(st.text(alphabet='[]{}="\',#\\ \nab1', max_size=4))
            j = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:j] + junk + lines[i][j:]
        else:
            key = lines[i].split("=", 1)[0]
            value = data.draw(st.sampled_from(["1", "true", '"x"', "[]", "{}", '"MIG_PRI_NOPE"', '"when=="']))
            lines[i] = f"{key}= {value}\n" if "=" in lines[i] else lines[i]
    return "".join(lines)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), which=st.sampled_from(FILES))
def test_models_toml(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, which: Path) -> None:
    root = tmp_path_factory.mktemp("models")
    dst = root / "models"
    shutil.copytree(MODELS, dst)
    target = dst / which.relative_to(MODELS)
    target.write_text(_mutate(which.read_text(), data))
    exc = raised(lambda: read_scenario(read_knowledge(dst).scenarios["default"]))
    assert exc is None or str(dst) in str(exc)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_scenario_toml(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    src = K.scenarios["hazard-posted-remapped"]
    path = tmp_path_factory.mktemp("scn") / "s.toml"
    path.write_text(_mutate(src.read_text(), data))
    exc = raised(lambda: derive(K.newest, read_scenario(path)))
    assert exc is None or str(path) in str(exc)


HEADER = """typedef enum {
    MIG_PRI_DEFAULT = 0,
    MIG_PRI_IOMMU,              /* Must happen before PCI devices */
    MIG_PRI_PCI_BUS,            /* Must happen before IOMMU */
    MIG_PRI_MAX,
} MigrationPriority;
"""


@given(data=st.data())
def test_priority_header(data: st.DataObject) -> None:
    text = _mutate(HEADER, data)
    exc = raised(lambda: parse_priority_enum(text, "include/migration/vmstate.h"))
    assert exc is None or "vmstate.h" in str(exc)


DUMP = '{"vmschkmachine": {"Name": "pc-q35-7.2"}, "e1000e": {"Name": "e1000e", "version_id": 2, "minimum_version_id": 1, "Description": {"name": "e1000e", "version_id": 2, "minimum_version_id": 1, "Fields": [], "Subsections": []}}}'


@given(st.text(max_size=40), st.integers(0, len(DUMP)))
def test_dump_vmstate_json(junk: str, at: int) -> None:
    exc = raised(lambda: parse_dump(DUMP[:at] + junk + DUMP[at:], "dump.json"))
    assert exc is None or "dump.json" in str(exc)
