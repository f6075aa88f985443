"""Rule-base strategies: proposed rules between kinds, or subsets of a user's rule file."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from hypothesis import strategies as st

from ordering.errors import InvalidArgument
from ordering.model.knowledge import Knowledge
from ordering.model.rule import Consequence, Rule
from ordering.sources.models import load_knowledge

DEFAULT_KINDS = ("viommu", "pci-bridge", "apic", "vfio", "virtio-mem", "gicv3", "its")


@cache
def _file_rules(path: str, mtime_ns: int) -> tuple[Rule, ...]:
    from ordering.sources.user_rules import read_rule_file

    return read_rule_file(Path(path), load_knowledge())[1]


@st.composite
def _proposed(draw: st.DrawFn, kinds: tuple[str, ...]) -> tuple[Rule, ...]:
    out: list[Rule] = []
    for i in range(draw(st.integers(1, 3))):
        first = draw(st.sampled_from(kinds))
        then = draw(st.sampled_from([k for k in kinds if k != first]))
        out.append(
            Rule(
                id=f"proposed-{i}",
                title=f"{first} before {then} (proposed)",
                first=first,
                then=then,
                condition="always",
                consequence=draw(st.sampled_from(list(Consequence))),
                symptom="(proposed rule)",
                mechanism="",
                provenance=("ordering.strategies.rule_bases",),
            )
        )
    return tuple(out)


def rule_bases(
    kinds: tuple[str, ...] = DEFAULT_KINDS,
    *,
    path: str | os.PathLike[str] | None = None,
    knowledge: Knowledge | None = None,
) -> st.SearchStrategy[tuple[Rule, ...]]:
    """Rule bases to add to migorder's: one to three proposed rules ``first → then`` between
    ``kinds`` (live whenever both exist), or, with ``path``, a non-empty subset of the rules
    of a user's rule file (``[kind.NAME]`` tables and ``[[rule]]`` entries; add its kinds
    with :func:`ordering.sources.user_rules.knowledge_with_rule_file`). ``knowledge``: the
    knowledge whose kinds ``kinds`` may name (default: the bundled one; pass yours after
    :meth:`Knowledge.with_kind`).

    Proposed rules may contradict QEMU's (``vfio`` before ``viommu``): that is what they are
    for, finding the cycle. Shrinks to one rule between the first two kinds, or to the
    file's first rule.

    Raises
    ------
    InvalidArgument
        Fewer than two kinds, or a kind migorder does not know.
    ModelError
        The rule file is not one (``file:line``).

    Examples
    --------
    >>> from hypothesis import find
    >>> [r.title for r in find(rule_bases(("apic", "vfio")), lambda rules: True)]
    ['apic before vfio (proposed)']
    >>> fixture = Path(__file__).parents[2] / "tests/fixtures/rules/mine.toml"
    >>> [r.id for r in find(rule_bases(path=fixture), lambda rules: True)]
    ['apic-before-virtio-net']
    """
    if path is not None:
        p = Path(path)
        from ordering.errors import ModelError

        if not p.is_file():
            raise ModelError(str(p), "expected a TOML file of [kind.NAME] tables and [[rule]] entries")
        rules = _file_rules(str(p.resolve()), p.stat().st_mtime_ns)
        return st.lists(st.sampled_from(rules), min_size=1, max_size=len(rules), unique_by=lambda r: r.id).map(
            lambda chosen: tuple(sorted(chosen, key=rules.index))
        )
    from ordering.conditions import SELECTORS

    known = {*(knowledge or load_knowledge()).kinds, *SELECTORS}
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise InvalidArgument(
            f"rule_bases: unknown kind {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))} "
            "(a kind of your own: Knowledge.with_kind)"
        )
    if len(set(kinds)) < 2:
        raise InvalidArgument("rule_bases: give at least two kinds")
    return _proposed(tuple(kinds))
