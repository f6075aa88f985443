"""Ground-truth section orders captured from real QEMU binaries, as VMs migorder can derive."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from ordering.model.vm import HotplugStep, Vm
from ordering.sources.cmdline import device_from_text, parse_command_line

CAPTURED = Path(__file__).parent / "data" / "captured"


def load(path: Path) -> dict[str, Any]:
    """The parsed ``*.order.json``."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def release_of(data: dict[str, Any]) -> str:
    """``"7.2.22"`` → ``"7.2"``."""
    return ".".join(str(data["qemu"]).split(".")[:2])


def vm_of(data: dict[str, Any]) -> Vm:
    """The VM of a capture: its command line plus its QMP hot-plug steps."""
    vm = parse_command_line(data["command"])
    steps: list[HotplugStep] = []
    topo = vm.topology
    for h in data.get("hotplug", []):
        args = dict(h["arguments"])
        if h.get("execute") == "device_del":
            steps.append(HotplugStep(unplug=str(args["id"])))
            continue
        driver = str(args.pop("driver"))
        if driver.endswith("-cpu"):
            index = (
                (int(args.get("socket-id", 0)) * topo.dies + int(args.get("die-id", 0))) * topo.cores
                + int(args.get("core-id", 0))
            ) * topo.threads + int(args.get("thread-id", 0))
            steps.append(HotplugStep(cpu=index))
        else:
            text = ",".join([driver, *(f"{k}={v}" for k, v in args.items())])
            steps.append(HotplugStep(device=device_from_text(text, "hotplug")))
    return replace(vm, hotplug=tuple(steps))


def expected(data: dict[str, Any], *, full_only: bool) -> list[tuple[str, int, str, int]]:
    """``(type, section_id, idstr, instance_id)`` in stream order."""
    return [
        (s["type"], s["section_id"], s["idstr"], s["instance_id"])
        for s in data["sections"]
        if not full_only or s["type"] == "FULL"
    ]


Step = tuple[str, int, str, int]
"""(type, section_id, idstr, instance_id) of one section in stream order."""


def collapse_parts(steps: list[Step]) -> list[Step]:
    """A run of equal steps counts once: how many PART sections RAM takes depends on the
    host's load, not on the order."""
    out: list[Step] = []
    for s in steps:
        if not out or out[-1] != s:
            out.append(s)
    return out
