"""The QEMU source tree scanner: small fixture trees, then Debian's real QEMU 7.2 source."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import pytest

from ordering.errors import SourceTreeError
from ordering.sources.qemu_tree import (
    ScannedRelease,
    lint,
    release_model,
    scan_tree,
    to_release_toml,
)

HERE = Path(__file__).parent
TREES = HERE / "fixtures" / "qemu-trees"
REPO = HERE.parent
BUNDLED_7_2 = REPO / "models" / "releases" / "7.2.toml"
# Where .ci/run unpacks Debian's source package; $MIGORDER_QEMU_SRC_7_2 (etc.) names another tree.
CI_CACHE = Path(__file__).resolve().parents[1] / ".cache"
REAL_7_2 = Path(os.environ.get("MIGORDER_QEMU_SRC_7_2") or CI_CACHE / "src72" / "qemu-7.2")


def _by_name(scanned: ScannedRelease) -> dict[str, tuple[str, str, str]]:
    return {
        u.vmsd.name: (u.vmsd.priority, u.registration, u.inside) for u in scanned.priority_users
    }


# --------------------------------------------------------------------------- fixtures


def test_basic_tree() -> None:
    s = scan_tree(TREES / "basic")
    assert s.release == "7.2"
    assert s.enum.names == ("MIG_PRI_DEFAULT", "MIG_PRI_IOMMU", "MIG_PRI_VIRTIO_MEM", "MIG_PRI_MAX")
    assert _by_name(s) == {
        "iommu-intel": ("MIG_PRI_IOMMU", "section", ""),
        "virtio-mem-device": ("MIG_PRI_VIRTIO_MEM", "nested", "virtio-mem"),
    }
    iommu = next(u for u in s.priority_users if u.vmsd.name == "iommu-intel")
    assert "intel-iommu" in iommu.how
    assert (iommu.vmsd.file, iommu.vmsd.line) == ("hw/i386/intel_iommu.c", 4)
    assert [(x.vmsd.name, x.devices) for x in s.unmigratable] == [("nvme", ("nvme",))]
    assert [(h.idstr, h.ops, h.line) for h in s.handlers] == [("ram", "fixture_ram_handlers", 7)]
    assert lint(s) == [
        "hw/virtio/virtio-mem.c:12: priority MIG_PRI_VIRTIO_MEM on VMSD 'virtio-mem-device' "
        "cannot take effect: it is never registered as a section of its own "
        "(only inside 'virtio-mem')"
    ]


def test_hostile_tree() -> None:
    s = scan_tree(TREES / "hostile")
    # .pc/, tests/ and roms/ are never read; #if 0 code is ignored
    names = {d.name for d in s.vmsds}
    assert "quilt-copy" not in names
    assert "dead-code" not in names
    assert s.files_scanned == 2
    assert _by_name(s) == {
        "fixture-pcie-pci-bridge": ("MIG_PRI_PCI_BUS", "section", ""),
        "fixture-root-port": ("MIG_PRI_PCI_BUS", "section", ""),
        "fixture-sub": ("MIG_PRI_IOMMU", "nested", "fixture-outer"),
        "fixture-inner": ("MIG_PRI_GICV3", "nested", "fixture-outer"),
        "fixture-direct": ("MIG_PRI_IOMMU", "section", ""),
        "fixture-orphan": ("MIG_PRI_IOMMU", "nested", ""),
        "fixture-typo": ("MIG_PRI_APIC", "section", ""),
    }
    bridge = next(d for d in s.vmsds if d.symbol == "fixture_bridge_vmstate")
    assert bridge.name_expr == "TYPE_FIXTURE_BRIDGE"
    assert bridge.priority_line == 11  # the '.priority =' line, not the value's
    port = next(d for d in s.vmsds if d.symbol == "fixture_port_vmstate")
    assert (port.version_id, port.minimum_version_id) == (2, 1)
    assert [(lv.name, lv.value) for lv in s.enum.levels][-3:] == [
        ("MIG_PRI_GICV3", 8), ("MIG_PRI_GICV3_ITS", 9), ("MIG_PRI_MAX", 10)
    ]
    assert [(h.idstr, h.literal) for h in s.handlers] == [("fixture/handler", True)]
    assert s.features["zero_priority_is_default"][0] is True
    findings = lint(s)
    assert findings == [
        "hw/misc/oddities.c:13: priority MIG_PRI_IOMMU on VMSD 'fixture-sub' cannot take "
        "effect: it is never registered as a section of its own (only inside 'fixture-outer')",
        "hw/misc/oddities.c:19: priority MIG_PRI_GICV3 on VMSD 'fixture-inner' cannot take "
        "effect: it is never registered as a section of its own (only inside 'fixture-outer')",
        "hw/misc/oddities.c:45: priority MIG_PRI_IOMMU on VMSD 'fixture-orphan' cannot take "
        "effect: it is never registered as a section of its own (nor used inside any other)",
        "hw/misc/oddities.c:51: priority MIG_PRI_APIC on VMSD 'fixture-typo' is not an "
        "enumerator of MigrationPriority in include/migration/vmstate.h",
        "include/migration/vmstate.h:15: MIG_PRI_GICV3 (8) says it must happen before the ITS "
        "but MIG_PRI_GICV3_ITS is 9: numerically higher priorities load earlier",
    ]


def test_toml_round_trips_in_schema_shape() -> None:
    s = scan_tree(TREES / "hostile")
    model = tomllib.loads(to_release_toml(s))
    assert model == release_model(s)
    assert set(model) == {
        "release", "version", "source", "machines", "machines_source", "features",
        "priority", "vmsd", "unmigratable",
    }
    for row in model["vmsd"]:
        assert set(row) == {
            "name", "symbol", "file", "priority", "registration", "how", "inside", "source"
        }
        assert row["registration"] in ("section", "nested", "early_setup", "handler")
    for key in ("early_setup", "zero_priority_is_default", "switchover_start",
                "vfio_multifd_load_thread", "vfio_config_load_after_iter",
                "duplicate_section_check"):
        assert isinstance(model["features"][key], bool)
        assert isinstance(model["features"][f"{key}_source"], str)


@pytest.mark.parametrize(
    ("tree", "where", "words"),
    [
        ("no-enum", "include/migration/vmstate.h:7", "MigrationPriority enum"),
        ("malformed-enum", "include/migration/vmstate.h:5",
         "expected ',' after enumerator MIG_PRI_IOMMU"),
    ],
)
def test_enum_errors(tree: str, where: str, words: str) -> None:
    with pytest.raises(SourceTreeError) as info:
        scan_tree(TREES / tree)
    assert info.value.where == where
    assert words in str(info.value)


def test_not_a_tree(tmp_path: Path) -> None:
    with pytest.raises(SourceTreeError, match="VERSION"):
        scan_tree(tmp_path)
    (tmp_path / "VERSION").write_text("7.2.0\n")
    with pytest.raises(SourceTreeError, match=r"include/migration/vmstate.h:1"):
        scan_tree(tmp_path)


def test_unclosed_initializer(tmp_path: Path) -> None:
    (tmp_path / "VERSION").write_text("7.2.0\n")
    hdr = tmp_path / "include" / "migration"
    hdr.mkdir(parents=True)
    (hdr / "vmstate.h").write_text("typedef enum { MIG_PRI_DEFAULT } MigrationPriority;\n")
    (tmp_path / "hw").mkdir()
    (tmp_path / "hw" / "x.c").write_text(
        '\nstatic const VMStateDescription v = {\n  .name = "x",\n  .fields = (f[]) {\n};\n'
    )
    with pytest.raises(SourceTreeError) as info:
        scan_tree(tmp_path)
    assert info.value.where == "hw/x.c:2"


# --------------------------------------------------------------------------- the real tree


@pytest.fixture(scope="module")
def real72() -> ScannedRelease:
    if not (REAL_7_2 / "VERSION").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"QEMU 7.2 source tree missing at {REAL_7_2} (MIGORDER_QEMU_SRC_7_2)")
        pytest.skip(f"QEMU 7.2 source tree not at {REAL_7_2} (set MIGORDER_QEMU_SRC_7_2)")
    return scan_tree(REAL_7_2)


PCI_BUS_7_2 = {
    "pci_bridge", "pcie-pci-bridge", "ioh-3240-express-root-port",
    "xio3130-express-upstream-port", "xio3130-express-downstream-port", "pcie-root-port",
    "i82801b11_bridge",
}


@pytest.mark.slow
def test_real_7_2_enum(real72: ScannedRelease) -> None:
    assert real72.release == "7.2"
    assert [(lv.name, lv.value, lv.comment) for lv in real72.enum.levels] == [
        ("MIG_PRI_DEFAULT", 0, ""),
        ("MIG_PRI_IOMMU", 1, "Must happen before PCI devices"),
        ("MIG_PRI_PCI_BUS", 2, "Must happen before IOMMU"),
        ("MIG_PRI_VIRTIO_MEM", 3, "Must happen before IOMMU"),
        ("MIG_PRI_GICV3_ITS", 4, "Must happen before PCI devices"),
        ("MIG_PRI_GICV3", 5, "Must happen before the ITS"),
        ("MIG_PRI_MAX", 6, ""),
    ]


@pytest.mark.slow
def test_real_7_2_priority_users(real72: ScannedRelease) -> None:
    found = _by_name(real72)
    expected = {
        "iommu-intel": ("MIG_PRI_IOMMU", "section", ""),
        "virtio-iommu": ("MIG_PRI_IOMMU", "section", ""),
        "smmuv3": ("MIG_PRI_IOMMU", "section", ""),
        "virtio-mem-device": ("MIG_PRI_VIRTIO_MEM", "nested", "virtio-mem"),
        "arm_gicv3_its": ("MIG_PRI_GICV3_ITS", "section", ""),
        "arm_gicv3": ("MIG_PRI_GICV3", "section", ""),
    } | dict.fromkeys(PCI_BUS_7_2, ("MIG_PRI_PCI_BUS", "section", ""))
    assert found == expected
    assert len(real72.priority_users) == 13
    mem = next(u for u in real72.priority_users if u.vmsd.name == "virtio-mem-device")
    assert mem.vmsd.symbol == "vmstate_virtio_mem_device"
    assert mem.vmsd.file == "hw/virtio/virtio-mem.c"
    assert "vdc->vmsd" in mem.how
    assert not real72.features["early_setup"][0]
    assert not any(flag for flag, _src in real72.features.values())


@pytest.mark.slow
def test_real_7_2_unmigratable_and_handlers(real72: ScannedRelease) -> None:
    unmig = {x.vmsd.name: x for x in real72.unmigratable}
    assert unmig["nvme"].devices == ("nvme",)
    assert unmig["nvme"].vmsd.file == "hw/nvme/ctrl.c"
    assert unmig["amd-iommu"].devices == ("amd-iommu",)
    assert len(real72.unmigratable) == 28
    idstrs = {h.idstr for h in real72.handlers if h.literal}
    assert {"ram", "dirty-bitmap", "block", "spapr/htab"} <= idstrs
    vfio = next(h for h in real72.handlers if h.file == "hw/vfio/migration.c")
    assert not vfio.literal


@pytest.mark.slow
def test_real_7_2_lint(real72: ScannedRelease) -> None:
    assert lint(real72) == [
        "hw/virtio/virtio-mem.c:1016: priority MIG_PRI_VIRTIO_MEM on VMSD 'virtio-mem-device' "
        "cannot take effect: it is never registered as a section of its own "
        "(only inside 'virtio-mem')"
    ]


@pytest.mark.slow
@pytest.mark.slow
def test_real_7_2_agrees_with_bundled_model(real72: ScannedRelease) -> None:
    if not BUNDLED_7_2.is_file():
        pytest.skip(f"{BUNDLED_7_2} not written yet")
    _agreement(tomllib.loads(BUNDLED_7_2.read_text()), release_model(real72))


# --------------------------------------------------------------------------- newer trees (optional)

NEWER = {
    "10.0": Path(os.environ.get("MIGORDER_QEMU_SRC_10_0") or CI_CACHE / "src100" / "qemu-10.0"),
    "10.2": Path(os.environ.get("MIGORDER_QEMU_SRC_10_2") or CI_CACHE / "src102" / "qemu-10.2"),
}


@pytest.mark.slow
@pytest.mark.parametrize("release", sorted(NEWER))
def test_newer_real_trees(release: str) -> None:
    root = NEWER[release]
    if not (root / "VERSION").is_file():
        pytest.skip(f"QEMU {release} source tree not at {root} "
                    f"(set MIGORDER_QEMU_SRC_{release.replace('.', '_')})")
    s = scan_tree(root)
    assert s.release == release
    found = _by_name(s)
    assert found["virtio-mem-device"] == ("MIG_PRI_VIRTIO_MEM", "nested", "virtio-mem")
    assert found["virtio-mem-device-early"] == ("", "early_setup", "")
    assert s.features["early_setup"][0]
    assert s.features["switchover_start"][0]
    if release == "10.2":
        assert s.enum.names[:3] == ("MIG_PRI_UNINITIALIZED", "MIG_PRI_LOW", "MIG_PRI_DEFAULT")
        assert found["apic"] == ("MIG_PRI_APIC", "section", "")
        assert found["vfio-container"] == ("MIG_PRI_LOW", "section", "")
        assert found["amd-iommu"] == ("MIG_PRI_IOMMU", "section", "")
        assert s.features["zero_priority_is_default"][0]
    else:
        assert "apic" not in found
        assert s.enum.value("MIG_PRI_MAX") == 6
    assert len(lint(s)) == 1


def test_machines_folder_can_be_borrowed() -> None:
    s = scan_tree(TREES / "hostile")
    model = tomllib.loads(to_release_toml(s, machines="10.0"))
    assert model["machines"] == "10.0"
    assert "borrowed from 10.0" in model["machines_source"]


def _agreement(bundled: dict[str, Any], scanned: dict[str, Any]) -> None:
    """The scan of a real tree and the bundled release model say the same: the enum as
    written, every priority-bearing VMSD with how it is registered, the unmigratable VMSDs."""
    assert [(p["name"], p["value"], p.get("comment", "")) for p in bundled["priority"]] == [
        (p["name"], p["value"], p["comment"]) for p in scanned["priority"]
    ]

    def prio(rows: list[dict[str, Any]]) -> dict[object, tuple[object, object]]:
        return {r["name"]: (r["priority"], r["registration"]) for r in rows if r.get("priority")}

    assert prio(bundled.get("vmsd", [])) == prio(scanned["vmsd"])
    assert {u["name"] for u in bundled.get("unmigratable", [])} == {u["name"] for u in scanned["unmigratable"]}


@pytest.mark.slow
@pytest.mark.parametrize("release", sorted(NEWER))
def test_newer_real_trees_agree_with_bundled_models(release: str) -> None:
    root = NEWER[release]
    if not (root / "VERSION").is_file():
        pytest.skip(f"QEMU {release} source tree not at {root} "
                    f"(set MIGORDER_QEMU_SRC_{release.replace('.', '_')})")
    bundled = tomllib.loads((BUNDLED_7_2.parent / f"{release}.toml").read_text())
    _agreement(bundled, release_model(scan_tree(root)))
