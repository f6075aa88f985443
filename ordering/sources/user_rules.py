"""A user's rule file: ``[kind.NAME]`` tables and ``[[rule]]`` entries, as in ``models/``.

The kinds are added to every release and the rules checked against the kinds migorder knows
and the file's own; a mistake is a :class:`~ordering.errors.ModelError` naming ``file:line``.
"""

from __future__ import annotations

from pathlib import Path

from ordering.errors import ModelError
from ordering.model.knowledge import Knowledge
from ordering.model.rule import Kind, Rule
from ordering.sources.models import read_kinds, read_rules

__all__ = ["knowledge_with_rule_file", "read_rule_file"]


def read_rule_file(path: Path, k: Knowledge) -> tuple[tuple[Kind, ...], tuple[Rule, ...]]:
    """The kinds and rules of a user's rule file.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> fixture = Path(__file__).parents[2] / "tests/fixtures/rules/mine.toml"
    >>> kinds, rules = read_rule_file(fixture, load_knowledge())
    >>> [kind.name for kind in kinds], [r.id for r in rules]
    (['virtio-net'], ['apic-before-virtio-net', 'bridge-before-virtio-net'])
    """
    if not path.is_file():
        raise ModelError(str(path), "expected a TOML file of [kind.NAME] tables and [[rule]] entries")
    kinds = read_kinds(path, also=frozenset({"rule"}), required=False)
    for name in kinds:
        if name in k.kinds:
            raise ModelError(f"{path}", f"kind.{name}: expected a new kind name; {name!r} is bundled")
    rules = read_rules(path, {**k.kinds, **kinds}, also=frozenset({"kind"}))
    return tuple(kinds.values()), rules


def knowledge_with_rule_file(k: Knowledge, path: Path) -> Knowledge:
    """``k`` with the kinds and rules of the user's rule file ``path`` added.

    >>> from ordering.sources.models import load_knowledge
    >>> fixture = Path(__file__).parents[2] / "tests/fixtures/rules/mine.toml"
    >>> k = knowledge_with_rule_file(load_knowledge(), fixture)
    >>> k.rule("apic-before-virtio-net").then, "virtio-net" in k.release("10.0").kinds
    ('virtio-net', True)
    """
    kinds, rules = read_rule_file(path, k)
    for kind in kinds:
        k = k.with_kind(kind)
    return k.with_rules(*rules)
