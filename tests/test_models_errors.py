"""Every mistake in a models file is `file:line: what was expected`, exit 2, no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ordering.cli import main
from ordering.errors import ModelError
from ordering.sources.models import bundled_models_dir, read_knowledge


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A writable copy of the bundled models."""
    dst = tmp_path / "models"
    shutil.copytree(bundled_models_dir(), dst)
    return dst


def _edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` with ``new``; return the 1-based line it was on."""
    text = path.read_text()
    assert old in text, old
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))
    return line


def test_bundled_models_load() -> None:
    k = read_knowledge(bundled_models_dir())
    assert {"7.2", "10.0", "10.1", "10.2", "11.1"} <= set(k.releases)
    assert len(k.rules) >= 6
    assert "default" in k.scenarios


def test_toml_syntax_error_names_the_line(models: Path) -> None:
    line = _edit(models / "rules.toml", 'id = "gicv3-before-its"', 'id = "gicv3-before-its')
    with pytest.raises(ModelError) as err:
        read_knowledge(models)
    assert str(err.value).startswith(f"{models / 'rules.toml'}:{line}:")
    assert "expected valid TOML" in str(err.value)


def test_unknown_consequence_names_the_key_line(models: Path) -> None:
    line = _edit(models / "rules.toml", 'consequence = "silent"', 'consequence = "quiet"')
    with pytest.raises(ModelError, match=rf"rules.toml:{line}: consequence: expected one of error, degraded, silent, got 'quiet'"):
        read_knowledge(models)


def test_typo_key_in_a_rule(models: Path) -> None:
    line = _edit(models / "rules.toml", 'symptom = "no message; after', 'symptm = "no message; after')
    with pytest.raises(ModelError, match=rf"rules.toml:{line}: unknown key 'symptm'; expected one of"):
        read_knowledge(models)


def test_rule_naming_an_unknown_kind(models: Path) -> None:
    line = _edit(models / "rules.toml", 'first = "gicv3"', 'first = "gic-v3"')
    with pytest.raises(ModelError, match=rf"rules.toml:{line}: first: expected a kind .*got 'gic-v3'"):
        read_knowledge(models)


def test_release_priority_must_exist_in_its_enum(models: Path) -> None:
    path = models / "releases" / "7.2.toml"
    text = path.read_text()
    i = text.index('priority = "MIG_PRI_IOMMU"')
    line = text[:i].count("\n") + 1
    path.write_text(text[:i] + 'priority = "MIG_PRI_APIC"' + text[i + len('priority = "MIG_PRI_IOMMU"'):])
    with pytest.raises(ModelError, match=rf"7.2.toml:{line}: priority: expected a level of this release's enum, got 'MIG_PRI_APIC'"):
        read_knowledge(models)


def test_bad_registration_condition_in_devices(models: Path) -> None:
    line = _edit(models / "devices.toml", 'when = "machine>7.2 && x-early', 'when = "machine >> 7.2 && x-early')
    with pytest.raises(ModelError, match=rf"devices.toml:{line}: when: expected conditions"):
        read_knowledge(models)


def test_cli_reports_a_model_error_without_traceback(models: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _edit(models / "kinds.toml", "[kind.apic]", "[kind.apic]\nvmsdz = []")
    assert main(["check", "--models", str(models)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"kinds.toml:{line + 1}: unknown key 'vmsdz'" in err
    assert "Traceback" not in err
