"""derive's four stages, each alone: refuse → place → register → sort."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ordering.errors import ScenarioError
from ordering.model.vm import HotplugStep
from ordering.order import derive, register, sort
from ordering.place import CpuPlug, Unplug, place
from ordering.refusals import refuse
from ordering.sources.cmdline import parse_command_line
from ordering.sources.models import load_knowledge
from ordering.sources.scenario import read_scenario

K = load_knowledge()
R = K.release("10.2")


def test_refuse_checks_every_device_before_anything_is_placed() -> None:
    # The second device is unknown: refused although the first would fail placement later.
    vm = parse_command_line("-machine q35 -device e1000,addr=0x0 -device no-such-device")
    with pytest.raises(Exception, match="no-such-device"):
        refuse(R, vm)
    ok = refuse(R, parse_command_line("-machine q35,hpet=off"))
    assert ok.machine_type == "pc-q35-10.2"
    assert ok.holds("hpet=off")
    assert not ok.holds("hpet=on")


def test_refuse_checks_vcpu_hot_plugs_against_maxcpus() -> None:
    vm = read_scenario(K.scenarios["hazard-posted-remapped"])
    with pytest.raises(ScenarioError, match="below maxcpus=2"):
        refuse(R, replace(vm, topology=replace(vm.topology, maxcpus=2)))


def test_place_gives_paths_and_events_without_registering() -> None:
    vm = read_scenario(K.scenarios["hazard-posted-remapped"])
    placed = place(refuse(R, vm))
    assert [c.cpu_index for c in placed.cpus] == [0, 1]
    assert [d.path for d in placed.cold] == ["0000:00:01.0", "0000:00:01.0:00.0"]
    assert placed.hotplug == (CpuPlug(2, 2, hotplugged=True),)


def test_place_records_an_unplug_with_its_subtree() -> None:
    vm = parse_command_line("-machine q35 -device pcie-root-port,id=rp0,chassis=1 "
                            "-device qemu-xhci,id=x,bus=rp0 -device usb-kbd,id=k,bus=x.0")
    vm = replace(vm, hotplug=(HotplugStep(unplug="x"),))
    placed = place(refuse(R, vm))
    assert placed.hotplug == (Unplug(("k", "x")),)
    assert [d.qdev_id for d in placed.devices] == ["rp0"]


def test_register_follows_the_placed_order_and_sort_is_derive() -> None:
    vm = read_scenario(K.scenarios["default"])
    placed = place(refuse(R, vm))
    registered = register(placed)
    assert sort(registered).steps == derive(R, vm).steps
    # The third stage alone: give the last -device first and only section_ids move.
    moved = replace(placed, cold=(placed.cold[-1], *placed.cold[:-1]))
    again = register(moved)
    first_owner = next(s.owner for s in again.sections if s.owner not in ("machine",) and not s.owner.startswith("cpu"))
    assert first_owner == placed.cold[-1].qdev_id
    assert sorted(s.label for s in again.sections) == sorted(s.label for s in registered.sections)
