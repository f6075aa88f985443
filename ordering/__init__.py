"""migorder: the order in which QEMU loads device state during live migration.

The public face is small: load the bundled QEMU knowledge, build a VM, derive its load order,
and check it against the rules.
"""

from __future__ import annotations

__version__ = "0.1.0"
