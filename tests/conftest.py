"""Shared test set-up: the hypothesis CI profile, and real-QEMU tests that fail under CI."""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    max_examples=60,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(thing: object, what: str) -> None:
    """Skip when ``thing`` is missing locally; under ``CI=true`` a missing thing is a failure."""
    if thing:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing, and CI=true requires it (.ci/run installs it)")
    pytest.skip(f"{what} is missing")


def qemu_binary(name: str) -> str:
    """The path of a Debian QEMU binary (``qemu-system-x86_64``), or skip/fail."""
    path = shutil.which(name)
    require(path, f"QEMU binary {name} on PATH (Debian's qemu-system-x86 / qemu-system-arm)")
    assert path is not None
    return path
