"""Theorem: the source decides the order. A QEMU 10.1 source migrating to a 10.2 destination
breaks "every LAPIC before every VFIO config" (the 10.1 source sorts both at MIG_PRI_DEFAULT),
though 10.2 on both sides proves it; a 10.2 source to a 10.1 destination keeps it.

Exits 0 when 10.1 → 10.2 has a counterexample and 10.2 → 10.1 and 10.2 → 10.2 are PROVED, for
any number of vCPUs, VFIO devices and hot-plug steps.
"""

from __future__ import annotations

import sys

from ordering.engines.families import x86_vfio
from ordering.engines.smt_space import prove_family
from ordering.sources.models import load_knowledge

EXPECTED = {("10.1", "10.2"): "counterexample", ("10.2", "10.1"): "proved", ("10.2", "10.2"): "proved"}


def main() -> int:
    """Each migration direction, with its expected outcome."""
    k = load_knowledge()
    rule = k.rule("apic-before-vfio")
    ok = True
    for (src, dst), want in EXPECTED.items():
        proof = prove_family(x86_vfio(k.release(src), k.release(dst)), rule)
        print(proof.describe())
        ok &= proof.outcome.value == want
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
