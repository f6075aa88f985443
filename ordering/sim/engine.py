"""Replay one load order over the device behaviours: the simulator's core.

Each section's load puts the source's state into the destination device, then runs that
device's post-load behaviour (:mod:`ordering.sim.devices`), which may read other devices'
**current** destination state: their source state once loaded, their reset value before.
Failures carry QEMU's own wording where it prints one, the section that failed and the
section that should have come first.

This is an operational description of QEMU written independently of ``models/rules.toml``;
tests hold the two to each other (every simulated failure breaks a live rule instance, with
the rule's consequence).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ordering.model.release import Release
from ordering.model.section import Section, SectionType
from ordering.model.vm import Vm
from ordering.order import LoadOrder, derive
from ordering.sim.devices import gicv3, vfio_pci, viommu, virtio_pci
from ordering.sim.guest import guest_state
from ordering.sim.trace import Trace, TraceStep
from ordering.sim.world import Ctx, World


@dataclass(frozen=True)
class _Behaviour:
    name: Callable[[Section], str]
    applies: Callable[[World, Section], bool]
    post_load: Callable[[Ctx, Section], None]


_BEHAVIOURS = (
    _Behaviour(viommu.behaviour, viommu.applies, viommu.post_load),
    _Behaviour(lambda s: gicv3.BEHAVIOUR, gicv3.applies, gicv3.post_load),
    _Behaviour(lambda s: vfio_pci.BEHAVIOUR, vfio_pci.applies, vfio_pci.post_load),
    _Behaviour(lambda s: virtio_pci.BEHAVIOUR, virtio_pci.applies, virtio_pci.post_load),
)


def simulate(release: Release, vm: Vm, order: LoadOrder | None = None) -> Trace:
    """Load ``order`` on a destination running ``release`` and report what fails.

    Parameters
    ----------
    release
        The **destination** release: whose device behaviours run.
    vm
        The VM, with its guest-state knobs (``vm.guest``, see :mod:`ordering.sim.guest`).
    order
        The order to load (a derived order from another source release, a moved one, an
        observed stream). Default: ``derive(release, vm)``.

    Returns
    -------
    Trace
        Every step with what its behaviour read, and every failure. A fatal failure
        (``&error_abort``) ends the load.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine virt,gic-version=3 -device vfio-pci,id=nic0")
    >>> simulate(k.release("11.1"), vm).failures
    ()
    """
    if order is None:
        order = derive(release, vm)
    guest = guest_state(vm, order.registered)
    world = World.build(release, order, guest)
    ctx = Ctx(world)
    steps: list[TraceStep] = []
    aborted = False
    for i, step in enumerate(order.steps):
        section = step.section
        name = ""
        ctx.reads = []
        ctx.current = section
        if step.type is SectionType.FULL:
            ctx.loaded.add(section.section_id)
            for b in _BEHAVIOURS:
                if b.applies(world, section):
                    name = b.name(section)
                    before = len(ctx.failures)
                    b.post_load(ctx, section)
                    if any(f.fatal for f in ctx.failures[before:]):
                        aborted = True
                    break
        steps.append(TraceStep(i, step, name, tuple(ctx.reads)))
        if aborted:
            break
    return Trace(order, release.name, tuple(steps), tuple(ctx.failures), aborted)
