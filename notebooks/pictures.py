# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Pictures of QEMU's load order
#
# Three pictures for reviewers: the **dependency diagram** (which rule wants what loaded
# first, in `MIG_PRI` bands), the **timeline** (the order a destination really loads in, with
# failures linked to their cause) and the **history** (every rule on every bundled release).
# Run as `python notebooks/pictures.py`; set `PICTURES_DIR` to choose where the files go
# (default: a fresh temporary directory; the README's copies live in `docs/images/`).

# %%
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from ordering.check import check
from ordering.commands.history_vms import NOTE, reference_vm
from ordering.model.vm import HotplugStep
from ordering.render import (
    build_diagram,
    build_history,
    build_timeline,
    render_diagram,
    render_history,
    render_timeline,
)
from ordering.sim import simulate
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario

out = Path(os.environ.get("PICTURES_DIR") or tempfile.mkdtemp(prefix="migorder-pictures-"))
out.mkdir(parents=True, exist_ok=True)
k = load_knowledge()
default = read_scenario(k.scenarios["default"])


def save(name: str, data: bytes) -> Path:
    path = out / name
    path.write_bytes(data)
    print(f"{path}  {len(data) / 1024:.0f} KiB")
    return path


# %% [markdown]
# ## 1. The dependency diagram
#
# The default scenario (q35, intel-iommu, two VFIO NICs behind root ports, virtio-mem) on a
# QEMU 10.0 source. 10.0 has no `MIG_PRI_APIC`: the LAPICs sit in the DEFAULT band with the
# VFIO devices, so `apic-before-vfio` holds only by registration order (orange, dashed).

# %%
t0 = time.perf_counter()
result = check(k, k.release("10.0"), default)
diagram = build_diagram(result)
save("diagram-default-10.0.png", render_diagram(diagram, "png"))
print(f"rendered in {time.perf_counter() - t0:.2f} s")
print(render_diagram(diagram, "ascii").decode())

# %% [markdown]
# ## 2. The timeline
#
# Hot-plug a vCPU after start and the tie is lost: its LAPIC registers after the VFIO devices
# and loads after them. `check` says the rule is violated for every VFIO device; the simulator
# says where it bites: in the `hazard-posted-remapped` scenario the guest aims the VFIO NIC's
# MSI at the hot-plugged vCPU, so at config load KVM finds no loaded LAPIC for it and the IRTE
# falls back from posted to remapped mode. The timeline marks that step (F1, the simulator)
# and the rule it breaks (V1, `check`), each linked to the LAPIC that should have come first;
# a rule that holds only by registration order would be marked T (orange, dashed).

# %%
hot = dataclasses.replace(default, name="default + hot-plugged vCPU 4",
                          hotplug=(HotplugStep(cpu=4),))
hot_result = check(k, k.release("10.0"), hot)
for v in hot_result.verdicts:
    if v.rule.id == "apic-before-vfio":
        print(v.verdict.value, "-", v.evidence.describe() if v.evidence else "")

hazard = read_scenario(k.scenarios["hazard-posted-remapped"])
trace = simulate(k.release("10.0"), hazard)
timeline = build_timeline(trace.order, result=check(k, k.release("10.0"), hazard), trace=trace)
save("timeline-hotplug-cpu-10.0.png", render_timeline(timeline, "png"))
for mark in timeline.marks:
    print(mark.tag, mark.text)

# %% [markdown]
# ## 3. The history
#
# Every rule on every bundled release, judged on its reference VM (the default scenario; an
# ARM virt VM with GICv3 + ITS for the ARM rules). `MIG_PRI_APIC` (10.2) turns the
# tie-fragile `apic-before-vfio` into a priority guarantee.

# %%
history = build_history(k, reference_vm, NOTE)
save("history.png", render_history(history, "png"))
print(render_history(history, "ascii").decode())
