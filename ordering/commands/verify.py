"""``migorder verify PATCH...``: would this MIG_PRI patch (or series) make the load order better?"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ordering.commands._common import knowledge
from ordering.errors import UsageError
from ordering.model.knowledge import Knowledge
from ordering.model.release import Release
from ordering.model.vm import Vm
from ordering.sources.patch import Patch, read_patches
from ordering.sources.patch_apply import apply_to_model
from ordering.verify import compare, summary
from ordering.verify_report import VerifyResult, verify_dict, verify_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``verify``."""
    p = sub.add_parser(
        "verify",
        help="judge a proposed MIG_PRI patch or series: BETTER, NO CHANGE, WORSE or UNJUDGED",
        description="Compare a release before and after a patch (a git format-patch mail, an mbox "
        "series, a unified diff, - for stdin, or --git REV_RANGE in a QEMU checkout): the enum, every "
        "rule's universal verdict and its verdict on each scenario, sections that move, claims, both "
        "cross-version directions. Without --tree the hunks are read against the bundled model of "
        "--qemu; with --tree they are applied to a copy of the tree, which is scanned. Exit 0 "
        "better or no change, 1 worse or unjudged, 2 bad input (a patch that does not apply).",
    )
    p.add_argument("patches", nargs="*", metavar="PATCH", help="patch files (mail, mbox, diff); - for stdin")
    p.add_argument("--git", metavar="REV_RANGE", help="verify each commit of a range of the QEMU "
                   "checkout (the current folder, or --tree), then the range as a whole")
    p.add_argument("--qemu", metavar="BASE", help="the base release: a bundled name or a release file "
                   "(default: the newest bundled)")
    p.add_argument("--tree", metavar="QEMU_SRC", type=Path, help="a QEMU source tree: the patches are "
                   "applied to a temporary copy (never to it) and both are scanned; with --git, the "
                   "checkout (its range's start is exported and scanned, unless --qemu names a model)")
    p.add_argument("--scenario", metavar="S", action="append", help="a scenario name or file to "
                   "judge before and after (repeatable; default: every bundled scenario)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--format", choices=("text", "mail"), default="text",
                   help="mail: plain text within 72 columns to paste into a qemu-devel reply")
    p.add_argument("--models", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def _read(args: argparse.Namespace) -> tuple[list[Patch], list[str]]:
    patches: list[Patch] = []
    skipped: list[str] = []
    for name in args.patches:
        if name == "-":
            text = sys.stdin.read()
        else:
            path = Path(name)
            if not path.is_file():
                raise UsageError(f"{name}: no such patch file")
            text = path.read_bytes().decode("utf-8", errors="replace")
        ps, sk = read_patches(text, name)
        patches.extend(ps)
        skipped.extend(sk)
    return patches, skipped


def _scenarios(args: argparse.Namespace, k: Knowledge) -> list[tuple[str, Vm]]:
    from ordering.sources.scenario import read_scenario

    names = args.scenario or sorted(k.scenarios)
    out: list[tuple[str, Vm]] = []
    for name in names:
        if name in k.scenarios:
            out.append((name, read_scenario(k.scenarios[name])))
        elif Path(name).is_file():
            out.append((Path(name).stem, read_scenario(Path(name))))
        else:
            raise UsageError(f"--scenario {name}: no bundled scenario or file of that name "
                             f"(bundled: {', '.join(sorted(k.scenarios))})")
    return out


def _model_mode(k: Knowledge, base: Release, patches: list[Patch], skipped: list[str],
                scenarios: list[tuple[str, Vm]], label: str = "") -> VerifyResult:
    applied = apply_to_model(base, patches)
    comparison = compare(k, base, applied.release, scenarios)
    word = summary(comparison, bool(applied.unjudged))
    return VerifyResult(base.name, "model", tuple(patches), tuple(skipped), applied.changes,
                        applied.unjudged, applied.ignored, comparison, word, base.assumes, label)


def _tree_results(args: argparse.Namespace, k: Knowledge, patches: list[Patch], skipped: list[str],
                  scenarios: list[tuple[str, Vm]]) -> list[VerifyResult]:
    from ordering.sources.patch_tree import fact_changes, patched_release
    from ordering.sources.release_file import release_from_tree

    base = release_from_tree(args.tree, k)
    after = patched_release(args.tree, patches, k)
    comparison = compare(k, base, after, scenarios)
    ignored = tuple(f"{f.path}:{h.new_start}" for p in patches for f in p.files for h in f.hunks)
    changes = fact_changes(base, after)
    from ordering.sources.patch_apply import savevm_hunks

    unjudged = savevm_hunks(patches)
    word = summary(comparison, bool(unjudged))
    return [VerifyResult(base.name, "tree", tuple(patches), tuple(skipped), changes, unjudged,
                         tuple(x for x in ignored if not any(x.split(":")[0] in c for c in changes)),
                         comparison, word, base.assumes)]


def _git_results(args: argparse.Namespace, k: Knowledge, scenarios: list[tuple[str, Vm]]) -> list[VerifyResult]:
    from ordering.sources.patch_tree import GitRange

    rng = GitRange.of(args.tree or Path.cwd(), args.git)
    results: list[VerifyResult] = []
    if args.qemu:
        base = k.release(args.qemu)
        done: list[Patch] = []
        prev = base
        for commit, patch in rng.patches():
            r = _model_mode(k, prev, [patch], [], scenarios, f"commit {commit[:12]}")
            results.append(r)
            done.append(patch)
            if r.comparison is not None:
                prev = r.comparison.after
        if len(done) > 1:
            results.append(_model_mode(k, base, done, [], scenarios, "the whole range"))
        return results
    with rng.checkout() as work:
        from ordering.sources.patch_apply import savevm_hunks
        from ordering.sources.patch_tree import fact_changes
        from ordering.sources.release_file import release_from_tree

        base = release_from_tree(work.root, k, index=False)
        prev = base
        for commit, patch in rng.patches():
            work.apply(patch)
            now = release_from_tree(work.root, k, index=False)
            c = compare(k, prev, now, scenarios)
            unjudged = savevm_hunks([patch])
            results.append(VerifyResult(prev.name, "tree", (patch,), (), fact_changes(prev, now), unjudged, (),
                                        c, summary(c, bool(unjudged)), (), f"commit {commit[:12]}"))
            prev = now
        if len(results) > 1:
            c = compare(k, base, prev, scenarios)
            every = [p for r in results for p in r.patches]
            unjudged = savevm_hunks(every)
            results.append(VerifyResult(base.name, "tree", tuple(every), (), fact_changes(base, prev), unjudged, (),
                                        c, summary(c, bool(unjudged)), (), "the whole range"))
    return results


_ORDER = {"BETTER": 0, "NO CHANGE": 0, "WORSE": 1, "UNJUDGED": 1}


def run(args: argparse.Namespace) -> int:
    """Read, apply, compare, print; exit 0 better or no change, 1 worse or unjudged."""
    if args.tree is not None and args.qemu and not args.git:
        raise UsageError("give --qemu BASE (the bundled model) or --tree QEMU_SRC, not both "
                         "(with --git, --tree names the checkout and --qemu the model to read it against)")
    if args.tree is not None and not args.git and not (args.tree / "VERSION").is_file():
        raise UsageError(f"--tree {args.tree}: expected a QEMU source tree (a folder holding VERSION)")
    if bool(args.git) == bool(args.patches):
        raise UsageError("give PATCH files (or - for stdin), or --git REV_RANGE, not both and not neither")
    k = knowledge(args)
    scenarios = _scenarios(args, k)
    if args.git:
        results = _git_results(args, k, scenarios)
    else:
        patches, skipped = _read(args)
        if args.tree is not None:
            results = _tree_results(args, k, patches, skipped, scenarios)
        else:
            results = [_model_mode(k, k.release(args.qemu), patches, skipped, scenarios)]
    if args.json:
        data = [verify_dict(r) for r in results]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2))
    else:
        print("\n\n".join(verify_text(r, mail=args.format == "mail") for r in results))
    return max(_ORDER[r.summary] for r in results)

