# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 02 · The six hazards: reproduced, explained, pictured
#
# Every `MIG_PRI` level QEMU has was added after a load-order bug. migorder knows six of them
# as rules (`models/rules.toml`, each with its commit or mail) and as device behaviours in the
# simulator (what each device's load reads from the others). Each hazard below has a bundled
# scenario; for each we
#
# 1. **reproduce** it: replay a wrong order in the simulator and see the failure, in QEMU's
#    words where QEMU prints any;
# 2. **explain** it: the rule it breaks, its mechanism and source;
# 3. **show** that QEMU's own order avoids it (or on which release it does not);
# 4. **picture** it: the timeline, with the failure (F) linked to what should have loaded first.

# %%
from IPython.display import Image, Markdown, display

from ordering.check import check_order
from ordering.order import derive
from ordering.render import build_timeline, render_timeline
from ordering.sim import move, simulate
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario

k = load_knowledge()

# scenario, rule, the release whose own order shows it (or None), the move that shows it
HAZARDS = [
    ("hazard-iommu-discarded", "virtio-mem-before-viommu", "7.2", None),
    ("hazard-posted-remapped", "apic-before-vfio", "10.1", None),
    ("hazard-bus-before-viommu", "pci-bus-before-viommu", None, ("iommu-intel", "0000:00:01.0/pcie-root-port")),
    ("hazard-dma-before-viommu", "viommu-before-dma-devices", None, ("0000:00:01.0/virtio-net", "iommu-intel")),
    ("hazard-its-before-gicv3", "gicv3-before-its", None, ("arm_gicv3_its", "arm_gicv3")),
    ("hazard-msi-before-its", "its-before-msi-devices", None, ("0000:00:01.0/vfio", "arm_gicv3_its")),
]


def reproduce(name: str, rule_id: str, release: str | None, moved: tuple[str, str] | None) -> None:
    vm = read_scenario(k.scenarios[name])
    rule = k.rule(rule_id)
    rel = k.release(release or "11.1")
    display(Markdown(f"## {name}\n\n{vm.description}\n\n**Rule** `{rule.id}`: {rule.title} "
                     f"({rule.consequence.value}). {rule.mechanism}\n\n*Source:* {'; '.join(rule.provenance)}"))
    order = derive(rel, vm)
    how = f"QEMU {rel.name}'s own order"
    if moved is not None:
        order = move(order, moved[0], before=moved[1])
        how = f"QEMU {rel.name}'s order with {moved[0]} moved before {moved[1]}"
    trace = simulate(rel, vm, order)
    print(f"Reproduced on {how}: {len(trace.failures)} failure(s)")
    for f in trace.failures:
        print(f"  {f.consequence.value.upper()} {f.section.label}: {f.message}")
        print(f"      needs {f.needs.label} loaded first")
    result = check_order(k, order)
    for v in result.verdicts:
        if v.rule.id == rule_id:
            print(f"  the rule on this order: {v.verdict.value}")
            break
    fixed = [r for r in sorted(k.releases.values(), key=lambda r: r.version)
             if not simulate(r, vm, derive(r, vm)).failures]
    print("QEMU's own order shows no failure on: " + (", ".join(r.name for r in fixed) or "none"))
    display(Image(render_timeline(build_timeline(order, result=result, trace=trace), "png")))


# %% [markdown]
# ### (a) the vIOMMU replays a mapping into memory virtio-mem has not plugged yet
#
# A 7.2 source sends virtio-mem's plugged bitmap in its DEFAULT section, after the vIOMMU:
# `MIG_PRI_VIRTIO_MEM` sits on a VMSD that is only ever nested, so it never orders the stream.
# From 8.0 the bitmap travels early, in the setup phase.

# %%
reproduce(*HAZARDS[0])

# %% [markdown]
# ### (b) VFIO's MSI-X set up before the LAPIC it targets
#
# A vCPU hot-plugged after the VFIO device registers its LAPIC after it; both are DEFAULT
# until 10.2's `MIG_PRI_APIC`. Degraded, with no message: the interrupt goes remapped, not
# posted.

# %%
reproduce(*HAZARDS[1])

# %% [markdown]
# ### (c) the vIOMMU looks devices up before the root port holding their bus number
#
# No bundled release's own order does this (`MIG_PRI_PCI_BUS` > `MIG_PRI_IOMMU` since 2.12):
# we move the section by hand, as a reordering bug or a stream rewriter would.

# %%
reproduce(*HAZARDS[2])

# %% [markdown]
# ### (d) a virtio device maps its rings through a vIOMMU that is not loaded

# %%
reproduce(*HAZARDS[3])

# %% [markdown]
# ### (e) the ITS restores its tables before the redistributors

# %%
reproduce(*HAZARDS[4])

# %% [markdown]
# ### (f) VFIO's MSI-X set up through an ITS whose tables are not restored
#
# What 10.0's multifd load thread could do: load the VFIO config concurrently with the main
# channel's FULL sections (`migorder check --multifd` says so on 10.0).

# %%
reproduce(*HAZARDS[5])

# %% [markdown]
# Each failure is explained by exactly one rule, and each rule has a hazard the simulator
# shows: the two descriptions of QEMU (declared rules, device behaviours) keep each other
# honest. Notebook [04](04-new-rule.ipynb) property-tests that agreement.
