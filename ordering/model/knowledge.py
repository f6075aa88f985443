"""Everything migorder knows about QEMU: releases, kinds, rules, named scenarios."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ordering.errors import UnknownName
from ordering.model.machine import version_tuple
from ordering.model.release import Release
from ordering.model.rule import Kind, Rule


@dataclass(frozen=True)
class Knowledge:
    """The bundled (or a user's) QEMU model: the input every engine starts from."""

    releases: Mapping[str, Release]
    kinds: Mapping[str, Kind]
    rules: tuple[Rule, ...]
    scenarios: Mapping[str, Path]
    root: Path

    @property
    def newest(self) -> Release:
        """The newest bundled release."""
        return max(self.releases.values(), key=lambda r: r.version)

    def release(self, name: str | None) -> Release:
        """The release called ``name`` (``None``: the newest)."""
        if name is None:
            return self.newest
        if name in self.releases:
            return self.releases[name]
        try:
            wanted = version_tuple(name)
        except ValueError:
            wanted = None
        for rel in self.releases.values():
            if rel.version == wanted:
                return rel
        known = ", ".join(sorted(self.releases, key=version_tuple))
        raise UnknownName(f"no bundled QEMU release {name!r}; bundled: {known} (see `migorder releases`)")

    def rule(self, rule_id: str) -> Rule:
        """The rule with id ``rule_id``."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        known = ", ".join(r.id for r in self.rules)
        raise UnknownName(f"no rule {rule_id!r}; rules: {known} (see `migorder rules`)")

    def release_for_machine_type(self, machine_type: str) -> Release | None:
        """The release whose newest machine type is ``machine_type`` (``pc-q35-7.2`` → 7.2)."""
        for rel in sorted(self.releases.values(), key=lambda r: r.version):
            for layout in rel.machines.values():
                if machine_type in layout.aliases[:1]:
                    return rel
        return None
