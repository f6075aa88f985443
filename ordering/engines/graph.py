"""The graph engine: near-linear, exact for pure precedence.

Can any order in the space load a rule's ``first`` after its ``then``? For one live instance
(firsts F..., then T), QEMU's sort key decides unless it ties:

* a first with a larger key (later phase, lower priority) always loads after T;
* a first with a smaller key always loads before it;
* on a tie registration order decides, and it can put F after T unless F must register
  before T: an earlier stage, or an ancestor of T in T's stage forest (a bus parent, an
  earlier section of the same device, an earlier entry of a fixed chain). A mobile F (one
  ``device_del`` + ``device_add`` away) can always go after T unless T sits behind it.

One walk of the stage forests gives every ancestor test in O(1), so an instance costs one pass
over its firsts: 4096 LAPICs x 64 VFIO devices is a quarter million comparisons.
A then whose load runs in a thread (multifd VFIO config) may come before any first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from ordering.engines.slots import STAGES, SpaceModel, space_models
from ordering.model.rule import Rule
from ordering.space import OrderSpace, Outcome, SpaceVerdict, diff_steps

NO_STEP = "QEMU's default order breaks it (no step needed)"


class Witness:
    """A first that some order of the space loads after a then, and why."""

    __slots__ = ("by", "first", "moved", "then")

    def __init__(self, first: int, then: int, by: str, moved: bool = False) -> None:
        self.first, self.then, self.by, self.moved = first, then, by, moved


def find_witness(model: SpaceModel) -> tuple[Witness | None, int]:
    """The first violating (first, then) pair of ``model`` (or None), and how many pairs
    were compared.

    >>> from ordering.engines.slots import Slot, Instance
    >>> from ordering.model.section import Phase
    >>> a = Slot("apic", "apic", "cpu0", Phase.COMPLETE, 2, "MIG_PRI_DEFAULT", 0, -1)
    >>> v = Slot("vfio", "", "nic0", Phase.COMPLETE, 2, "MIG_PRI_DEFAULT", 1, -1)
    >>> w, _ = find_witness(SpaceModel((a, v), (Instance((0,), 1),), 0, ""))
    >>> w is None
    True
    >>> hot = a._replace(label="apic#1", stage=3)
    >>> w, _ = find_witness(SpaceModel((a, v, hot), (Instance((0, 2), 1),), 0, ""))
    >>> (w.first, w.by) if w else None
    (2, 'registration')
    """
    slots = model.slots
    tin, tout = model.intervals() if not model.universal else ([], [])
    compared = 0
    keys = [s.key for s in slots]
    worst: dict[int, int] = {}
    for inst in model.instances:
        t = inst.then
        tslot = slots[t]
        group = id(inst.firsts)
        w = worst.get(group)
        if w is None:
            w = worst[group] = max(inst.firsts, key=lambda i: keys[i])
        if w == t:  # a section is never its own first: the worst of the others
            others = [f for f in inst.firsts if f != t]
            if not others:
                continue
            w = max(others, key=lambda i: keys[i])
        if tslot.threaded:
            return Witness(w, t, "concurrency"), compared + 1
        compared += 1
        if keys[w] > keys[t]:
            return Witness(w, t, "phase" if slots[w].phase != tslot.phase else "priority"), compared
        if keys[w] < keys[t]:
            continue
        tkey = keys[t]
        for f in inst.firsts:
            if keys[f] != tkey or f == t:
                continue
            compared += 1
            fs = slots[f]
            if model.universal:
                return Witness(f, t, "registration"), compared
            ancestor = tin[f] <= tin[t] and tout[t] <= tout[f]
            if fs.stage > tslot.stage or (fs.stage == tslot.stage and not ancestor):
                return Witness(f, t, "registration"), compared
            if fs.mobile and model.bound >= 1 and not ancestor:
                return Witness(f, t, "registration", moved=True), compared
    return None, compared


def registration_for(model: SpaceModel, w: Witness) -> list[int]:
    """A registration order of the space that puts ``w.then`` before ``w.first`` (slot indices;
    a moved first's device goes last and the devices behind it are gone)."""
    slots = model.slots
    if w.moved:
        owner = slots[w.first].owner
        tin, tout = model.intervals()
        mine = [i for i, s in enumerate(slots) if s.owner == owner]
        gone = {
            j
            for i in mine
            for j in range(len(slots))
            if tin[i] <= tin[j] and tout[j] <= tout[i]
        }
        return [i for i in range(len(slots)) if i not in gone] + mine
    path: list[int] = []
    node = w.then
    while node >= 0:
        path.append(node)
        node = slots[node].parent
    on_path = set(path)
    order: list[int] = []
    for stage in range(len(STAGES)):
        members = [i for i, s in enumerate(slots) if s.stage == stage]
        order.extend(i for i in reversed(path) if slots[i].stage == stage)
        order.extend(i for i in members if i not in on_path)
    return order


def load_order(model: SpaceModel, registration: list[int]) -> list[int]:
    """QEMU's sort of ``registration``: phase, priority higher first, registration order."""
    pos = {i: n for n, i in enumerate(registration)}
    return sorted(registration, key=lambda i: (*model.slots[i].key, pos[i]))


def counterexample_order(model: SpaceModel, w: Witness) -> list[str]:
    """The load order (section labels) of a registration that realises ``w`` (the space's
    extra vCPU only when the witness uses it)."""
    uses = model.added and model.added in (model.slots[w.first].owner, model.slots[w.then].owner)
    return [
        model.slots[i].label
        for i in load_order(model, registration_for(model, w))
        if uses or model.slots[i].owner != model.added or not model.added
    ]


def order_diff(model: SpaceModel, order: list[str], *, limit: int = 40) -> list[str]:
    """``order`` as a diff from the space's default order (registration as the VM gives it),
    a line of context around each change, as ``migorder explore`` shows the explicit engine's.

    >>> from ordering.engines.slots import Slot
    >>> from ordering.model.section import Phase
    >>> a = Slot("a", "a", "x", Phase.COMPLETE, 2, "D", 1, -1)
    >>> m = SpaceModel((a, a._replace(label="b"), a._replace(label="c")), (), 0, "")
    >>> order_diff(m, ["b", "a", "c"])
    ['@@ steps 1-3 @@', '+b', ' a', '-b', ' c']
    """
    base = [i for i, s in enumerate(model.slots) if not model.added or s.owner != model.added]
    default = [model.slots[i].label for i in load_order(model, base)]
    return diff_steps(default, order, limit=limit)


def verdict_of(model: SpaceModel, rule: Rule, w: Witness | None, compared: int, engine: str) -> SpaceVerdict:
    """A :class:`SpaceVerdict` with its evidence from a witness (None: PROVED); a VM QEMU
    refuses to migrate as it stands says so in the reason (as the explicit engine does)."""
    v = _verdict_of(model, rule, w, compared, engine)
    if model.machine and v.outcome is Outcome.COUNTEREXAMPLE:
        start = f"start the VM with -machine {model.machine} (compat properties of that machine type)"
        rest = tuple(s for s in v.steps if s != NO_STEP)
        v = replace(v, reason=f"{v.reason} (on -machine {model.machine})", steps=(start, *rest))
    if model.blocked:
        v = replace(v, reason=f"{v.reason}; QEMU refuses to migrate this VM as it stands: {model.blocked}")
    return v


def _verdict_of(model: SpaceModel, rule: Rule, w: Witness | None, compared: int, engine: str) -> SpaceVerdict:
    covered = {"sections": len(model.slots), "instances": len(model.instances), "pairs": compared}
    if not model.instances:
        return SpaceVerdict(
            rule.id, Outcome.VACUOUS, engine, model.space,
            "no VM in the space has both sides live", provenance=rule.provenance, covered=covered,
        )
    if w is None:
        return SpaceVerdict(
            rule.id, Outcome.PROVED, engine, model.space,
            f"{len(model.instances)} live instance(s), {compared} comparisons: no order loads "
            f"{rule.first} after {rule.then}",
            provenance=rule.provenance, covered=covered,
        )
    f, t = model.slots[w.first], model.slots[w.then]
    if w.by == "concurrency":
        reason = (
            f"{t.label}'s config loads in vfio_load_bufs_thread (multifd device-state transfer), "
            f"unordered against {f.label}"
        )
    elif w.by == "phase":
        reason = f"{f.label} loads in the {f.phase} phase, {t.label} in the {t.phase} phase"
    elif w.by == "priority":
        reason = f"{f.label} at {f.priority_name} ({f.priority}) loads after {t.label} at {t.priority_name} ({t.priority})"
    else:
        if w.moved:
            how = f"device_del + device_add of {f.owner} registers it after {t.label}"
        elif f.stage > t.stage:
            how = f"{f.label} registers at {STAGES[f.stage]}, after {t.label} ({STAGES[t.stage]})"
        else:
            how = f"{STAGES[f.stage]} order is free: {t.label} can register before {f.label}"
        reason = f"tie at {f.priority_name} ({f.priority}) in the {f.phase} phase: {how}"
    order: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    if not model.universal and w.by == "registration":
        order = tuple(order_diff(model, counterexample_order(model, w)))
        steps = (f"register {t.label} ({STAGES[t.stage]})",)
        if w.moved:
            steps += (f"device_del {f.owner}", f"device_add {f.owner} (it registers last)")
        elif model.added and f.owner == model.added:
            steps += (f"hot-plug vCPU {f.owner.removeprefix('cpu')} (device_add: it registers after every device)",)
        else:
            steps += (f"register {f.label} ({STAGES[f.stage]})",)
    elif not model.universal:
        steps = (NO_STEP,)
    return SpaceVerdict(
        rule.id, Outcome.COUNTEREXAMPLE, engine, model.space, reason,
        steps=steps, order=order, provenance=rule.provenance, covered=covered,
    )


def graph_engine(space: OrderSpace, rule: Rule, *, bound: int | None = None) -> SpaceVerdict:
    """Whether any order of ``space`` loads ``rule.first`` after ``rule.then`` (exact for
    pure precedence; ``bound`` overrides the space's hot-plug bound).

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine q35 -smp 2,maxcpus=4 -device pcie-root-port,id=rp1"
    ...                         " -device vfio-pci,host=01:00.0,bus=rp1")
    >>> rule = k.rule("apic-before-vfio")
    >>> graph_engine(OrderSpace(k.release("10.1"), k.release("10.1"), vm), rule).outcome.value
    'proved'
    >>> v = graph_engine(OrderSpace(k.release("10.1"), k.release("10.1"), vm, hotplug_bound=1), rule)
    >>> v.outcome.value, "+apic#2" in v.order
    ('counterexample', True)
    >>> graph_engine(OrderSpace(k.release("10.2"), k.release("10.2"), vm, hotplug_bound=1), rule).outcome.value
    'proved'
    """
    if bound is not None:
        space = replace(space, hotplug_bound=bound)
    out = []
    for model in space_models(space, rule):
        w, compared = find_witness(model)
        out.append(verdict_of(model, rule, w, compared, "graph"))
    return combine(space, out)


def combine(space: OrderSpace, verdicts: Sequence[SpaceVerdict]) -> SpaceVerdict:
    """The verdict over a union of spaces (one per machine type): the worst one, said of the
    whole space (a counterexample in any, else UNKNOWN in any, else PROVED, else VACUOUS)."""
    worst = max(verdicts, key=lambda v: v.outcome.severity)
    return replace(worst, space=space.describe()) if len(verdicts) > 1 else worst


def graph_verdicts(
    space: OrderSpace,
    rules: Sequence[Rule],
    *,
    max_states: int | None = None,
    timeout: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[SpaceVerdict, ...]:
    """:func:`graph_engine` for every rule, in the shape ``migorder explore``'s engine table
    calls (``max_states`` and ``timeout`` do not bound it: it is near-linear; a ``stop``
    request leaves the rules not yet judged out)."""
    out = []
    for i, rule in enumerate(rules):
        if stop is not None and stop():
            break
        out.append(graph_engine(space, rule))
        if progress is not None:
            progress(i + 1, len(rules) - i - 1)
    return tuple(out)
