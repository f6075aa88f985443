"""Read the declarative QEMU knowledge in ``models/`` into model objects.

Every mistake is a :class:`~ordering.errors.ModelError` naming ``file:line`` and what was
expected; nothing here judges an order.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ordering.errors import ModelError
from ordering.model.knowledge import Knowledge
from ordering.model.machine import (
    DeviceType,
    valid_condition,
)
from ordering.model.priority import MAX, PriorityLevel, PriorityScheme
from ordering.model.release import (
    BlockerFact,
    CpuModels,
    Features,
    Registration,
    Release,
    Unmigratable,
    VmsdFact,
)
from ordering.model.rule import Consequence, Kind, Rule
from ordering.sources.device_models import open_toml, read_devices, read_machine

if TYPE_CHECKING:  # the TOML reader is imported when a file is read: a cached start reads none
    pass


def bundled_models_dir() -> Path:
    """``models/`` of this checkout, or the copy shipped inside the wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_models", here.parent / "models"):
        if (candidate / "rules.toml").is_file():
            return candidate
    raise ModelError(str(here), "expected the bundled models/ directory next to the package")


@cache
def _cached(models_dir: str) -> Knowledge:
    from ordering.sources.knowledge_cache import cached_knowledge

    return cached_knowledge(Path(models_dir), read_knowledge)


def load_knowledge(models_dir: Path | None = None) -> Knowledge:
    """Load (once) the QEMU knowledge from ``models_dir`` (default: the bundled one).

    >>> k = load_knowledge()
    >>> "7.2" in k.releases
    True
    """
    return _cached(str((models_dir or bundled_models_dir()).resolve()))


def read_knowledge(models_dir: Path) -> Knowledge:
    """Read every file of a models directory (no caching)."""
    kinds = read_kinds(models_dir / "kinds.toml")
    devices = read_devices(models_dir / "devices.toml")
    rules = read_rules(models_dir / "rules.toml", kinds)
    releases: dict[str, Release] = {}
    for path in sorted((models_dir / "releases").glob("*.toml")):
        rel = read_release(path, models_dir / "machines", devices, kinds)
        releases[rel.name] = rel
    if not releases:
        raise ModelError(str(models_dir / "releases"), "expected at least one release TOML")
    scenarios = {p.stem: p for p in sorted((models_dir / "scenarios").glob("*.toml"))}
    return Knowledge(releases, kinds, rules, scenarios, models_dir)


_CONSEQUENCES = tuple(c.value for c in Consequence)


def read_kinds(path: Path, *, also: frozenset[str] = frozenset(), required: bool = True) -> dict[str, Kind]:
    """``kinds.toml``: ``[kind.NAME]`` tables with ``vmsds`` and ``devices``.

    ``also``: other top-level keys the file may hold (a user's rule file holds ``rule``).
    """
    _, top = open_toml(path)
    top.reject_unknown({"kind", *also})
    kinds: dict[str, Kind] = {}
    table = top.table("kind", required=required)
    for name in table.names():
        t = table.table(name)
        t.reject_unknown({"description", "vmsds", "devices"})
        kinds[name] = Kind(
            name, t.text("description", ""), t.texts("vmsds", ()), t.texts("devices", ())
        )
    return kinds


_RULE_KEYS = frozenset(
    {"id", "title", "first", "then", "condition", "consequence", "symptom", "mechanism",
     "provenance", "since", "arch"}
)


def read_rules(path: Path, kinds: dict[str, Kind], *, also: frozenset[str] = frozenset()) -> tuple[Rule, ...]:
    """``rules.toml``: ``[[rule]]`` entries whose selectors name kinds.

    ``also``: other top-level keys the file may hold (a user's rule file holds ``kind``).
    """
    from ordering.conditions import CONDITIONS, SELECTORS

    doc, top = open_toml(path)
    top.reject_unknown({"rule", *also})
    rules: list[Rule] = []
    seen: set[str] = set()
    for t in top.tables("rule", required=True):
        t.reject_unknown(_RULE_KEYS)
        rid = t.text("id")
        if rid in seen:
            raise doc.error((*t.path, "id"), f"id: expected a unique rule id, {rid!r} is repeated")
        seen.add(rid)
        sides = []
        for side in ("first", "then"):
            value = t.text(side)
            if value not in kinds and value not in SELECTORS:
                known = ", ".join(sorted({*kinds, *SELECTORS}))
                raise doc.error((*t.path, side), f"{side}: expected a kind ({known}), got {value!r}")
            sides.append(value)
        condition = t.text("condition", "always", choices=tuple(CONDITIONS))
        provenance = t.texts("provenance")
        if not provenance:
            raise doc.error((*t.path, "provenance"), "provenance: expected at least one source")
        rules.append(
            Rule(
                id=rid,
                title=t.text("title"),
                first=sides[0],
                then=sides[1],
                condition=condition,
                consequence=Consequence(t.text("consequence", choices=_CONSEQUENCES)),
                symptom=t.text("symptom"),
                mechanism=t.text("mechanism", ""),
                provenance=provenance,
                since=t.text("since", ""),
                arch=t.text("arch", ""),
                line=doc.line(*t.path),
            )
        )
    return tuple(rules)




_FEATURES = (
    "early_setup",
    "zero_priority_is_default",
    "switchover_start",
    "vfio_multifd_load_thread",
    "vfio_config_load_after_iter",
    "duplicate_section_check",
    "early_setup_before_start",
    "no_hpet_no_acpi_flags",
    "hotplug_needs_free_port_slot0",
    "gicv2_its_refused",
    "gicv3_above_8_cpus",
    "smp_zero_refused",
    "x2apic_needs_kernel_irqchip",
    "x2apic_needs_cpu_feature",
    "x2apic_refusal_aborts",
    "kvm_userspace_apic_refused",
    "intremap_needs_userspace_ioapic",
    "eim_needs_kvm_split",
    "amd_iommu_x2apic_needs_xtsup",
    "smp_books_drawers_modules",
)
_RELEASE_KEYS = frozenset(
    {"release", "version", "source", "machines", "machines_source", "features", "priority",
     "vmsd", "unmigratable", "notes", "blocker"}
)
_REGISTRATIONS = tuple(r.value for r in Registration)


def read_release(
    path: Path, machines_dir: Path, devices: dict[str, DeviceType], kinds: dict[str, Kind]
) -> Release:
    """``releases/<R>.toml`` with the machine layouts it names."""
    doc, t = open_toml(path)
    t.reject_unknown(_RELEASE_KEYS)
    name = t.text("release")
    version = t.data.get("version")
    if (
        not isinstance(version, list)
        or len(version) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in version)
    ):
        raise doc.error(("version",), "version: expected [MAJOR, MINOR], e.g. [7, 2]")
    ft = t.table("features")
    flags: dict[str, bool] = {}
    sources: dict[str, str] = {}
    for key in ft.names():
        if key.endswith(("_source", "_default")):
            sources[key] = str(ft.data[key])
            continue
        if key not in _FEATURES:
            raise doc.error(
                ("features", key), f"unknown feature {key!r}; expected one of {', '.join(_FEATURES)}"
            )
        flags[key] = ft.flag(key)
    features = Features(**flags, sources=sources)
    levels: list[PriorityLevel] = []
    for p in t.tables("priority", required=True):
        p.reject_unknown({"name", "value", "comment", "source"})
        levels.append(PriorityLevel(p.integer("value"), p.text("name"), p.text("comment", ""), p.text("source", "")))
    values = [lvl.value for lvl in levels]
    if values != sorted(values) or len(set(values)) != len(values):
        raise doc.error(("priority",), "priority: expected levels lowest first with distinct values")
    scheme = PriorityScheme(tuple(levels), features.zero_priority_is_default)
    if not scheme.has("MIG_PRI_DEFAULT") or not scheme.has(MAX):
        raise doc.error(("priority",), "priority: expected MIG_PRI_DEFAULT and MIG_PRI_MAX among the levels")
    vmsds: dict[str, VmsdFact] = {}
    for v in t.tables("vmsd"):
        v.reject_unknown({"name", "symbol", "file", "priority", "registration", "how", "inside", "source", "since"})
        prio = v.text("priority", "")
        if prio and not scheme.has(prio):
            raise doc.error((*v.path, "priority"), f"priority: expected a level of this release's enum, got {prio!r}")
        fact = VmsdFact(
            name=v.text("name"),
            symbol=v.text("symbol", ""),
            file=v.text("file", ""),
            priority=prio,
            registration=Registration(v.text("registration", choices=_REGISTRATIONS)),
            how=v.text("how", ""),
            inside=v.text("inside", ""),
            source=v.text("source"),
        )
        vmsds[fact.name] = fact
    unmigratable: dict[str, Unmigratable] = {}
    for u in t.tables("unmigratable"):
        u.reject_unknown({"name", "symbol", "file", "device", "source", "when"})
        when = u.text("when", "")
        if not valid_condition(when):
            raise doc.error((*u.path, "when"), f"when: expected a device-property condition, got {when!r}")
        un = Unmigratable(
            u.text("name"), u.text("symbol", ""), u.text("file", ""), u.text("device", ""), u.text("source"), when
        )
        unmigratable[un.name] = un
    blockers: list[BlockerFact] = []
    for b in t.tables("blocker"):
        b.reject_unknown({"device", "message", "source", "when", "with_kind", "conditional"})
        when = b.text("when", "")
        if not valid_condition(when):
            raise doc.error((*b.path, "when"), f"when: expected conditions like 'x-enable-migration!=on', got {when!r}")
        with_kind = b.text("with_kind", "")
        if with_kind and with_kind not in kinds:
            raise doc.error((*b.path, "with_kind"), f"with_kind: expected a kind of kinds.toml, got {with_kind!r}")
        blockers.append(
            BlockerFact(b.text("device"), b.text("message"), b.text("source"), when, with_kind, b.text("conditional", ""))
        )
    mdir = machines_dir / t.text("machines")
    if not mdir.is_dir():
        raise doc.error(("machines",), f"machines: expected a folder {mdir} with machine layouts")
    machines = {}
    for mpath in sorted(mdir.glob("*.toml")):
        layout = read_machine(mpath)
        machines[layout.name] = layout
    properties, properties_source = read_properties(machines_dir.parent / "properties" / f"{name}.toml")
    aliases = read_aliases(machines_dir.parent / "aliases.toml", devices)
    cpu_models = read_cpu_models(machines_dir.parent / "cpus" / f"{name}.toml")
    return Release(
        name=name,
        version=(version[0], version[1]),
        source=t.text("source"),
        scheme=scheme,
        vmsds=vmsds,
        unmigratable=unmigratable,
        features=features,
        machines=machines,
        machines_source=t.text("machines_source", ""),
        devices=devices,
        kinds=kinds,
        blockers=tuple(blockers),
        file=str(path),
        device_properties=properties,
        device_properties_source=properties_source,
        device_aliases=aliases,
        cpu_models=cpu_models,
    )


@cache
def _alias_table(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    _, top = open_toml(path)
    top.reject_unknown({"source", "alias"})
    top.text("source")
    table = top.table("alias", required=True)
    return {name: table.text(name) for name in table.names()}


def read_aliases(path: Path, devices: dict[str, DeviceType]) -> dict[str, str]:
    """``aliases.toml``: QEMU's -device type aliases whose target migorder models. A name that
    is itself a device type here stays that type (QEMU uses an alias only when no type has the
    name: qdev_get_device_class)."""
    return {a: t for a, t in _alias_table(path).items() if a not in devices and t in devices}


def read_properties(path: Path) -> tuple[dict[str, frozenset[str]], str]:
    """``properties/<R>.toml``: the properties each device type accepts on that release's
    binary (``-device TYPE,help``), or nothing when the release has no such file."""
    if not path.is_file():
        return {}, ""
    _, t = open_toml(path)
    t.reject_unknown({"source", "device"})
    out: dict[str, frozenset[str]] = {}
    devices = t.table("device", required=True)
    for name in devices.names():
        entry = devices.table(name)
        entry.reject_unknown({"binary", "properties", "unknown"})
        if "unknown" not in entry.data:
            out[name] = frozenset(entry.texts("properties"))
    return out, t.text("source")


def read_cpu_models(path: Path) -> CpuModels | None:
    """``cpus/<R>.toml``: which x86 CPU models have x2APIC under TCG and under KVM, or
    ``None`` when the release has no such file."""
    if not path.is_file():
        return None
    _, t = open_toml(path)
    t.reject_unknown({"source", "x2apic"})
    x = t.table("x2apic", required=True)
    x.reject_unknown({"tcg", "tcg_without", "kvm_without"})
    return CpuModels(
        frozenset(x.texts("tcg")), frozenset(x.texts("tcg_without")), frozenset(x.texts("kvm_without")), t.text("source")
    )
