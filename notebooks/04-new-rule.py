# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 04 · Writing a new rule and property-testing it with the kit
#
# Say you suspect that a virtio NIC must be loaded after the vIOMMU and after every LAPIC.
# migorder has no kind for virtio NICs: you declare one, write the two rules in the same TOML
# form as `models/rules.toml`, and test them three ways: on one VM (`check`), on many VMs
# drawn by hypothesis (`ordering.strategies`), and over every VM of a release (z3, through
# `ordering.testing`).

# %%
import tempfile
from pathlib import Path

from hypothesis import Phase, given, settings

from ordering import strategies as ms
from ordering import testing
from ordering.check import check
from ordering.errors import InvalidArgument
from ordering.model.rule import Consequence, Rule
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.user_rules import knowledge_with_rule_file
from ordering.space import OrderSpace
from ordering.verdict import Verdict

MY_RULES = '''
[kind.virtio-net]
description = "a virtio network device"
devices = ["virtio-net-pci"]

[[rule]]
id = "viommu-before-virtio-net"
title = "the vIOMMU loads before every virtio NIC"
first = "viommu"
then = "virtio-net"
consequence = "error"
symptom = "(my hypothesis) the rings are mapped through a vIOMMU at reset"
provenance = ["my notes, 2026-12-04"]

[[rule]]
id = "apic-before-virtio-net"
title = "every LAPIC loads before a virtio NIC"
first = "apic"
then = "virtio-net"
consequence = "degraded"
symptom = "(my hypothesis) interrupts aimed at a vCPU whose LAPIC is at reset"
provenance = ["my notes, 2026-12-04"]
'''
folder = Path(tempfile.mkdtemp(prefix="migorder-rules-"))
rule_file = folder / "my-rules.toml"
rule_file.write_text(MY_RULES)

k = knowledge_with_rule_file(load_knowledge(), rule_file)  # the kind in every release, one call
print([r.id for r in k.rules][-2:])

# %% [markdown]
# A rule whose side names no kind migorder knows would never be live, and so never fail: it
# is an error instead, saying how to add the kind.

# %%
typo = Rule("apic-before-nic", "LAPICs before NICs", "apic", "virtio-nic", "always",
            Consequence.DEGRADED, "", "", ("me",))
try:
    load_knowledge().with_rules(typo)
except InvalidArgument as exc:
    print(exc)

# %% [markdown]
# ## On one VM

# %%
vm = parse_command_line("-nodefaults -machine q35 -smp 2,maxcpus=4 -device intel-iommu "
                        "-device virtio-net-pci,id=net0", name="my-vm")
for release in ("10.1", "10.2"):
    for v in check(k, k.release(release), vm).verdicts:
        if v.rule.id.endswith("virtio-net"):
            print(f"{release}: {v.rule.id}: {v.verdict.value} by {v.by}")

# %% [markdown]
# Guaranteed on 10.2 (the vIOMMU's and the APIC's own levels are above DEFAULT); on 10.1 the
# LAPICs only happen to register before the NIC. Is there a VM where that goes wrong?
#
# ## On many VMs: hypothesis
#
# `ms.vms(machine=..., devices=...)` draws q35 VMs that hold a virtio NIC (with vIOMMUs, root
# ports, VFIO, virtio-mem, hot-plugged vCPUs); `ms.release_names()` the bundled releases. A
# failure shrinks to a small VM.

# %%
@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          phases=[Phase.generate, Phase.shrink])
@given(ms.vms(machine="q35", devices=["virtio-net-pci"]), ms.release_names())
def test_my_rules_never_violated(vm, release):
    for v in check(k, k.release(release), vm).verdicts:
        if v.rule.id.endswith("virtio-net"):
            assert v.verdict is not Verdict.VIOLATED, f"{v.rule.id} on {release}: {v.evidence.describe()}"


try:
    test_my_rules_never_violated()
except AssertionError as exc:
    print(exc)
    print("\n".join(getattr(exc, "__notes__", [])))

# %% [markdown]
# Shrunk to one vCPU hot-plugged after start on an older release: its LAPIC registers after
# the NIC and, both at DEFAULT, loads after it. The vIOMMU rule held on every drawn VM.
#
# ## Over every VM: z3
#
# `testing.no_order_breaks_a_rule` without a VM asks z3 for every VM of the release, any
# registration order: a proof, or a counterexample.

# %%
for release in ("10.1", "10.2"):
    rel = k.release(release)
    for rule_id in ("viommu-before-virtio-net", "apic-before-virtio-net"):
        try:
            testing.no_order_breaks_a_rule(OrderSpace(rel, rel), knowledge=k, rules=[k.rule(rule_id)])
            print(f"{release}: {rule_id}: holds for every VM")
        except testing.PropertyFailed as exc:
            print(f"{release}: {str(exc).splitlines()[0]}")

# %% [markdown]
# ## The rules in your own test suite
#
# The same properties run from pytest. `ms.rule_bases(path=...)` draws subsets of your rule
# file, and in a QEMU checkout the plugin judges the tree with your rules as well:
#
#     pytest --migorder-tree=. --migorder-baseline=10.2 --migorder-rules=my-rules.toml

# %%
@settings(max_examples=10, deadline=None, derandomize=True, database=None)
@given(ms.rule_bases(path=rule_file))
def test_any_subset_of_my_rules_makes_no_cycle(rules):
    result = check(k, k.release("10.2"), vm)
    assert not result.kind_cycles


test_any_subset_of_my_rules_makes_no_cycle()
print("no subset of my rules makes a cycle with QEMU's")

# %% [markdown]
# Next: [05 · auditing a real stream](05-audit-stream.ipynb).
