"""Theorem: the rules QEMU's priorities were introduced for hold for every VM, on every bundled
release: bridges before the vIOMMU (MIG_PRI_PCI_BUS), bridges before the devices behind them,
the vIOMMU before DMA devices (MIG_PRI_IOMMU), the GICv3 before the ITS (MIG_PRI_GICV3) and the
ITS before MSI devices (MIG_PRI_GICV3_ITS). Exits 0 when all are PROVED.
"""

from __future__ import annotations

import sys

from ordering.smt import prove_all
from ordering.sources.models import load_knowledge

RULES = (
    "pci-bus-before-viommu",
    "pci-bus-before-dma-devices",
    "viommu-before-dma-devices",
    "gicv3-before-its",
    "its-before-msi-devices",
)


def main() -> int:
    """Prove every listed rule on every bundled release."""
    k = load_knowledge()
    releases = sorted(k.releases.values(), key=lambda r: r.version)
    proofs = prove_all(releases, [k.rule(r) for r in RULES])
    for proof in proofs:
        print(proof.describe())
    return 0 if all(p.proved and p.pairs for p in proofs) else 1


if __name__ == "__main__":
    sys.exit(main())
