# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 · Auditing a real stream: `stream`, `check --stream`, the timeline
#
# The order migorder derives is a model; a migration stream is what QEMU really sent. This
# stream was captured with `migorder capture` from Debian's QEMU 7.2 (TCG, paused): a q35
# machine with an intel-iommu, two PCIe root ports, a virtio NIC behind the first, and a
# second NIC **hot-plugged** behind the other port before migrating
# (`tests/data/audit/README.md` has the command line).

# %%
import shlex
from dataclasses import replace
from pathlib import Path

from IPython.display import Image

from ordering.check import check, check_order
from ordering.cli import main
from ordering.model.vm import DeviceSpec, HotplugStep
from ordering.order import derive
from ordering.render import build_timeline, render_timeline
from ordering.sim import simulate
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.observed import observed_order
from ordering.sources.stream import read_stream

STREAM = Path("..") / "tests" / "data" / "audit" / "7.2-q35-iommu-hotplug-net.mig.xz"


def migorder(line: str) -> None:
    """Run `migorder LINE` as a shell would, and show its exit code."""
    print(f"$ migorder {line}")
    code = main(shlex.split(line))
    print(f"[exit {code}]")


# %% [markdown]
# ## What the stream holds
#
# `migorder stream` reads the stream itself (plain, `.xz` or `.gz`): every section header in
# order, the commands, the footers, and the JSON description QEMU appends (vmdesc). The
# priorities and kinds come from the release the stream names (its machine type).

# %%
migorder(f"stream {STREAM}")

# %% [markdown]
# The hot-plugged NIC (`0000:00:02.0:00.0/virtio-net`) comes last, after `globalstate`: it
# registered after everything QEMU created at start, and at DEFAULT nothing sorts it earlier.
#
# ## Auditing it
#
# `migorder check --stream` judges every rule on the order the stream really shows.

# %%
migorder(f"check --stream {STREAM}")

# %% [markdown]
# The stream carries sections, not `-device` properties: whether the NICs translate DMA
# through the vIOMMU (`iommu_platform=on`) is not in it, so the rules about DMA devices are
# not live in this audit. Given the command line, migorder knows it. The derived order must be
# the stream's, section for section; then the DMA rules can be judged too.

# %%
k = load_knowledge()
release = k.release("7.2")
vm = parse_command_line(
    "qemu-system-x86_64 -nodefaults -machine q35 -m 16 -smp 2,maxcpus=4 -device intel-iommu "
    "-device pcie-root-port,id=rp0,chassis=1 -device pcie-root-port,id=rp1,chassis=2 "
    "-device virtio-net-pci,bus=rp0,id=net0,disable-legacy=on,iommu_platform=on,romfile=",
    name="audited-vm")
net1 = DeviceSpec("virtio-net-pci", id="net1", bus="rp1",
                  props={"disable-legacy": "on", "iommu_platform": "on", "romfile": ""})
vm = replace(vm, hotplug=(HotplugStep(device=net1),))

real = observed_order(k, read_stream(STREAM), None)
derived = derive(release, vm)
labels = [(s.type.value, s.section.label) for s in real.steps]
print("the derived order is the stream's:", labels == [(s.type.value, s.section.label) for s in derived.steps])

for v in check(k, release, vm).verdicts:
    if v.instance is not None:
        print(f"{v.rule.id}: {v.verdict.value} by {v.by}: {v.evidence.describe() if v.evidence else ''}")

# %% [markdown]
# ## The timeline
#
# The stream's order, one lane per priority: the root ports and the vIOMMU above, then the
# long DEFAULT band in registration order, the hot-plugged NIC at the very end. The simulator
# replays it and finds nothing wrong; neither does any rule.

# %%
result = check_order(k, real)
trace = simulate(result.release, result.vm, result.order)
print(f"simulator: {len(trace.failures)} failure(s)")
Image(render_timeline(build_timeline(real, result=result, trace=trace), "png"))

# %% [markdown]
# Next: [06 · exploring a VM's order space](06-explore.ipynb), where reorders and hot-plugs
# that break a rule are searched for, and replayed in the simulator.
