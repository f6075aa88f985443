"""Device behaviours, one module each: what a section's load reads from other devices.

Every module cites the QEMU (or KVM) function it models and defines ``BEHAVIOUR`` (that
function, as the trace shows it), ``applies(world, section)`` and ``post_load(ctx, section)``.
"""
