"""Theorem: for any number of PCI bridges and root ports, vIOMMUs and DMA devices (cold or
hot-plugged) and hot-plug steps, every bundled release loads every bridge (whose
PCI_SECONDARY_BUS gives the bus numbers the vIOMMU looks context entries up by) before every
vIOMMU and before every translated DMA device, and every vIOMMU before those devices.
MIG_PRI_PCI_BUS > MIG_PRI_IOMMU > MIG_PRI_DEFAULT decide it; registration never can.
Exits 0 when every one is PROVED.
"""

from __future__ import annotations

import sys

from ordering.engines.families import pci_viommu
from ordering.engines.smt_space import prove_family
from ordering.sources.models import load_knowledge

RULES = (
    ("pci-bus-before-viommu", "pci-bridge", "viommu"),
    ("pci-bus-before-dma-devices", "pci-bridge", "dma-pci"),
    ("viommu-before-dma-devices", "viommu", "dma-pci"),
)


def main() -> int:
    """The three rules on every bundled release."""
    k = load_knowledge()
    ok = True
    for rel in sorted(k.releases.values(), key=lambda r: r.version):
        for rule_id, first, then in RULES:
            proof = prove_family(pci_viommu(rel, first, then), k.rule(rule_id))
            print(proof.describe())
            ok &= proof.outcome.value == "proved"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
