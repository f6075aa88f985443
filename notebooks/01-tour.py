# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01 · A tour: order, check, diagram
#
# During live migration the destination QEMU loads each device's state in the order the
# **source** sent it: by phase, then by `MIG_PRI` priority (higher first), then by
# registration order. Some devices must be loaded before others (a root port before the
# vIOMMU that looks devices up by bus number, a LAPIC before the VFIO device whose MSI-X
# targets it). migorder derives the exact order from a QEMU command line and a release, and
# judges every known must-load-before rule against it.
#
# This tour uses the bundled `default` VM: a q35 machine with an intel-iommu, two VFIO NICs
# behind PCIe root ports, virtio-mem, and 4 of 8 vCPUs.

# %%
import shlex

from IPython.display import Image

from ordering.check import check
from ordering.cli import main
from ordering.render import build_diagram, build_timeline, render_diagram, render_timeline
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario


def migorder(line: str) -> None:
    """Run `migorder LINE` as a shell would, and show its exit code."""
    print(f"$ migorder {line}")
    code = main(shlex.split(line))
    print(f"[exit {code}]")


migorder("scenarios")

# %% [markdown]
# ## The order
#
# `migorder order` prints what a QEMU 10.0 destination loads, step by step: the phase
# (`setup`, `iterate`, `complete`), the section type, the priority, the `section_id` (its
# registration order) and the section's name. Iterable sections (RAM, VFIO's device state)
# come as START/PART/END; everything else is one FULL section in the complete phase.

# %%
migorder("order --qemu 10.0")

# %% [markdown]
# Root ports (`MIG_PRI_PCI_BUS`) and the vIOMMU (`MIG_PRI_IOMMU`) load first; everything else
# is `MIG_PRI_DEFAULT` and loads in registration order: the machine's own devices, the vCPUs
# with their LAPICs, then each `-device` in command-line order.

# %% [markdown]
# ## The check
#
# `migorder check` judges each rule on that order. A rule is **guaranteed** when a phase or a
# priority puts its sections in the right order, **tie-fragile** when only registration order
# does (a `-device` reorder or a hot-plug can break it), **violated** when the order is wrong,
# **not live** when the VM has nothing it talks about. Every verdict carries its evidence: the
# two sections, their priorities, the tie, the phase, the rule's source.

# %%
migorder("check --qemu 10.0")

# %% [markdown]
# Exit code 1: there are findings. QEMU 10.0 also refuses to migrate VFIO behind a vIOMMU (the
# blocker is quoted in QEMU's words). The LAPICs come before the VFIO devices only because they
# registered first: `apic-before-vfio` is tie-fragile. QEMU 10.2 added `MIG_PRI_APIC`:

# %%
k = load_knowledge()
vm = read_scenario(k.scenarios["default"])
for release in ("10.0", "10.2"):
    result = check(k, k.release(release), vm)
    for v in result.verdicts:
        if v.rule.id == "apic-before-vfio":
            print(release, v.verdict.value, "by", v.by, "-", v.evidence.describe() if v.evidence else "")
            break

# %% [markdown]
# ## The diagram
#
# `migorder diagram` draws the same check: one band per `MIG_PRI` level (highest on top), one
# column per phase, one fill per device kind, and an arrow per rule instance coloured by its
# verdict (green guaranteed, orange dashed tie-fragile, red violated). Within a band the boxes
# stand in registration order, which is what decides between them.

# %%
result = check(k, k.release("10.0"), vm)
Image(render_diagram(build_diagram(result), "png"))

# %% [markdown]
# The same in plain text, for a mail:

# %%
print(render_diagram(build_diagram(result), "ascii").decode())

# %% [markdown]
# ## The timeline
#
# The timeline shows the order itself, top to bottom, one lane per priority, with each
# tie-fragile (T) or violated (V) rule marked where it is decided and linked to the section
# that must load first.

# %%
Image(render_timeline(build_timeline(result.order, result=result), "png"))

# %% [markdown]
# Next: [02 · the six hazards](02-hazards.ipynb), each reproduced in the simulator.
