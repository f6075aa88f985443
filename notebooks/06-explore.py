# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 06 · Exploring a VM's order space, and replaying the counterexample
#
# `check` judges the one order a VM has today. But a VM's order changes without anyone
# touching `MIG_PRI`: a `-device` listed elsewhere, a vCPU or a device hot-plugged later, a
# machine type kept from an older release, multifd's VFIO load thread. `migorder explore`
# walks that **order space** (an explicit-state model checker with partial-order reduction)
# and judges every rule and runs the simulator on each order it reaches: PROVED over the
# space covered, or the shortest COUNTEREXAMPLE, with the steps that lead to it.
#
# The VM: q35, a VFIO NIC whose MSI-X the guest aims at vCPU 2, and 2 of 4 vCPUs at start,
# so vCPU 2 does not exist yet (the `hazard-posted-remapped` scenario without its hot-plug).

# %%
from dataclasses import replace

from IPython.display import Image

from ordering.check import check_order
from ordering.explore import explore
from ordering.order_space import order_space
from ordering.render import build_timeline, render_timeline
from ordering.sim import simulate
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario

k = load_knowledge()
vm = replace(read_scenario(k.scenarios["hazard-posted-remapped"]), hotplug=(), name="posted-interrupts")
print(" ".join(f"-device {d.driver},id={d.id}" for d in vm.devices), f"-smp {vm.topology.cpus},maxcpus={vm.topology.maxcpus}")
print("guest:", dict(vm.guest))


def show(exploration):
    print(exploration.space.describe())
    print(f"{exploration.states} distinct orders judged and simulated")
    for v in exploration.verdicts:
        print(f"  {v.outcome.value.upper():<15} {v.subject}")
        for step in v.steps:
            print(f"        {step}")


# %% [markdown]
# ## The space on QEMU 10.1
#
# Any `-device` order that respects bus parents, up to one hot-plug step, the machine types
# the VM may carry.

# %%
rel = k.release("10.1")
space = order_space(rel, rel, vm, releases=list(k.releases.values()), hotplug_bound=1)
exploration = explore(space, k.rules)
show(exploration)

# %% [markdown]
# As started, every LAPIC registers before the VFIO device: `check` on this VM would call
# `apic-before-vfio` tie-fragile and be done. The explorer finds the one step that breaks it:
# hot-plug vCPU 2. Its LAPIC registers after the NIC and, both at `MIG_PRI_DEFAULT` on 10.1,
# loads after it. The simulator's own failure class counts as a counterexample too.
#
# ## Replaying the counterexample in the simulator
#
# Each counterexample comes with a witness: the VM after its steps and its load order. The
# simulator replays that order over the device behaviours: what KVM reads when VFIO's config
# load sets up the NIC's MSI-X.

# %%
witness = exploration.witnesses["apic-before-vfio"]
print("steps:", [f"{m.kind} {m.target}" for m in witness.moves])
trace = simulate(rel, witness.vm, witness.order)
for f in trace.failures:
    print(f"{f.consequence.value.upper()} {f.section.label}: {f.message}")
    print(f"    needs {f.needs.label} loaded first")

# %%
result = check_order(k, witness.order)
Image(render_timeline(build_timeline(witness.order, result=result, trace=trace), "png"))

# %% [markdown]
# ## The same space on QEMU 10.2
#
# 10.2's `MIG_PRI_APIC` (notebook [03](03-review-apic.ipynb)) puts every LAPIC above DEFAULT,
# whenever it registers:

# %%
rel = k.release("10.2")
show(explore(order_space(rel, rel, vm, releases=list(k.releases.values()), hotplug_bound=1), k.rules))

# %% [markdown]
# PROVED, over the space said on the first line. A rule with no live instance anywhere in the
# space is VACUOUS, not proved: nothing was there to break. From a shell, the same walk is
# `migorder explore SCENARIO --qemu R` (with `--multifd`, `--postcopy`, `--from`/`--to`,
# `--chain` for the other freedoms a migration has).
