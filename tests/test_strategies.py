"""The public strategies, used as a QEMU developer would: property-test a proposed rule."""

from __future__ import annotations

from dataclasses import replace

import networkx as nx
from hypothesis import given
from hypothesis import strategies as st

from ordering import strategies as ms
from ordering.check import check_order
from ordering.graph import kind_graph
from ordering.model.rule import Rule
from ordering.model.vm import Vm
from ordering.order import derive
from ordering.sources.models import load_knowledge
from ordering.verdict import Verdict, placements

K = load_knowledge()


@given(ms.vms(), ms.release_names())
def test_every_generated_vm_derives_and_checks(vm: Vm, release: str) -> None:
    order = derive(K.release(release), vm)
    assert check_order(K, order).exit_code in (0, 1)


@given(ms.vms(), ms.release_names(), ms.rule_bases())
def test_proposed_rules_cycles_are_exactly_the_kind_graph_cycles(vm: Vm, release: str, extra: tuple[Rule, ...]) -> None:
    k = replace(K, rules=(*K.rules, *extra))
    result = check_order(k, derive(K.release(release), vm))
    assert bool(result.kind_cycles) == (not nx.is_directed_acyclic_graph(kind_graph(k.rules)))


@given(ms.x86_vms(), ms.release_names(), st.data())
def test_verdicts_on_any_reordering_follow_positions(vm: Vm, release: str, data: st.DataObject) -> None:
    order = data.draw(ms.reorderings(derive(K.release(release), vm)))
    where = placements(order)
    for v in check_order(K, order).verdicts:
        if v.evidence is None:
            continue
        late = where[v.evidence.first.section.section_id].position > where[v.evidence.then.section.section_id].position
        assert (v.verdict is Verdict.VIOLATED) == late
