"""Formatting only: load orders and check results as text and as JSON-ready dicts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ordering._json_text import json_text as json_text  # re-exported: commands import it from here
from ordering.apic_ids import KVM_MAX_VCPUS, XAPIC_IDS, apic_id_limit
from ordering.check import CheckResult
from ordering.model.machine import is_on
from ordering.model.rule import Rule
from ordering.model.section import LoadStep, Section
from ordering.order import LoadOrder
from ordering.verdict import Placement, RuleVerdict, Verdict


def _section_fields(s: Section, phase: str) -> dict[str, Any]:
    return {
        "idstr": s.idstr,
        "instance_id": s.instance_id,
        "section_id": s.section_id,
        "phase": phase,
        "priority": s.priority.name,
        "priority_value": s.priority.value,
    }


def section_dict(step: LoadStep) -> dict[str, Any]:
    """One load step in the shape ``migorder order --json`` and ``stream --json`` share."""
    s = step.section
    return {
        **_section_fields(s, step.phase.value),
        "vmsd": s.vmsd,
        "kind": s.kind,
        "type": step.type.value,
    }


def order_notes(order: LoadOrder) -> list[str]:
    """What the derived order does not model for this VM (said, never silently dropped)."""
    notes: list[str] = []
    accel = order.vm.machine_options.get("accel", "")
    if "kvm" in accel.split(":"):
        notes.append(
            "the machine's built-in sections were captured under TCG; under KVM QEMU also registers "
            "KVM-only state (kvmclock on x86, for one), which shifts later section_ids. No rule "
            "involves it, so check's verdicts are unaffected."
        )
        if order.machine_type.startswith("pc") and apic_id_limit(order.vm.topology) > XAPIC_IDS:
            notes.append(
                "APIC ids from 255 up under KVM: taken as QEMU starts them on a host kernel with "
                "KVM_CAP_X2APIC_API (Linux 4.7+) and a host CPU with x2APIC; an older host refuses "
                "'current -smp configuration requires kernel irqchip and X2APIC API support.'"
            )
        topology = order.vm.topology
        if topology.maxcpus > KVM_MAX_VCPUS:
            what, n = ("SMP", topology.cpus) if topology.cpus > KVM_MAX_VCPUS else ("hotpluggable", topology.maxcpus)
            notes.append(
                f"{n} vCPUs under KVM: taken as the hosts' KVM takes them (a kernel with CONFIG_MAXSMP "
                f"takes 4096); a destination host with Linux x86's default refuses the VM: 'Number of {what} "
                f"cpus requested ({n}) exceeds the maximum cpus supported by KVM ({KVM_MAX_VCPUS})'"
            )
        gic = order.vm.machine_options.get("gic-version", "")
        if gic in ("host", "max"):
            notes.append(
                f"gic-version={gic} under KVM is the host's GIC: taken as GICv3 with its ITS (a GICv2 "
                "host gives arm_gic instead; check again with gic-version=2)."
            )
    return notes


def order_dict(order: LoadOrder) -> dict[str, Any]:
    """``migorder order --json``."""
    return {
        "release": order.release.name,
        "vm": order.vm.name,
        "machine_type": order.machine_type,
        "notes": order_notes(order),
        "sections": [section_dict(s) for s in order.steps],
        "registered_unsent": [
            {"idstr": s.idstr, "instance_id": s.instance_id, "section_id": s.section_id}
            for s in order.registered.sections
            if not s.sent
        ],
    }


def order_text(order: LoadOrder) -> str:
    """``migorder order``: one line per section in load order."""
    lines = [
        f"Load order of {order.vm.name} from a QEMU {order.release.name} source "
        f"(machine {order.machine_type}): {len(order.steps)} sections",
        f"{'#':>4}  {'phase':<8} {'type':<5} {'priority':<20} {'id':>5}  idstr (instance)  [kind]",
    ]
    for i, step in enumerate(order.steps):
        s = step.section
        inst = f" ({s.instance_id})" if s.instance_id else ""
        kind = f"  [{s.kind}]" if s.kind != "other" else ""
        lines.append(
            f"{i:>4}  {step.phase.value:<8} {step.type.value:<5} {s.priority.name:<20} "
            f"{s.section_id:>5}  {s.idstr}{inst}{kind}"
        )
    lines.extend(f"note: {n}" for n in order_notes(order))
    unsent = [s for s in order.registered.sections if not s.sent]
    if unsent:
        lines.append(
            "registered but never sent (they take section_ids): "
            + ", ".join(f"{s.label}={s.section_id}" for s in unsent)
        )
    return "\n".join(lines)


def _placement(p: Placement) -> dict[str, Any]:
    return {**_section_fields(p.section, p.phase.value), "position": p.position}


def verdict_dict(v: RuleVerdict, result: CheckResult | None = None) -> dict[str, Any]:
    """One entry of ``migorder check --json``'s ``rules`` list."""
    out: dict[str, Any] = {
        "rule": v.rule.id,
        "verdict": v.verdict.value,
        "by": v.by or None,
        "first": v.first_label,
        "then": v.then_label,
        "consequence": v.rule.consequence.value,
        "provenance": list(v.rule.provenance),
    }
    if v.evidence is not None and v.instance is not None:
        e = v.evidence
        out["evidence"] = {
            "text": e.describe(),
            "first": _placement(e.first),
            "then": _placement(e.then),
            "firsts": e.total,
            "firsts_loading_after": e.violating,
            "live_because": v.instance.why,
        }
    else:
        out["evidence"] = {"text": f"not live: {not_live_reason(result, v.rule) if result else v.rule.condition}"}
    return out


def not_live_reason(result: CheckResult, rule: Rule) -> str:
    """Why a rule has no live instance in the checked VM, in plain words."""
    arch = result.release.machine(result.vm.machine)[0].arch
    if rule.arch and rule.arch != arch:
        return f"the rule is about {rule.arch} machines; this is {arch}"
    sections = result.order.registered.sections
    kinds = {s.kind for s in sections if s.sent}
    unsent = {s.kind for s in sections if not s.sent}
    computed = {"dma-pci", "msi-pci", "virtio-mem-bitmap"}
    missing = [side for side in (rule.first, rule.then) if side not in computed and side not in kinds]
    if missing:
        return "the VM has no " + " and no ".join(
            f"{m} section" + (" sent (registered, but its `needed` is false in this migration)" if m in unsent else "")
            for m in missing
        )
    return f"its condition '{rule.condition}' does not hold in this VM"


def assumptions(r: CheckResult) -> list[str]:
    """What the verdicts assume about the migration, said when it matters to this VM."""
    out: list[str] = list(r.release.assumes)
    has_vfio = any(s.kind == "vfio" for s in r.order.registered.sections if s.sent)
    multifd = is_on(r.vm.migration.get("multifd", ""))
    if has_vfio and r.release.features.vfio_multifd_load_thread and not multifd:
        out.append(
            "precopy without the multifd capability (QEMU's default). With multifd, VFIO's config "
            "load runs in a thread unordered against FULL sections (10.0+): check again with --multifd."
        )
    if not r.release.device_properties and any(d.spec.props for d in r.order.registered.devices):
        out.append(
            f"the -device properties as given: no QEMU {r.release.name} binary was read for "
            "the properties each type accepts (models/properties/), so a misspelt one is not caught."
        )
    return out


def check_dict(r: CheckResult) -> dict[str, Any]:
    """``migorder check --json``."""
    return {
        "release": r.release.name,
        "vm": r.vm.name,
        "machine_type": r.order.machine_type,
        "migration": dict(r.vm.migration),
        "assumptions": assumptions(r),
        "notes": order_notes(r.order),
        "exit_code": r.exit_code,
        "rules": [verdict_dict(v, r) for v in r.verdicts],
        "blockers": [
            {"device": b.device, "message": b.message, "source": b.source, "conditional": b.conditional or None}
            for b in r.blockers
        ],
        "cycles": [
            {"level": level, "edges": [{"before": e.before, "after": e.after, "rules": list(e.rules)} for e in c.edges]}
            for level, cycles in (("kind", r.kind_cycles), ("section", r.section_cycles))
            for c in cycles
        ],
        "claims": [
            {
                "level": c.claim.level.name,
                "comment": c.claim.level.comment,
                "relation": c.claim.relation,
                "target": c.claim.target.name if c.claim.target else None,
                "holds": c.holds,
                "effective": c.effective,
                "sections": list(c.sections),
                "nested": list(c.nested),
                "rules": list(c.rules),
                "note": c.note,
            }
            for c in r.claims
        ],
    }


def _group(verdicts: Iterable[RuleVerdict]) -> dict[tuple[str, str, str], list[RuleVerdict]]:
    groups: dict[tuple[str, str, str], list[RuleVerdict]] = {}
    for v in verdicts:
        e = v.evidence
        key = (
            v.rule.id,
            v.by,
            f"{e.first.section.priority.name}/{e.then.section.priority.name}/{e.first.phase}/{e.then.phase}"
            if e
            else "",
        )
        groups.setdefault(key, []).append(v)
    return groups


def _rule_footer(rule: Rule) -> list[str]:
    return [
        f"      {rule.consequence.value}: {rule.symptom}",
        f"      source: {'; '.join(rule.provenance)}",
    ]


_HEADINGS = {
    Verdict.VIOLATED: "VIOLATED: some load order QEMU produces breaks the rule",
    Verdict.TIE_FRAGILE: "TIE-FRAGILE: holds only by registration order (a -device reorder, hot-plug or replug breaks it)",
    Verdict.GUARANTEED: "GUARANTEED",
    Verdict.NOT_LIVE: "NOT LIVE in this VM",
}


def check_text(r: CheckResult, *, verbose: bool = False) -> str:
    """``migorder check``: verdicts grouped, worst first, each with its evidence."""
    lines = [
        f"migorder check: {r.vm.name} from a QEMU {r.release.name} source "
        f"(machine {r.order.machine_type}), {len(r.order.steps)} sections, {len(r.verdicts)} verdicts"
    ]
    lines.extend(f"Assumes {a}" for a in assumptions(r))
    lines.extend(f"note: {n}" for n in order_notes(r.order))
    hard = [b for b in r.blockers if not b.conditional]
    soft = [b for b in r.blockers if b.conditional]
    if hard:
        lines.append("")
        lines.append("BLOCKED: QEMU refuses to migrate this VM (the order below is what it would be)")
        for b in hard:
            lines.append(f"  {b.device}: {b.message}")
            lines.append(f"      source: {b.source}")
    if soft:
        lines.append("")
        lines.append("MAY BE BLOCKED, depending on the host device:")
        for b in soft:
            lines.append(f"  {b.device}: {b.message} — unless {b.conditional}")
            lines.append(f"      source: {b.source}")
    for verdict in (Verdict.VIOLATED, Verdict.TIE_FRAGILE, Verdict.GUARANTEED, Verdict.NOT_LIVE):
        chosen = [v for v in r.verdicts if v.verdict is verdict]
        if not chosen:
            continue
        lines.append("")
        lines.append(f"{_HEADINGS[verdict]} ({len(chosen)})")
        if verdict is Verdict.NOT_LIVE:
            for v in chosen:
                lines.append(f"  {v.rule.id}: {v.rule.first} → {v.rule.then}: {not_live_reason(r, v.rule)}")
            continue
        for (rule_id, by, _), group in _group(chosen).items():
            v = group[0]
            e = v.evidence
            assert e is not None
            assert v.instance is not None
            count = f" ×{len(group)}" if len(group) > 1 else ""
            lines.append(f"  {rule_id}{count}: {v.rule.title}")
            thens = ", ".join(g.then_label for g in group[:4]) + (" ..." if len(group) > 4 else "")
            lines.append(f"    {e.first.section.label} → {thens}  (by {by})")
            lines.append(f"    {e.describe()}")
            if e.total > 1:
                after = f", {e.violating} of them load after" if e.violating else ""
                lines.append(f"    judged by the last of {e.total} {v.rule.first} sections{after}")
            if verdict is not Verdict.GUARANTEED or verbose:
                lines.extend(_rule_footer(v.rule))
    cyc = list(r.kind_cycles) + list(r.section_cycles)
    lines.append("")
    if cyc:
        lines.append(f"CYCLES: no order satisfies these rules together ({len(cyc)})")
        lines.extend(f"  {c.describe()}" for c in cyc)
    else:
        lines.append("Cycles: none")
    if r.claims:
        lines.append("")
        lines.append(f"Enum claims (include/migration/vmstate.h, QEMU {r.release.name}):")
        for c in r.claims:
            mark = "ok" if c.holds and c.effective else ("INEFFECTIVE" if c.holds else "WRONG")
            lines.append(f"  [{mark}] {c.claim.level.name}: \"{c.claim.level.comment}\": {c.note}")
            if c.nested:
                lines.append(f"        nested only: {', '.join(c.nested)}")
    return "\n".join(lines)
