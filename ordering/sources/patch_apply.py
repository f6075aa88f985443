"""Apply patches to a bundled release model, without a tree: the hunks read as model edits.

Understood: the ``MigrationPriority`` enum in ``include/migration/vmstate.h`` (enumerators
inserted, removed, renamed; initialisers ``= N``, ``= MIG_PRI_X``, ``= MIG_PRI_X + 1``; comments
beside them; enumerators after ``MIG_PRI_MAX``), and ``.priority`` / ``.early_setup`` added,
removed or changed on a VMSD named by the hunk (its ``VMStateDescription`` declaration and
``.name`` in the hunk or git's ``@@`` context, or the release's VMSD facts).

Not guessed: a hunk that touches ordering in any other way (registrations, savevm code that
uses priorities, a VMSD the base model does not know) is :class:`Unjudged` with ``file:line``.
A hunk that changes something the base does not have raises :class:`DoesNotApply`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ordering.errors import SourceTreeError
from ordering.model.priority import PriorityLevel, PriorityScheme
from ordering.model.release import Registration, Release, VmsdFact
from ordering.sources.patch import FileDiff, Hunk, Line, Patch

__all__ = ["Applied", "DoesNotApply", "Unjudged", "apply_to_model", "savevm_hunks"]

HEADER = "include/migration/vmstate.h"


class DoesNotApply(SourceTreeError):
    """A patch written for a tree where what it changes does not exist."""


@dataclass(frozen=True)
class Unjudged:
    """A hunk that touches ordering but that migorder cannot read without a tree."""

    where: str
    """``file:line`` in the tree (new side)."""
    patch: str
    what: str


@dataclass(frozen=True)
class Applied:
    """The proposed release and what was read from the patches."""

    release: Release
    changes: tuple[str, ...]
    """Each understood edit, ``file:line: what``."""
    unjudged: tuple[Unjudged, ...]
    ignored: tuple[str, ...]
    """``file:line`` of hunks unrelated to ordering."""


_ENUMERATOR = re.compile(
    r"^\s*(MIG_PRI_\w+)\s*(?:=\s*([^,/]+?))?\s*(,)?\s*(?:/\*\s*(.*?)\s*\*/|//\s*(.*?))?\s*$"
)
_NOISE = re.compile(r"^\s*(?:|typedef\s+enum\s*\{|enum\s+MigrationPriority\s*\{|\}\s*MigrationPriority\s*;|\};|/\*.*\*/|//.*|/?\*.*)\s*$")
_PRIORITY = re.compile(r"^\s*\.priority\s*=\s*([A-Za-z_]\w*)\s*,?\s*(?:/\*.*\*/)?\s*$")
_EARLY = re.compile(r"^\s*\.early_setup\s*=\s*(\w+)\s*,?\s*$")
_DECL = re.compile(r"VMStateDescription\s+(\w+)\s*=")
_NAME = re.compile(r'^\s*\.name\s*=\s*"([^"]*)"')
_REGISTER = re.compile(r"\b(?:vmstate_register\w*|register_savevm_live|vmstate_unregister|unregister_savevm)\s*\(|\b(?:dc|vdc|k)->vmsd\s*=|\.vmsd\s*=|legacy_vmsd")
_SAVEVM_USES = re.compile(r"priority|MIG_PRI_|early_setup|savevm_state_insert_queue|SaveStateEntry|savevm_state_setup")
_ORDERING = re.compile(r"MIG_PRI_|\.priority\b|\bpriority\b|early_setup")


@dataclass
class _Entry:
    name: str
    init: str | None
    comment: str
    source: str


def _base_entries(scheme: PriorityScheme) -> list[_Entry]:
    out: list[_Entry] = []
    prev: int | None = None
    for lvl in scheme.levels:
        init = None if prev is not None and lvl.value == prev + 1 else str(lvl.value)
        out.append(_Entry(lvl.name, init, lvl.comment, lvl.source))
        prev = lvl.value
    return out


def _evaluate(entries: list[_Entry]) -> dict[str, int] | str:
    values: dict[str, int] = {}
    prev = -1
    for e in entries:
        if e.init is None:
            v = prev + 1
        else:
            m = re.fullmatch(r"\s*(?:(\d+)|(MIG_PRI_\w+)\s*(?:([+-])\s*(\d+))?)\s*", e.init)
            if not m:
                return f"{e.name} = {e.init}: an initialiser migorder cannot evaluate"
            if m.group(1):
                v = int(m.group(1))
            else:
                ref = m.group(2)
                if ref not in values:
                    return f"{e.name} = {e.init}: {ref} is not defined before it"
                v = values[ref] + (int(m.group(4)) * (1 if m.group(3) == "+" else -1) if m.group(3) else 0)
        values[e.name] = v
        prev = v
    return values


class _Model:
    def __init__(self, base: Release) -> None:
        self.base = base
        self.entries = _base_entries(base.scheme)
        self.vmsds: dict[str, VmsdFact] = dict(base.vmsds)
        self.changes: list[str] = []
        self.unjudged: list[Unjudged] = []
        self.ignored: list[str] = []
        self.registered = {t.vmsd for layout in base.machines.values()
                           for g in (layout.boot, layout.cpu, layout.platform, layout.late, layout.hotplug_cpu)
                           for t in g} | {t.vmsd for d in base.devices.values() for t in d.registers}

    # ------------------------------------------------------------------ the enum

    def enum_hunk(self, patch: Patch, f: FileDiff, h: Hunk) -> None:
        where = f"{f.path}:{h.new_start}"
        for ln in h.changed:
            if not (_ENUMERATOR.match(ln.text) or _NOISE.match(ln.text)):
                self.unjudged.append(Unjudged(f"{f.path}:{ln.new or ln.old}", patch.label,
                                              f"a change inside the enum migorder cannot read: {ln.text.strip()!r}"))
                return
        old = [(ln, m) for ln in h.side("-") if (m := _ENUMERATOR.match(ln.text))]
        new = [(ln, m) for ln in h.side("+") if (m := _ENUMERATOR.match(ln.text))]
        names = [e.name for e in self.entries]
        old_names = [m.group(1) for _, m in old]
        base_label = f"BASE ({self.base.name})"
        if old_names:
            missing = [n for n in old_names if n not in names]
            if missing:
                raise DoesNotApply(where, f"does not apply to {base_label}: {', '.join(missing)} "
                                   f"{'is' if len(missing) == 1 else 'are'} not in its enum "
                                   f"(it has {', '.join(names)})")
            start = names.index(old_names[0])
            if names[start:start + len(old_names)] != old_names:
                raise DoesNotApply(where, f"does not apply to {base_label}: the hunk's enumerators "
                                   f"{', '.join(old_names)} are not consecutive in its enum ({', '.join(names)})")
        else:
            context = " ".join(ln.text for ln in h.side("-"))
            if "MigrationPriority" in context and "}" in context:
                start = len(names)
            elif re.search(r"typedef\s+enum\s*\{|enum\s+MigrationPriority", context):
                start = 0
            else:
                self.unjudged.append(Unjudged(where, patch.label, "an enum hunk with no enumerator in its context"))
                return
        for ln, m in new:
            if ln.tag == "+" and m.group(1) in names and m.group(1) not in old_names:
                raise DoesNotApply(f"{f.path}:{ln.new}", f"does not apply to {base_label}: {m.group(1)} already "
                                   "exists in its enum (is the patch already in BASE?)")
        by_name = {e.name: e for e in self.entries}
        replacement: list[_Entry] = []
        for ln, m in new:
            name, init, comment = m.group(1), m.group(2), m.group(4) or m.group(5) or ""
            if ln.tag == " " and name in by_name:
                e = by_name[name]
                replacement.append(_Entry(name, init if init is not None else e.init, comment or e.comment, e.source))
            else:
                replacement.append(_Entry(name, init, comment, f"patched: {patch.label}: {f.path}:{ln.new}"))
        self.entries[start:start + len(old_names)] = replacement
        added = [n for n in (e.name for e in replacement) if n not in old_names]
        removed = [n for n in old_names if n not in {e.name for e in replacement}]
        edited = [ln.text.strip() for ln in h.changed if ln.tag == "+" and _ENUMERATOR.match(ln.text)
                  and _ENUMERATOR.match(ln.text).group(1) in old_names]  # type: ignore[union-attr]
        parts = [f"adds {', '.join(added)}"] if added else []
        parts += [f"removes {', '.join(removed)}"] if removed else []
        parts += [f"rewrites {'; '.join(edited)}"] if edited else []
        self.changes.append(f"{where}: enum: {', '.join(parts) or 'comments only'}")

    # ------------------------------------------------------------------ VMSD fields

    def _identify(self, f: FileDiff, h: Hunk, upto: Line) -> tuple[str, str]:
        symbol = name = ""
        m0 = _DECL.search(h.section)
        if m0:
            symbol = m0.group(1)
        for ln in h.lines:
            if ln is upto:
                break
            m = _DECL.search(ln.text)
            if m:
                symbol, name = m.group(1), ""
            m = _NAME.match(ln.text)
            if m and symbol:
                name = name or m.group(1)
        if symbol and not name:
            for after in h.lines[h.lines.index(upto):]:
                if _DECL.search(after.text):
                    break
                m = _NAME.match(after.text)
                if m:
                    name = m.group(1)
                    break
        if symbol and not name:
            facts = [v for v in self.vmsds.values() if v.symbol == symbol and (not v.file or v.file == f.path)]
            if len(facts) == 1:
                name = facts[0].name
        return symbol, name

    def field_hunk(self, patch: Patch, f: FileDiff, h: Hunk) -> None:
        prio_lines = [ln for ln in h.changed if _PRIORITY.match(ln.text) or _EARLY.match(ln.text)]
        if not prio_lines:
            return
        per_vmsd: dict[tuple[str, str], list[Line]] = {}
        for ln in prio_lines:
            key = self._identify(f, h, ln)
            per_vmsd.setdefault(key, []).append(ln)
        base_label = f"BASE ({self.base.name})"
        for (symbol, name), lines in per_vmsd.items():
            where = f"{f.path}:{lines[0].new or lines[0].old}"
            if not name:
                why = (f"VMSD {symbol} is not in BASE's VMSD facts and the hunk does not show its .name"
                       if symbol else "cannot tell which VMSD this .priority belongs to")
                self.unjudged.append(Unjudged(where, patch.label, why))
                continue
            fact = self.vmsds.get(name)
            old_p = next((m.group(1) for ln in lines if ln.tag == "-" and (m := _PRIORITY.match(ln.text))), None)
            new_p = next((m.group(1) for ln in lines if ln.tag == "+" and (m := _PRIORITY.match(ln.text))), None)
            old_e = next((m.group(1) for ln in lines if ln.tag == "-" and (m := _EARLY.match(ln.text))), None)
            new_e = next((m.group(1) for ln in lines if ln.tag == "+" and (m := _EARLY.match(ln.text))), None)
            have = fact.priority if fact else ""
            if old_p is not None and old_p != have:
                raise DoesNotApply(where, f"does not apply to {base_label}: VMSD '{name}' has "
                                   f".priority = {have or '(unset)'} there, the patch removes {old_p}")
            if old_p is None and new_p is not None and have:
                raise DoesNotApply(where, f"does not apply to {base_label}: VMSD '{name}' already has "
                                   f".priority = {have} (is the patch already in BASE?)")
            if fact is None:
                if name not in self.registered:
                    self.unjudged.append(Unjudged(where, patch.label, f"VMSD '{name}' is not in BASE's model: "
                                                  "cannot tell whether it is a section of its own"))
                    continue
                fact = VmsdFact(name, symbol, f.path, "", Registration.SECTION,
                                "registered as a section (bundled machine or device model)", "",
                                f"patched: {patch.label}")
            prio = fact.priority if new_p is None and old_p is None else (new_p or "")
            reg = fact.registration
            if new_e is not None or old_e is not None:
                on = (new_e or "false").lower() in ("true", "1")
                if reg is Registration.NESTED and on:
                    self.unjudged.append(Unjudged(where, patch.label, f".early_setup on '{name}', which BASE "
                                                  "only has nested inside another VMSD"))
                    continue
                if on and reg is not Registration.EARLY_SETUP:
                    if not self.base.features.early_setup:
                        why = (f".early_setup on '{name}': QEMU {self.base.name}'s VMStateDescription has no "
                               "early_setup member (it came with 62f42625d4e2, 8.0): the tree would not build")
                    else:
                        why = (f".early_setup on '{name}': an early_setup VMSD is saved once, at setup, while "
                               "the guest still runs (62f42625d4e2: for immutable device state); migorder "
                               "cannot tell whether this state is immutable, so the order it gives is not a fix")
                    self.unjudged.append(Unjudged(where, patch.label, why))
                reg = Registration.EARLY_SETUP if on else (
                    Registration.SECTION if reg is Registration.EARLY_SETUP else reg)
            self.vmsds[name] = replace(fact, priority=prio, registration=reg,
                                       source=f"patched: {patch.label}: {where}")
            what: list[str] = []
            if new_p is not None or old_p is not None:
                what.append(f".priority {old_p or have or '(unset)'} -> {new_p or '(unset)'}")
            if new_e is not None or old_e is not None:
                what.append(f".early_setup {old_e or 'false'} -> {new_e or 'false'}")
            nested = "" if self.vmsds[name].orders_stream else f" (nested inside '{fact.inside or '?'}')"
            self.changes.append(f"{where}: VMSD '{name}'{nested}: {', '.join(what)}")

    def definitions(self, patch: Patch, f: FileDiff, h: Hunk) -> None:
        for ln in h.changed:
            m = _DECL.search(ln.text)
            if not m:
                continue
            _, name = self._identify(f, h, ln)
            if ln.tag == "-" and name in self.vmsds and name not in {
                    n for (_, n) in (self._identify(f, h, x) for x in h.changed if x.tag == "+" and _DECL.search(x.text))}:
                fact = self.vmsds.pop(name)
                self.changes.append(f"{f.path}:{ln.old}: VMSD '{name}' removed (had .priority "
                                    f"{fact.priority or '(unset)'})")
            elif ln.tag == "+":
                self.changes.append(f"{f.path}:{ln.new}: VMSD '{name or m.group(1)}' added")

    # ------------------------------------------------------------------ dispatch

    def hunk(self, patch: Patch, f: FileDiff, h: Hunk) -> None:
        where = f"{f.path}:{h.new_start}"
        changed = h.changed
        if f.path == HEADER and any(_ENUMERATOR.match(ln.text) for ln in h.lines):
            self.enum_hunk(patch, f, h)
            return
        if any(_REGISTER.search(ln.text) for ln in changed):
            ln = next(ln for ln in changed if _REGISTER.search(ln.text))
            self.unjudged.append(Unjudged(f"{f.path}:{ln.new or ln.old}", patch.label,
                                          f"a registration changes ({ln.text.strip()!r}): which sections exist "
                                          "and in which order they register needs the tree"))
            return
        if f.path.startswith("migration/") and any(_SAVEVM_USES.search(ln.text) for ln in changed):
            ln = next(ln for ln in changed if _SAVEVM_USES.search(ln.text))
            self.unjudged.append(Unjudged(f"{f.path}:{ln.new or ln.old}", patch.label,
                                          "savevm code that may change how priorities are used: "
                                          f"{ln.text.strip()!r}"))
            return
        n_changes = len(self.changes)
        if any(_DECL.search(ln.text) for ln in changed):
            self.definitions(patch, f, h)
        n_unjudged = len(self.unjudged)
        self.field_hunk(patch, f, h)
        understood = {id(ln) for ln in changed if _PRIORITY.match(ln.text) or _EARLY.match(ln.text)}
        rest = [ln for ln in changed if id(ln) not in understood and _ORDERING.search(ln.text)]
        if rest and len(self.unjudged) == n_unjudged:
            self.unjudged.append(Unjudged(f"{f.path}:{rest[0].new or rest[0].old}", patch.label,
                                          f"touches priorities in a way migorder cannot read: {rest[0].text.strip()!r}"))
        elif len(self.changes) == n_changes and len(self.unjudged) == n_unjudged:
            self.ignored.append(where)

    def finish(self, patch_labels: str) -> Release:
        values = _evaluate(self.entries)
        base = self.base
        if isinstance(values, str):
            self.unjudged.append(Unjudged(HEADER, patch_labels, values))
            return base
        order = {e.name: i for i, e in enumerate(self.entries)}
        levels = tuple(sorted(
            (PriorityLevel(values[e.name], e.name, e.comment, e.source) for e in self.entries),
            key=lambda lv: (lv.value, order[lv.name]),
        ))
        scheme = PriorityScheme(levels, base.scheme.zero_is_default)
        for fact in list(self.vmsds.values()):
            if fact.priority and not scheme.has(fact.priority):
                self.unjudged.append(Unjudged(fact.file or "?", patch_labels, f"VMSD '{fact.name}' uses "
                                              f"{fact.priority}, which the patched enum lacks: the tree would not build"))
                self.vmsds[fact.name] = replace(fact, priority="")
        for name in ("MIG_PRI_DEFAULT", "MIG_PRI_MAX"):
            if not scheme.has(name):
                self.unjudged.append(Unjudged(HEADER, patch_labels, f"the patched enum has no {name}"))
                return base
        top = scheme.level("MIG_PRI_MAX")
        for fact in self.vmsds.values():
            if fact.priority and fact.orders_stream and scheme.level(fact.priority).value > top.value:
                lv = scheme.level(fact.priority)
                self.unjudged.append(Unjudged(
                    fact.file or "?", patch_labels,
                    f"VMSD '{fact.name}' registers at {lv.name} ({lv.value}) > MIG_PRI_MAX ({top.value}): "
                    "QEMU aborts on assert(priority <= MIG_PRI_MAX) in savevm_state_handler_insert "
                    "(migration/savevm.c) when it registers"))
        return replace(base, scheme=scheme, vmsds=dict(self.vmsds),
                       source=f"{base.source}; patched by {patch_labels}")


def apply_to_model(base: Release, patches: list[Patch]) -> Applied:
    """Read every hunk of ``patches`` (in order) as an edit of ``base``.

    Raises
    ------
    DoesNotApply
        A hunk changes something ``base`` does not have (an enumerator, a ``.priority``).
    """
    model = _Model(base)
    for patch in patches:
        for f in patch.files:
            if not f.path.endswith((".c", ".h")):
                model.ignored.extend(f"{f.path}:{h.new_start}" for h in f.hunks)
                continue
            for h in f.hunks:
                model.hunk(patch, f, h)
    labels = ", ".join(p.commit[:12] or p.subject or p.source for p in patches)
    after = model.finish(labels)
    return Applied(after, tuple(model.changes), tuple(model.unjudged), tuple(model.ignored))


def savevm_hunks(patches: list[Patch]) -> tuple[Unjudged, ...]:
    """Hunks of ``migration/`` that change how priorities are used: a tree scan reads the
    enum and the VMSDs, not savevm's sort, so even with a tree these stay UNJUDGED."""
    out: list[Unjudged] = []
    for patch in patches:
        for f in patch.files:
            if not f.path.startswith("migration/"):
                continue
            for h in f.hunks:
                ln = next((x for x in h.changed if _SAVEVM_USES.search(x.text)), None)
                if ln is not None:
                    out.append(Unjudged(f"{f.path}:{ln.new or ln.old}", patch.label,
                                        "savevm code that may change how priorities are used "
                                        f"(the tree scan does not model it): {ln.text.strip()!r}"))
    return tuple(out)
