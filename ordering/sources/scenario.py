"""Read a scenario TOML: a named VM with its QEMU command line, hot-plugs and guest state.

```toml
description = "q35 with a vIOMMU and VFIO behind a root port"
command = "qemu-system-x86_64 -machine q35 -smp 4,maxcpus=8 -device intel-iommu ..."
[[hotplug]]
cpu = 4                           # a vCPU index below maxcpus
[[hotplug]]
device = "e1000e,id=hp0,bus=rp2"  # device_add arguments
[[hotplug]]
unplug = "hp0"                    # device_del, completed (a PCI device's needs the guest's
                                  # acknowledgement: under -S QEMU keeps it, and it migrates)
any-order = true                  # optional on any step: the marked steps may run in any
                                  # order among themselves (`migorder explore` tries each)
[guest]                           # guest-state knobs for the simulator
[release_globals]                 # -global DRIVER.PROP=VALUE added on one release only
"7.2" = ["vfio-pci.x-enable-migration=on"]
```
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ordering.errors import MigOrderError, ScenarioError
from ordering.model.vm import DeviceSpec, HotplugStep, Vm
from ordering.sources._toml import TomlDoc, root
from ordering.sources.cmdline import (
    device_from_text,
    parse_command_line,
    parse_global,
    with_globals,
)

_KEYS = frozenset({"description", "command", "hotplug", "guest", "release", "migration", "release_globals"})


def read_scenario(path: Path) -> Vm:
    """Read the scenario at ``path``.

    >>> from ordering.sources.models import load_knowledge
    >>> vm = read_scenario(load_knowledge().scenarios["default"])
    >>> vm.machine
    'q35'
    """
    doc = TomlDoc.read(path, ScenarioError)
    t = root(doc)
    t.reject_unknown(_KEYS)
    where = doc.where("command")
    try:
        vm = parse_command_line(
            t.text("command"), where=f"{where} (command)", name=path.stem, require_nodefaults=True
        )
    except ScenarioError:
        raise
    except MigOrderError as exc:  # pragma: no cover - parse_command_line raises ScenarioError
        raise ScenarioError(where, str(exc)) from None
    steps: list[HotplugStep] = []
    for h in t.tables("hotplug"):
        h.reject_unknown({"cpu", "device", "unplug", "any-order"})
        any_order = h.flag("any-order", False)
        given = [k for k in ("cpu", "device", "unplug") if k in h.data]
        if len(given) != 1:
            raise doc.error(h.path, "hotplug: expected exactly one of cpu, device, unplug")
        if "cpu" in h.data:
            if h.integer("cpu") < 0:
                raise ScenarioError(h.where("cpu"), f"cpu: expected a vCPU index of 0 or more, got {h.integer('cpu')}")
            steps.append(HotplugStep(cpu=h.integer("cpu"), any_order=any_order))
        elif "device" in h.data:
            steps.append(
                HotplugStep(device=device_from_text(h.text("device"), h.where("device")), any_order=any_order)
            )
        else:
            steps.append(HotplugStep(unplug=h.text("unplug"), any_order=any_order))
    guest = t.table("guest").data
    mig = t.table("migration")
    mig.reject_unknown({"multifd", "multifd-compression", "mapped-ram"})
    # -global migration.PROP=VALUE on the command line, then the [migration] table
    migration = dict(vm.migration)
    if mig.flag("multifd", False):
        migration["multifd"] = "on"
    if "multifd-compression" in mig.data:
        migration["multifd-compression"] = mig.text("multifd-compression")
    if mig.flag("mapped-ram", False):
        migration["mapped-ram"] = "on"
    rg = t.table("release_globals")
    devices_for: dict[str, tuple[DeviceSpec, ...]] = {}
    for release in rg.names():
        globals_ = [parse_global(g, rg.where(release)) for g in rg.texts(release)]
        devices_for[release] = tuple(with_globals(d, globals_) for d in vm.devices)
    return replace(
        vm,
        devices_for=devices_for,
        hotplug=tuple(steps),
        guest=dict(guest),
        migration=migration,
        source=str(path),
        description=t.text("description", ""),
        guest_source=doc.where("guest") if "guest" in t.data else "",
    )
