"""``migorder fleet``: every VM of a fleet judged before an upgrade, each distinct shape once.

Exit codes: 0 no VM has a finding, 1 some VM has one (a VM migorder cannot read is a finding
about that VM), 2 bad usage.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ordering.commands._common import knowledge
from ordering.commands._progress import progress_bar
from ordering.errors import UsageError
from ordering.sources.fleet_inputs import (
    VmRecord,
    command_line_batches,
    command_line_record,
    is_command_line_file,
    is_libvirt_log,
    read_inputs,
    read_running,
)

if TYPE_CHECKING:
    from ordering.fleet import Finding, FleetVm
    from ordering.model.knowledge import Knowledge
    from ordering.model.release import Release


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``fleet``."""
    p = sub.add_parser(
        "fleet",
        help="before an upgrade: which VMs of a fleet fail, degrade or cannot migrate, and why",
        description="Judge every VM of a fleet migrating from release --from to release --to: "
        "libvirt per-domain logs (files or their directory: the last start of each, --from "
        "defaults to the QEMU version its header names), files with one QEMU command line per "
        "line, or the QEMU processes running on this host (--running, read from /proc). VMs "
        "of the same shape (devices, machine type, -smp, options; not names, UUIDs, MACs, "
        "paths) are checked once. Exit 0 when no VM has a finding, 1 when one has, 2 on bad usage.",
    )
    p.add_argument("inputs", nargs="*", type=Path, metavar="INPUT", help="a libvirt log, a directory of them, or a file of command lines")
    p.add_argument("--running", action="store_true", help="also read the QEMU processes running on this host (/proc/*/cmdline)")
    p.add_argument("--from", dest="from_release", metavar="R", help="the source release (default: from each libvirt log's header; needed for other inputs)")
    p.add_argument("--to", dest="to_release", metavar="R", help="the destination release (default: the newest bundled)")
    p.add_argument("--both-ways", action="store_true", help="also judge the rollback: from --to back to --from")
    p.add_argument("--jobs", type=int, metavar="N", help="processes that check shapes (default: the number of cores)")
    p.add_argument("--json-lines", action="store_true", help="one JSON object per VM: {vm, source, shape, from, to, exit, findings}")
    p.add_argument("--summary-only", action="store_true", help="only the summary grouped by finding, no line per VM")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument("--models", metavar="DIR", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


_K: Knowledge | None = None


def _init(models: Path | None) -> None:
    global _K
    if _K is None:
        from ordering.sources.models import load_knowledge

        _K = load_knowledge(models)


def _judge(argv: Sequence[str], name: str, source: str, destination: str, both_ways: bool) -> tuple[Finding, ...]:
    from ordering.fleet import Finding, FindingKind, judge_vm

    assert _K is not None
    try:
        return judge_vm(_K, argv, name, _K.release(source), _K.release(destination), both_ways=both_ways)
    except Exception as exc:
        why = f"migorder failed on this VM ({type(exc).__name__}: {exc}): a bug, please report it"
        return (Finding(FindingKind.NOT_UNDERSTOOD, why, "migorder could not judge it", f"not understood: {why}", "", ""),)


class _Inline(Executor):
    """``--jobs 1``: judge in this process."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.set_result(fn(*args, **kwargs))
        return fut


def _keyed(rec: VmRecord) -> tuple[VmRecord, str]:
    from ordering.fleet import shape_id

    return rec, shape_id(rec.argv) if rec.argv else ""


def _key_batch(path: str, first: int, lines: list[str]) -> list[tuple[VmRecord, str]]:
    """Lines of a command-line file read and keyed in a worker; a shape's argv is sent back
    only with its first line of the batch."""
    from ordering.fleet import shape_id

    out: list[tuple[VmRecord, str]] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, first):
        rec = command_line_record(Path(path), n, line)
        if rec is None:
            continue
        if rec.problem:
            out.append((rec, ""))
            continue
        shape = shape_id(rec.argv)
        if shape in seen:
            rec = replace(rec, argv=())
        seen.add(shape)
        out.append((rec, shape))
    return out


def _records(args: argparse.Namespace, pool: Executor, jobs: int) -> Iterator[tuple[VmRecord, str]]:
    """Every VM of the inputs with its shape, in input order. With several jobs the lines of
    command-line files are read and keyed by the workers, a few batches ahead."""
    for path in args.inputs:
        if jobs > 1 and is_command_line_file(path):
            yield from _parallel_lines(path, pool, jobs)
        else:
            yield from map(_keyed, read_inputs([path]))
    if args.running:
        yield from map(_keyed, read_running())


def _parallel_lines(path: Path, pool: Executor, jobs: int) -> Iterator[tuple[VmRecord, str]]:
    inflight: deque[Future[list[tuple[VmRecord, str]]]] = deque()
    try:
        for first, lines in command_line_batches(path):
            inflight.append(pool.submit(_key_batch, str(path), first, lines))
            if len(inflight) > 2 * jobs:
                yield from inflight.popleft().result()
    except OSError as exc:
        yield VmRecord(path.name, str(path), problem=f"cannot read it ({exc.strerror})"), ""
    while inflight:
        yield from inflight.popleft().result()


def _check_usage(args: argparse.Namespace) -> None:
    if not args.inputs and not args.running:
        raise UsageError("fleet: give libvirt logs, a directory of them or a file of command lines, or --running")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"fleet: --jobs {args.jobs}: expected 1 or more")
    if args.from_release:
        return
    if args.running:
        raise UsageError("fleet: --running needs --from R (a process does not say its QEMU release)")
    for path in args.inputs:
        if path.is_file() and not is_libvirt_log(path):
            raise UsageError(f"fleet: {path} is a file of command lines: give --from R (only libvirt logs name their QEMU version)")


class _Progress:
    """A bar on stderr counting VMs (rich; refreshed by hand, so no thread is running when
    worker processes fork)."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            self.bar = progress_bar("fleet", "VMs", transient=False)
            self.task = self.bar.add_task("fleet", total=0)
            self.bar.start()

    def update(self, *, total: int, done: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, total=total, completed=done)
            self.bar.refresh()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run(args: argparse.Namespace) -> int:
    """Read, judge each shape once, print."""
    _check_usage(args)
    k = knowledge(args)
    destination = k.release(args.to_release)
    fixed = k.release(args.from_release) if args.from_release else None
    global _K
    _K = k  # forked workers inherit it; --jobs 1 uses it here
    jobs = args.jobs or os.cpu_count() or 1
    if jobs == 1:
        pool: Executor = _Inline()
    else:
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init, initargs=(args.models,))
    records = _records(args, pool, jobs)
    progress = _Progress(not args.no_progress and sys.stderr.isatty())
    try:
        vms, shapes, notes = _judge_all(
            k, records, fixed, destination, args.both_ways, pool, progress, to_given=bool(args.to_release)
        )
    finally:
        progress.stop()
        pool.shutdown(cancel_futures=True)
    _print(args, vms, shapes, notes)
    return 1 if any(vm.findings for vm in vms) else 0


_Pending = tuple[str, str, str, str]  # name, where, shape, source release


def _judge_all(
    k: Knowledge,
    records: Iterator[tuple[VmRecord, str]],
    fixed: Release | None,
    destination: Release,
    both_ways: bool,
    pool: Executor,
    progress: _Progress,
    *,
    to_given: bool = True,
) -> tuple[list[FleetVm], int, list[str]]:
    from ordering.fleet import FleetVm, nearest_release, unreadable

    futures: dict[tuple[str, str], Future[tuple[Finding, ...]]] = {}
    waiting: Counter[tuple[str, str]] = Counter()
    pending: list[_Pending] = []
    ready: list[FleetVm] = []
    mapped: Counter[tuple[str, str]] = Counter()
    done = total = 0
    for rec, shape in records:
        total += 1
        if rec.problem:
            ready.append(unreadable(rec.name, rec.where, rec.problem, destination.name))
            done += 1
            continue
        source = fixed
        if source is None:
            source = nearest_release(k, rec.qemu_version)
            if source is None:
                oldest = min(k.releases.values(), key=lambda r: r.version).name
                ready.append(unreadable(rec.name, rec.where, f"QEMU {rec.qemu_version} is older than every bundled release (the oldest is {oldest})", destination.name))
                done += 1
                continue
            if not (rec.qemu_version == source.name or rec.qemu_version.startswith(source.name + ".")):
                # Another release's blockers and order are not this one's (8.1 made VFIO migration
                # non-experimental: 7.2's "VFIO device doesn't support migration" would be false).
                bundled = ", ".join(sorted(k.releases, key=lambda n: k.releases[n].version))
                ready.append(unreadable(rec.name, rec.where, f"QEMU {rec.qemu_version} is not a bundled release ({bundled}): migorder cannot judge it; give --from R to judge it as release R", destination.name,
                                        why="migorder holds no model of the QEMU release its log names"))
                done += 1
                continue
            mapped[(rec.qemu_version, source.name)] += 1
        key = (shape, source.name)
        if key not in futures:
            assert rec.argv, "a shape's first VM carries its arguments"
            futures[key] = pool.submit(_judge, rec.argv, rec.name, source.name, destination.name, both_ways)
        pending.append((rec.name, rec.where, shape, source.name))
        if futures[key].done() and not waiting[key]:
            done += 1
        else:
            waiting[key] += 1
        if total % 500 == 0:
            done += _collect(futures, waiting)
            progress.update(total=total, done=done)
    while waiting:
        next(iter(futures[key] for key in waiting)).result()
        done += _collect(futures, waiting)
        progress.update(total=total, done=done)
    progress.update(total=total, done=total)
    results = {key: fut.result() for key, fut in futures.items()}
    vms = ready + [
        FleetVm(name, where, shape, src, destination.name, results[(shape, src)]) for name, where, shape, src in pending
    ]
    notes = [
        f"--from {rel} for {n} VM(s) whose log names QEMU {version}"
        + ("" if version.startswith(rel + ".") or version == rel else " (the nearest bundled release not newer)")
        for (version, rel), n in sorted(mapped.items())
    ]
    head = f"from QEMU {fixed.name} " if fixed is not None else ""
    head += f"to QEMU {destination.name}" + ("" if to_given else " (--to: the newest bundled release)")
    notes.insert(0, head + (" and back" if both_ways else ""))
    return vms, len(futures), notes


def _collect(futures: dict[tuple[str, str], Future[tuple[Finding, ...]]], waiting: Counter[tuple[str, str]]) -> int:
    """VMs whose shape has been judged since the last look."""
    finished = [key for key in waiting if futures[key].done()]
    n = 0
    for key in finished:
        n += waiting.pop(key)
    return n


def _print(args: argparse.Namespace, vms: list[FleetVm], shapes: int, notes: list[str]) -> None:
    from ordering.fleet import summarize
    from ordering.report_fleet import group_json_line, summary_lines, vm_json_line, vm_lines

    out = sys.stdout
    groups = summarize(vms)
    if args.json_lines:
        if args.summary_only:
            out.writelines(group_json_line(g) + "\n" for g in groups)
        else:
            out.writelines(vm_json_line(vm) + "\n" for vm in vms)
        return
    with_findings = sum(1 for vm in vms if vm.findings)
    out.write("\n".join(summary_lines(groups, vms=len(vms), shapes=shapes, with_findings=with_findings, notes=notes)) + "\n")
    if not args.summary_only and with_findings:
        out.write("\nVMs with findings:\n")
        out.writelines(line + "\n" for line in vm_lines(vms))

