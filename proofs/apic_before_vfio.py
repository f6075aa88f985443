"""Theorem: from QEMU 10.2 on, every LAPIC loads before every VFIO device's config, in every VM.

Before 10.2 both sit at MIG_PRI_DEFAULT and only registration order keeps the LAPIC first; a
vCPU hot-plugged after the VFIO device breaks it (commit d943cef76090). Prints PROVED or the
counterexample for each bundled release; exits 0 when the theorem holds where it should.
"""

from __future__ import annotations

import sys

from ordering.smt import prove
from ordering.sources.models import load_knowledge


def main() -> int:
    """Check the theorem on every bundled release."""
    k = load_knowledge()
    rule = k.rule("apic-before-vfio")
    ok = True
    for rel in sorted(k.releases.values(), key=lambda r: r.version):
        proof = prove(rel, rule)
        print(proof.describe())
        ok &= proof.proved == (rel.version >= (10, 2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
