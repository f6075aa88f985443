"""The simulator tests' strategies: the public ones of :mod:`ordering.strategies`."""

from __future__ import annotations

from ordering.strategies import arm_vms, reorderings, vms, x86_vms

RELEASES = ("7.2", "10.0", "10.1", "10.2", "11.1")

__all__ = ["RELEASES", "arm_vms", "reorderings", "vms", "x86_vms"]
