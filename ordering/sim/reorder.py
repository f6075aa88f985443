"""Other orders than the derived one: a moved section, or the order a real stream shows."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import replace

from ordering.errors import UsageError
from ordering.model.section import LoadStep, Phase, Section, SectionType
from ordering.order import LoadOrder


def _labels(order: LoadOrder) -> dict[str, Section]:
    out: dict[str, Section] = {}
    for step in order.steps:
        s = step.section
        out.setdefault(s.label, s)
        out.setdefault(f"{s.idstr}#{s.instance_id}", s)
    return out


def find_section(order: LoadOrder, label: str) -> Section:
    """The section called ``label`` (``idstr`` or ``idstr#instance_id``) in ``order``.

    Raises
    ------
    UsageError
        No such section; the message lists close matches.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> k = load_knowledge()
    >>> o = derive(k.release("10.2"), parse_command_line("-machine q35 -smp 2"))
    >>> find_section(o, "apic#1").instance_id
    1
    """
    labels = _labels(order)
    if label in labels:
        return labels[label]
    close = difflib.get_close_matches(label, list(labels), n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    raise UsageError(f"no section {label!r} in this VM's load order{hint}")


def _load_index(order: LoadOrder, section: Section) -> int:
    idx = -1
    for i, step in enumerate(order.steps):
        if step.section.section_id == section.section_id:
            if step.type is SectionType.FULL:
                return i
            if idx < 0:
                idx = i
    return idx


def move(order: LoadOrder, label: str, before: str) -> LoadOrder:
    """``order`` with the load of section ``label`` moved to just before ``before``'s load.

    The moved step takes the phase of the step it now precedes. Only the state-carrying step
    moves (FULL, or the first step of an iterable-only section).

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> from ordering.order import derive
    >>> k = load_knowledge()
    >>> o = derive(k.release("10.2"), parse_command_line(
    ...     "-machine q35 -device intel-iommu -device pcie-root-port,id=rp0"))
    >>> [s.section.idstr for s in move(o, "iommu-intel", "0000:00:01.0/pcie-root-port").full][1:3]
    ['iommu-intel', '0000:00:01.0/pcie-root-port']
    """
    a, b = find_section(order, label), find_section(order, before)
    if a.section_id == b.section_id:
        raise UsageError(f"--move {label} --before {before}: the same section")
    steps = list(order.steps)
    step = steps.pop(_load_index(order, a))
    target = next(
        i for i, s in enumerate(steps)
        if s.section.section_id == b.section_id
        and (s.type is SectionType.FULL or not b.full)
    )
    steps.insert(target, LoadStep(step.section, step.type, steps[target].phase))
    return replace(order, steps=tuple(steps))


_TYPES = {"START": SectionType.START, "PART": SectionType.PART, "END": SectionType.END,
          "FULL": SectionType.FULL}


def follow_stream(
    order: LoadOrder, sections: Iterable[tuple[str, str, int, str]]
) -> LoadOrder:
    """``order``'s sections in the sequence a real stream sent them.

    ``sections`` gives ``(type, idstr, instance_id, phase)`` per stream section, in stream
    order (``type`` START/PART/END/FULL, ``phase`` setup/iterate/complete). A section the VM
    does not have is refused in the destination's own words; a section the stream does not
    carry is never loaded (its device keeps its reset state).

    Raises
    ------
    UsageError
        The stream has a section this VM does not register.
    """
    by_key = {(s.idstr, s.instance_id): s for s in order.registered.sections}
    steps: list[LoadStep] = []
    for type_, idstr, instance, phase in sections:
        section = by_key.get((idstr, instance))
        if section is None:
            close = difflib.get_close_matches(idstr, sorted({k[0] for k in by_key}), n=3)
            hint = f" (close: {', '.join(close)})" if close else ""
            raise UsageError(
                f"Unknown savevm section or instance '{idstr}' {instance}. Make sure that your "
                "current VM setup matches your saved VM setup, including any hotplugged "
                f"devices{hint}"
            )
        if type_ in _TYPES:
            steps.append(LoadStep(section, _TYPES[type_], Phase(phase)))
    return replace(order, steps=tuple(steps))
