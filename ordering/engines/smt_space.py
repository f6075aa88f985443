"""The z3 engine over an order space, and theorems for any number of devices.

:func:`smt_engine` encodes the space's registration freedom (stages, forests of
must-register-before edges, which devices a hot-plug step may unplug and replug) as integer
positions and asks z3 for one that loads a first after a then. :func:`prove_family` asks the
same question of a *family* of VMs whose device counts and hot-plug steps are symbolic: an
answer of unsat holds for every count. A timeout is UNKNOWN, never PROVED.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import z3

from ordering.engines.graph import Witness, combine, verdict_of
from ordering.engines.slots import STAGES, SpaceModel, space_models
from ordering.model.rule import Rule
from ordering.model.section import Phase
from ordering.space import OrderSpace, Outcome, SpaceVerdict

DEFAULT_TIMEOUT_MS = 10_000
"""z3's time for one question; past it the answer is UNKNOWN."""

MAX_TERMS = 200_000
"""Past this many (first, then) pairs the encoding is not built: UNKNOWN (use the graph engine)."""


def smt_engine(
    space: OrderSpace, rule: Rule, *, timeout_ms: int = DEFAULT_TIMEOUT_MS, bound: int | None = None
) -> SpaceVerdict:
    """Whether any order of ``space`` loads ``rule.first`` after ``rule.then``, by z3.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> vm = parse_command_line("-machine q35 -smp 2,maxcpus=4 -device pcie-root-port,id=rp1"
    ...                         " -device vfio-pci,host=01:00.0,bus=rp1")
    >>> rule = k.rule("apic-before-vfio")
    >>> smt_engine(OrderSpace(k.release("10.1"), k.release("10.1"), vm), rule).outcome.value
    'proved'
    >>> smt_engine(OrderSpace(k.release("10.1"), k.release("10.1"), vm, hotplug_bound=1), rule).outcome.value
    'counterexample'
    """
    if bound is not None:
        space = replace(space, hotplug_bound=bound)
    return combine(space, [decide(m, rule, timeout_ms=timeout_ms) for m in space_models(space, rule)])


def smt_verdicts(
    space: OrderSpace,
    rules: Sequence[Rule],
    *,
    max_states: int | None = None,
    timeout: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> tuple[SpaceVerdict, ...]:
    """:func:`smt_engine` for every rule, in the shape ``migorder explore``'s engine table calls:
    ``timeout`` (seconds, shared by the rules) bounds z3, past it a rule is UNKNOWN."""
    out = []
    per_rule = DEFAULT_TIMEOUT_MS if timeout is None else max(1, int(timeout * 1000 / max(1, len(rules))))
    for i, rule in enumerate(rules):
        if stop is not None and stop():
            break
        out.append(smt_engine(space, rule, timeout_ms=per_rule))
        if progress is not None:
            progress(i + 1, len(rules) - i - 1)
    return tuple(out)


def decide(model: SpaceModel, rule: Rule, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> SpaceVerdict:
    """z3's answer over a :class:`SpaceModel` as a verdict (UNKNOWN past the timeout)."""
    w, pairs, unknown = find_witness(model, timeout_ms=timeout_ms)
    if unknown:
        return _unknown(model, rule, unknown)
    return verdict_of(model, rule, w, pairs, "smt")


def find_witness(model: SpaceModel, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> tuple[Witness | None, int, str]:
    """z3's witness over a :class:`SpaceModel` (the encoding is documented in the module): the
    violating pair or None, how many pairs were encoded, and why z3 gave no answer (or "")."""
    slots = model.slots
    pairs: list[tuple[int, int]] = []
    groups: dict[int, tuple[dict[tuple[int, tuple[int, int], bool], int], dict[int, list[int]]]] = {}
    for inst in model.instances:
        t = inst.then
        ts = slots[t]
        # Symmetry: a first registered in another stage than the then is after it or not by its
        # stage, key and mobility alone (a forest never crosses stages), so one first of each
        # (stage, key, mobile) stands for the rest; the smallest index keeps its ancestors few.
        g = groups.get(id(inst.firsts))
        if g is None:
            reps: dict[tuple[int, tuple[int, int], bool], int] = {}
            by_stage: dict[int, list[int]] = {}
            for f in inst.firsts:
                fs = slots[f]
                sig = (fs.stage, fs.key, fs.mobile)
                reps[sig] = min(reps.get(sig, f), f)
                by_stage.setdefault(fs.stage, []).append(f)
            g = groups[id(inst.firsts)] = (reps, by_stage)
        reps, by_stage = g
        candidates = [f for sig, f in reps.items() if sig[0] != ts.stage]
        candidates += by_stage.get(ts.stage, [])
        pairs.extend((f, t) for f in candidates if f != t and (ts.threaded or slots[f].key >= ts.key))
        if len(pairs) > MAX_TERMS:
            return None, len(pairs), f"more than {MAX_TERMS} tied (first, then) pairs to encode"
    if not pairs:
        return None, 0, ""
    # The slots the pairs touch and every ancestor of theirs (the forest edges between them).
    needed: set[int] = set()
    for f, t in pairs:
        for node in (f, t):
            while node >= 0 and node not in needed:
                needed.add(node)
                node = slots[node].parent
    span = len(slots) + 1
    reg = {i: z3.Int(f"reg_{i}") for i in needed}
    owners = sorted({slots[i].owner for i in needed if slots[i].mobile})
    moved = {o: z3.Bool(f"moved_{n}") for n, o in enumerate(owners)}
    gone: dict[int, z3.BoolRef] = {}
    solver = z3.Solver()
    solver.set("timeout", max(1, timeout_ms))
    for i in sorted(needed):
        s = slots[i]
        # Stage-major registration: every stage's positions lie in its own band.
        solver.add(reg[i] >= s.stage * span, reg[i] < (s.stage + 1) * span)
        if s.parent >= 0:
            p = slots[s.parent]
            solver.add(reg[s.parent] < reg[i])
            cut = moved[p.owner] if p.owner in moved and p.owner != s.owner else z3.BoolVal(False)
            gone[i] = z3.Or(gone[s.parent], cut)
        else:
            gone[i] = z3.BoolVal(False)
    if owners:
        solver.add(z3.Sum([z3.If(b, 1, 0) for b in moved.values()]) <= model.bound)

    def eff(i: int) -> z3.ArithRef:
        o = slots[i].owner
        if o in moved:
            return z3.If(moved[o], len(STAGES) * span + reg[i], reg[i])
        return reg[i]

    terms = []
    for f, t in pairs:
        if slots[t].threaded or slots[f].key > slots[t].key:
            terms.append(z3.BoolVal(True))
        else:
            terms.append(z3.And(z3.Not(gone[f]), z3.Not(gone[t]), eff(f) > eff(t)))
    choice = z3.Int("violating_pair")
    solver.add(z3.Or([z3.And(choice == n, term) for n, term in enumerate(terms)]))
    answer = solver.check()
    if answer == z3.unknown:
        return None, len(pairs), f"z3: {solver.reason_unknown() or 'unknown'} after {timeout_ms} ms"
    if answer == z3.unsat:
        return None, len(pairs), ""
    m = solver.model()
    f, t = pairs[m.eval(choice).as_long()]
    fs, ts = slots[f], slots[t]
    if ts.threaded:
        by = "concurrency"
    elif fs.key > ts.key:
        by = "phase" if fs.phase != ts.phase else "priority"
    else:
        by = "registration"
    # z3 may replug a first that needs no move; only one registered in an earlier stage does.
    was_moved = fs.owner in moved and z3.is_true(m.eval(moved[fs.owner], model_completion=True))
    return Witness(f, t, by, moved=was_moved and by == "registration" and fs.stage < ts.stage), len(pairs), ""


def _unknown(model: SpaceModel, rule: Rule, why: str) -> SpaceVerdict:
    return SpaceVerdict(
        rule.id, Outcome.UNKNOWN, "smt", model.space, why,
        provenance=rule.provenance,
        covered={"sections": len(model.slots), "instances": len(model.instances)},
    )


# --- Families: device counts and hot-plug steps left symbolic ---------------------------------


@dataclass(frozen=True)
class Role:
    """Sections of one kind a family's VMs have any number of (``count`` of them)."""

    name: str
    side: str
    """``first`` or ``then``: which side of the rule its sections are."""
    vmsd: str
    phase: Phase
    priority: int
    priority_name: str
    stage: int
    """Registration stage (:data:`ordering.engines.slots.STAGES`); 3 is one hot-plug step each."""
    count: str
    """The symbolic count it belongs to (roles may share one: ``vcpus``)."""
    chain: bool = False
    """Instances register in index order (vCPU i before vCPU i+1 at machine init)."""
    slot: int = 0
    """Within one chained entry, where this role's section registers (a vCPU's sections)."""
    mobile: bool = False
    """A hot-plug step may unplug and replug one after everything else."""
    threaded: bool = False
    """Its load runs in a thread (multifd VFIO config), unordered against the main thread."""


@dataclass(frozen=True)
class Family:
    """VMs with any number of each role's sections (at least ``minimum[count]``), built by any
    sequence of hot-plug steps."""

    name: str
    roles: tuple[Role, ...]
    minimum: tuple[tuple[str, int], ...] = ()
    space: str = ""


@dataclass(frozen=True)
class FamilyProof:
    """The answer for one rule over a family: PROVED for every count, or the smallest VM
    (counts, hot-plug steps) with an order that breaks it."""

    rule: str
    family: str
    outcome: Outcome
    reason: str
    counts: tuple[tuple[str, int], ...] = ()
    """The minimal counterexample's counts (each count and ``hot-plug steps``)."""
    first: str = ""
    then: str = ""

    def describe(self) -> str:
        """``PROVED ...``, ``COUNTEREXAMPLE ...`` or ``UNKNOWN ...`` in one line."""
        head = f"{self.rule} over {self.family}: "
        if self.outcome is Outcome.PROVED:
            return head + f"PROVED for any number of {', '.join(self._names())} ({self.reason})"
        if self.outcome is Outcome.COUNTEREXAMPLE:
            vm = ", ".join(f"{n} {name}" for name, n in self.counts if n)
            return head + f"COUNTEREXAMPLE (minimal: {vm}; every other count 0): {self.reason}"
        return head + f"{self.outcome.value.upper()}: {self.reason}"

    def _names(self) -> list[str]:
        return [name for name, _ in self.counts] or ["devices"]

    def verdict(self, provenance: tuple[str, ...] = ()) -> SpaceVerdict:
        """As a :class:`SpaceVerdict` (engine ``smt``)."""
        steps = tuple(f"{n} {name}" for name, n in self.counts) if self.outcome is Outcome.COUNTEREXAMPLE else ()
        return SpaceVerdict(
            self.rule, self.outcome, "smt", self.family, self.reason, steps=steps,
            provenance=provenance,
        )


def prove_family(family: Family, rule: Rule, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> FamilyProof:
    """Whether some VM of ``family`` (any counts, any hot-plug steps) has an order that loads a
    ``first`` role's section after a ``then`` role's; the counterexample minimises the devices
    plus hot-plug steps it needs.

    Two witnesses stand for the whole VM: a first (role, index) and a then (role, index). Each
    count is a non-negative integer (at least its minimum); a witness's index is below its
    role's count. Machine-init roles register in index order (cpu i before cpu i+1), ``-device``
    roles in any order, hot-plug roles at a step below the number of steps (one step per
    hot-plugged section's device), and a mobile witness may take one more step to be unplugged
    and replugged last. Then QEMU's key: phase, priority, registration position.
    Bus parents are not encoded: they only remove orders, so PROVED stays sound.
    """
    counts = sorted({r.count for r in family.roles})
    n = {c: z3.Int(f"n_{c}") for c in counts}
    steps = z3.Int("hotplug_steps")
    opt = z3.Optimize()
    opt.set("timeout", max(1, timeout_ms))
    minimum = dict(family.minimum)
    for c in counts:
        opt.add(n[c] >= minimum.get(c, 0))
    hot_counts = sorted({r.count for r in family.roles if r.stage == 3})
    firsts = [r for r in family.roles if r.side == "first"]
    thens = [r for r in family.roles if r.side == "then"]
    if not firsts or not thens:
        return FamilyProof(rule.id, family.name, Outcome.VACUOUS, "no role on one side")
    fi, ti = z3.Ints("first_index then_index")
    fpos, tpos = z3.Ints("first_position then_position")
    fmoved, tmoved = z3.Bools("first_replugged then_replugged")
    fc, tc = z3.Ints("first_role then_role")
    big = z3.Int("positions")  # above every position: where a replug goes
    opt.add(fi >= 0, ti >= 0, big > fpos, big > tpos)
    opt.add(fc >= 0, fc < len(firsts), tc >= 0, tc < len(thens))
    moves = z3.If(fmoved, 1, 0) + z3.If(tmoved, 1, 0)
    opt.add(steps >= z3.Sum([n[c] for c in hot_counts] or [z3.IntVal(0)]) + moves)

    def placed(roles: list[Role], which: z3.ArithRef, idx: z3.ArithRef, pos: z3.ArithRef, mv: z3.BoolRef) -> None:
        for k, r in enumerate(roles):
            cond = [idx < n[r.count], pos >= 0]
            if r.chain:
                cond.append(pos == idx * 16 + r.slot)
            if r.stage == 3:
                cond.append(pos < steps)
            if not r.mobile:
                cond.append(z3.Not(mv))
            opt.add(z3.Implies(which == k, z3.And(cond)))

    placed(firsts, fc, fi, fpos, fmoved)
    placed(thens, tc, ti, tpos, tmoved)

    def rank(roles: list[Role], which: z3.ArithRef, pos: z3.ArithRef, mv: z3.BoolRef) -> tuple[z3.ArithRef, ...]:
        stage = z3.IntVal(0)
        key0 = z3.IntVal(0)
        key1 = z3.IntVal(0)
        for k, r in enumerate(roles):
            stage = z3.If(which == k, r.stage, stage)
            key0 = z3.If(which == k, r.phase.rank, key0)
            key1 = z3.If(which == k, -r.priority, key1)
        stage = z3.If(mv, len(STAGES), stage)
        return key0, key1, stage, z3.If(mv, big, pos)

    def threaded(which: z3.ArithRef) -> z3.BoolRef:
        return z3.Or([z3.BoolVal(False), *[which == k for k, r in enumerate(thens) if r.threaded]])

    f0, f1, fs, fp = rank(firsts, fc, fpos, fmoved)
    t0, t1, ts, tp = rank(thens, tc, tpos, tmoved)
    later = z3.Or(
        f0 > t0,
        z3.And(f0 == t0, f1 > t1),
        z3.And(f0 == t0, f1 == t1, z3.Or(fs > ts, z3.And(fs == ts, fp > tp))),
    )
    opt.add(z3.Or(later, threaded(tc)))
    opt.minimize(z3.Sum([n[c] for c in counts]) + steps)
    answer = opt.check()
    names = [*counts, "hot-plug steps"]
    if answer == z3.unknown:
        return FamilyProof(rule.id, family.name, Outcome.UNKNOWN, f"z3: {opt.reason_unknown() or 'unknown'} after {timeout_ms} ms")
    if answer == z3.unsat:
        return FamilyProof(
            rule.id, family.name, Outcome.PROVED,
            f"{len(firsts)} first and {len(thens)} then role(s), any registration order",
            counts=tuple((c, 0) for c in names),
        )
    m = opt.model()
    got = tuple((c, m.eval(n[c], model_completion=True).as_long()) for c in counts)
    got += (("hot-plug steps", m.eval(steps, model_completion=True).as_long()),)
    f = firsts[m.eval(fc, model_completion=True).as_long()]
    t = thens[m.eval(tc, model_completion=True).as_long()]
    if m.eval(threaded(tc), model_completion=True) is not None and z3.is_true(m.eval(threaded(tc), model_completion=True)) and not z3.is_true(m.eval(later, model_completion=True)):
        why = f"{t.name} loads in vfio_load_bufs_thread (multifd), unordered against {f.name}"
    elif (f.phase.rank, -f.priority) > (t.phase.rank, -t.priority):
        why = f"{f.name} at {f.priority_name} ({f.priority}) loads after {t.name} at {t.priority_name} ({t.priority})"
    else:
        fmv = z3.is_true(m.eval(fmoved, model_completion=True))
        where = "replugged last" if fmv else STAGES[f.stage]
        why = (
            f"tie at {f.priority_name} ({f.priority}): {f.name} registers after {t.name} "
            f"({where} vs {STAGES[t.stage]})"
        )
    return FamilyProof(rule.id, family.name, Outcome.COUNTEREXAMPLE, why, counts=got, first=f.name, then=t.name)
