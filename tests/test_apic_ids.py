"""APIC ids from 255 up, KVM's userspace APIC and vIOMMU interrupt remapping: what QEMU
refuses, migorder refuses in QEMU's words, and what QEMU starts, migorder accepts.

``tests/data/x2apic_probes.json`` holds every combination probed on the real binaries (7.2,
10.0, 11.1: accelerator, -smp and its topology, maxcpus, machine, kernel-irqchip, -cpu,
intel-iommu); :func:`test_every_probe_agrees` holds migorder to all of them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import qemu_binary

from ordering.apic_ids import apic_id_limit, first_x2apic_index
from ordering.cli import main
from ordering.errors import ScenarioError
from ordering.model.vm import HotplugStep, Topology, Vm
from ordering.order import derive
from ordering.refusals import refuse
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge

K = load_knowledge()
PROBES = json.loads((Path(__file__).parent / "data" / "x2apic_probes.json").read_text())["rows"]

HOST_DEPENDENT = {
    # 7.2 with KVM's userspace APIC and a CPU model with kvm-poll-control: the host kernel
    # refuses MSR 0x4b564d06 and QEMU asserts, with any number of vCPUs. Not an APIC-id matter,
    # and another host kernel may take it; migorder does not model it.
    ("7.2", "-machine q35 -smp 255 -accel kvm -machine kernel-irqchip=off -cpu max"),
    ("7.2", "-machine q35 -smp 255 -accel kvm -machine kernel-irqchip=off -cpu host"),
    ("7.2", "-machine pc -smp 255 -accel kvm -machine kernel-irqchip=off -cpu max"),
    ("7.2", "-machine pc -smp 255 -accel kvm -machine kernel-irqchip=off -cpu host"),
    # This host's KVM takes 1024 vCPUs (Linux x86's default; 4096 with CONFIG_MAXSMP). A VM
    # being migrated runs on its source host, so migorder judges it and says the limit in a note
    # (test_more_vcpus_than_a_default_kvm_host_takes_is_a_note).
    ("11.1", "-machine q35 -smp 4096 -accel kvm -cpu host"),
    ("11.1", "-machine q35 -smp 1,maxcpus=4096 -accel kvm"),
}


def _verdict(release: str, args: str) -> str:
    """"" when migorder accepts, else its one-line refusal (derive: refusals while registering
    count too)."""
    try:
        derive(K.release(release), parse_command_line(["qemu-system-x86_64", "-nodefaults", *shlex.split(args)]))
    except ScenarioError as exc:
        return str(exc)
    return ""


def test_every_probe_agrees() -> None:
    """Each probed command line: migorder accepts exactly what the real binary started, and
    refuses with the binary's own first error line."""
    assert len(PROBES) > 1030
    wrong = []
    for release, args, accepted, message in PROBES:
        if (release, args) in HOST_DEPENDENT:
            continue
        ours = _verdict(release, args)
        words = message.split(": ")[-1]  # QEMU's words, without its "-device ...: " location
        if accepted != (ours == "") or (not accepted and words not in ours):
            wrong.append((release, args, message, ours))
    assert wrong == []


def test_probes_cover_both_answers_per_release() -> None:
    for release in ("7.2", "10.0", "11.1"):
        answers = {accepted for rel, _, accepted, _ in PROBES if rel == release}
        assert answers == {True, False}


@pytest.mark.parametrize(("release", "args", "refusal"), [
    # 7.2: ids from 255 up need KVM's in-kernel irqchip, whatever -cpu says
    ("7.2", "-machine q35 -smp 256", "'current -smp configuration requires kernel irqchip and X2APIC API support.'"),
    ("7.2", "-machine q35 -smp 256 -accel tcg -cpu max", "requires kernel irqchip"),
    ("7.2", "-machine q35 -smp 256 -accel kvm -machine kernel-irqchip=off", "requires kernel irqchip"),
    ("7.2", "-machine pc -smp 195,sockets=3,cores=65", "its highest APIC id is 320"),
    ("7.2", "-machine q35 -smp 8,maxcpus=256", "requires kernel irqchip"),
    # 10.0 and 11.1: each vCPU made with an id from 255 up needs x2APIC in its CPU model
    ("10.0", "-machine q35 -smp 256", "QEMU 10.0 aborts: 'APIC ID 255 requires x2APIC feature in CPU'"),
    ("11.1", "-machine q35 -smp 256 -accel tcg", "QEMU 11.1 refuses it: 'APIC ID 255 requires x2APIC feature in CPU'"),
    ("11.1", "-machine q35 -smp 195,sockets=3,cores=65", "'APIC ID 256 requires x2APIC feature in CPU'"),
    ("11.1", "-machine q35 -smp 256 -cpu max,-x2apic", "'APIC ID 255 requires x2APIC feature in CPU'"),
    ("10.0", "-machine q35 -smp 256 -accel tcg -cpu EPYC", "-cpu EPYC has no x2APIC under TCG"),
    ("11.1", "-machine q35 -smp 256 -accel kvm -cpu qemu64,-x2apic", "has no x2APIC under KVM"),
    ("10.2", "-machine q35 -smp 256 -cpu Skylake-Server", "does not know whether that model has it"),  # 10.2: no models captured
    # KVM without an in-kernel irqchip, any vCPU count
    ("10.0", "-machine q35 -smp 4 -accel kvm -machine kernel-irqchip=off", "'KVM does not support userspace APIC'"),
    ("11.1", "-machine q35 -accel kvm,kernel-irqchip=off", "'KVM does not support userspace APIC'"),
    # interrupt remapping against the irqchip
    ("7.2", "-machine q35 -accel kvm -device intel-iommu,intremap=on",
     "'Interrupt Remapping cannot work with kernel-irqchip=on, please use 'split|off'.'"),
    ("11.1", "-machine q35 -accel kvm -device amd-iommu,intremap=on", "Interrupt Remapping cannot work"),
    ("7.2", "-machine q35 -device intel-iommu,eim=on", "'eim=on requires accel=kvm,kernel-irqchip=split'"),
    ("11.1", "-machine q35 -accel kvm -device intel-iommu,eim=on", "'eim=on cannot be selected without intremap=on'"),
    ("10.0", "-machine q35 -device intel-iommu,intremap=off,eim=on", "'eim=on cannot be selected without intremap=on'"),
    # -accel takes one accelerator
    ("7.2", "-machine q35 -accel kvm:tcg", "'invalid accelerator kvm:tcg'"),
    # KVM's kernel-irqchip is on, off or split; -accel's properties are spelled with dashes
    ("7.2", "-machine q35,kernel-irqchip=true -accel kvm", "Parameter 'kernel-irqchip' does not accept value 'true'\""),
    ("11.1", "-machine q35 -accel kvm,kernel_irqchip=split", "\"Property 'kvm-accel.kernel_irqchip' not found\""),
    # one x86 vIOMMU, of either type
    ("11.1", "-machine q35 -device intel-iommu -device amd-iommu",
     "argument 7 (-device): -device amd-iommu: QEMU refuses it: 'QEMU does not support multiple vIOMMUs for x86 yet.'"),
    ("7.2", "-machine q35 -device amd-iommu -device intel-iommu", "argument 7 (-device): -device intel-iommu: QEMU refuses"),
    ("7.2", "-machine q35 -device intel-iommu -device intel-iommu", "'QEMU does not support multiple vIOMMUs for x86 yet.'"),
    ("10.0", "-machine q35 -device amd-iommu -device amd-iommu", "'QEMU does not support multiple vIOMMUs for x86 yet.'"),
    # one way to choose the accelerator: -accel, or -machine accel= (which -enable-kvm is)
    ("11.1", "-machine q35,accel=tcg -accel kvm", "'The -accel and \"-machine accel=\" options are incompatible'"),
    ("7.2", "-enable-kvm -accel kvm -machine q35", "options are incompatible"),
    ("7.2", "-enable-kvm -machine q35,accel=tcg -smp 256", "requires kernel irqchip"),  # the later one wins
    # -cpu: a model the binary lists (names are case-sensitive), host only under KVM
    ("7.2", "-machine q35 -cpu Frobnicator", "QEMU 7.2 refuses it: 'unable to find CPU model 'Frobnicator''"),
    ("10.0", "-machine q35 -cpu frobnicator,+x2apic", "'unable to find CPU model 'frobnicator''"),
    ("7.2", "-machine q35 -cpu skylake-server", "'unable to find CPU model 'skylake-server''"),
    ("11.1", "-machine q35 -smp 2 -accel tcg -cpu host", "QEMU 11.1 refuses it: 'CPU model 'host' requires KVM or HVF'"),
    ("7.2", "-machine q35 -cpu host", "'CPU model 'host' requires KVM or HVF'"),
    # amd-iommu under KVM with APIC ids from 255 up (maxcpus counts) needs xtsup=on
    ("10.0", "-machine q35 -smp 256 -accel kvm -device amd-iommu",
     "QEMU 10.0 refuses it: 'AMD IOMMU with x2APIC configuration requires xtsup=on'"),
    ("11.1", "-machine q35 -smp 8,maxcpus=256 -accel kvm -device amd-iommu", "requires xtsup=on"),
])
def test_refused_in_qemus_words(release: str, args: str, refusal: str) -> None:
    said = _verdict(release, args)
    assert refusal in said
    assert "\n" not in said


@pytest.mark.parametrize(("release", "args"), [
    ("7.2", "-machine q35 -smp 255"),  # highest id 254
    ("7.2", "-machine q35 -smp 256 -accel kvm"),  # kernel-irqchip=on by default; X2APIC API assumed
    ("7.2", "-machine q35 -smp 288 -enable-kvm -machine kernel-irqchip=split"),
    ("7.2", "-machine q35 -smp 200,sockets=2,cores=100"),  # ids end at 227: widths round up, not past 254
    ("7.2", "-machine pc -smp 192,sockets=1,cores=64,threads=3"),  # ids end at 254
    ("10.0", "-machine q35 -smp 256 -cpu max"),
    ("10.0", "-machine q35 -smp 256 -cpu qemu64,+x2apic"),
    ("11.1", "-machine q35 -smp 256 -accel tcg -cpu Skylake-Server"),
    ("11.1", "-machine q35 -smp 8,maxcpus=256"),  # only vCPUs made at start are checked
    ("11.1", "-machine q35 -smp 1024 -accel kvm -cpu host"),
    ("10.0", "-machine q35 -device intel-iommu,intremap=on,eim=on"),  # TCG's eim since 2cf16205290b
    ("7.2", "-machine q35 -smp 256 -accel kvm -machine kernel-irqchip=split -device intel-iommu,intremap=on,eim=on"),
    ("7.2", "-machine q35 -smp 4 -accel kvm -machine kernel-irqchip=off -device intel-iommu,intremap=on"),
    ("11.1", "-machine q35 -accel tcg -accel kvm -smp 255"),  # the first -accel that starts wins
    ("11.1", "-machine q35 -smp 2 -accel kvm -cpu host"),
    ("11.1", "-machine q35,kernel-irqchip=maybe -accel tcg"),  # TCG ignores it
    ("7.2", "-machine q35,accel=tcg -enable-kvm -smp 256"),  # -enable-kvm is accel=kvm, the later wins
    ("11.1", "-machine q35,kernel_irqchip=split -accel kvm -device intel-iommu,intremap=on"),
    ("10.0", "-machine q35 -smp 256 -accel kvm -device amd-iommu,xtsup=on"),
    ("7.2", "-machine q35 -smp 256 -accel kvm -device amd-iommu"),  # 7.2 has no xtsup check
    ("11.1", "-machine q35 -smp 256 -cpu max -device amd-iommu,intremap=on"),  # TCG: no xtsup check
])
def test_accepted_as_qemu_starts_it(release: str, args: str) -> None:
    assert _verdict(release, args) == ""


def test_hot_plugged_vcpu_with_a_large_apic_id_needs_x2apic() -> None:
    """Captured: with -smp 1,maxcpus=256 (TCG, qemu64), device_add of the vCPU with APIC id 255
    aborts 10.0 and fails the device_add on 11.1; id 254 is taken."""
    knowledge = K
    for release, how in (("10.0", "QEMU 10.0 aborts"), ("11.1", "QEMU 11.1 refuses the device_add")):
        rel = knowledge.release(release)
        plain = parse_command_line("-machine q35 -smp 1,maxcpus=256")
        for index, refused in ((254, False), (255, True)):
            vm = _with_cpu_hotplug(plain, index)
            if refused:
                with pytest.raises(ScenarioError, match=f"{how}: 'APIC ID 255 requires x2APIC feature in CPU'"):
                    refuse(rel, vm)
            else:
                refuse(rel, vm)
        refuse(rel, _with_cpu_hotplug(parse_command_line("-machine q35 -smp 1,maxcpus=256 -cpu max"), 255))


def _with_cpu_hotplug(vm: Vm, index: int) -> Vm:
    return replace(vm, hotplug=(HotplugStep(cpu=index),))


def test_a_billion_vcpus_costs_nothing_per_vcpu() -> None:
    """The first large id is found by bisection; the limit is one computation."""
    t = Topology(cpus=10**9, maxcpus=10**9, sockets=10**9)
    assert apic_id_limit(t) == 10**9
    assert first_x2apic_index(t, t.cpus) == 255


@pytest.mark.parametrize(("cpus", "sockets", "cores", "threads", "first"), [
    (256, 1, 256, 1, 255), (195, 3, 65, 1, 130), (195, 1, 65, 3, 192), (192, 1, 64, 3, None), (255, 255, 1, 1, None),
])
def test_first_large_apic_id_is_the_first_vcpu_reaching_255(
    cpus: int, sockets: int, cores: int, threads: int, first: int | None
) -> None:
    t = Topology(cpus=cpus, maxcpus=cpus, sockets=sockets, cores=cores, threads=threads)
    brute = next((i for i in range(cpus) if t.apic_id(i) >= 255), None)
    assert first_x2apic_index(t, cpus) == brute == first


REPLAYED = [
    "-machine q35 -smp 255", "-machine q35 -smp 256", "-machine q35 -smp 256 -cpu max",
    "-machine pc -smp 195,sockets=3,cores=65", "-machine q35 -smp 8,maxcpus=256",
    "-machine q35 -smp 4 -device intel-iommu,intremap=on,eim=on", "-machine q35 -smp 8,modules=2",
    "-machine q35 -smp 2 -accel tcg -cpu host", "-machine q35 -smp 8,clusters=2",
]
"""TCG command lines (CI has no /dev/kvm) replayed on the real binaries: the fixture still holds."""


@pytest.mark.qemu
@pytest.mark.parametrize("release", ["7.2", "10.0", "11.1"])
def test_the_fixture_still_holds_on_the_real_binary(release: str) -> None:
    """7.2 from PATH (CI has it); 10.0 and 11.1 where MIGORDER_QEMU_10_0_X86_64 /
    MIGORDER_QEMU_11_1_X86_64 name a binary or wrapper. Each replayed line: the binary's verdict
    and first error line are the fixture's, and migorder's verdict agrees."""
    if release == "7.2":
        binary = qemu_binary("qemu-system-x86_64")
    else:
        var = f"MIGORDER_QEMU_{release.replace('.', '_')}_X86_64"
        binary = os.environ.get(var, "")
        if not binary:
            pytest.skip(f"set {var} to a QEMU {release} qemu-system-x86_64 (wrapper) binary to replay on it")
    fixture = {(rel, args): (accepted, message) for rel, args, accepted, message in PROBES}
    for args in REPLAYED:
        accepted, message = fixture[(release, args)]
        run = subprocess.run(
            [binary, *shlex.split(args), "-display", "none", "-nodefaults", "-S", "-qmp", "stdio"],
            input='{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n', capture_output=True, text=True,
            timeout=120, check=False,
        )
        errors = [
            line.removeprefix("qemu-system-x86_64: ") for line in run.stderr.splitlines()
            if "warning:" not in line and line.strip() and not line.startswith("Unexpected error in")
        ]
        assert (run.returncode == 0, errors[0] if errors else "") == (accepted, message), args
        assert (_verdict(release, args) == "") == accepted, args


@pytest.mark.parametrize("command", ["check", "order", "simulate", "explore", "timeline"])
def test_every_command_that_derives_an_order_refuses_with_exit_2_and_one_line(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([command, "--qemu", "10.0", "--", "qemu-system-x86_64", "-nodefaults", "-machine", "q35", "-smp", "256"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1
    assert "QEMU 10.0 aborts: 'APIC ID 255 requires x2APIC feature in CPU'" in err


def test_a_destination_that_refuses_the_apic_ids_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    """11.1 starts 256 vCPUs with -cpu max under TCG; a 7.2 destination does not."""
    args = ["qemu-system-x86_64", "-nodefaults", "-machine", "pc-q35-7.2", "-smp", "256", "-cpu", "max"]
    code = main(["check", "--from", "11.1", "--to", "7.2", "--", *args])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "REFUSES the VM: QEMU 7.2 does not start it: -smp 256: QEMU 7.2 refuses it: 'current -smp" in out
    assert main(["check", "--from", "11.1", "--to", "11.1", "--", *args]) == 0


@pytest.mark.parametrize(("release", "smp", "refusal"), [
    ("7.2", "8,modules=2", "\"Parameter 'smp.modules' is unexpected\""),
    ("7.2", "8,dies=2", "'dies not supported by this machine's CPU topology'"),
    ("11.1", "8,dies=2", "'dies > 1 not supported by this machine's CPU topology'"),
    ("11.1", "8,modules=2", "'modules > 1 not supported by this machine's CPU topology'"),
    ("11.1", "8,books=2", "'books > 1 not supported by this machine's CPU topology'"),
    ("7.2", "8,clusters=2", ""),
    ("11.1", "8,clusters=2", ""),
    ("11.1", "8,modules=1", ""),
])
def test_virt_smp_levels_as_captured(release: str, smp: str, refusal: str) -> None:
    """Captured with qemu-system-aarch64 7.2 and 11.1, -machine virt -cpu cortex-a57."""
    vm = parse_command_line(["qemu-system-aarch64", "-nodefaults", "-machine", "virt", "-smp", smp])
    if refusal:
        with pytest.raises(ScenarioError, match=re.escape(refusal)):
            refuse(K.release(release), vm)
    else:
        refuse(K.release(release), vm)


def test_modules_make_apic_ids_as_captured() -> None:
    """Captured on 11.1 (migorder capture; query-cpus-fast shows module-id 0 and 1):
    -smp 6,modules=2 is 2 modules of 3 cores, APIC ids 0,1,2,4,5,6."""
    order = derive(K.release("11.1"), parse_command_line("-nodefaults -machine q35 -smp 6,modules=2 -m 64"))
    assert [s.section.instance_id for s in order.steps if s.section.idstr == "apic"] == [0, 1, 2, 4, 5, 6]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ("-machine q35 -smp 4096 -accel kvm -cpu host", "Number of SMP cpus requested (4096)"),
        ("-machine q35 -smp 1,maxcpus=4096 -accel kvm", "Number of hotpluggable cpus requested (4096)"),
    ],
)
def test_more_vcpus_than_a_default_kvm_host_takes_is_a_note(args: str, words: str) -> None:
    """A host-dependent limit is not QEMU's refusal: judged, with the default host's words in a note."""
    from ordering.report import order_notes

    k = load_knowledge()
    order = derive(k.release("11.1"), parse_command_line(f"qemu-system-x86_64 -nodefaults {args}"))
    notes = [n for n in order_notes(order) if "exceeds the maximum cpus supported by KVM (1024)" in n]
    assert len(notes) == 1
    assert words in notes[0]
    small = derive(k.release("11.1"), parse_command_line("qemu-system-x86_64 -nodefaults -machine q35 -smp 1024 -accel kvm"))
    assert not any("supported by KVM" in n for n in order_notes(small))
