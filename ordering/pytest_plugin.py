"""The ``migorder`` pytest plugin: run migorder's ready-made properties on a QEMU checkout.

In a QEMU source tree::

    pytest --migorder-tree=. --migorder-baseline=10.2

collects one test per property (and nothing else from the tree):

* ``migorder::no-worse-than[10.2]`` — no rule's verdict gets worse than on the baseline, over
  every VM (z3) and on each bundled scenario (:func:`ordering.testing.no_worse_than`);
* ``migorder::no-order-breaks[RULE]`` — no VM of the tree's release, in any registration
  order, violates RULE (:func:`ordering.testing.no_order_breaks_a_rule`);
* ``migorder::simulator-and-rules-agree[SCENARIO]`` — on orders of a bundled scenario, every
  simulated failure breaks a rule (:func:`ordering.testing.simulator_and_rules_agree`).

``--migorder-release-file=FILE`` judges a release file (``migorder scan --out``) instead of
a tree; ``--migorder-rules=FILE`` adds a rule file of your own (``[kind.NAME]`` and
``[[rule]]``). Without ``--migorder-tree`` or ``--migorder-release-file`` the plugin does
nothing. Registered through the ``pytest11`` entry point ``migorder``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

_OPTIONS = ("migorder_tree", "migorder_release_file")


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--migorder-tree``, ``--migorder-release-file``, ``--migorder-baseline``, ``--migorder-rules``."""
    group = parser.getgroup("migorder", "migorder: QEMU migration load-order properties")
    group.addoption("--migorder-tree", metavar="DIR", help="a QEMU source tree to judge (scanned once, cached by content)")
    group.addoption("--migorder-release-file", metavar="FILE", help="a release file (migorder scan --out) to judge instead of a tree")
    group.addoption("--migorder-baseline", metavar="R", help="a bundled release (10.2) or release file the tree must be no worse than")
    group.addoption("--migorder-rules", metavar="FILE", help="a rule file of your own ([kind.NAME] tables, [[rule]] entries) judged too")


def _active(config: pytest.Config) -> bool:
    return any(config.getoption(o) for o in _OPTIONS)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """In migorder mode the tree's own files are not collected (a QEMU tree is no test suite)."""
    return True if _active(config) else None


class _Failure(Exception):
    pass


class PropertyItem(pytest.Item):
    """One ready-made property on the tree."""

    def __init__(self, *, check: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._check = check

    def runtest(self) -> None:
        from ordering.errors import MigOrderError

        try:
            self._check()
        except MigOrderError as exc:
            raise _Failure(f"migorder: {exc}") from None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        from ordering.testing import PropertyFailed

        if isinstance(excinfo.value, PropertyFailed | _Failure):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"migorder: {self.name}"


class _Properties(pytest.Collector):
    def collect(self) -> Iterator[PropertyItem]:
        config = self.config
        judged = _Judged(
            config.getoption("migorder_tree"),
            config.getoption("migorder_release_file"),
            config.getoption("migorder_rules"),
        )
        baseline = config.getoption("migorder_baseline")
        if baseline:
            yield PropertyItem.from_parent(self, name=f"no-worse-than[{baseline}]",
                                           check=lambda: judged.no_worse_than(baseline))
        for rule_id in judged.rule_ids():
            yield PropertyItem.from_parent(self, name=f"no-order-breaks[{rule_id}]",
                                           check=lambda r=rule_id: judged.no_order_breaks(r))
        for name in judged.scenario_names():
            yield PropertyItem.from_parent(self, name=f"simulator-and-rules-agree[{name}]",
                                           check=lambda n=name: judged.simulator_agrees(n))


class _Judged:
    """The tree (or release file) and the knowledge it is judged with, read once."""

    def __init__(self, tree: str | None, release_file: str | None, rules: str | None) -> None:
        self.where = tree or release_file or ""
        self.rules = rules

    @cache  # noqa: B019 - one _Judged per session
    def knowledge(self) -> Any:
        from ordering.sources.models import load_knowledge
        from ordering.sources.user_rules import knowledge_with_rule_file

        k = load_knowledge()
        return knowledge_with_rule_file(k, Path(self.rules)) if self.rules else k

    @cache  # noqa: B019
    def release(self) -> Any:
        from ordering.testing import release_of

        return release_of(self.where, self.knowledge())

    def rule_ids(self) -> list[str]:
        try:
            return [r.id for r in self.knowledge().rules]
        except Exception:  # reported by the first item instead
            return ["(rules)"]

    def scenario_names(self) -> list[str]:
        from ordering.sources.models import load_knowledge

        return sorted(load_knowledge().scenarios)

    def _scenarios(self) -> list[tuple[str, Any]]:
        from ordering.sources.scenario import read_scenario

        k = self.knowledge()
        return [(name, read_scenario(path)) for name, path in sorted(k.scenarios.items())]

    def no_worse_than(self, baseline: str) -> None:
        from ordering.testing import no_worse_than, release_of

        no_worse_than(self.release(), release_of(baseline), knowledge=self.knowledge(),
                      scenarios=self._scenarios())

    def no_order_breaks(self, rule_id: str) -> None:
        from ordering.space import OrderSpace
        from ordering.testing import no_order_breaks_a_rule

        k = self.knowledge()
        rel = self.release()
        no_order_breaks_a_rule(OrderSpace(rel, rel), knowledge=k, rules=[k.rule(rule_id)])

    def simulator_agrees(self, name: str) -> None:
        from ordering.sources.scenario import read_scenario
        from ordering.testing import simulator_and_rules_agree

        k = self.knowledge()
        simulator_and_rules_agree(read_scenario(k.scenarios[name]), release=self.release(),
                                  knowledge=k, max_examples=20)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """In migorder mode, the items are the properties."""
    if not _active(config):
        return
    where = Path(config.getoption("migorder_tree") or config.getoption("migorder_release_file"))
    collector = _Properties.from_parent(session, name="migorder", path=where.resolve())
    items.extend(collector.collect())
