"""``migorder scan`` on hostile trees: a one-line error or a skip with a warning, never a
traceback; linear in the number of VMSDs in a file; priorities written as expressions."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from ordering.cli import main
from ordering.errors import SourceTreeError
from ordering.sources import qemu_tree
from ordering.sources.qemu_tree import lint, scan_tree

BASIC = Path(__file__).parent / "fixtures" / "qemu-trees" / "basic"

DEVICE = """
static const VMStateDescription vmstate_dev{i} = {{
    .name = "dev{i}",
    .priority = {priority},
    .fields = (VMStateField[]) {{ VMSTATE_END_OF_LIST() }},
}};

static void dev{i}_class_init(ObjectClass *klass, void *data)
{{
    DeviceClass *dc = DEVICE_CLASS(klass);
    dc->vmsd = &vmstate_dev{i};
}}

static const TypeInfo dev{i}_info = {{
    .name = "dev-type-{i}",
    .class_init = dev{i}_class_init,
}};
"""


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "qemu"
    shutil.copytree(BASIC, root)
    return root


def _users(root: Path) -> dict[str, tuple[str, str]]:
    return {u.vmsd.name: (u.vmsd.priority, u.registration)
            for u in scan_tree(root).priority_users}


def test_bad_files_are_skipped_with_a_warning(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path)
    hw = root / "hw"
    (hw / "dangling.c").symlink_to(hw / "absent.c")
    (hw / "loop.c").symlink_to(hw / "loop.c")
    (hw / "zero.c").symlink_to("/dev/zero")
    os.mkfifo(hw / "fifo.c")
    (hw / "secret.c").write_text("static const VMStateDescription x = { .name = \"x\" };\n")
    real_open = Path.open

    def deny(self: Path, *a: Any, **k: Any) -> Any:
        if self.name == "secret.c":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *a, **k)

    monkeypatch.setattr(Path, "open", deny)
    s = scan_tree(root)
    assert {u.vmsd.name for u in s.priority_users} == {"iommu-intel", "virtio-mem-device"}
    warned = sorted(s.warnings)
    assert warned == [
        "'hw/dangling.c': skipped: cannot be read (No such file or directory)",
        "'hw/fifo.c': skipped: not a regular file",
        "'hw/loop.c': skipped: cannot be read (Too many levels of symbolic links)",
        "'hw/secret.c': skipped: cannot be read (Permission denied)",
        "'hw/zero.c': skipped: not a regular file",
    ]


def test_a_tree_1200_folders_deep(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    folders = [root / "hw" / "d"]
    for _ in range(1199):
        folders.append(folders[-1] / "d")
    try:
        for d in folders:
            d.mkdir()
        (folders[-1] / "x.c").write_text("int x;\n")
        s = scan_tree(root)
    finally:  # shutil.rmtree (pytest's clean-up) recurses once per level: remove it here
        (folders[-1] / "x.c").unlink(missing_ok=True)
        for d in reversed(folders):
            if d.exists():
                d.rmdir()
    assert len(s.priority_users) == 2
    assert len(s.warnings) == 1
    assert s.warnings[0].endswith(f"skipped: deeper than {qemu_tree.MAX_DEPTH} folders")


@pytest.mark.parametrize(("content", "words"), [
    ("1" * 5000 + ".2.0\n", "expected a version such as 7.2.0, found '1111"),
    ("7.2.0\x1b[31m\n", r"found '7.2.0\x1b[31m'"),
])
def test_bad_version_is_one_line(tmp_path: Path, content: str, words: str) -> None:
    root = _tree(tmp_path)
    (root / "VERSION").write_text(content)
    with pytest.raises(SourceTreeError) as info:
        scan_tree(root)
    assert info.value.where == "VERSION:1"
    assert words in info.value.expected
    assert len(str(info.value)) < 300


def test_version_that_is_a_device(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "VERSION").unlink()
    (root / "VERSION").symlink_to("/dev/zero")
    with pytest.raises(SourceTreeError, match="not a regular file"):
        scan_tree(root)


def test_priority_expressions_are_evaluated(tmp_path: Path) -> None:
    """``MIG_PRI_DEFAULT + 1`` was read as MIG_PRI_DEFAULT."""
    root = _tree(tmp_path)
    (root / "hw" / "expr.c").write_text(
        DEVICE.format(i=1, priority="MIG_PRI_DEFAULT + 1")
        + DEVICE.format(i=2, priority="(MIG_PRI_VIRTIO_MEM)")
        + DEVICE.format(i=3, priority="MIG_PRI_MAX - 1"))
    got = _users(root)
    assert got["dev1"] == ("MIG_PRI_IOMMU", "section")
    assert got["dev2"] == ("MIG_PRI_VIRTIO_MEM", "section")
    assert got["dev3"] == ("MIG_PRI_VIRTIO_MEM", "section")
    d1 = next(u.vmsd for u in scan_tree(root).priority_users if u.vmsd.name == "dev1")
    assert (d1.priority_expr, d1.priority_value) == ("MIG_PRI_DEFAULT + 1", 1)


def test_priority_above_max_is_a_lint_error(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "hw" / "over.c").write_text(DEVICE.format(i=9, priority="MIG_PRI_MAX + 1"))
    findings = [f for f in lint(scan_tree(root)) if "over.c" in f]
    assert findings == [
        "hw/over.c:4: error: priority MIG_PRI_MAX + 1 (= 4) on VMSD 'dev9' is above "
        "MIG_PRI_MAX (3): QEMU aborts on assert(priority <= MIG_PRI_MAX) when it registers "
        "the section (migration/savevm.c, savevm_state_handler_insert)"
    ]


def test_1000_vmsds_in_one_file(tmp_path: Path) -> None:
    """Each use rescanned the file from its start (13 s for 1,000 VMSDs); now one pass."""
    root = _tree(tmp_path)
    text = "".join(DEVICE.format(i=i, priority="MIG_PRI_IOMMU") for i in range(1000))
    (root / "hw" / "many.c").write_text(text)
    s = scan_tree(root)
    many = [u for u in s.priority_users if u.vmsd.file == "hw/many.c"]
    assert len(many) == 1000
    last = many[-1]
    line = text[: text.index("VMStateDescription vmstate_dev999 ")].count("\n") + 1
    assert (last.vmsd.name, last.vmsd.line, last.registration) == ("dev999", line, "section")
    assert "dev-type-999" in last.how
    use = last.uses[0]
    assert (use.kind, use.line) == ("dc", text[: text.index("&vmstate_dev999;")].count("\n") + 1)


def test_scan_out_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _tree(tmp_path)
    cases = [
        (tmp_path / "missing" / "r.toml", "does not exist"),
        (tmp_path, "found a folder"),
        (Path("/proc/migorder-cannot-write.toml"), "expected a writable file"),
    ]
    for out, words in cases:
        code = main(["scan", str(root), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith(f"migorder: error: --out '{out}': expected ")
        assert words in err
        assert err.count("\n") == 1


def test_scan_cli_prints_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _tree(tmp_path)
    (root / "hw" / "zero.c").symlink_to("/dev/zero")
    code = main(["scan", str(root)])
    out, err = capsys.readouterr()
    assert code == 1  # the basic tree's lint finding
    assert err == "migorder: warning: 'hw/zero.c': skipped: not a regular file\n"
    assert "QEMU 7.2.0" in out
