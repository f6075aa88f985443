"""Reference VMs for judging one rule across releases (``explain``, ``history``)."""

from __future__ import annotations

from ordering.model.knowledge import Knowledge
from ordering.model.rule import Rule
from ordering.model.vm import Vm
from ordering.sources.cmdline import parse_command_line
from ordering.sources.scenario import read_scenario

ARM_REFERENCE = (
    "qemu-system-aarch64 -machine virt,gic-version=3,its=on -cpu max -smp 2 -m 1G "
    "-device pcie-root-port,id=rp0,chassis=1 -device virtio-net-pci,bus=rp0,id=net0"
)


def reference_vm(k: Knowledge, rule: Rule) -> Vm:
    """The VM a rule is judged on when no VM is given: the default scenario, or an ARM virt
    VM with GICv3, ITS and a virtio PCI device for aarch64 rules."""
    if rule.arch == "aarch64":
        return parse_command_line(ARM_REFERENCE, where="ARM reference VM", name="arm-reference")
    return read_scenario(k.scenarios["default"])
