"""``migorder synthesize``: is there a priority assignment that guarantees every rule, and the
smallest change to get there (z3's Optimize)."""

from __future__ import annotations

import argparse
import difflib
import json
from pathlib import Path

from ordering.commands._common import add_tree_argument, knowledge
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.synthesize import Synthesis


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``synthesize``."""
    p = sub.add_parser(
        "synthesize",
        help="find the smallest MIG_PRI change under which every rule holds for every VM (z3)",
        description="(a) Is there a priority assignment under which every rule is guaranteed (by "
        "priority or phase) for every VM of the release? If not, the conflicting rules as a cycle. "
        "(b) The smallest change: fewest VMSDs whose priority changes, then fewest new levels; every "
        "valid position for a new level; the change as a patch, checked with `verify`. (c) Could an "
        "existing level be reused instead, and which grouping serves several rules at once. Exit 0 "
        "when an assignment exists, 1 when none does.",
    )
    p.add_argument("--qemu", metavar="R", help="the release: a bundled name or a release file (default: the newest)")
    add_tree_argument(p)
    p.add_argument("--rules", metavar="FILE", type=Path, help="rules in models/rules.toml's form (default: the bundled ones)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def _tree_patch(s: Synthesis, release: Release, tree: Path) -> str:
    """A real diff against ``tree`` (the enum line after its gap's lower level, the
    ``.priority`` line after the VMSD's ``.name``)."""
    from ordering.sources.cheader import HEADER
    from ordering.synthesize_report import level_name

    edits: dict[str, list[str]] = {}

    def lines(rel: str) -> list[str]:
        if rel not in edits:
            edits[rel] = (tree / rel).read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        return edits[rel]

    for new in s.new_levels:
        below = new.removeprefix("NEW@").split("/")[0]
        text = lines(HEADER)
        at = next((i for i, ln in enumerate(text) if ln.strip().startswith(f"{below},") or ln.strip().startswith(f"{below} ")), None)
        if at is not None:
            text.insert(at + 1, f"    {level_name(s, new)},\n")
    for a in s.changes:
        file, symbol = (a.file, a.symbol) if a.file and (tree / a.file).is_file() else _find_vmsd(tree, a.vmsd)
        if not file:
            continue
        target = level_name(s, a.after) if a.after.startswith("NEW@") else a.after
        text = lines(file)
        start = next((i for i, ln in enumerate(text) if f"VMStateDescription {symbol} =" in ln), None)
        if start is None:
            continue
        end = next((i for i in range(start, len(text)) if text[i].startswith("};")), len(text))
        prio = next((i for i in range(start, end) if text[i].strip().startswith(".priority")), None)
        if prio is not None:
            text[prio] = f"    .priority = {target},\n"
        else:
            name = next((i for i in range(start, end) if text[i].strip().startswith(".name")), start)
            text.insert(name + 1, f"    .priority = {target},\n")
    out = []
    for rel, new_text in edits.items():
        old = (tree / rel).read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
        out.append("".join(difflib.unified_diff(old, new_text, f"a/{rel}", f"b/{rel}")))
    return "".join(out)


def _find_vmsd(tree: Path, name: str) -> tuple[str, str]:
    """The file and symbol of the VMSD whose ``.name`` is ``name`` in ``tree`` (first found)."""
    import re

    from ordering.sources.qemu_tree import tree_files

    pattern = re.compile(r"VMStateDescription\s+(\w+)\s*=\s*\{[^;]*?\.name\s*=\s*\"" + re.escape(name) + r"\"")
    needle = f'"{name}"'.encode()
    for p in tree_files(tree):
        if p.suffix != ".c":
            continue
        data = p.read_bytes()
        if needle not in data or b"VMStateDescription" not in data:
            continue
        m = pattern.search(data.decode("utf-8", errors="replace"))
        if m:
            return p.relative_to(tree).as_posix(), m.group(1)
    return "", ""


def _round_trip(k: Knowledge, release: Release, patch: str, tree: Path | None, s: Synthesis) -> str:
    from ordering.sources.patch import read_patches
    from ordering.verify import compare, summary

    if not patch:
        return "nothing to verify (no patch: a changed VMSD's file is not in the model)"
    patches, _ = read_patches(patch, "synthesized.diff")
    if tree is not None:
        from ordering.sources.patch_tree import patched_release

        after = patched_release(tree, patches, k)
        unjudged = False
    else:
        from ordering.sources.patch_apply import apply_to_model

        applied = apply_to_model(release, patches)
        after, unjudged = applied.release, bool(applied.unjudged)
    c = compare(k, release, after, [])
    word = summary(c, unjudged)
    left = [r.rule for r in c.rules if r.scope == "universal" and r.after not in ("guaranteed", "not-live")
            and r.rule not in s.vacuous]
    tail = "every rule guaranteed for every VM" if not left else f"still not guaranteed: {', '.join(left)}"
    return f"{word} ({tail})"


def run(args: argparse.Namespace) -> int:
    """Solve, print; exit 0 when an assignment exists, 1 when none does."""
    from dataclasses import replace

    from ordering.synthesize import synthesize
    from ordering.synthesize_report import model_patch, synthesis_dict, synthesis_text

    k = knowledge(args)
    if args.rules is not None:
        from ordering.sources.models import read_rules

        k = replace(k, rules=read_rules(args.rules, dict(k.kinds)))
    release = k.release(args.qemu)
    s = synthesize(release, k.rules)
    tree = args.qemu_tree
    patch = ""
    round_trip = ""
    if s.satisfiable and s.changes:
        patch = _tree_patch(s, release, tree) if tree is not None else model_patch(s, release)
        round_trip = _round_trip(k, release, patch, tree, s)
    if args.json:
        print(json.dumps(synthesis_dict(s, patch, round_trip), indent=2))
    else:
        print(synthesis_text(s, release, patch, round_trip))
    return 0 if s.satisfiable else 1
