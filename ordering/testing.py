"""Ready-made properties to run from pytest in your own repository (or a QEMU checkout).

Each raises :class:`PropertyFailed` (an ``AssertionError``) with the evidence: the rule, the
counterexample or the order, and the rule's sources. Run them as plain test functions:

>>> from ordering import testing
>>> from ordering.sources.models import load_knowledge
>>> k = load_knowledge()
>>> testing.no_worse_than(k.release("10.2"), baseline=k.release("10.1"))  # 10.2 fixed the APIC tie
>>> testing.no_worse_than(k.release("10.1"), baseline=k.release("10.2"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
ordering.testing.PropertyFailed: QEMU 10.1 is worse than the baseline 10.2:
  apic-before-vfio (every VM): guaranteed → tie-fragile: tie at MIG_PRI_DEFAULT: vfio registered first ...

Three properties:

* :func:`no_order_breaks_a_rule` — no load order in an :class:`~ordering.space.OrderSpace`
  violates a rule: over every VM of a release (z3, :func:`ordering.space.universal`), or over
  one VM's orders drawn by hypothesis (any registration order, hot-plugs up to the bound).
* :func:`simulator_and_rules_agree` — every failure the simulator shows on a drawn order
  breaks a live rule instance (the failing section its ``then``, the needed one a ``first``).
* :func:`no_worse_than` — a tree or release file is no worse than a baseline release: no
  rule's universal verdict (nor its verdict on a bundled scenario) gets worse.

The pytest plugin (``pytest --migorder-tree=. --migorder-baseline=10.2``) runs them on a QEMU
checkout; see :mod:`ordering.pytest_plugin`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordering.model.knowledge import Knowledge, validate_rule
from ordering.model.release import Release
from ordering.model.rule import Rule
from ordering.model.vm import Vm
from ordering.space import OrderSpace, Outcome, universal

__all__ = [
    "PropertyFailed",
    "no_order_breaks_a_rule",
    "no_worse_than",
    "release_of",
    "simulator_and_rules_agree",
]


class PropertyFailed(AssertionError):
    """A ready-made property does not hold; the message carries the evidence."""


def _k(knowledge: Knowledge | None) -> Knowledge:
    from ordering.sources.models import load_knowledge

    return knowledge or load_knowledge()


def release_of(where: str | os.PathLike[str], knowledge: Knowledge | None = None) -> Release:
    """A release from a bundled name, a release file (``scan --out``) or a QEMU tree, read
    once per process (a tree's scan is also cached on disk by content).

    >>> release_of("10.2").name
    '10.2'
    """
    from ordering._kit.releases import load_release

    path = Path(where)
    if path.is_dir():
        from ordering.sources.release_file import release_from_tree

        return _tree(str(path.resolve()), id(_k(knowledge)), _k(knowledge), release_from_tree)
    return load_release(where)


_TREES: dict[tuple[str, int], Release] = {}


def _tree(root: str, kid: int, k: Knowledge, read: object) -> Release:
    key = (root, kid)
    if key not in _TREES:
        _TREES[key] = read(Path(root), k)  # type: ignore[operator]
    return _TREES[key]


def _settings(max_examples: int | None) -> settings:
    return settings(
        max_examples=max_examples or settings().max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=False,
    )


def no_order_breaks_a_rule(
    space: OrderSpace,
    *,
    knowledge: Knowledge | None = None,
    rules: Iterable[Rule] | None = None,
    max_examples: int | None = None,
) -> None:
    """No load order in ``space`` violates a rule.

    Without a VM (``space.vm is None``) the space is every VM of the source release, any
    registration order: each rule is z3's universal verdict, and a counterexample fails.
    With a VM, hypothesis draws orders from the space (:func:`ordering.strategies.load_orders`)
    and the first order that violates a rule fails, shrunk to the fewest changes.

    Parameters
    ----------
    space : OrderSpace
    knowledge : Knowledge, optional
        Yours, after :meth:`Knowledge.with_kind` / :meth:`Knowledge.with_rules`.
    rules : iterable of Rule, optional
        The rules to hold (default: every rule of ``knowledge``).

    Raises
    ------
    PropertyFailed
        With the rule, the counterexample (or the order), and the rule's sources.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> k = load_knowledge()
    >>> no_order_breaks_a_rule(OrderSpace(k.release("10.2"), k.release("10.2")))
    >>> no_order_breaks_a_rule(OrderSpace(k.release("10.1"), k.release("10.1")))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ordering.testing.PropertyFailed: apic-before-vfio: counterexample over every VM of QEMU 10.1, any registration order: ...
    """
    k = _k(knowledge)
    chosen = tuple(rules) if rules is not None else k.rules
    for rule in chosen:
        validate_rule(rule, space.source.kinds)
    if space.vm is None:
        failures = []
        for rule in chosen:
            v = universal(space.source, rule)
            if v.outcome is Outcome.COUNTEREXAMPLE:
                steps = "; ".join(v.steps)
                failures.append(
                    f"{rule.id}: counterexample over {v.space}: {v.reason}"
                    + (f" (steps: {steps})" if steps else "")
                    + f"\n  source: {'; '.join(rule.provenance)}"
                )
        if failures:
            raise PropertyFailed("\n".join(failures))
        return
    _sampled_orders(space, k, chosen, max_examples)


def _sampled_orders(space: OrderSpace, k: Knowledge, rules: Sequence[Rule], max_examples: int | None) -> None:
    from dataclasses import replace

    from ordering._kit.orders import load_orders
    from ordering.check import check_order
    from ordering.verdict import Verdict

    judged = replace(k, rules=tuple(rules))

    @_settings(max_examples)
    @given(load_orders(space))
    def prop(order: object) -> None:
        result = check_order(judged, order)  # type: ignore[arg-type]
        bad = [v for v in result.verdicts if v.verdict is Verdict.VIOLATED]
        if bad:
            v = bad[0]
            devices = " ".join(d.driver + (f",id={d.id}" if d.id else "") for d in result.vm.devices)
            raise PropertyFailed(
                f"{v.rule.id}: violated in {space.describe()}: "
                f"{v.evidence.describe() if v.evidence else v.verdict.value}\n"
                f"  -device order: {devices}\n"
                f"  source: {'; '.join(v.rule.provenance)}"
            )

    prop()


def simulator_and_rules_agree(
    vm: Vm | None = None,
    *,
    release: Release | None = None,
    destination: Release | None = None,
    knowledge: Knowledge | None = None,
    max_examples: int | None = None,
) -> None:
    """Every failure the simulator shows on a drawn order breaks a live rule instance.

    Orders are ``vm``'s (or drawn VMs', :func:`ordering.strategies.vms`) derived on
    ``release`` and reordered (:func:`ordering.strategies.reorderings`); the simulator plays
    them with ``destination``'s behaviours. A failure that breaks no rule means the rules
    miss a hazard the device behaviours know (or the behaviours are wrong).

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.scenario import read_scenario
    >>> k = load_knowledge()
    >>> simulator_and_rules_agree(read_scenario(k.scenarios["hazard-posted-remapped"]),
    ...                           release=k.release("10.1"), max_examples=10)
    """
    from ordering._kit.orders import reorderings
    from ordering._kit.vms import vms
    from ordering.conditions import rule_instances
    from ordering.order import derive
    from ordering.sim import simulate

    k = _k(knowledge)
    source = release or k.newest
    dest = destination or source
    vm_strategy = st.just(vm) if vm is not None else vms()

    @_settings(max_examples)
    @given(vm_strategy.flatmap(lambda v: reorderings(derive(source, v))))
    def prop(order: object) -> None:
        from ordering.order import LoadOrder

        assert isinstance(order, LoadOrder)
        pos = order.position()
        found = rule_instances(k.rules, order.registered)
        for f in simulate(dest, order.vm, order).failures:
            ok = False
            for insts in found.values():
                for inst in insts:
                    if inst.then.section_id != f.section.section_id:
                        continue
                    for first in inst.firsts:
                        if first.section_id == f.needs.section_id and (
                            first.section_id not in pos or pos[first.section_id] > pos[inst.then.section_id]
                        ):
                            ok = True
            if not ok:
                raise PropertyFailed(
                    f"the simulator shows a failure no rule explains: {f.consequence.value} "
                    f"{f.section.label} needs {f.needs.label} first: {f.message}\n  order: {order!r}"
                )

    prop()


def no_worse_than(
    candidate: Release,
    baseline: Release,
    *,
    knowledge: Knowledge | None = None,
    scenarios: Sequence[tuple[str, Vm]] = (),
) -> None:
    """``candidate`` (a tree's or a release file's release) is no worse than ``baseline``.

    Both are judged alike (:func:`ordering.verify.compare`): every rule's universal verdict,
    and its verdict on each of ``scenarios``. Any rule that gets worse anywhere fails; z3's
    unknown on either side fails too (unjudged is not "no worse").

    Raises
    ------
    PropertyFailed
        Each rule that got worse, where, before → after, and the evidence after.
    """
    from ordering.verify import compare

    k = _k(knowledge)
    c = compare(k, baseline, candidate, scenarios)
    worse = [r for r in c.rules if r.delta > 0 or "unknown" in (r.before, r.after)]
    if worse:
        lines = [
            f"  {r.rule} ({'every VM' if r.scope == 'universal' else r.scope}): {r.before} → {r.after}: "
            f"{r.evidence_after}"
            for r in worse
        ]
        raise PropertyFailed(
            f"QEMU {_named(candidate)} is worse than the baseline {_named(baseline)}:\n" + "\n".join(lines)
        )


def _named(rel: Release) -> str:
    return f"{rel.name} ({rel.file})" if rel.file and not rel.file.endswith(f"releases/{rel.name}.toml") else rel.name
