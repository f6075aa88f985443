"""Public hypothesis strategies for your own property tests: VMs, load orders, patches to a
QEMU tree, release files and rule bases.

The same strategies drive migorder's own cross-validation of rules and device behaviours.
Use them to test a rule you are proposing, or a QEMU change, against many VMs and orders:

>>> from hypothesis import given
>>> from ordering import strategies as ms
>>> from ordering.order import derive
>>> from ordering.sources.models import load_knowledge
>>> k = load_knowledge()
>>> @given(ms.vms(devices=["vfio-pci"]), ms.release_names())
... def test_the_vm_always_derives(vm, release):
...     assert derive(k.release(release), vm).steps
>>> test_the_vm_always_derives()

They compose (a drawn VM feeds an :class:`~ordering.space.OrderSpace` whose orders are drawn
next) and shrink to small examples with short reprs (``<Patch: ...>``, ``<LoadOrder ...>``):

>>> from ordering.space import OrderSpace
>>> rel = k.release("10.1")
>>> orders = ms.vms(machine="q35", devices=["vfio-pci"]).flatmap(
...     lambda vm: ms.load_orders(OrderSpace(rel, rel, vm=vm, hotplug_bound=1)))
>>> @given(orders)
... def test_every_drawn_order_comes_from_a_10_1_source(order):
...     assert order.release is rel and any(s.section.kind == "vfio" for s in order.steps)
>>> test_every_drawn_order_comes_from_a_10_1_source()

Ready-made properties built on them are in :mod:`ordering.testing`.

Strategies
----------
``vms(machine=, release=, devices=)``, ``x86_vms()``, ``arm_vms()``
    VMs (q35 or arm virt) with vIOMMUs, root ports, VFIO, virtio and virtio-mem devices in
    random command-line order, hot-plugged vCPUs, and simulator guest state (``Vm.guest``).
``release_names()``
    Names of the bundled QEMU releases.
``load_orders(space)``
    Load orders from an order space: its VM (or a drawn one) in any registration order QEMU
    accepts, with hot-plugged vCPUs up to the space's bound, derived on its source release.
``registration_orders(vm)``, ``reorderings(order)``
    One VM's ``-device`` list reordered; a derived order with FULL sections moved.
``enum_edits(tree)``, ``priority_edits(tree)``, ``patches(tree)``
    Edits to a QEMU tree's ``MigrationPriority`` enum and VMSDs' ``.priority``, as unified
    diffs (:class:`Patch`).
``release_files(base)``
    Release TOML files (``migorder scan --out``'s form) with levels added and priorities set
    (:class:`ReleaseFile`, read once per text).
``rule_bases(kinds)`` / ``rule_bases(path=FILE)``
    Proposed rules between kinds, or subsets of a user's rule file.

Helpers: ``vfio_migration_on(vm)`` (7.2's ``x-enable-migration=on``), ``load_release(name or
file)`` (cached).
"""

from __future__ import annotations

from ordering._kit.edits import LineEdit, Patch, enum_edits, patches, priority_edits
from ordering._kit.orders import load_orders, registration_orders, reorderings
from ordering._kit.releases import ReleaseFile, load_release, release_files
from ordering._kit.rules import rule_bases
from ordering._kit.vms import arm_vms, release_names, vfio_migration_on, vms, x86_vms

__all__ = [
    "LineEdit",
    "Patch",
    "ReleaseFile",
    "arm_vms",
    "enum_edits",
    "load_orders",
    "load_release",
    "patches",
    "priority_edits",
    "registration_orders",
    "release_files",
    "release_names",
    "reorderings",
    "rule_bases",
    "vfio_migration_on",
    "vms",
    "x86_vms",
]
