"""The explicit engine: walk an order space breadth-first, judge and simulate every order.

A state is a VM started on one of the machine types it may carry, after a sequence of moves
(:mod:`ordering.order_space`): a ``-device`` given last, a hot-plugged vCPU, a device unplugged
and replugged, the ``any-order`` hot-plug steps permuted. Each state is derived afresh (refuse → place → register
→ sort: a move QEMU refuses is not a state), its rule instances judged
(:func:`ordering.verdict.judge`) and its order replayed over the device behaviours
(:func:`ordering.sim.simulate`), so failures that depend on guest state are found too.

Partial-order reduction: only moves of devices whose sections a rule or a behaviour can relate
are taken (:func:`ordering.order_space.relevant_owners`); two states whose orders agree on every
such section are one state; interchangeable devices (same driver, properties and no guest knobs
of their own) and untargeted vCPUs are taken in one canonical order. Breadth-first, so the
first counterexample found for a rule or failure class is a shortest sequence of moves.

Bounded: at most ``bound`` moves from each machine type, ``max_states`` distinct orders and ``timeout`` seconds; a run
stopped early says UNKNOWN for what it did not refute, never PROVED. The frontier holds only
move sequences, not orders, so memory stays proportional to the states bound.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from ordering.check import blockers
from ordering.errors import MigOrderError, ScenarioError
from ordering.model.rule import Rule
from ordering.model.section import LoadStep
from ordering.model.vm import Vm
from ordering.order import LoadOrder, derive
from ordering.order_space import (
    Move,
    apply,
    config_at,
    load_variants,
    moves,
    postcopy_refusal,
    relevant_owners,
)
from ordering.order_space import (
    postcopy_order as postcopy_order,  # its old home: the kit imports it here
)
from ordering.sim import Failure, Trace, simulate
from ordering.space import OrderSpace, Outcome, SpaceVerdict, diff_steps
from ordering.verdict import Verdict, judge

ENGINE = "explicit"

ENGINES: dict[str, str] = {
    "explicit": "ordering.explore:explore_verdicts",
    "graph": "ordering.engines.graph:graph_verdicts",
    "smt": "ordering.engines.smt_space:smt_verdicts",
}
"""Engine name → ``module:function`` answering "can any order in the space break each rule or
produce a simulator failure?". Each function takes ``(space, rules, *, max_states, timeout,
progress, stop)`` and returns a tuple of :class:`~ordering.space.SpaceVerdict` (one per rule,
plus one per simulator failure class where it simulates). ``graph`` and ``smt`` plug in here."""

AUTO = ("explicit",)
"""The engines ``--engine auto`` tries, in order: the first one available runs."""


@dataclass(frozen=True)
class Witness:
    """A counterexample that can be replayed: the VM after its moves, its order, the trace."""

    subject: str
    moves: tuple[Move, ...]
    vm: Vm
    order: LoadOrder
    trace: Trace
    evidence: str
    variant: str = ""
    """How the load side reordered the derived order (``multifd: earliest``), or ``""``."""


@dataclass(frozen=True)
class Exploration:
    """What the explicit engine found over one space."""

    space: OrderSpace
    verdicts: tuple[SpaceVerdict, ...]
    witnesses: dict[str, Witness] = field(default_factory=dict)
    states: int = 0
    """Distinct orders judged and simulated."""
    refused: int = 0
    """Move sequences QEMU refuses (a bus without hotplug, a device without an id...)."""
    stopped: str = ""
    """Why the walk ended early: ``states``, ``timeout``, ``interrupted``; ``""`` when the
    bounded space was covered."""

    @property
    def exit_code(self) -> int:
        """1 when any rule or failure class has a counterexample, else 0."""
        return 1 if any(v.outcome is Outcome.COUNTEREXAMPLE for v in self.verdicts) else 0


def explore(
    space: OrderSpace,
    rules: Sequence[Rule],
    *,
    max_states: int = 2000,
    timeout: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
    reduce: bool = True,
) -> Exploration:
    """Every order of ``space`` up to ``space.hotplug_bound`` moves, judged and simulated.

    Parameters
    ----------
    space
        A space with a VM (:func:`ordering.order_space.order_space`).
    rules
        The rules to judge (one verdict each), besides the simulator's failure classes.
    max_states, timeout
        Bounds: distinct orders, and seconds. Reaching one makes what was not refuted UNKNOWN.
    progress
        Called with (orders explored, move sequences waiting) after each state.
    stop
        Polled after each state; ``True`` stops the walk (Ctrl-C): UNKNOWN, with what was covered.
    reduce
        Partial-order and symmetry reduction (``False``: every device's moves, every vCPU, and
        two states are one only when their whole orders agree; for testing the reduction).

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order_space import order_space
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine q35 -smp 1,maxcpus=2 -device pcie-root-port,id=rp0"
    ...                         " -device vfio-pci,host=0000:3b:00.0,id=nic0,bus=rp0")
    >>> space = order_space(k.release("10.1"), k.release("10.1"), vm, hotplug_bound=1)
    >>> r = explore(space, [k.rule("apic-before-vfio")])
    >>> r.verdicts[0].outcome, r.verdicts[0].steps[0]
    (<Outcome.COUNTEREXAMPLE: 'counterexample'>, 'hot-plug vCPU 1 (device_add; it registers after every device so far)')
    """
    if space.vm is None:
        raise ValueError("explore needs a space with a VM (order_space)")
    started = time.monotonic()
    source = space.source
    base = space.vm
    crossing = bool(space.chain) or space.source.name != space.destination.name
    if crossing:  # the VM keeps the machine type its first source gave it (as libvirt pins it)
        base = replace(base, machine=space.machine_types[0])
    default = derive(source, base)
    relevant = relevant_owners(default.registered)
    all_moves = moves(space, relevant)
    if not reduce:
        relevant = frozenset({"cpu", *(s.owner for s in default.registered.sections)})
        all_moves = tuple(replace(m, symmetry="") for m in moves(space))
    found: dict[str, Witness] = {}
    live: set[str] = set()
    failure_classes: list[str] = []
    seen: set[tuple[object, ...]] = set()
    # Each machine type the VM may carry is a start of its own, not a step: the bound counts
    # only the steps taken from each start.
    queue: deque[tuple[Move, ...]] = deque([(), *((m,) for m in all_moves if m.kind == "machine")])
    states = refused = 0
    dest_refusals: list[str] = []
    stopped = ""
    while queue:
        seq = queue.popleft()
        vm = base
        for m in seq:
            vm = apply(vm, m, source)
        try:
            order = derive(source, vm)
        except ScenarioError:
            refused += 1
            continue
        sig = _signature(order, relevant) if reduce else (order.machine_type, tuple((s.section.label, s.type.value) for s in order.steps))
        if sig in seen:
            continue
        seen.add(sig)
        dest_live: set[tuple[str, str, int]] | None = None
        refused_here = postcopy_refusal(space, order)
        if refused_here:
            dest_refusals.append(refused_here)
        elif crossing:
            why = _destination_refuses(space, rules, vm, order)
            if isinstance(why, str):
                dest_refusals.append(why)
                refused_here = why
            else:
                dest_live = why
        if not refused_here:
            states += 1
            _evaluate(space, rules, seq, vm, order, found, live, failure_classes, dest_live)
        # A move may make a VM the destination refuses acceptable (an older machine type).
        if _steps(seq) < space.hotplug_bound:
            queue.extend((*seq, m) for m in all_moves if _allowed(seq, m, all_moves))
        if progress is not None:
            progress(states, len(queue))
        if stop is not None and stop():
            stopped = "interrupted"
        elif states >= max_states and queue:
            stopped = "states"
        elif timeout is not None and time.monotonic() - started > timeout and queue:
            stopped = "timeout"
        if stopped:
            break
    verdicts = _verdicts(space, rules, default, found, live, failure_classes, states, refused, stopped,
                         max_states, timeout, dest_refusals)
    return Exploration(space, verdicts, found, states, refused + len(dest_refusals), stopped)


def _destination_refuses(
    space: OrderSpace, rules: Sequence[Rule], vm: Vm, order: LoadOrder
) -> str | set[tuple[str, str, int]]:
    """Why the destination refuses this VM or a section of its stream (QEMU's words), or the
    (rule, then idstr, then instance_id) rule instances live on the destination."""
    from ordering.conditions import rule_instances
    from ordering.upgrade import UNKNOWN_SECTION

    try:
        dest = derive(space.destination, vm)
    except MigOrderError as exc:
        return f"QEMU {space.destination.name} refuses the VM: {exc}"
    known = {(s.idstr, s.instance_id) for s in dest.registered.sections}
    for step in order.steps:
        if (step.section.idstr, step.section.instance_id) not in known:
            s = step.section
            return f"QEMU {space.destination.name}: " + UNKNOWN_SECTION.format(idstr=s.idstr, instance=s.instance_id)
    return {
        (rule_id, inst.then.idstr, inst.then.instance_id)
        for rule_id, insts in rule_instances(rules, dest.registered).items()
        for inst in insts
    }


def destination_verdict(space: OrderSpace, engine_name: str = ENGINE) -> SpaceVerdict | None:
    """A COUNTEREXAMPLE (subject ``destination``) when the destination refuses the VM as its
    source resolved it (a machine type it lacks, a section it does not know, postcopy with
    VFIO), whatever the engine: the migration fails before any rule matters, as ``check``
    says. Other starts the space explores (older machine types) do not hide it; ``None``
    when the destination accepts the VM.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order_space import order_space
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-nodefaults -machine q35")
    >>> v = destination_verdict(order_space(k.release("10.2"), k.release("10.1"), vm))
    >>> v.outcome, "pc-q35-10.2" in v.reason
    (<Outcome.COUNTEREXAMPLE: 'counterexample'>, True)
    >>> destination_verdict(order_space(k.release("10.1"), k.release("10.2"), vm)) is None
    True
    """
    if space.vm is None:
        return None
    base = space.vm
    crossing = bool(space.chain) or space.source.name != space.destination.name
    if crossing:
        base = replace(base, machine=space.machine_types[0])
    try:
        order = derive(space.source, base)
    except MigOrderError:
        return None  # the source refuses it: the engines say so
    why = postcopy_refusal(space, order)
    hard = [b for b in blockers(order) if not b.conditional]
    if not why and hard:  # migrate_add_blocker at realize: QEMU refuses to migrate it at all
        why = f"QEMU {space.source.name} refuses to migrate it: {hard[0].device}: {hard[0].message}"
    if not why and crossing:
        found = _destination_refuses(space, (), base, order)
        why = found if isinstance(found, str) else ""
    if not why:
        return None
    return SpaceVerdict(
        "destination", Outcome.COUNTEREXAMPLE, engine_name,
        f"the VM as QEMU {space.source.name} starts it (machine {order.machine_type})",
        f"the migration fails: {why}",
        steps=(f"migrate the VM as started (machine {order.machine_type}) to QEMU {space.destination.name}",),
    )


def explore_verdicts(
    space: OrderSpace,
    rules: Sequence[Rule],
    *,
    max_states: int = 2000,
    timeout: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[SpaceVerdict, ...]:
    """:func:`explore`'s verdicts: the explicit engine's entry in :data:`ENGINES`."""
    return explore(
        space, rules, max_states=max_states, timeout=timeout, progress=progress, stop=stop
    ).verdicts


def engine(name: str) -> Callable[..., tuple[SpaceVerdict, ...]] | None:
    """The engine called ``name`` (``auto``: the first of :data:`AUTO` available), or ``None``
    when it is not available in this build."""
    import importlib

    for candidate in AUTO if name == "auto" else (name,):
        target = ENGINES.get(candidate)
        if target is None:
            continue
        module, _, func = target.partition(":")
        try:
            found = getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError):
            continue
        return found  # type: ignore[no-any-return]
    return None


def _steps(seq: tuple[Move, ...]) -> int:
    """How many steps ``seq`` takes: a machine type is where it starts, not a step."""
    return sum(1 for m in seq if m.kind != "machine")


def _allowed(seq: tuple[Move, ...], m: Move, all_moves: Sequence[Move]) -> bool:
    """Whether ``m`` may follow ``seq``: a machine type never (each is a start of the queue), a
    hot-plug order only as the first step, each move once, and of interchangeable moves the
    earlier ones first (canonical symmetry breaking)."""
    if m in seq or m.kind == "machine":
        return False
    if m.kind == "hotplug-order" and _steps(seq):
        return False
    if m.symmetry:
        for other in all_moves:
            if other is m:
                break
            if other.symmetry == m.symmetry and other not in seq:
                return False
    return True


def _signature(order: LoadOrder, relevant: frozenset[str]) -> tuple[object, ...]:
    """The order restricted to the sections a rule or a behaviour relates (and the machine
    type, whose compat properties behaviours read)."""
    keep = tuple(
        (s.section.label, s.type.value)
        for s in order.steps
        if s.section.owner in relevant or s.section.owner.startswith("cpu") or s.section.kind != "other"
    )
    return (order.machine_type, keep)


def failure_class(f: Failure) -> str:
    """The simulator failure class of a failure: which kind it needed before which."""
    return f"simulator: {f.needs.kind} before {f.section.kind} ({f.consequence.value})"


def _evaluate(
    space: OrderSpace,
    rules: Sequence[Rule],
    seq: tuple[Move, ...],
    vm: Vm,
    order: LoadOrder,
    found: dict[str, Witness],
    live: set[str],
    classes: list[str],
    dest_live: set[tuple[str, str, int]] | None = None,
) -> None:
    for variant, o in load_variants(order, space):
        for v in judge(o, rules):
            if v.verdict is Verdict.NOT_LIVE or v.instance is None:
                continue
            if dest_live is not None and (v.rule.id, v.instance.then.idstr, v.instance.then.instance_id) not in dest_live:
                continue  # the destination has no such hazard: the rule is not live there
            live.add(v.rule.id)
            if v.verdict is Verdict.VIOLATED and v.rule.id not in found:
                ev = v.evidence
                worst = o
                if v.by == "concurrency":
                    worst = config_at(order, {v.instance.then.owner} if v.instance else set(), early=True)
                try:
                    trace = simulate(space.destination, vm, worst)
                except ScenarioError:
                    trace = Trace(worst, space.destination.name, (), ())
                found[v.rule.id] = Witness(
                    v.rule.id, seq, vm, worst, trace, ev.describe() if ev else "", variant or _variant_of(v.by)
                )
        try:
            trace = simulate(space.destination, vm, o)
        except ScenarioError:
            continue  # the guest knobs name a vCPU or device this state does not have
        for f in trace.failures:
            cls = failure_class(f)
            if cls not in found:
                classes.append(cls)
                found[cls] = Witness(
                    cls, seq, vm, o, trace,
                    f"{f.section.label}: {f.message} (needs {f.needs.label} loaded first; {f.mechanism})",
                    variant,
                )


def _variant_of(by: str) -> str:
    return "multifd: VFIO config loaded earliest (vfio_load_bufs_thread)" if by == "concurrency" else ""


def _verdicts(
    space: OrderSpace,
    rules: Sequence[Rule],
    default: LoadOrder,
    found: dict[str, Witness],
    live: set[str],
    classes: list[str],
    states: int,
    refused: int,
    stopped: str,
    max_states: int,
    timeout: float | None,
    dest_refusals: Sequence[str] = (),
) -> tuple[SpaceVerdict, ...]:
    covered = {"orders": states, "refused": refused, "destination_refused": len(dest_refusals),
               "moves": space.hotplug_bound}
    where = space.describe() + " (a step: a -device given last, a vCPU hot-plug, a replug; from each machine type)"
    if stopped:
        bound = {
            "states": f"the bound of {max_states} orders",
            "timeout": f"the timeout of {timeout:g} s" if timeout else "the timeout",
            "interrupted": "an interrupt (Ctrl-C)",
        }[stopped]
        where += f"; stopped at {bound} after {states} orders"
    out: list[SpaceVerdict] = []
    subjects: list[tuple[str, Rule | None]] = [(r.id, r) for r in rules]
    subjects += [(c, None) for c in classes]
    if not classes:
        subjects.append(("simulator", None))
    for subject, rule in subjects:
        provenance = rule.provenance if rule else ()
        w = found.get(subject)
        if w is not None:
            out.append(_counterexample(space, default, w, where, covered, provenance))
            continue
        if not states and dest_refusals and not stopped:
            outcome, reason = Outcome.VACUOUS, f"QEMU refuses every order in the space: {dest_refusals[0]}"
        elif stopped:
            outcome, reason = Outcome.UNKNOWN, f"no counterexample in the {states} orders covered before {stopped}"
        elif rule is not None and subject not in live:
            outcome, reason = Outcome.VACUOUS, f"no order in the space has a live instance ({rule.condition})"
        else:
            what = f"{rule.first} after {rule.then}" if rule else "simulator failure"
            outcome, reason = Outcome.PROVED, f"{states} orders explored ({refused} refused by QEMU), no {what}" + (
                f"; {len(dest_refusals)} refused by the destination or for postcopy" if dest_refusals else "")
        out.append(SpaceVerdict(subject, outcome, ENGINE, where, reason, provenance=provenance,
                                covered=dict(covered)))
    return tuple(out)


def _counterexample(
    space: OrderSpace,
    default: LoadOrder,
    w: Witness,
    where: str,
    covered: dict[str, int],
    provenance: tuple[str, ...],
) -> SpaceVerdict:
    hops = " → ".join(r.name for r in (*space.chain, space.source))
    steps = [m.describe(space.source) for m in w.moves] or ["the VM as given: QEMU's default order"]
    if w.variant:
        steps.append(w.variant)
    reason = w.evidence
    refused = blockers(w.order)
    if refused:
        reason += "; QEMU refuses to migrate this VM as it stands: " + "; ".join(
            f"{b.device}: {b.message}" for b in refused
        )
    if space.postcopy:
        steps.append("switch to postcopy (device state in the package)")
    steps.append(f"migrate from a QEMU {hops} source to a {space.destination.name} destination")
    return SpaceVerdict(
        w.subject,
        Outcome.COUNTEREXAMPLE,
        ENGINE,
        where,
        reason,
        steps=tuple(steps),
        order=tuple(order_diff(default, w.order)),
        trace=tuple(trace_lines(w.trace)),
        provenance=provenance,
        covered=dict(covered),
    )


def order_diff(default: LoadOrder, order: LoadOrder, *, limit: int = 40) -> list[str]:
    """``order`` as a diff from QEMU's default order (``-`` where the default had a step, ``+``
    where this order has it), one step per line, a line of context around each change.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.sim import move
    >>> k = load_knowledge()
    >>> o = derive(k.release("10.2"), parse_command_line("-machine q35 -device intel-iommu"))
    >>> order_diff(o, move(o, "iommu-intel", "apic"))
    ['@@ steps 3-6 @@', ' ram END', '+iommu-intel FULL', ' apic FULL', '-iommu-intel FULL', ' timer FULL']
    """
    return diff_steps([_step_label(s) for s in default.steps],
                      [_step_label(s) for s in order.steps], limit=limit)


def _step_label(step: LoadStep) -> str:
    return f"{step.section.label} {step.type.value}"


def trace_lines(trace: Trace, *, limit: int = 12) -> Iterable[str]:
    """The simulator's failures, then the reads of the steps that failed."""
    failing = {f.section.section_id for f in trace.failures}
    for f in trace.failures:
        yield (
            f"{f.consequence.value.upper()} {f.section.label}: {f.message} "
            f"(needs {f.needs.label} first; {f.mechanism})"
        )
    n = 0
    for s in trace.steps:
        if s.step.section.section_id not in failing or not s.reads:
            continue
        for r in s.reads:
            state = "loaded" if r.loaded else "reset value"
            yield f"  #{s.index} {s.step.section.label} [{s.behaviour}] read {r.what} of {r.section.label}: {r.value} ({state})"
            n += 1
            if n >= limit:
                return
