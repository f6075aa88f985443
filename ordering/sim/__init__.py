"""The simulator: replay a load order over device behaviours and see what a destination does.

>>> from ordering.sim import simulate, Trace
"""

from ordering.sim.engine import simulate
from ordering.sim.guest import DeviceGuest, GuestState, guest_state
from ordering.sim.reorder import find_section, follow_stream, move
from ordering.sim.trace import Failure, Read, Trace, TraceStep

__all__ = [
    "DeviceGuest",
    "Failure",
    "GuestState",
    "Read",
    "Trace",
    "TraceStep",
    "find_section",
    "follow_stream",
    "guest_state",
    "move",
    "simulate",
]
