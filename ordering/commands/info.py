"""``migorder releases | rules | explain RULE | scenarios | devices``: what is bundled."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ordering.claims import check_claims
from ordering.commands._common import knowledge
from ordering.model.knowledge import Knowledge
from ordering.sources.scenario import read_scenario


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``releases``, ``rules``, ``explain``, ``scenarios`` and ``devices``."""
    for name, helptext, func in (
        ("releases", "list the bundled QEMU releases with their priority enums", _releases),
        ("rules", "list the bundled must-load-before rules with their sources", _rules),
        ("scenarios", "list the bundled scenarios", _scenarios),
        ("devices", "list the -device types migorder models", _devices),
    ):
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.add_argument("--models", type=str, help=argparse.SUPPRESS)
        p.set_defaults(run=func)
    p = sub.add_parser("explain", help="explain one rule: mechanism, symptom, sources, verdict per release")
    p.add_argument("rule", help="a rule id (see `migorder rules`)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--models", type=str, help=argparse.SUPPRESS)
    p.set_defaults(run=_explain)


def _emit(args: argparse.Namespace, data: Any, text: list[str]) -> int:
    print(json.dumps(data, indent=2) if args.json else "\n".join(text))
    return 0


def _k(args: argparse.Namespace) -> Knowledge:
    from pathlib import Path

    ns = argparse.Namespace(models=Path(args.models) if args.models else None)
    return knowledge(ns)


def _releases(args: argparse.Namespace) -> int:
    k = _k(args)
    rels = sorted(k.releases.values(), key=lambda r: r.version)
    data: list[dict[str, Any]] = []
    text: list[str] = []
    for r in rels:
        users = {
            lvl.name: sorted(f.name for f in r.vmsds.values() if f.priority == lvl.name and f.orders_stream)
            for lvl in r.scheme.levels
        }
        nested = sorted(f"{f.name} (in {f.inside})" for f in r.vmsds.values() if not f.orders_stream and f.priority)
        data.append(
            {
                "release": r.name,
                "source": r.source,
                "machines": sorted(r.machines),
                "machines_source": r.machines_source,
                "enum": [{"name": lvl.name, "value": lvl.value, "comment": lvl.comment} for lvl in r.scheme.levels],
                "sections_by_priority": users,
                "nested_priorities": nested,
                "features": {
                    f: getattr(r.features, f)
                    for f in ("early_setup", "zero_priority_is_default", "switchover_start",
                              "vfio_multifd_load_thread", "vfio_config_load_after_iter",
                              "duplicate_section_check", "early_setup_before_start")
                },
                "unmigratable": sorted(r.unmigratable),
            }
        )
        text.append(f"QEMU {r.name}  (source: {r.source})")
        text.append(f"  machines: {', '.join(sorted(r.machines))}  ({r.machines_source or 'captured'})")
        for lvl in reversed(r.scheme.levels):
            who = ", ".join(users[lvl.name])
            comment = f'  /* {lvl.comment} */' if lvl.comment else ""
            text.append(f"  {lvl.value:>2} {lvl.name:<22}{comment}" + (f"  ← {who}" if who else ""))
        if nested:
            text.append(f"  priority on a nested VMSD only (no effect): {', '.join(nested)}")
        features: dict[str, bool] = data[-1]["features"]
        on = [f for f, v in features.items() if v]
        text.append(f"  features: {', '.join(on) or 'none'}")
        text.append("")
    return _emit(args, data, text)


def _rules(args: argparse.Namespace) -> int:
    k = _k(args)
    data = [
        {
            "rule": r.id,
            "title": r.title,
            "first": r.first,
            "then": r.then,
            "condition": r.condition,
            "consequence": r.consequence.value,
            "symptom": r.symptom,
            "provenance": list(r.provenance),
            "since": r.since,
            "arch": r.arch,
        }
        for r in k.rules
    ]
    text: list[str] = []
    for r in k.rules:
        arch = f", {r.arch}" if r.arch else ""
        text.append(f"{r.id}  [{r.consequence.value}{arch}]")
        text.append(f"  {r.title}")
        text.append(f"  {r.first} before {r.then}, when {r.condition}")
        text.append(f"  source: {'; '.join(r.provenance)}")
        text.append("")
    return _emit(args, data, text)


def _explain(args: argparse.Namespace) -> int:
    from ordering.check import check
    from ordering.commands.history_vms import NOTE, reference_vm

    k = _k(args)
    rule = k.rule(args.rule)
    rows: list[dict[str, Any]] = []
    for rel in sorted(k.releases.values(), key=lambda r: r.version):
        vm = reference_vm(k, rule, rel)
        result = check(k, rel, vm)
        mine = [v for v in result.verdicts if v.rule.id == rule.id]
        worst = max(mine, key=lambda v: v.verdict.severity)
        rows.append(
            {
                "release": rel.name,
                "vm": vm.name,
                "verdict": worst.verdict.value,
                "by": worst.by or None,
                "evidence": worst.evidence.describe() if worst.evidence else None,
                "blocked": [b.message for b in result.blockers if not b.conditional],
            }
        )
    claims = [
        {"release": rel.name, "level": c.claim.level.name, "note": c.note}
        for rel in sorted(k.releases.values(), key=lambda r: r.version)
        for c in check_claims(rel, [rule])
        if rule.id in c.rules
    ]
    data = {
        "rule": rule.id,
        "title": rule.title,
        "first": rule.first,
        "then": rule.then,
        "condition": rule.condition,
        "consequence": rule.consequence.value,
        "symptom": rule.symptom,
        "mechanism": rule.mechanism,
        "provenance": list(rule.provenance),
        "since": rule.since,
        "arch": rule.arch,
        "by_release": rows,
        "claims": claims,
    }
    text = [
        f"{rule.id}: {rule.title}",
        f"  {rule.first} must load before {rule.then}, when '{rule.condition}' holds"
        + (f" ({rule.arch} only)" if rule.arch else ""),
        f"  consequence: {rule.consequence.value}: {rule.symptom}",
        "",
        "  Mechanism:",
        *("    " + line for line in _wrap(rule.mechanism)),
        "",
        "  Sources:",
        *(f"    {p}" for p in rule.provenance),
        "",
        "  Verdict on a reference VM, per source release:",
        *(
            f"    {r['release']:<6} {r['verdict']:<12} {('by ' + r['by']) if r['by'] else '':<16} "
            f"{r['evidence'] or ''}" + (" [*]" if r["blocked"] else "")
            for r in rows
        ),
    ]
    if any(r["blocked"] for r in rows):
        text.append("    [*] QEMU refuses to migrate that reference VM: " + "; ".join(
            sorted({m for r in rows for m in r["blocked"]})))
    text.append(f"    ({NOTE})")
    return _emit(args, data, text)


def _wrap(text: str, width: int = 92) -> list[str]:
    import textwrap

    return textwrap.wrap(" ".join(text.split()), width) or [""]


def _scenarios(args: argparse.Namespace) -> int:
    k = _k(args)
    data = []
    text = []
    for name, path in sorted(k.scenarios.items()):
        vm = read_scenario(path)
        data.append({"scenario": name, "description": vm.description, "file": str(path)})
        lines = _wrap(vm.description, 100 - 29)
        text.append(f"{name:<28} {lines[0]}")
        text.extend(" " * 29 + line for line in lines[1:])
    return _emit(args, data, text)


def _devices(args: argparse.Namespace) -> int:
    k = _k(args)
    devices = next(iter(k.releases.values())).devices
    data = [
        {"device": d.name, "kind": d.kind, "bus": d.bus, "registers": [t.idstr for t in d.registers]}
        for d in sorted(devices.values(), key=lambda d: d.name)
    ]
    text = [f"{d['device']:<22} {d['kind']:<12} {', '.join(d['registers'])}" for d in data]
    return _emit(args, data, text)
