"""The simulator reproduces each known hazard where QEMU's order allows it, and not elsewhere."""

from __future__ import annotations

import json

import pytest

from ordering.cli import main
from ordering.errors import ScenarioError, UsageError
from ordering.model.rule import Consequence
from ordering.order import derive
from ordering.sim import Trace, move, simulate
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario

K = load_knowledge()
RELEASES = ("7.2", "10.0", "10.1", "10.2", "11.1")


def run(name: str, release: str, *moves: tuple[str, str], source: str | None = None) -> Trace:
    vm = read_scenario(K.scenarios[name])
    order = derive(K.release(source or release), vm)
    for a, b in moves:
        order = move(order, a, b)
    return simulate(K.release(release), vm, order)


def failures(t: Trace) -> list[tuple[str, str, str]]:
    return [(f.consequence.value, f.section.label, f.needs.label) for f in t.failures]


def test_a_iommu_map_to_discarded_memory_on_a_72_source() -> None:
    t = run("hazard-iommu-discarded", "7.2")
    assert failures(t) == [("error", "iommu-intel", "0000:00:02.0:00.0/virtio-mem")]
    assert t.failures[0].message.startswith(
        "iommu map to discarded memory (e.g., unplugged via virtio-mem): "
    )


@pytest.mark.parametrize("release", ["10.0", "10.1", "10.2", "11.1"])
def test_a_absent_with_early_migration(release: str) -> None:
    assert run("hazard-iommu-discarded", release).failures == ()


def test_a_absent_when_no_mapping_points_into_virtio_mem() -> None:
    vm = read_scenario(K.scenarios["hazard-iommu-discarded"])
    from dataclasses import replace

    vm = replace(vm, guest={"device": {"nic0": {"map-into": ""}}})
    assert simulate(K.release("7.2"), vm).failures == ()


@pytest.mark.parametrize("release", ["7.2", "10.0", "10.1"])
def test_b_posted_falls_back_to_remapped_before_102(release: str) -> None:
    # the scenario's [release_globals] turn on 7.2's experimental x-enable-migration
    t = run("hazard-posted-remapped", release)
    assert failures(t) == [("degraded", "0000:00:01.0:00.0/vfio", "apic#2")]
    assert not t.failures[0].qemu_prints


@pytest.mark.parametrize("release", ["10.2", "11.1"])
def test_b_absent_with_mig_pri_apic(release: str) -> None:
    assert run("hazard-posted-remapped", release).failures == ()


def test_b_a_new_destination_still_loads_the_old_order() -> None:
    t = run("hazard-posted-remapped", "10.2", source="10.1")
    assert failures(t) == [("degraded", "0000:00:01.0:00.0/vfio", "apic#2")]


@pytest.mark.parametrize("release", RELEASES)
def test_c_bus_numbers_only_with_a_move(release: str) -> None:
    assert run("hazard-bus-before-viommu", release).failures == ()
    t = run("hazard-bus-before-viommu", release, ("iommu-intel", "0000:00:01.0/pcie-root-port"))
    assert failures(t) == [
        ("silent", "iommu-intel", "0000:00:01.0/pcie-root-port"),
        ("silent", "iommu-intel", "0000:00:02.0/pcie-root-port"),
    ]


@pytest.mark.parametrize("release", RELEASES)
def test_d_its_before_redistributors_aborts(release: str) -> None:
    assert run("hazard-its-before-gicv3", release).failures == ()
    t = run("hazard-its-before-gicv3", release, ("arm_gicv3_its", "arm_gicv3"))
    assert failures(t) == [("error", "arm_gicv3_its", "arm_gicv3")]
    assert t.aborted
    assert t.steps[-1].step.section.label == "arm_gicv3_its"


@pytest.mark.parametrize("release", RELEASES)
def test_e_dma_translation_before_the_viommu(release: str) -> None:
    assert run("hazard-dma-before-viommu", release).failures == ()
    t = run("hazard-dma-before-viommu", release, ("0000:00:01.0/virtio-net", "iommu-intel"))
    assert failures(t) == [("error", "0000:00:01.0/virtio-net", "iommu-intel")]
    assert t.failures[0].message == "Cannot map desc"


@pytest.mark.parametrize("release", ["10.0", "10.1", "10.2", "11.1"])
def test_f_msi_through_an_unrestored_its(release: str) -> None:
    assert run("hazard-msi-before-its", release).failures == ()
    t = run("hazard-msi-before-its", release, ("0000:00:01.0/vfio", "arm_gicv3_its"))
    assert failures(t) == [("error", "0000:00:01.0/vfio", "arm_gicv3_its")]


def test_reads_record_whether_the_device_was_loaded() -> None:
    t = run("hazard-posted-remapped", "10.1")
    vfio = next(s for s in t.steps if s.step.section.label == "0000:00:01.0:00.0/vfio" and s.step.type.value == "FULL")
    assert [(r.section.label, r.loaded) for r in vfio.reads] == [("apic#2", False)]
    assert "reset" in vfio.reads[0].value


def test_unknown_guest_knob_is_a_scenario_error() -> None:
    from dataclasses import replace

    vm = replace(read_scenario(K.scenarios["hazard-dma-before-viommu"]), guest={"x2apci": True})
    with pytest.raises(ScenarioError, match="x2apic"):
        simulate(K.release("11.1"), vm)


def test_unknown_section_lists_close_matches() -> None:
    order = derive(K.release("11.1"), read_scenario(K.scenarios["hazard-dma-before-viommu"]))
    with pytest.raises(UsageError, match="close matches: iommu-intel"):
        move(order, "iommu-intl", "iommu-intel")


def test_cli_exit_codes_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "hazard-dma-before-viommu"]) == 0
    capsys.readouterr()
    code = main(["simulate", "hazard-dma-before-viommu", "--json", "--move",
                 "0000:00:01.0/virtio-net", "--before", "iommu-intel"])
    assert code == 1
    data = json.loads(capsys.readouterr().out)
    assert data["failures"] == [
        {"class": "error", "message": "Cannot map desc", "qemu_prints": True,
         "section": "0000:00:01.0/virtio-net", "needs": "iommu-intel",
         "mechanism": data["failures"][0]["mechanism"], "fatal": False}
    ]
    assert data["steps"][0]["section"] == "ram"
    assert main(["simulate", "hazard-posted-remapped", "--source-qemu", "10.1", "--qemu", "10.2"]) == 1
    out = capsys.readouterr().out
    assert out.index("DEGRADED") < out.index("steps:")
    assert main(["simulate", "--move", "nope", "--before", "iommu-intel"]) == 2
    assert "no section 'nope'" in capsys.readouterr().err


def test_consequences_are_the_rules_words() -> None:
    assert {c.value for c in Consequence} == {"error", "degraded", "silent"}


def test_no_translation_failure_when_the_root_complex_bypasses_the_viommu() -> None:
    from ordering.sources.cmdline import parse_command_line

    args = (
        "-nodefaults -machine q35{opt} -device intel-iommu -device pcie-root-port,id=rp1 "
        "-device virtio-net-pci,bus=rp1,iommu_platform=on,disable-legacy=on"
    )
    for opt, expected in (("", 1), (",default-bus-bypass-iommu=on", 0)):
        vm = parse_command_line(args.format(opt=opt))
        order = move(derive(K.release("11.1"), vm), "0000:00:01.0:00.0/virtio-net", "iommu-intel")
        assert len(simulate(K.release("11.1"), vm, order).failures) == expected
