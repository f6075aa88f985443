"""The MigrationPriority enum of one QEMU release, by name.

QEMU renumbered the enum twice (10.1 and 10.2), so everything in migorder keys on the level's
name and compares values only within one release's scheme.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ordering.errors import UnknownName

DEFAULT = "MIG_PRI_DEFAULT"
UNINITIALIZED = "MIG_PRI_UNINITIALIZED"
MAX = "MIG_PRI_MAX"


@dataclass(frozen=True, order=True)
class PriorityLevel:
    """One ``MIG_PRI_*`` level: its value in this release and the header comment beside it."""

    value: int
    name: str
    comment: str = ""
    source: str = ""

    @property
    def short(self) -> str:
        """The name without ``MIG_PRI_`` (``IOMMU``)."""
        return self.name.removeprefix("MIG_PRI_")


@dataclass(frozen=True)
class PriorityScheme:
    """A release's ``MigrationPriority`` enum, lowest value first.

    Parameters
    ----------
    levels
        The levels as written in ``include/migration/vmstate.h``, including ``MIG_PRI_MAX``.
    zero_is_default
        True from 10.1 on: ``save_state_priority()`` maps an unset (0) priority to DEFAULT.

    Examples
    --------
    >>> s = PriorityScheme((PriorityLevel(0, "MIG_PRI_DEFAULT"), PriorityLevel(1, "MIG_PRI_IOMMU"),
    ...                     PriorityLevel(2, "MIG_PRI_MAX")))
    >>> s.resolve("").name
    'MIG_PRI_DEFAULT'
    >>> s.resolve("MIG_PRI_IOMMU").value
    1
    """

    levels: tuple[PriorityLevel, ...]
    zero_is_default: bool = False

    @cached_property
    def _by_name(self) -> dict[str, PriorityLevel]:
        return {lvl.name: lvl for lvl in self.levels}

    def level(self, name: str) -> PriorityLevel:
        """The level called ``name`` (``MIG_PRI_IOMMU`` or ``IOMMU``)."""
        found = self._by_name.get(name) or self._by_name.get(f"MIG_PRI_{name}")
        if found is not None:
            return found
        known = ", ".join(lvl.name for lvl in self.levels)
        raise UnknownName(f"no priority {name!r} in this release; it has {known}")

    def has(self, name: str) -> bool:
        """Whether this release's enum has the level ``name``."""
        return name in self._by_name

    @property
    def default(self) -> PriorityLevel:
        """``MIG_PRI_DEFAULT``."""
        return self.level(DEFAULT)

    @property
    def usable(self) -> tuple[PriorityLevel, ...]:
        """Levels a section can end up at (no MAX sentinel, no UNINITIALIZED), lowest first."""
        return tuple(lvl for lvl in self.levels if lvl.name not in (MAX, UNINITIALIZED))

    def resolve(self, name: str | None) -> PriorityLevel:
        """The priority a section with ``.priority = name`` is sorted by (``save_state_priority``).

        An unset field (``""`` or ``None``) is 0: DEFAULT before 10.1 (DEFAULT was 0), and
        UNINITIALIZED, mapped to DEFAULT, from 10.1 on.
        """
        if not name or name == UNINITIALIZED:
            return self.default
        return self.level(name)
