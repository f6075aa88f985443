"""Reference VMs for judging one rule across releases (``explain``, ``history``)."""

from __future__ import annotations

from dataclasses import replace

from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.model.rule import Rule
from ordering.model.vm import Vm
from ordering.sources.cmdline import parse_command_line
from ordering.sources.scenario import read_scenario

ARM_REFERENCE = (
    "qemu-system-aarch64 -nodefaults -machine virt,gic-version=3,its=on -accel kvm -cpu host "
    "-smp 2 -m 1G -device pcie-root-port,id=rp0,chassis=1 "
    "-device vfio-pci,host=0000:01:00.0,id=nic0,bus=rp0 -device virtio-net-pci,id=net0"
)

NOTE = (
    "7.2 reference VMs turn on its experimental VFIO migration (vfio-pci x-enable-migration=on); "
    "every release is judged without multifd device-state transfer (migorder check --multifd)"
)


def reference_vm(k: Knowledge, rule: Rule, release: Release | None = None) -> Vm:
    """The VM a rule is judged on when no VM is given.

    The default scenario, or an ARM virt VM (KVM) with GICv3, ITS, a VFIO device and a virtio
    device for aarch64 rules. Before 8.0, VFIO migration was experimental and off unless
    ``x-enable-migration=on``; the reference VM turns it on, so that 7.2's order is judged
    rather than its blocker reported.
    """
    if rule.arch == "aarch64":
        vm = parse_command_line(
            ARM_REFERENCE, where="ARM reference VM", name="arm-reference", require_nodefaults=True
        )
    else:
        vm = read_scenario(k.scenarios["default"])
    if release is not None and release.version < (8, 0):
        devices = tuple(
            replace(d, props={**d.props, "x-enable-migration": "on"}) if d.driver == "vfio-pci" else d
            for d in vm.devices
        )
        vm = replace(vm, devices=devices)
    return vm
