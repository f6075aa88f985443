"""``migorder verify``: patches in qemu-devel form judged against bundled models and real trees."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import IN_CI

from ordering.cli import main
from ordering.sources.models import load_knowledge
from ordering.sources.patch import read_patches
from ordering.sources.patch_apply import apply_to_model
from ordering.verify import compare

PATCHES = Path(__file__).parent / "data/patches"
BASIC = Path(__file__).parent / "fixtures/qemu-trees/basic"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def verify_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, out, err = run(capsys, "verify", *argv, "--json")
    assert err == ""
    return code, json.loads(out)


def rule(data: dict, rule_id: str, scope: str = "universal") -> tuple[str, str]:  # type: ignore[type-arg]
    found = [r for r in data["rules"] if r["rule"] == rule_id and r["scope"] == scope]
    assert len(found) == 1
    return found[0]["before"], found[0]["after"]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_apic_patch_on_10_1_is_better(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = verify_json(capsys, str(PATCHES / "apic-d943cef76090.patch"), "--qemu", "10.1")
    assert code == 0
    assert data["summary"] == "BETTER"
    assert rule(data, "apic-before-vfio") == ("tie-fragile", "guaranteed")
    assert rule(data, "apic-before-vfio", "default") == ("tie-fragile", "guaranteed")
    assert {r["name"] for r in data["enum"]["renumbered"]} == {"MIG_PRI_GICV3_ITS", "MIG_PRI_GICV3", "MIG_PRI_MAX"}
    assert any(m["section"].startswith("apic") and m["priority_after"] == "MIG_PRI_APIC" for m in data["moved"])
    assert any("unpatched source -> patched destination: tie-fragile" in c for c in data["cross_version"])
    assert data["patches"][0]["commit"].startswith("d943cef76090")


def test_apic_patch_on_10_2_does_not_apply(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "verify", str(PATCHES / "apic-d943cef76090.patch"), "--qemu", "10.2")
    assert code == 2
    assert err.count("\n") == 1
    assert "does not apply to BASE (10.2)" in err
    assert "already has .priority = MIG_PRI_APIC" in err


def _reverse(text: str) -> str:
    out = []
    for line in text.split("\n"):
        m = re.match(r"@@ -(\S+) \+(\S+) @@(.*)", line)
        if m:
            out.append(f"@@ -{m.group(2)} +{m.group(1)} @@{m.group(3)}")
        elif line[:1] == "+" and not line.startswith("+++"):
            out.append("-" + line[1:])
        elif line[:1] == "-" and not line.startswith(("---", "-- ")):
            out.append("+" + line[1:])
        else:
            out.append(line)
    return "\n".join(out)


def test_virtio_mem_priority_is_not_reported_as_a_fix() -> None:
    """0fd7616e0f11 set MIG_PRI_VIRTIO_MEM on a nested VMSD: it cannot take effect."""
    k = load_knowledge()
    text = (PATCHES / "virtio-mem-0fd7616e0f11.patch").read_text()
    forward, _ = read_patches(text, "fwd")
    backward, _ = read_patches(_reverse(text), "rev")
    before = apply_to_model(k.release("7.2"), backward).release
    assert not before.scheme.has("MIG_PRI_VIRTIO_MEM")
    applied = apply_to_model(before, forward)
    assert not applied.unjudged
    c = compare(k, before, applied.release, [])
    (b, a), = [(r.before, r.after) for r in c.rules if r.rule == "virtio-mem-before-viommu"]
    assert a == b
    assert a != "guaranteed"
    assert any("MIG_PRI_VIRTIO_MEM" in ln and "cannot take effect" in ln for ln in c.lint)
    assert not c.better


def test_virtio_mem_patch_on_7_2_is_already_there(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "verify", str(PATCHES / "virtio-mem-0fd7616e0f11.patch"), "--qemu", "7.2")
    assert code == 2
    assert "already has .priority = MIG_PRI_VIRTIO_MEM" in err


@pytest.mark.parametrize(
    ("patch", "base", "summary", "code"),
    [
        ("renumber-only.patch", "7.2", "NO CHANGE", 0),
        ("rename-level.patch", "7.2", "NO CHANGE", 0),
        ("unrelated.patch", "7.2", "NO CHANGE", 0),
        ("swap-worse.patch", "7.2", "WORSE", 1),
        ("savevm-unjudged.patch", "7.2", "UNJUDGED", 1),
        ("remove-used-level.patch", "7.2", "UNJUDGED", 1),
        ("alias-after-max.patch", "10.1", "BETTER", 0),
        ("series-apic.mbox", "10.1", "BETTER", 0),
    ],
)
def test_summary_words(capsys: pytest.CaptureFixture[str], patch: str, base: str, summary: str, code: int) -> None:
    got, data = verify_json(capsys, str(PATCHES / patch), "--qemu", base, "--scenario", "default")
    assert (data["summary"], got) == (summary, code)


def test_renumber_only_lists_every_level_as_renumbered(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = verify_json(capsys, str(PATCHES / "renumber-only.patch"), "--qemu", "7.2")
    assert len(data["enum"]["renumbered"]) == len(data["enum"]["before"])
    assert all(r["before"] == r["after"] for r in data["rules"])


def test_unjudged_names_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = verify_json(capsys, str(PATCHES / "savevm-unjudged.patch"), "--qemu", "7.2")
    assert data["unjudged"][0]["where"] == "migration/savevm.c:241"
    _code, out, _ = run(capsys, "verify", str(PATCHES / "savevm-unjudged.patch"), "--qemu", "7.2")
    assert "give --tree" in out
    assert out.rstrip().split("\n")[-1].startswith("UNJUDGED")


def test_unrelated_hunks_are_counted_as_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = verify_json(capsys, str(PATCHES / "unrelated.patch"), "--qemu", "7.2")
    assert data["ignored"] == ["docs/devel/migration.rst:10", "hw/misc/example.c:20"]


def test_alias_is_called_out(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = verify_json(capsys, str(PATCHES / "alias-after-max.patch"), "--qemu", "10.1")
    assert ["MIG_PRI_GICV3", "MIG_PRI_APIC"] in data["enum"]["aliases"]


def test_series_skips_the_cover_letter(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = verify_json(capsys, str(PATCHES / "series-apic.mbox"), "--qemu", "10.1")
    assert [p["subject"] for p in data["patches"]] == ["migration: add MIG_PRI_APIC", "apic: load before VFIO devices"]
    assert data["skipped"] == ["[PATCH 0/2] migration: load the APIC before VFIO devices"]


@pytest.mark.parametrize(("patch", "words"), [
    ("malformed.patch", "ends early"),
    ("no-diff.txt", "found no diff"),
    ("not-in-base.patch", "MIG_PRI_FOO is not in its enum"),
])
def test_bad_patches_are_one_line(capsys: pytest.CaptureFixture[str], patch: str, words: str) -> None:
    code, out, err = run(capsys, "verify", str(PATCHES / patch), "--qemu", "7.2")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert words in err


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO((PATCHES / "apic-d943cef76090.patch").read_text()))
    code, out, _ = run(capsys, "verify", "-", "--qemu", "10.1", "--scenario", "default")
    assert code == 0
    assert "\nBETTER: " in out


def test_mail_format_fits_72_columns(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "verify", str(PATCHES / "apic-d943cef76090.patch"), "--qemu", "10.1", "--format", "mail")
    assert code == 0
    assert max(len(ln) for ln in out.split("\n")) <= 72
    assert "\x1b" not in out
    assert "d943cef76090" in out
    assert "tie at MIG_PRI_DEFAULT" in out


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_tree_mode_on_a_fixture_never_writes_the_tree(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(BASIC, tree)
    before = _tree_hash(tree)
    header = (tree / "include/migration/vmstate.h").read_text().splitlines(keepends=True)
    new = [*header]
    at = next(i for i, ln in enumerate(new) if "MIG_PRI_MAX" in ln)
    new.insert(at, "    MIG_PRI_NEW,\n")
    diff = "".join(difflib.unified_diff(header, new, "a/include/migration/vmstate.h", "b/include/migration/vmstate.h"))
    patch = tmp_path / "new.diff"
    patch.write_text(diff)
    code, data = verify_json(capsys, str(patch), "--tree", str(tree), "--scenario", "default")
    assert code == 0
    assert data["summary"] == "NO CHANGE"
    assert "MIG_PRI_NEW" in [e["name"] for e in data["enum"]["after"]]
    assert _tree_hash(tree) == before
    # Already in the tree: it applies in reverse.
    (tree / "include/migration/vmstate.h").write_text("".join(new))
    code, _, err = run(capsys, "verify", str(patch), "--tree", str(tree))
    assert code == 2
    assert "already in the tree" in err


def test_tree_mode_names_the_hunk_that_does_not_apply(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "verify", str(PATCHES / "not-in-base.patch"), "--tree", str(BASIC))
    assert code == 2
    assert "include/migration/vmstate.h" in err
    assert "hunk 1" in err


def test_git_range_verifies_each_commit_then_the_range(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is missing")
    repo = tmp_path / "repo"
    shutil.copytree(BASIC, repo)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}

    def git(*a: str) -> None:
        subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, env=env)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    header = repo / "include/migration/vmstate.h"
    header.write_text(header.read_text().replace("    MIG_PRI_MAX,", "    MIG_PRI_NEW,\n    MIG_PRI_MAX,"))
    git("commit", "-qam", "migration: add MIG_PRI_NEW")
    header.write_text(header.read_text().replace("    MIG_PRI_DEFAULT = 0,", "    MIG_PRI_DEFAULT = 2,"))
    git("commit", "-qam", "migration: renumber")
    code, out, err = run(capsys, "verify", "--git", "HEAD~2..HEAD", "--tree", str(repo), "--json")
    assert err == ""
    data = json.loads(out)
    assert [d["label"].split()[0] for d in data] == ["commit", "commit", "the"]
    assert [d["summary"] for d in data] == ["NO CHANGE"] * 3
    assert code == 0


REAL_7_2 = os.environ.get("MIGORDER_QEMU_SRC_7_2", "")


def _real_tree() -> Path:
    if not REAL_7_2 or not (Path(REAL_7_2) / "VERSION").is_file():
        if IN_CI:
            pytest.fail("MIGORDER_QEMU_SRC_7_2 must name a QEMU 7.2 tree under CI=true")
        pytest.skip("set MIGORDER_QEMU_SRC_7_2 to a QEMU 7.2 source tree")
    return Path(REAL_7_2)


def _edit(tree: Path, rel: str, after: str, line: str, within: str = "") -> str:
    old = (tree / rel).read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, ln in enumerate(old) if within in ln) if within else 0
    at = next(i for i, ln in enumerate(old) if i >= start and after in ln) + 1
    new = [*old[:at], line, *old[at:]]
    return "".join(difflib.unified_diff(old, new, f"a/{rel}", f"b/{rel}"))


def test_apic_patch_on_the_real_7_2_tree_is_better(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tree = _real_tree()
    diff = _edit(tree, "include/migration/vmstate.h", "MIG_PRI_VIRTIO_MEM,", "    MIG_PRI_APIC,\n")
    diff += _edit(tree, "hw/intc/apic_common.c", ".minimum_version_id = 3,", "    .priority = MIG_PRI_APIC,\n",
                  within="VMStateDescription vmstate_apic_common")
    patch = tmp_path / "apic.diff"
    patch.write_text(diff)
    code, data = verify_json(capsys, str(patch), "--tree", str(tree), "--scenario", "default")
    assert data["summary"] == "BETTER"
    assert code == 0
    assert rule(data, "apic-before-vfio")[1] == "guaranteed"


def test_virtio_mem_patch_is_already_in_the_real_7_2_tree(capsys: pytest.CaptureFixture[str]) -> None:
    tree = _real_tree()
    code, _, err = run(capsys, "verify", str(PATCHES / "virtio-mem-0fd7616e0f11.patch"), "--tree", str(tree))
    assert code == 2
    assert "already in the tree" in err


def test_early_setup_moves_the_section_but_is_no_fix(capsys: pytest.CaptureFixture[str]) -> None:
    """The order it gives is shown, but an early_setup VMSD is saved once while the guest runs
    (62f42625d4e2: immutable state only): the LAPIC's state would arrive stale, so not BETTER."""
    code, data = verify_json(capsys, str(PATCHES / "early-setup-apic.patch"), "--qemu", "10.1", "--scenario", "default")
    assert (code, data["summary"]) == (1, "UNJUDGED")
    assert rule(data, "apic-before-vfio") == ("tie-fragile", "guaranteed")
    assert any("section -> early_setup" in c and "stream itself changes" in c for c in data["cross_version"])
    assert any("while the guest still runs" in u["what"] for u in data["unjudged"])


def test_early_setup_on_a_release_without_it_would_not_build(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = verify_json(capsys, str(PATCHES / "early-setup-apic.patch"), "--qemu", "7.2")
    assert (code, data["summary"]) == (1, "UNJUDGED")
    assert any("the tree would not build" in u["what"] for u in data["unjudged"])


def test_savevm_hunks_stay_unjudged_with_a_tree(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(BASIC, tree)
    savevm = tree / "migration/savevm.c"
    savevm.write_text("static int save_state_priority(SaveStateEntry *se)\n{\n    return se->vmsd->priority;\n}\n")
    old = savevm.read_text().splitlines(keepends=True)
    new = [*old]
    new[2] = "    return MIG_PRI_MAX - se->vmsd->priority;\n"
    patch = tmp_path / "savevm.diff"
    patch.write_text("".join(difflib.unified_diff(old, new, "a/migration/savevm.c", "b/migration/savevm.c")))
    code, data = verify_json(capsys, str(patch), "--tree", str(tree), "--scenario", "default")
    assert (code, data["summary"]) == (1, "UNJUDGED")
    assert data["unjudged"][0]["where"] == "migration/savevm.c:3"


def test_a_rename_says_the_old_claim_is_gone(capsys: pytest.CaptureFixture[str]) -> None:
    _, data = verify_json(capsys, str(PATCHES / "rename-level.patch"), "--qemu", "7.2")
    assert any(ln.startswith("claim gone: MIG_PRI_GICV3_ITS") for ln in data["lint"])


def test_a_plain_diff_ru_reads_like_a_git_diff(capsys: pytest.CaptureFixture[str]) -> None:
    code, data = verify_json(capsys, str(PATCHES / "plain-diff-ru.diff"), "--qemu", "7.2", "--scenario", "default")
    assert (code, data["summary"]) == (0, "NO CHANGE")
    assert data["changes"] == ["include/migration/vmstate.h:1: enum: adds MIG_PRI_LATE"]
    assert [e["name"] for e in data["enum"]["after"]][:2] == ["MIG_PRI_DEFAULT", "MIG_PRI_LATE"]


def test_git_range_against_a_bundled_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--git with --qemu: each commit read as a mail against the model, then the whole range."""
    if shutil.which("git") is None:
        pytest.skip("git is missing")
    repo = tmp_path / "repo"
    (repo / "include/migration").mkdir(parents=True)
    header = repo / "include/migration/vmstate.h"
    enum = ["typedef enum {", "    MIG_PRI_UNINITIALIZED = 0,", "    MIG_PRI_LOW,", "    MIG_PRI_DEFAULT,",
            "    MIG_PRI_IOMMU,", "    MIG_PRI_PCI_BUS,", "    MIG_PRI_VIRTIO_MEM,", "    MIG_PRI_GICV3_ITS,",
            "    MIG_PRI_GICV3,", "    MIG_PRI_MAX,", "} MigrationPriority;"]
    header.write_text("\n".join(enum) + "\n")
    apic = repo / "hw/intc/apic_common.c"
    apic.parent.mkdir(parents=True)
    apic.write_text('static const VMStateDescription vmstate_apic_common = {\n    .name = "apic",\n'
                    "    .version_id = 3,\n};\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}

    def git(*a: str) -> None:
        subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, env=env)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    header.write_text(header.read_text().replace("    MIG_PRI_VIRTIO_MEM,\n", "    MIG_PRI_VIRTIO_MEM,\n    MIG_PRI_APIC,\n"))
    git("commit", "-qam", "migration: add MIG_PRI_APIC")
    apic.write_text(apic.read_text().replace('    .name = "apic",\n', '    .name = "apic",\n    .priority = MIG_PRI_APIC,\n'))
    git("commit", "-qam", "apic: use MIG_PRI_APIC")
    code, out, err = run(capsys, "verify", "--git", "HEAD~2..HEAD", "--tree", str(repo), "--qemu", "10.1",
                         "--scenario", "default", "--json")
    assert err == ""
    data = json.loads(out)
    assert [d["summary"] for d in data] == ["NO CHANGE", "BETTER", "BETTER"]
    assert data[-1]["label"] == "the whole range"
    assert code == 0


def test_a_priority_above_max_is_unjudged_not_better(capsys: pytest.CaptureFixture[str]) -> None:
    """QEMU asserts priority <= MIG_PRI_MAX when a section registers: a level after MAX that a
    section uses aborts QEMU, so the ordering it would give is no improvement."""
    code, data = verify_json(capsys, str(PATCHES / "above-max.patch"), "--qemu", "7.2")
    assert code == 1
    assert data["summary"] == "UNJUDGED"
    assert any("assert(priority <= MIG_PRI_MAX)" in u["what"] for u in data["unjudged"])
    code, data = verify_json(capsys, str(PATCHES / "equal-max.patch"), "--qemu", "7.2")
    assert code == 0  # = MIG_PRI_MAX is allowed (<=)
    assert data["summary"] == "BETTER"
