"""Theorem: for any number of vCPUs (cold or hot-plugged), VFIO devices (cold or hot-plugged)
and hot-plug steps, QEMU 10.2 and later load every LAPIC before every VFIO config; before
10.2 the claim fails, and z3 gives the smallest VM that breaks it.

10.2 put the APIC at MIG_PRI_APIC (commit d943cef76090); before, both sit at MIG_PRI_DEFAULT
and one vCPU hot-plugged after one VFIO device loads its LAPIC last. Exits 0 when the
theorem holds from 10.2 on and the minimal counterexample below 10.2 is that VM.
"""

from __future__ import annotations

import sys

from ordering.engines.families import x86_vfio
from ordering.engines.smt_space import prove_family
from ordering.sources.models import load_knowledge

MINIMAL = {"cold vCPUs": 1, "hot-plugged vCPUs": 1, "VFIO devices (-device)": 1, "hot-plug steps": 1}
"""The smallest VM that breaks the claim before 10.2 (every other count 0)."""


def main() -> int:
    """Prove or refute the claim on every bundled release."""
    k = load_knowledge()
    rule = k.rule("apic-before-vfio")
    ok = True
    for rel in sorted(k.releases.values(), key=lambda r: r.version):
        proof = prove_family(x86_vfio(rel), rule)
        print(proof.describe())
        if rel.version >= (10, 2):
            ok &= proof.outcome.value == "proved"
        else:
            counts = {name: n for name, n in proof.counts if n}
            ok &= proof.outcome.value == "counterexample" and counts == MINIMAL
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
