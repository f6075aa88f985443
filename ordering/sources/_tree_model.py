"""What the source-tree scanner finds: VMSD definitions, their uses, handlers, the release.

Frozen dataclasses only; :func:`ordering.sources.qemu_tree.scan_tree` builds them and
:mod:`ordering.sources.qemu_tree` is where to import them from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ordering.sources.cheader import OrderClaim, PriorityEnum


@dataclass(frozen=True)
class VmsdDef:
    """One ``VMStateDescription`` definition as written.

    Attributes
    ----------
    symbol : str
        The C variable (``vtd_vmstate``).
    name : str
        The ``.name`` string, macros resolved; the expression itself when it cannot be.
    name_expr : str
        The ``.name`` initializer as written (``"iommu-intel"``, ``TYPE_PCIE_PCI_BRIDGE_DEV``).
    file : str
        Path relative to the tree root.
    line : int
        Line of the definition.
    priority : str
        ``.priority``: the enumerator it names (``"MIG_PRI_IOMMU"``), or whose value an
        expression such as ``MIG_PRI_DEFAULT + 1`` has; the expression itself when no
        enumerator has its value; ``""`` when unset.
    priority_line : int
        Line of ``.priority`` (0 when unset).
    priority_expr : str
        ``.priority`` as written, whitespace collapsed.
    priority_value : int or None
        Its value, evaluated as the enum parser evaluates enumerators (None when it cannot be).
    early_setup : bool
        ``.early_setup = true``.
    unmigratable : bool
        ``.unmigratable`` set to a non-zero value.
    version_id, minimum_version_id : int or None
        As written, when they are integer literals.
    static : bool
        Whether the definition is ``static`` (visible only in its file).
    refs : tuple of str
        Identifiers in its initializer that name other VMSDs (fields, subsections).
    """

    symbol: str
    name: str
    name_expr: str
    file: str
    line: int
    priority: str = ""
    priority_line: int = 0
    priority_expr: str = ""
    priority_value: int | None = None
    early_setup: bool = False
    unmigratable: bool = False
    version_id: int | None = None
    minimum_version_id: int | None = None
    static: bool = True
    refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Use:
    """One place a VMSD symbol is used.

    ``kind`` is ``"dc"`` (``dc->vmsd = &SYM``), ``"vdc"`` (a VirtioDeviceClass's inner
    vmsd), ``"class_data"`` (``.vmsd = &SYM`` in class data), ``"legacy_vmsd"`` (CPU
    ``sysemu_ops``), ``"register"`` (``vmstate_register*``) or ``"field"`` (inside another
    VMSD). ``device`` is the QOM type whose class_init makes a ``dc``/``vdc`` use;
    ``outer`` the VMSD symbol that carries a ``field``/``vdc`` use.
    """

    kind: str
    file: str
    line: int
    detail: str = ""
    device: str = ""
    outer: str = ""


@dataclass(frozen=True)
class PriorityUser:
    """A VMSD with ``.priority`` (or ``.early_setup``) and how it reaches the stream.

    ``registration`` is ``section``, ``early_setup`` or ``nested``; a VMSD never used at all
    is reported as ``nested`` with an empty ``inside`` and ``how`` saying so.
    """

    vmsd: VmsdDef
    registration: str
    how: str
    inside: str
    uses: tuple[Use, ...]

    @property
    def takes_effect(self) -> bool:
        """Whether the VMSD's own ``.priority`` orders the stream."""
        return self.registration in ("section", "early_setup")


@dataclass(frozen=True)
class Handler:
    """A ``register_savevm_live`` call: SaveVMHandlers, no VMSD, always DEFAULT."""

    idstr: str
    idstr_expr: str
    literal: bool
    ops: str
    file: str
    line: int


@dataclass(frozen=True)
class UnmigratableUse:
    """A VMSD with ``.unmigratable = 1`` and the ``-device`` types that bring it."""

    vmsd: VmsdDef
    devices: tuple[str, ...]


@dataclass(frozen=True)
class ScannedRelease:
    """What :func:`scan_tree` found in one QEMU source tree."""

    root: str
    version: str
    package: str
    enum: PriorityEnum
    claims: tuple[OrderClaim, ...]
    vmsds: tuple[VmsdDef, ...]
    priority_users: tuple[PriorityUser, ...]
    handlers: tuple[Handler, ...]
    unmigratable: tuple[UnmigratableUse, ...]
    features: Mapping[str, tuple[bool, str]] = field(default_factory=dict)
    files_scanned: int = 0
    files_parsed: int = 0
    seconds: float = 0.0
    warnings: tuple[str, ...] = ()
    """Files and folders skipped (unreadable, not regular files, too deep, too large)."""

    @property
    def release(self) -> str:
        """``"MAJOR.MINOR"`` of VERSION (``"7.2"`` for 7.2.22)."""
        parts = self.version.split(".")
        return ".".join(parts[:2])
