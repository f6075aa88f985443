"""Theorem: with multifd device-state transfer, VFIO's config loads from vfio_load_bufs_thread
(10.0+). On x86 nothing holds it back: "every LAPIC before every VFIO config" fails even on
10.2. On aarch64, x-migration-load-config-after-iter (10.1+, AUTO on for ARM builds, off for
machine types 10.0 and older by hw_compat_10_0) keeps "the ITS before every MSI device": PROVED
on 10.1+ with a current machine type, a counterexample on 10.0 or with virt-10.0.

Exits 0 when each case has its expected outcome, for any number of vCPUs, devices and hot-plug
steps.
"""

from __future__ import annotations

import sys

from ordering.engines.families import arm_virt, x86_vfio
from ordering.engines.smt_space import prove_family
from ordering.sources.models import load_knowledge


def main() -> int:
    """x86 and aarch64 with multifd on every release that has the load thread."""
    k = load_knowledge()
    apic, its = k.rule("apic-before-vfio"), k.rule("its-before-msi-devices")
    ok = True
    for rel in sorted(k.releases.values(), key=lambda r: r.version):
        if not rel.features.vfio_multifd_load_thread:
            print(f"QEMU {rel.name}: no VFIO multifd load thread (config loads on the main thread)")
            continue
        x86 = prove_family(x86_vfio(rel, multifd=True), apic)
        print(x86.describe())
        ok &= x86.outcome.value == "counterexample"
        arm = prove_family(arm_virt(rel, "its", "msi-pci", multifd=True), its)
        print(arm.describe())
        ok &= arm.outcome.value == ("proved" if rel.features.vfio_config_load_after_iter else "counterexample")
        old = prove_family(arm_virt(rel, "its", "msi-pci", multifd=True, machine_version=(10, 0)), its)
        print(old.describe())
        ok &= old.outcome.value == "counterexample"
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
