"""The parsed models kept on disk: the same knowledge back, never a stale or foreign one."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from ordering.model.knowledge import Knowledge
from ordering.sources import knowledge_cache
from ordering.sources.models import bundled_models_dir, read_knowledge


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(knowledge_cache.NO_CACHE_ENV, raising=False)
    copy = tmp_path / "models"
    shutil.copytree(bundled_models_dir(), copy)
    return copy


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, models_dir: Path) -> Knowledge:
        self.calls += 1
        return read_knowledge(models_dir)


def test_the_second_run_unpickles_what_the_first_parsed(models: Path) -> None:
    read = Counting()
    first = knowledge_cache.cached_knowledge(models, read)
    second = knowledge_cache.cached_knowledge(models, read)
    assert read.calls == 1
    assert second == first
    assert second.release("10.0").scheme == read_knowledge(models).release("10.0").scheme


def test_an_edited_model_file_is_parsed_again(models: Path) -> None:
    read = Counting()
    knowledge_cache.cached_knowledge(models, read)
    rules = models / "rules.toml"
    rules.write_text(rules.read_text() + "\n# edited\n")
    os.utime(rules, ns=(1, 1))
    knowledge_cache.cached_knowledge(models, read)
    assert read.calls == 2


def test_a_broken_or_foreign_cache_file_is_ignored(models: Path) -> None:
    read = Counting()
    knowledge_cache.cached_knowledge(models, read)
    (cached,) = (Path(os.environ["XDG_CACHE_HOME"]) / "migorder").glob("knowledge-*.pickle")
    cached.write_bytes(b"not a pickle")
    assert isinstance(knowledge_cache.cached_knowledge(models, read), Knowledge)
    assert read.calls == 2
    # right name, other key (a CRC collision): parsed again, never taken
    cached.write_bytes(pickle.dumps((b"another key", "something else")))
    assert isinstance(knowledge_cache.cached_knowledge(models, read), Knowledge)
    assert read.calls == 3


def test_no_cache_when_asked_or_unwritable(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    read = Counting()
    monkeypatch.setenv(knowledge_cache.NO_CACHE_ENV, "1")
    knowledge_cache.cached_knowledge(models, read)
    knowledge_cache.cached_knowledge(models, read)
    assert read.calls == 2
    monkeypatch.delenv(knowledge_cache.NO_CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", os.devnull)  # not a folder: nothing can be written
    knowledge_cache.cached_knowledge(models, read)
    knowledge_cache.cached_knowledge(models, read)
    assert read.calls == 4
