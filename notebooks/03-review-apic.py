# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 · Reviewing the APIC change: `verify`, then `synthesize`
#
# In August 2025 a patch on qemu-devel ("migration: ensure APIC is loaded prior to VFIO PCI
# devices", commit d943cef76090, in 10.2) added `MIG_PRI_APIC` and gave the LAPIC's VMSD that
# priority. A reviewer wants to know: what does it fix, what could it break, and is it the
# smallest change that does the job? The patch below carries the same edits as the commit
# (`tests/data/patches/`; the text is written for migorder's tests, not QEMU's).

# %%
import shlex
from pathlib import Path

from ordering.cli import main

PATCHES = Path("..") / "tests" / "data" / "patches"


def migorder(line: str) -> None:
    """Run `migorder LINE` as a shell would, and show its exit code."""
    print(f"$ migorder {line}")
    code = main(shlex.split(line))
    print(f"[exit {code}]")


print((PATCHES / "apic-d943cef76090.patch").read_text())

# %% [markdown]
# ## verify: before and after, over every VM
#
# `migorder verify` reads the hunks as edits to the bundled model of the base release (or,
# with `--tree`, applies them to a copy of a QEMU tree and scans it), then judges both alike:
# every rule's **universal** verdict (z3, over every VM the release can build, any
# registration order) and its verdict on a scenario, the sections that move, the enum's
# comment claims, and both cross-version directions (a patched source to an unpatched
# destination and back).

# %%
migorder(f"verify --qemu 10.1 --scenario default {PATCHES / 'apic-d943cef76090.patch'}")

# %% [markdown]
# BETTER: `apic-before-vfio` goes from tie-fragile to guaranteed over every VM, nothing gets
# worse, and the renumbering is harmless because a priority never travels on the wire. The
# cross-version lines say what a mixed fleet keeps: an unpatched source still sends the old
# order, and the destination loads what it is sent.
#
# A patch that swaps two levels by mistake is caught the same way:

# %%
migorder(f"verify --qemu 10.1 --scenario default {PATCHES / 'swap-worse.patch'}")

# %% [markdown]
# ## synthesize: the smallest change that makes every rule hold
#
# `migorder synthesize` asks z3 the reviewer's other question: over every section pair of
# every rule on 10.1, is there a priority assignment under which each rule is guaranteed for
# every VM, and what is the smallest change to get there?

# %%
migorder("synthesize --qemu 10.1")

# %% [markdown]
# The smallest change moves one VMSD and adds no level: put the APIC at an **existing** level.
# But (c) says what that costs: the LAPICs would then *share* a level with the vIOMMUs (or
# the root ports), and registration order would decide between them again. The patch's new
# level costs one enumerator and ties with nothing: the reviewer can now say why it is the
# better of the two. On 10.2, which has the patch, nothing is left to do:

# %%
migorder("synthesize --qemu 10.2")

# %% [markdown]
# Next: [04 · a rule of your own](04-new-rule.ipynb), property-tested.
