"""Read the declarative QEMU knowledge in ``models/`` into model objects.

Every mistake is a :class:`~ordering.errors.ModelError` naming ``file:line`` and what was
expected; nothing here judges an order.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ordering.errors import ModelError
from ordering.model.knowledge import Knowledge
from ordering.model.machine import DeviceType, MachineLayout, RegistrationTemplate, valid_condition
from ordering.model.priority import MAX, PriorityLevel, PriorityScheme
from ordering.model.release import (
    BlockerFact,
    Features,
    Registration,
    Release,
    Unmigratable,
    VmsdFact,
)
from ordering.model.rule import Consequence, Kind, Rule
from ordering.sources._toml import Table, TomlDoc, root


def bundled_models_dir() -> Path:
    """``models/`` of this checkout, or the copy shipped inside the wheel."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_models", here.parent / "models"):
        if (candidate / "rules.toml").is_file():
            return candidate
    raise ModelError(str(here), "expected the bundled models/ directory next to the package")


@cache
def _cached(models_dir: str) -> Knowledge:
    return read_knowledge(Path(models_dir))


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


def read_kinds(path: Path) -> dict[str, Kind]:
    """``kinds.toml``: ``[kind.NAME]`` tables with ``vmsds`` and ``devices``."""
    doc = TomlDoc.read(path)
    top = root(doc)
    top.reject_unknown({"kind"})
    kinds: dict[str, Kind] = {}
    table = top.table("kind", required=True)
    for name in table.keys():
        t = table.table(name)
        t.reject_unknown({"description", "vmsds", "devices"})
        kinds[name] = Kind(
            name, t.str("description", ""), t.strs("vmsds", ()), t.strs("devices", ())
        )
    return kinds


_RULE_KEYS = frozenset(
    {"id", "title", "first", "then", "condition", "consequence", "symptom", "mechanism",
     "provenance", "since", "arch"}
)


def read_rules(path: Path, kinds: dict[str, Kind]) -> tuple[Rule, ...]:
    """``rules.toml``: ``[[rule]]`` entries whose selectors name kinds."""
    from ordering.conditions import CONDITIONS, SELECTORS

    doc = TomlDoc.read(path)
    top = root(doc)
    top.reject_unknown({"rule"})
    rules: list[Rule] = []
    seen: set[str] = set()
    for t in top.tables("rule", required=True):
        t.reject_unknown(_RULE_KEYS)
        rid = t.str("id")
        if rid in seen:
            raise doc.error((*t.path, "id"), f"id: expected a unique rule id, {rid!r} is repeated")
        seen.add(rid)
        sides = []
        for side in ("first", "then"):
            value = t.str(side)
            if value not in kinds and value not in SELECTORS:
                known = ", ".join(sorted({*kinds, *SELECTORS}))
                raise doc.error((*t.path, side), f"{side}: expected a kind ({known}), got {value!r}")
            sides.append(value)
        condition = t.str("condition", "always", choices=tuple(CONDITIONS))
        provenance = t.strs("provenance")
        if not provenance:
            raise doc.error((*t.path, "provenance"), "provenance: expected at least one source")
        rules.append(
            Rule(
                id=rid,
                title=t.str("title"),
                first=sides[0],
                then=sides[1],
                condition=condition,
                consequence=Consequence(t.str("consequence", choices=_CONSEQUENCES)),
                symptom=t.str("symptom"),
                mechanism=t.str("mechanism", ""),
                provenance=provenance,
                since=t.str("since", ""),
                arch=t.str("arch", ""),
                line=doc.line(*t.path),
            )
        )
    return tuple(rules)


_REG_KEYS = frozenset(
    {"vmsd", "idstr", "sent", "iterable", "full", "instance", "instance_id", "first_only",
     "when", "since", "until", "of", "source", "handler", "unmigratable", "early_setup"}
)


def _registration(t: Table) -> RegistrationTemplate:
    t.reject_unknown(_REG_KEYS)
    iterable = t.bool("iterable", False)
    instance = t.str("instance", "auto")
    if "instance_id" in t.data:
        instance = str(t.int("instance_id")) if instance == "auto" else instance
    if instance not in ("auto", "cpu-index", "apic-id") and not instance.isdigit():
        raise t.doc.error(
            (*t.path, "instance"), f"instance: expected auto, cpu-index, apic-id or a number, got {instance!r}"
        )
    when = t.str("when", "")
    if not valid_condition(when):
        raise t.doc.error(
            (*t.path, "when"),
            f"when: expected conditions like 'machine>7.2' or 'gic-version=3' joined by &&, got {when!r}",
        )
    for key in ("since", "until"):
        value = t.str(key, "")
        if value and not all(p.isdigit() for p in value.split(".")):
            raise t.doc.error((*t.path, key), f"{key}: expected a release like '8.0', got {value!r}")
    vmsd = t.str("vmsd")
    idstr = t.str("idstr", vmsd)
    if not idstr:
        raise t.doc.error(t.path, "expected a non-empty vmsd or idstr")
    # A handler (register_savevm_live) has no VMSD: it is known by its idstr's last part.
    vmsd = vmsd or idstr.rsplit("/", 1)[-1]
    return RegistrationTemplate(
        vmsd=vmsd,
        idstr=idstr,
        sent=t.bool("sent", True),
        iterable=iterable,
        full=t.bool("full", not iterable),
        instance=instance,
        first_only=t.bool("first_only", False),
        when=when,
        since=t.str("since", ""),
        until=t.str("until", ""),
        of=t.str("of", ""),
        source=t.str("source", ""),
    )


_DEVICE_KEYS = frozenset(
    {"kind", "bus", "provides_bus", "first_slot", "registers", "dma", "msi", "source", "notes",
     "user_creatable",
     # documentation of what the real binary did, kept beside the facts
     "captured", "needs", "refusal", "refused_on_pc", "setup_position", "slot0_refused_on",
     "slot0_refused_text", "unmigratable", "machines"}
)


def read_devices(path: Path) -> dict[str, DeviceType]:
    """``devices.toml``: ``[device."TYPE"]`` tables."""
    doc = TomlDoc.read(path)
    top = root(doc)
    devices: dict[str, DeviceType] = {}
    table = top.table("device", required=True)
    for name in table.keys():
        t = table.table(name)
        t.reject_unknown(_DEVICE_KEYS)
        devices[name] = DeviceType(
            name=name,
            kind=t.str("kind"),
            bus=t.str("bus", choices=("pci", "sysbus", "none", "cpu")),
            provides_bus=t.str("provides_bus", "", choices=("", "pci", "pcie-port")),
            first_slot=t.int("first_slot", 0),
            registers=tuple(_registration(r) for r in t.tables("registers")),
            dma=t.bool("dma", False),
            msi=t.bool("msi", False),
            source=t.str("source"),
            notes=t.str("notes", ""),
        )
    return devices


_MACHINE_KEYS = frozenset(
    {"machine", "aliases", "arch", "default_bus", "root_bus_kind", "source", "reserved_slots",
     "boot", "cpu", "platform", "late", "hotplug_cpu", "options", "notes", "release",
     "apic_id", "cpus_hotpluggable"}
)


def read_machine(path: Path) -> MachineLayout:
    """``machines/<R>/<machine>.toml``."""
    doc = TomlDoc.read(path)
    t = root(doc)
    t.reject_unknown(_MACHINE_KEYS)
    options = t.table("options")
    return MachineLayout(
        name=t.str("machine"),
        aliases=t.strs("aliases"),
        arch=t.str("arch"),
        default_bus=t.str("default_bus"),
        root_bus_kind=t.str("root_bus_kind", "pci"),
        reserved_slots=t.strs("reserved_slots", ()),
        boot=tuple(_registration(r) for r in t.tables("boot")),
        cpu=tuple(_registration(r) for r in t.tables("cpu")),
        platform=tuple(_registration(r) for r in t.tables("platform")),
        late=tuple(_registration(r) for r in t.tables("late")),
        hotplug_cpu=tuple(_registration(r) for r in t.tables("hotplug_cpu")),
        options={k: str(v) for k, v in options.data.items()},
        source=t.str("source"),
        file=str(path),
    )


_FEATURES = (
    "early_setup",
    "zero_priority_is_default",
    "switchover_start",
    "vfio_multifd_load_thread",
    "vfio_config_load_after_iter",
    "duplicate_section_check",
    "early_setup_before_start",
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
    doc = TomlDoc.read(path)
    t = root(doc)
    t.reject_unknown(_RELEASE_KEYS)
    name = t.str("release")
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
    for key in ft.keys():
        if key.endswith("_source") or key.endswith("_default"):
            sources[key] = str(ft.data[key])
            continue
        if key not in _FEATURES:
            raise doc.error(
                ("features", key), f"unknown feature {key!r}; expected one of {', '.join(_FEATURES)}"
            )
        flags[key] = ft.bool(key)
    features = Features(**flags, sources=sources)
    levels: list[PriorityLevel] = []
    for p in t.tables("priority", required=True):
        p.reject_unknown({"name", "value", "comment", "source"})
        levels.append(PriorityLevel(p.int("value"), p.str("name"), p.str("comment", ""), p.str("source", "")))
    values = [lvl.value for lvl in levels]
    if values != sorted(values) or len(set(values)) != len(values):
        raise doc.error(("priority",), "priority: expected levels lowest first with distinct values")
    scheme = PriorityScheme(tuple(levels), features.zero_priority_is_default)
    if not scheme.has("MIG_PRI_DEFAULT") or not scheme.has(MAX):
        raise doc.error(("priority",), "priority: expected MIG_PRI_DEFAULT and MIG_PRI_MAX among the levels")
    vmsds: dict[str, VmsdFact] = {}
    for v in t.tables("vmsd"):
        v.reject_unknown({"name", "symbol", "file", "priority", "registration", "how", "inside", "source", "since"})
        prio = v.str("priority", "")
        if prio and not scheme.has(prio):
            raise doc.error((*v.path, "priority"), f"priority: expected a level of this release's enum, got {prio!r}")
        fact = VmsdFact(
            name=v.str("name"),
            symbol=v.str("symbol", ""),
            file=v.str("file", ""),
            priority=prio,
            registration=Registration(v.str("registration", choices=_REGISTRATIONS)),
            how=v.str("how", ""),
            inside=v.str("inside", ""),
            source=v.str("source"),
        )
        vmsds[fact.name] = fact
    unmigratable: dict[str, Unmigratable] = {}
    for u in t.tables("unmigratable"):
        u.reject_unknown({"name", "symbol", "file", "device", "source"})
        un = Unmigratable(u.str("name"), u.str("symbol", ""), u.str("file", ""), u.str("device", ""), u.str("source"))
        unmigratable[un.name] = un
    blockers: list[BlockerFact] = []
    for b in t.tables("blocker"):
        b.reject_unknown({"device", "message", "source", "when", "with_kind", "conditional"})
        when = b.str("when", "")
        if not valid_condition(when):
            raise doc.error((*b.path, "when"), f"when: expected conditions like 'x-enable-migration!=on', got {when!r}")
        with_kind = b.str("with_kind", "")
        if with_kind and with_kind not in kinds:
            raise doc.error((*b.path, "with_kind"), f"with_kind: expected a kind of kinds.toml, got {with_kind!r}")
        blockers.append(
            BlockerFact(b.str("device"), b.str("message"), b.str("source"), when, with_kind, b.str("conditional", ""))
        )
    mdir = machines_dir / t.str("machines")
    if not mdir.is_dir():
        raise doc.error(("machines",), f"machines: expected a folder {mdir} with machine layouts")
    machines = {}
    for mpath in sorted(mdir.glob("*.toml")):
        layout = read_machine(mpath)
        machines[layout.name] = layout
    return Release(
        name=name,
        version=(version[0], version[1]),
        source=t.str("source"),
        scheme=scheme,
        vmsds=vmsds,
        unmigratable=unmigratable,
        features=features,
        machines=machines,
        machines_source=t.str("machines_source", ""),
        devices=devices,
        kinds=kinds,
        blockers=tuple(blockers),
        file=str(path),
    )
