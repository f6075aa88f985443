"""The pictures: every format for several VMs parses, fits, has no overlapping labels, and is
byte-for-byte reproducible."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import re
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest

from ordering.check import CheckResult, check
from ordering.cli import main
from ordering.model.knowledge import Knowledge
from ordering.model.vm import HotplugStep, Vm
from ordering.render import (
    build_diagram,
    build_history,
    build_timeline,
    render_diagram,
    render_history,
    render_timeline,
)
from ordering.render.diagram_layout import layout_diagram
from ordering.render.history import layout_history
from ordering.render.mpl import text_boxes
from ordering.render.scene import Scene, label_overlaps
from ordering.render.timeline import layout_timeline
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario

ARM = ("-nodefaults -machine virt,gic-version=3,its=on -smp 4 -device pcie-root-port,id=rp0,chassis=1 "
       "-device virtio-net-pci,bus=rp0,id=net0")


def big_command() -> str:
    """256 vCPUs, an intel-iommu, 64 root ports (8 multifunction slots) and 40 NICs."""
    ports = " ".join(
        f"-device pcie-root-port,id=rp{i},chassis={i + 1},addr={2 + i // 8:#x}.{i % 8}"
        + (",multifunction=on" if i % 8 == 0 else "") for i in range(64))
    nets = " ".join(f"-device virtio-net-pci,bus=rp{i},iommu_platform=on" for i in range(40))
    return f"-machine q35 -smp 256 -cpu max -device intel-iommu {ports} {nets}"


@cache
def k() -> Knowledge:
    return load_knowledge()


def vm(name: str) -> Vm:
    default = read_scenario(k().scenarios["default"])
    if name == "default":
        return default
    if name == "hotplug-cpu":  # a vCPU plugged after the VFIO devices: a registration tie lost
        return dataclasses.replace(default, name="hotplug-cpu", hotplug=(HotplugStep(cpu=4),))
    if name == "arm":
        return parse_command_line(ARM, name="arm")
    return parse_command_line(big_command(), name="big")


CASES = [("default", "11.1"), ("default", "7.2"), ("hotplug-cpu", "10.0"), ("arm", "11.1"),
         ("big", "11.1"), ("big", "10.0")]


@cache
def result(name: str, release: str) -> CheckResult:
    return check(k(), k().release(release), vm(name))


def scenes(name: str, release: str) -> list[Scene]:
    r = result(name, release)
    return [layout_diagram(build_diagram(r)), layout_timeline(build_timeline(r.order, result=r))]


# ---------------------------------------------------------------- content


def test_large_vm_groups_apics_into_one_node() -> None:
    d = build_diagram(result("big", "11.1"))
    labels = [n.label for n in d.nodes]
    assert "apic ×256" in labels
    assert "pcie-root-port ×64" in labels
    assert len(d.nodes) < 60


def test_bands_follow_the_release_enum_highest_first() -> None:
    for release in ("7.2", "11.1"):
        d = build_diagram(result("default", release))
        values = [lvl.value for lvl in d.levels]
        assert values == sorted(values, reverse=True)
        assert {lvl.name for lvl in d.levels} == {
            lvl.name for lvl in k().release(release).scheme.usable}


def test_violations_become_red_arrows_and_timeline_marks() -> None:
    r = result("hotplug-cpu", "10.0")
    d = build_diagram(r)
    assert any(e.verdict.value == "violated" for e in d.edges)
    t = build_timeline(r.order, result=r)
    violated = [m for m in t.marks if m.kind == "violated"]
    assert violated
    assert all(m.needs is not None and m.needs > m.at for m in violated)
    assert "ordering." not in t.note
    r = result("default", "10.0")  # the LAPICs beat the VFIO devices only by registration
    t = build_timeline(r.order, result=r)
    ties = [m for m in t.marks if m.kind == "tie-fragile"]
    assert [m.text.split(":")[0] for m in ties] == ["apic-before-vfio tie-fragile"] * 2
    assert all(m.needs is not None and m.needs < m.at for m in ties)
    assert "registration order" in t.note


def test_timeline_folds_repeats() -> None:
    t = build_timeline(result("big", "11.1").order)
    assert len(t.bars) < 80
    assert any(b.label == "apic ×256" for b in t.bars)


def test_timeline_marks_from_a_simulator_trace() -> None:
    r = result("hotplug-cpu", "10.0")

    @dataclasses.dataclass
    class Failure:
        cls: str
        message: str
        section: object
        needs: object

    vfio = next(s.section for s in r.order.steps if s.section.kind == "vfio")
    apic = next(s.section for s in r.order.steps if s.section.label == "apic#4")

    @dataclasses.dataclass
    class Trace:
        failures: tuple[Failure, ...]

    t = build_timeline(r.order, trace=Trace((Failure("degraded", "IRTE remapped", vfio, apic),)))
    assert len(t.marks) == 1
    assert t.marks[0].needs is not None
    assert "simulator" in t.note
    assert "not available" not in t.note


def test_cycles_are_highlighted() -> None:
    from ordering.graph import Cycle, CycleEdge

    r = result("default", "11.1")
    iommu = next(s.section.label for s in r.order.steps if s.section.kind == "viommu")
    net = next(s.section.label for s in r.order.steps if s.section.idstr.endswith("virtio-net"))
    cyc = Cycle((CycleEdge(iommu, net, ("viommu-before-dma-devices",)),
                 CycleEdge(net, iommu, ("mine",))))
    d = build_diagram(dataclasses.replace(r, section_cycles=(cyc,)))
    assert any(e.in_cycle for e in d.edges)
    assert sum(n.in_cycle for n in d.nodes) == 2
    assert d.cycles


def test_history_rows_and_columns() -> None:
    from ordering.commands.history_vms import reference_vm

    h = build_history(k(), reference_vm)
    assert h.releases == ("7.2", "10.0", "10.1", "10.2", "11.1")
    assert [r for r, _ in h.rows] == [rule.id for rule in k().rules]
    arm_rows = [i for i, rule in enumerate(k().rules) if rule.arch == "aarch64"]
    assert all(h.cells[i][-1].verdict.value != "not-live" for i in arm_rows)


# ---------------------------------------------------------------- layout


@pytest.mark.parametrize(("name", "release"), CASES)
def test_no_label_overlaps_in_layout(name: str, release: str) -> None:
    for s in scenes(name, release):
        assert label_overlaps(s.labels) == []


@pytest.mark.parametrize(("name", "release"), [("default", "11.1"), ("big", "11.1"),
                                               ("hotplug-cpu", "10.0")])
def test_no_label_overlaps_as_rendered(name: str, release: str) -> None:
    """Text extents from the Agg renderer itself: no two labels share a pixel."""
    for s in scenes(name, release):
        boxes = text_boxes(s)
        for i, (ta, a) in enumerate(boxes):
            for tb, b in boxes[i + 1:]:
                assert not a.overlaps(b, -0.5), (ta, tb)


def _points(points: tuple[tuple[float, float], ...], n: int = 60) -> list[tuple[float, float]]:
    from ordering.render.scene import bezier

    if len(points) == 2:
        (x0, y0), (x1, y1) = points
        return [(x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * i / n) for i in range(n + 1)]
    return [bezier(points[0], points[1], points[2], i / n) for i in range(n + 1)]


@pytest.mark.parametrize(("name", "release"), CASES)
def test_arrow_tags_touch_no_box_and_no_other_arrow(name: str, release: str) -> None:
    """A rule tag (R1) sits on its own arrow only: no node box, no other label, no other
    arrow passes under it."""
    d = build_diagram(result(name, release))
    s = layout_diagram(d)
    arrows = s.curves[: len(d.edges)]
    tags = [lb for lb in s.labels if lb.background]
    assert len(tags) == len(d.edges)
    boxes = [r.box for r in s.rects if r.z in (2, 4)]
    texts = [lb.box for lb in s.labels if not lb.background]
    for i, tag in enumerate(tags):
        box = tag.box
        assert not any(box.overlaps(b) for b in boxes), (tag.text, "on a box")
        assert not any(box.overlaps(t) for t in texts), (tag.text, "on a label")
        for j, arrow in enumerate(arrows):
            if j != i:
                assert not any(box.contains(p) for p in _points(arrow.points)), (
                    tag.text, "on the arrow of", tags[j].text)


@pytest.mark.parametrize(("name", "release"), CASES)
def test_ascii_never_splits_an_identifier(name: str, release: str) -> None:
    from ordering.render._text import ascii_only

    r = result(name, release)
    d = build_diagram(r)
    text = render_diagram(d, "ascii").decode()
    words = {w for line in text.splitlines() for w in line.split()}
    for n in d.nodes:
        assert ascii_only(n.label).split(" ")[0] in words, n.label
    for rule in d.rules:  # each word of the evidence whole on some line
        for word in ascii_only(rule.evidence).split():
            assert word in words, (rule.tag, word)
    t = build_timeline(r.order, result=r)
    text = render_timeline(t, "ascii").decode()
    words = {w for line in text.splitlines() for w in line.split()}
    for b in t.bars:
        assert ascii_only(b.label).split(" ")[0] in words, b.label
    assert all(len(line) <= 80 for line in text.splitlines())


def test_history_labels_do_not_overlap() -> None:
    from ordering.commands.history_vms import reference_vm

    s = layout_history(build_history(k(), reference_vm))
    assert label_overlaps(s.labels) == []


# ---------------------------------------------------------------- formats


def _png_ok(data: bytes) -> None:
    from matplotlib.image import imread

    img = imread(io.BytesIO(data), format="png")
    assert img.shape[0] > 100
    assert img.shape[1] > 100
    assert len(data) < 300_000
    assert b"tIME" not in data
    assert b"Date" not in data


def _svg_ok(data: bytes) -> None:
    root = ET.fromstring(data)
    assert root.tag.endswith("svg")
    assert b"<dc:date>" not in data


_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<arrow>->)|(?P<id>[A-Za-z_][\w.]*|-?\d+(?:\.\d+)?)'
                    r"|(?P<sym>[{}\[\];=,]))")


def dot_parses(text: str) -> None:
    """A small DOT grammar check: header, balanced braces, statements, attribute lists."""
    toks: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m is not None, f"bad DOT at {text[pos:pos + 40]!r}"
        kind = m.lastgroup or ""
        toks.append((kind, m.group(kind)))
        pos = m.end()
    assert toks[0] == ("id", "digraph")
    assert toks[2] == ("sym", "{")
    assert toks[-1] == ("sym", "}")
    depth = 0
    i = 2
    while i < len(toks):
        kind, val = toks[i]
        if val == "{":
            depth += 1
        elif val == "}":
            depth -= 1
            assert depth >= 0
        elif val == "[":
            assert ("sym", "]") in toks[i:], "unclosed attribute list"
            j = toks.index(("sym", "]"), i)
            body = toks[i + 1: j]
            # a = b (, a = b)*
            items = [t for t in body if t != ("sym", ",")]
            assert len(items) % 3 == 0, body
            assert all(items[n + 1] == ("sym", "=") for n in range(0, len(items), 3)), body
            i = j
        i += 1
    assert depth == 0


@pytest.mark.parametrize(("name", "release"), CASES)
def test_diagram_every_format(name: str, release: str) -> None:
    d = build_diagram(result(name, release))
    png = render_diagram(d, "png")
    _png_ok(png)
    _svg_ok(render_diagram(d, "svg"))
    dot = render_diagram(d, "dot").decode()
    if importlib.util.find_spec("pydot") is not None:  # pragma: no cover - not a dependency
        import networkx as nx

        assert nx.nx_pydot.read_dot(io.StringIO(dot)) is not None
    dot_parses(dot)
    text = render_diagram(d, "ascii").decode("ascii")
    assert all(len(line) <= 80 for line in text.splitlines())
    assert render_diagram(build_diagram(result(name, release)), "png") == png


@pytest.mark.parametrize(("name", "release"), CASES)
def test_timeline_every_format(name: str, release: str) -> None:
    r = result(name, release)
    t = build_timeline(r.order, result=r)
    png = render_timeline(t, "png")
    _png_ok(png)
    svg = render_timeline(t, "svg")
    _svg_ok(svg)
    text = render_timeline(t, "ascii").decode("ascii")
    assert all(len(line) <= 80 for line in text.splitlines())
    t2 = build_timeline(result(name, release).order, result=r)
    assert render_timeline(t2, "png") == png
    assert render_timeline(t2, "svg") == svg


def test_history_every_format() -> None:
    from ordering.commands.history_vms import reference_vm

    h = build_history(k(), reference_vm)
    png = render_history(h, "png")
    _png_ok(png)
    svg = render_history(h, "svg")
    _svg_ok(svg)
    text = render_history(h, "ascii").decode("ascii")
    assert all(len(line) <= 80 for line in text.splitlines())
    assert render_history(build_history(k(), reference_vm), "svg") == svg


def test_dot_checker_rejects_broken_dot() -> None:
    with pytest.raises(AssertionError):
        dot_parses('digraph g { a -> b [color="red" ; }')


# ---------------------------------------------------------------- CLI


def test_cli_diagram_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diagram"]) == 0
    assert "MIG_PRI" in capsys.readouterr().out
    for suffix in ("png", "svg", "dot"):
        out = tmp_path / f"d.{suffix}"
        assert main(["diagram", "--qemu", "7.2", "-o", str(out)]) == 0
        assert out.stat().st_size > 100
    assert main(["diagram", "-o", str(tmp_path / "d.jpg")]) == 2
    assert main(["diagram", "--format", "png"]) == 2
    assert main(["diagram", "-o", str(tmp_path / "arm.svg"), "--", *ARM.split()]) == 0


def test_cli_timeline_and_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["timeline", "--qemu", "10.0", "-o", str(tmp_path / "t.png")]) == 0
    assert main(["timeline", "--qemu", "11.1"]) == 0
    assert "complete" in capsys.readouterr().out
    assert main(["history", "-o", str(tmp_path / "h.svg")]) == 0
    assert main(["history"]) == 0
    assert "pci-bus-before-viommu" in capsys.readouterr().out
    assert main(["timeline", "nosuch"]) == 2
