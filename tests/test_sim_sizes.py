"""Sizes as QEMU reads them in the simulator: ``-m`` is MiB unless suffixed, an ``-object``'s
``size`` (a qdev size property) is bytes unless suffixed."""

from __future__ import annotations

from ordering.order import derive
from ordering.sim.devices.virtio_mem import block_address
from ordering.sim.guest import guest_state
from ordering.sim.world import World
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge

K = load_knowledge()


def _second_block(first_size: str, memory: str = "4G") -> int:
    """Where the second virtio-mem device's memory starts: after the first one's backend."""
    vm = parse_command_line(
        f"-nodefaults -machine q35 -m {memory},maxmem=64G,slots=2 "
        f"-object memory-backend-ram,id=m0,size={first_size} "
        "-object memory-backend-ram,id=m1,size=1G "
        "-device virtio-mem-pci,memdev=m0,id=vm0 -device virtio-mem-pci,memdev=m1,id=vm1"
    )
    release = K.release("10.2")
    order = derive(release, vm)
    world = World.build(release, order, guest_state(vm, order.registered))
    return block_address(world, world.devices["vm1"])


def test_an_object_size_without_a_suffix_is_bytes() -> None:
    assert _second_block("2147483648") == _second_block("2G")
    assert _second_block("2147483648") - _second_block("1G") == 1 << 30


def test_memory_without_a_suffix_is_mib() -> None:
    assert _second_block("1G", memory="8192") == _second_block("1G", memory="8G")
