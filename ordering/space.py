"""The order space: every load order a destination may see, and the verdict over all of it.

This is the one interface between the model checker (``migorder explore``, issue: engines
graph, smt and explicit) and the reviewer's tools (``migorder verify`` and ``synthesize``,
which compare universal verdicts before and after a change). Both speak these types:

* :class:`OrderSpace` — what is left free: the VM (or every VM of the release), registration
  order, hot-plug steps up to a bound, which release sends (a chain of migrations takes its
  order from the last source), machine-type compat properties, load-side concurrency
  (multifd), postcopy.
* :class:`SpaceVerdict` — the answer for one rule (or one simulator failure class) over one
  space: PROVED (and what space was covered), COUNTEREXAMPLE (the steps, the order, the
  simulator's trace), UNKNOWN (the bound or timeout reached, never counted as PROVED), or
  VACUOUS (QEMU refuses every VM where the rule is live).
* :func:`universal` — the verdict over *every* VM of a release, any registration order: what
  ``verify`` reports as a rule's "universal" verdict before and after a patch.

Pure core: no file or process I/O, no printing.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from ordering.model.release import Release
from ordering.model.rule import Rule
from ordering.model.vm import Vm


class Outcome(StrEnum):
    """What a model checker says about one rule over one order space."""

    PROVED = "proved"
    """No order in the space breaks it (the space covered is said)."""
    COUNTEREXAMPLE = "counterexample"
    """Some order in the space breaks it; the shortest one found is given."""
    UNKNOWN = "unknown"
    """A bound or a timeout was reached first: neither proved nor refuted."""
    VACUOUS = "vacuous"
    """QEMU refuses every VM in the space where the rule is live (or no VM has both sides)."""

    @property
    def severity(self) -> int:
        """Higher is worse for a reviewer: counterexample 3, unknown 2, proved 1, vacuous 0."""
        return {"vacuous": 0, "proved": 1, "unknown": 2, "counterexample": 3}[self.value]


@dataclass(frozen=True)
class OrderSpace:
    """The set of load orders a destination may see.

    ``source`` decides the stream order (in a chain A→B→C, the last source: ``chain`` holds the
    earlier hops, for the report); ``destination`` decides behaviours, blockers and which rules
    are live. ``vm`` is ``None`` for the universal space: every VM the release can build, with
    any VMSD either side of a rule may have.

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> OrderSpace(k.release("10.1"), k.release("10.2")).describe()
    'every VM of a QEMU 10.1 source to a 10.2 destination, any registration order'
    """

    source: Release
    destination: Release
    vm: Vm | None = None
    chain: tuple[Release, ...] = ()
    """Earlier sources in a chain of migrations, oldest first (the order comes from ``source``)."""
    registration_free: bool = True
    """Any ``-device`` order that respects bus parents (for ``vm``), or any order at all."""
    hotplug_bound: int = 0
    """How many hot-plug, unplug or replug steps (devices and vCPUs) may follow the start."""
    hotplug_any_order: bool = False
    """The scenario's ``[[hotplug]]`` steps may come in any order."""
    multifd: bool = False
    """The source migrates with multifd: VFIO config may load from a thread (10.0+)."""
    postcopy: bool = False
    """Device state travels in the postcopy package."""
    machine_types: tuple[str, ...] = ()
    """The machine types the VM may carry, the source's own first (an unversioned ``-machine``
    may have been created on an older one and kept its compat properties)."""

    def describe(self) -> str:
        """The space in one line, for PROVED's 'which space was covered'."""
        who = f"VM {self.vm.name!r}" if self.vm is not None else "every VM"
        hops = " → ".join(r.name for r in (*self.chain, self.source))
        if self.source.name == self.destination.name and not self.chain:
            where = f"of QEMU {self.source.name}"
        else:
            where = f"of a QEMU {hops} source to a {self.destination.name} destination"
        parts = [f"{who} {where}"]
        if self.registration_free:
            parts.append("any registration order")
        if self.hotplug_bound:
            parts.append(f"up to {self.hotplug_bound} hot-plug step(s)")
        if self.hotplug_any_order:
            parts.append("hot-plug steps in any order")
        if self.multifd:
            parts.append("multifd (VFIO config from a load thread)")
        if self.postcopy:
            parts.append("postcopy (device state in the package, same order)")
        if len(self.machine_types) > 1:
            parts.append(f"machine types {', '.join(self.machine_types)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class SpaceVerdict:
    """One rule (or simulator failure class) over one order space, with its evidence."""

    subject: str
    """A rule id, or a simulator failure class (``iommu-map-discarded``)."""
    outcome: Outcome
    engine: str
    """``graph``, ``smt`` or ``explicit``."""
    space: str
    """What was covered (:meth:`OrderSpace.describe`, plus bounds reached)."""
    reason: str
    """The evidence in one line: the priorities compared, the tie, the phase, the blocker, or
    the bound or timeout that stopped the search."""
    steps: tuple[str, ...] = ()
    """A counterexample's steps: registration order, hot-plug steps, which release sends."""
    order: tuple[str, ...] = ()
    """A counterexample's load order (section labels), where the engine builds one."""
    trace: tuple[str, ...] = ()
    """The simulator's trace of a counterexample order, where it was replayed."""
    provenance: tuple[str, ...] = ()
    """The rule's sources (commit ids, Message-IDs)."""
    requires: str = ""
    """What a counterexample VM must set for QEMU to migrate it at all."""
    assumes: str = ""
    """What the verdict assumes about the migration (no multifd, say)."""
    covered: dict[str, int] = field(default_factory=dict)
    """Counts of what was explored (``pairs``, ``orders``, ``states``)."""


def diff_steps(default: Sequence[str], order: Sequence[str], *, limit: int = 40) -> list[str]:
    """A counterexample's load order as a diff from the default one, one step per line (``-``
    where the default had it, ``+`` where the order has it), a line of context around each
    change, hunks headed by the steps they cover. Every engine shows its orders this way.

    >>> diff_steps(["a", "b", "c"], ["b", "a", "c"])
    ['@@ steps 1-3 @@', '+b', ' a', '-b', ' c']
    """
    out: list[str] = []
    for line in difflib.unified_diff(list(default), list(order), n=1, lineterm=""):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("@@"):
            start = line.split("+")[1].split()[0].split(",")
            first = int(start[0])
            count = int(start[1]) if len(start) > 1 else 1
            line = f"@@ steps {first}-{first + count - 1} @@"
        out.append(line)
        if len(out) >= limit:
            out.append("... (diff cut)")
            break
    return out


def universal(release: Release, rule: Rule, *, timeout_ms: int | None = None) -> SpaceVerdict:
    """Whether ``rule`` holds on every VM of ``release``, any registration order.

    The universal verdict ``verify`` compares before and after a change. It is z3's answer
    (:func:`ordering.smt.prove`) over every pair of sections the rule's sides may have; a z3
    timeout is UNKNOWN.

    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> universal(k.release("10.2"), k.rule("apic-before-vfio")).outcome
    <Outcome.PROVED: 'proved'>
    >>> v = universal(k.release("10.1"), k.rule("apic-before-vfio"))
    >>> v.outcome, v.engine
    (<Outcome.COUNTEREXAMPLE: 'counterexample'>, 'smt')
    """
    from ordering import smt  # z3 is heavy: imported only when a proof is asked for

    kwargs = {} if timeout_ms is None else {"timeout_ms": timeout_ms}
    proof = smt.prove(release, rule, **kwargs)
    space = OrderSpace(release, release).describe()
    cx = proof.counterexample
    if proof.unknown:
        reason = f"z3 gave no answer ({proof.unknown}) after {proof.pairs} section pairs"
    elif cx is not None:
        reason = cx.describe()
    elif proof.blocked:
        reason = f"QEMU refuses to migrate every VM where it is live ({proof.blocked})"
    elif not proof.pairs:
        reason = "no VM of this release has both sides"
    else:
        reason = f"{proof.pairs} section pairs, none loads {rule.first} after {rule.then}"
    steps: tuple[str, ...] = ()
    if cx is not None:
        steps = (
            f"register {cx.then.vmsd} at position {cx.then_registered}",
            f"register {cx.first.vmsd} at position {cx.first_registered}",
            f"migrate from a QEMU {release.name} source",
        )
    return SpaceVerdict(
        subject=rule.id,
        outcome=Outcome(proof.outcome),
        engine="smt",
        space=space,
        reason=reason,
        steps=steps,
        provenance=rule.provenance,
        requires=proof.requires,
        assumes=proof.assumes,
        covered={"pairs": proof.pairs},
    )
