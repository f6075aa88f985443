"""observed_order: a real stream as a LoadOrder, judged on what the destination really loaded."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from conftest import require
from real_orders import release_of, vm_of
from stream_helpers import ground_truth, real_streams

from ordering.check import check_order
from ordering.errors import UsageError
from ordering.model.knowledge import Knowledge
from ordering.order import LoadOrder, derive
from ordering.sources.models import load_knowledge
from ordering.sources.observed import annotate, disagreements, observed_order, release_for_stream
from ordering.sources.stream import Configuration, Stream, read_stream
from ordering.verdict import RuleVerdict, Verdict

STREAMS = real_streams()
B = "b-x86-q35-iommu-pci-smp4"
IDS = [p.name.removesuffix(".mig.xz") for p in STREAMS]


@pytest.fixture(scope="module")
def k() -> Knowledge:
    return load_knowledge()


def _stream(name: str) -> Stream:
    found = [p for p in STREAMS if p.name == f"{name}.mig.xz"]
    require(found, f"real stream {name}")
    return read_stream(found[0])


def _verdicts(k: Knowledge, order: LoadOrder, rule: str) -> list[RuleVerdict]:
    return [v for v in check_order(k, order).verdicts if v.rule.id == rule]


def test_real_streams_are_there() -> None:
    require(len(STREAMS) >= 9, "tests/data/real-streams (or set MIGORDER_REAL_STREAMS)")


@pytest.mark.parametrize("path", STREAMS, ids=IDS)
def test_observed_order_is_the_stream_order(k: Knowledge, path: Path) -> None:
    order = observed_order(k, read_stream(path))
    truth = ground_truth(path)
    got = [(s.type.value, s.section.section_id, s.section.idstr, s.section.instance_id)
           for s in order.steps]
    want = [(s["type"], s["section_id"], s["idstr"], s["instance_id"]) for s in truth["sections"]]
    assert got == want
    assert order.release.name == ".".join(truth["qemu"].split(".")[:2])
    assert order.machine_type == truth["machine"]
    # The real source sorted by the release's priorities: no disagreement with the model.
    assert disagreements(order) == []


@pytest.mark.parametrize("path", STREAMS, ids=IDS)
def test_every_section_has_a_known_kind_and_owner(k: Knowledge, path: Path) -> None:
    order = observed_order(k, read_stream(path))
    owners = {d.qdev_id for d in order.registered.devices}
    for s in order.registered.sections:
        if "/" in s.idstr and s.owner != "machine":
            assert s.owner in owners
        assert s.kind


def test_iommu_stream_devices_and_bridges(k: Knowledge) -> None:
    order = observed_order(k, _stream("b-x86-q35-iommu-pci-smp4"))
    devs = {d.qdev_id: d for d in order.registered.devices}
    assert devs["iommu-intel"].type.name == "intel-iommu"
    assert devs["0000:00:04.0:00.0"].type.name == "virtio-net-pci"
    assert devs["0000:00:04.0:00.0"].bridges == ("0000:00:04.0",)
    assert devs["0000:00:05.0:00.0:01.0"].bridges == ("0000:00:05.0", "0000:00:05.0:00.0")
    assert devs["0000:00:05.0:00.0"].type.name == "pcie-pci-bridge"
    pcibus = {s.instance_id: s.owner for s in order.registered.sections if s.idstr == "PCIBUS"}
    assert pcibus == {0: "machine", 1: "0000:00:04.0", 2: "0000:00:05.0", 3: "0000:00:05.0:00.0"}
    # A secondary bus's PCIBUS carries no bus number: it is not a pci-bridge section.
    assert {s.kind for s in order.registered.sections if s.idstr == "PCIBUS"} == {"other"}


def test_iommu_stream_verdicts(k: Knowledge) -> None:
    order = observed_order(k, _stream("b-x86-q35-iommu-pci-smp4"))
    bus = _verdicts(k, order, "pci-bus-before-viommu")
    assert [(v.verdict, v.by) for v in bus] == [(Verdict.GUARANTEED, "priority")]
    # No device in this stream translates at load (no VFIO; a stream does not carry
    # iommu_platform, so its virtio devices are judged as without it).
    assert [v.verdict for v in _verdicts(k, order, "viommu-before-dma-devices")] == [Verdict.NOT_LIVE]
    assert not check_order(k, order).blockers


def test_gicv3_its_stream_verdicts(k: Knowledge) -> None:
    order = observed_order(k, _stream("e-arm-virt-gicv3-its"))
    assert [v.verdict for v in _verdicts(k, order, "gicv3-before-its")] == [Verdict.GUARANTEED]
    # Only VFIO sets up MSIs at load; this stream has none.
    assert [v.verdict for v in _verdicts(k, order, "its-before-msi-devices")] == [Verdict.NOT_LIVE]


def test_minimal_stream_has_no_live_rule(k: Knowledge) -> None:
    result = check_order(k, observed_order(k, _stream("a-x86-q35-minimal")))
    assert all(v.verdict is Verdict.NOT_LIVE for v in result.verdicts)


def _swap(stream: Stream, a: str, b: str) -> Stream:
    secs = list(stream.sections)
    i = next(n for n, s in enumerate(secs) if s.idstr == a and s.type.value == "FULL")
    j = next(n for n, s in enumerate(secs) if s.idstr == b and s.type.value == "FULL")
    secs[i], secs[j] = secs[j], secs[i]
    return dataclasses.replace(stream, sections=tuple(secs))


def test_reversed_sections_are_flagged(k: Knowledge) -> None:
    stream = _swap(_stream(B), "0000:00:04.0/pcie-root-port", "iommu-intel")
    order = observed_order(k, stream)
    assert [s.section.idstr for s in order.full][:4] == [
        "iommu-intel", "0000:00:05.0/pcie-root-port", "0000:00:05.0:00.0/pcie-pci-bridge",
        "0000:00:04.0/pcie-root-port",
    ]
    found = disagreements(order)
    assert [(d.earlier.section_id, d.later.section_id) for d in found] == [(47, 54), (56, 51)]
    assert "against this release's priorities" in found[0].describe()


def test_reversing_two_sections_flips_the_verdict(k: Knowledge) -> None:
    stream = _swap(_stream(B), "0000:00:04.0/pcie-root-port", "iommu-intel")
    bus = _verdicts(k, observed_order(k, stream), "pci-bus-before-viommu")
    assert [v.verdict for v in bus] == [Verdict.VIOLATED]


def test_reversing_phases_flips_the_verdict(k: Knowledge) -> None:
    # Moving the vIOMMU's FULL section into the setup phase (before ram's PART) puts it before
    # everything: a phase verdict, which the judge takes from the stream.
    base = _stream("b-x86-q35-iommu-pci-smp4")
    secs = list(base.sections)
    iommu = next(s for s in secs if s.idstr == "iommu-intel")
    secs.remove(iommu)
    secs.insert(1, dataclasses.replace(iommu, phase=type(iommu.phase)("setup")))
    order = observed_order(k, dataclasses.replace(base, sections=tuple(secs)))
    bus = _verdicts(k, order, "pci-bus-before-viommu")
    assert [(v.verdict, v.by) for v in bus] == [(Verdict.VIOLATED, "phase")]


def test_release_from_machine_type(k: Knowledge) -> None:
    def s(mt: str | None) -> Stream:
        conf = Configuration(mt) if mt else None
        return Stream("x.mig", 3, "plain", 0, conf, (), (), None, 0, None)

    assert release_for_stream(k, s("pc-q35-7.2")).name == "7.2"
    assert release_for_stream(k, s("pc-q35-11.1")).name == "11.1"
    assert release_for_stream(k, s("virt-10.0")).name == "10.0"
    assert release_for_stream(k, s("pc-q35-7.1"), k.release("10.0")).name == "10.0"
    with pytest.raises(UsageError, match="--qemu"):
        release_for_stream(k, s("pc-q35-7.1"))
    with pytest.raises(UsageError, match="--qemu"):
        release_for_stream(k, s(None))


def test_explicit_release_changes_priorities(k: Knowledge) -> None:
    order = observed_order(k, _stream("qemu11.1-a-x86-q35-minimal"), k.release("11.1"))
    apic = next(s for s in order.full if s.section.idstr == "apic")
    assert apic.section.priority.name == "MIG_PRI_APIC"
    assert order.full[0].section.idstr == "apic"


def test_annotate_shape(k: Knowledge) -> None:
    order = observed_order(k, _stream("b-x86-q35-iommu-pci-smp4"))
    rows = annotate(order)
    assert len(rows) == len(order.steps)
    iommu = next(r for r in rows if r.idstr == "iommu-intel")
    assert (iommu.priority, iommu.kind, iommu.device, iommu.phase, iommu.type) == (
        "MIG_PRI_IOMMU", "viommu", "intel-iommu", "complete", "FULL")
    assert set(iommu.as_json()) >= {
        "idstr", "instance_id", "section_id", "phase", "priority", "vmsd", "kind", "type"}


def test_unknown_vmsd_is_other(k: Knowledge) -> None:
    base = _stream("a-x86-q35-minimal")
    last = base.sections[-1]
    odd = dataclasses.replace(last, section_id=999, idstr="0000:00:07.0/frobnicator",
                              vmsd_name="frobnicator")
    order = observed_order(k, dataclasses.replace(base, sections=(*base.sections, odd)))
    sec = next(s for s in order.registered.sections if s.section_id == 999)
    assert sec.kind == "other"
    assert sec.priority.name == "MIG_PRI_DEFAULT"
    dev = next(d for d in order.registered.devices if d.qdev_id == "0000:00:07.0")
    assert dev.type.name == ""
    assert dev.kind == "other"


def _verdict_signature(k: Knowledge, order: LoadOrder) -> list[tuple[str, ...]]:
    return sorted(
        (v.rule.id, v.verdict.value, v.by, v.instance.then.idstr if v.instance else "",
         v.first_label)
        for v in check_order(k, order).verdicts
    )


@pytest.mark.parametrize("path", STREAMS, ids=IDS)
def test_observed_and_derived_verdicts_agree(k: Knowledge, path: Path) -> None:
    truth = ground_truth(path)
    derived = derive(k.release(release_of(truth)), vm_of(truth))
    observed = observed_order(k, read_stream(path))
    assert _verdict_signature(k, observed) == _verdict_signature(k, derived)
