"""Theorem: MIG_PRI_VIRTIO_MEM never guarantees that virtio-mem's plugged bitmap loads before
the vIOMMU; only early_setup (8.0+, machine types newer than 7.2) does, by phase.

The priority sits on the nested 'virtio-mem-device' VMSD only (hw/virtio/virtio-mem.c), so the
bitmap loads at DEFAULT inside 'virtio-mem', after the vIOMMU's MIG_PRI_IOMMU. Prints the
counterexample for each bundled release where QEMU migrates such a VM at all (10.0-10.2 refuse
VFIO behind a vIOMMU); exits 0 when each of those has one.
"""

from __future__ import annotations

import sys

from ordering.smt import prove
from ordering.sources.models import load_knowledge


def main() -> int:
    """Show the counterexample on every bundled release."""
    k = load_knowledge()
    rule = k.rule("virtio-mem-before-viommu")
    ok = True
    for rel in sorted(k.releases.values(), key=lambda r: r.version):
        proof = prove(rel, rule)
        print(proof.describe())
        if proof.blocked:  # 10.0-10.2 refuse VFIO behind a vIOMMU: nothing to order
            continue
        ok &= not proof.proved and proof.counterexample is not None
        ok &= proof.counterexample is not None and proof.counterexample.first.vmsd == "virtio-mem"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
