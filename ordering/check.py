"""``migorder check``'s core: one VM on one release, judged against every rule."""

from __future__ import annotations

from dataclasses import dataclass

from ordering.claims import ClaimCheck, check_claims
from ordering.conditions import rule_instances
from ordering.graph import Cycle, cycles, kind_graph, section_graph
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.model.section import Section
from ordering.model.vm import Vm
from ordering.order import LoadOrder, derive
from ordering.verdict import RuleVerdict, Verdict, judge


@dataclass(frozen=True)
class Blocker:
    """A section whose VMSD is unmigratable: QEMU refuses to migrate the VM."""

    section: Section
    message: str
    source: str


@dataclass(frozen=True)
class CheckResult:
    """Everything ``migorder check`` reports, with its evidence."""

    release: Release
    vm: Vm
    order: LoadOrder
    verdicts: tuple[RuleVerdict, ...]
    kind_cycles: tuple[Cycle, ...]
    section_cycles: tuple[Cycle, ...]
    claims: tuple[ClaimCheck, ...]
    blockers: tuple[Blocker, ...]

    @property
    def findings(self) -> bool:
        """Whether anything is wrong: a violated or tie-fragile rule, a cycle, a blocker."""
        return bool(
            any(v.verdict in (Verdict.VIOLATED, Verdict.TIE_FRAGILE) for v in self.verdicts)
            or self.kind_cycles
            or self.section_cycles
            or self.blockers
        )

    @property
    def exit_code(self) -> int:
        """0 clean, 1 findings."""
        return 1 if self.findings else 0


def blockers(order: LoadOrder) -> list[Blocker]:
    """Unmigratable sections, as ``qemu_savevm_state_blocked`` would refuse them."""
    out: list[Blocker] = []
    for s in order.registered.sections:
        fact = order.release.unmigratable.get(s.vmsd)
        if fact is not None:
            out.append(
                Blocker(s, f"State blocked by non-migratable device '{s.idstr}'", fact.source)
            )
    return out


def check_order(knowledge: Knowledge, order: LoadOrder) -> CheckResult:
    """Judge an already derived (or observed) load order."""
    rules = knowledge.rules
    verdicts = judge(order, rules)
    instances = [i for insts in rule_instances(rules, order.registered).values() for i in insts]
    return CheckResult(
        release=order.release,
        vm=order.vm,
        order=order,
        verdicts=tuple(verdicts),
        kind_cycles=tuple(cycles(kind_graph(rules))),
        section_cycles=tuple(cycles(section_graph(instances))),
        claims=tuple(check_claims(order.release, rules)),
        blockers=tuple(blockers(order)),
    )


def check(knowledge: Knowledge, release: Release, vm: Vm) -> CheckResult:
    """Derive ``vm``'s load order on ``release`` and judge it.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> k = load_knowledge()
    >>> r = check(k, k.release("7.2"), read_scenario(k.scenarios["default"]))
    >>> r.exit_code
    1
    """
    return check_order(knowledge, derive(release, vm))
