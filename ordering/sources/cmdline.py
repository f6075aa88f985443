"""Read a QEMU command line into a :class:`~ordering.model.vm.Vm`.

Only what changes registration is modelled (``-machine``, ``-smp``, ``-m``, ``-device``,
``-object``, ``-accel``); options that do not register anything are accepted; anything else
is reported, never ignored silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from ordering.errors import ScenarioError
from ordering.model.machine import qemu_size
from ordering.model.vm import NEWER_OPTIONS, NEWER_VALUES, DeviceSpec, Topology, Vm
from ordering.sources._limits import LimitError, json_loads, shown
from ordering.sources.fleet_inputs import shell_words

# Options that take an argument and register nothing migorder models.
_IGNORED_WITH_ARG = frozenset(
    {"-display", "-monitor", "-name", "-uuid", "-qmp", "-blockdev", "-kernel", "-append", "-initrd", "-L", "-rtc",
     "-boot", "-D", "-d", "-trace", "-incoming", "-pidfile", "-vnc", "-k", "-mon",
     "-add-fd", "-fsdev", "-iscsi", "-msg", "-overcommit", "-sandbox", "-runas", "-chroot",
     "-numa", "-fw_cfg", "-smbios", "-action", "-watchdog-action", "-dtb", "-qmp-pretty",
     # a TPM backend (the -device tpm-* front end registers its state); a SPICE server;
     # guest RAM from a path (captured: -full-screen and -mem-prealloc register nothing on 7.2,
     # 10.0, 11.1; -spice on 7.2, whose Debian package has the SPICE module)
     "-tpmdev", "-spice", "-mem-path",
     # an extra ACPI table for the guest (captured on 7.2, 10.0, 11.1: no section changes)
     "-acpitable"}
)
_IGNORED_FLAGS = frozenset(
    {"-nodefaults", "-S", "-no-user-config", "-nographic", "-daemonize", "-no-reboot",
     "-no-shutdown", "-snapshot", "-only-migratable", "-full-screen", "-mem-prealloc", "-enable-fips"}
)
# Flags QEMU 7.2 still took as machine properties; removed in 9.0 (docs/about/removed-features.rst).
_REMOVED_FLAGS = {"-no-hpet": ("hpet", "off"), "-no-acpi": ("acpi", "off")}
# Options that create devices behind migorder's back: refuse rather than mis-predict.
_UNSUPPORTED = {
    "-nic": "use -netdev plus -device",
    "-net": "use -netdev plus -device",
    "-usb": "use -device qemu-xhci (or another controller) explicitly",
    "-usbdevice": "use -device",
    "-vga": "use -nodefaults and -device for the display",
    "-readconfig": "give the options on the command line",
    "-fda": "use -blockdev plus -device",
    "-fdb": "use -blockdev plus -device",
    "-debugcon": "use -chardev plus -device isa-debugcon,chardev=ID",
}
# Drive shorthands: a -drive with the board's default interface (vl.c drive_add).
_DRIVE_SHORTHANDS = frozenset({"-hda", "-hdb", "-hdc", "-hdd", "-cdrom"})
_MAX_PARALLEL_PORTS = 3
"""include/sysemu/sysemu.h: MAX_PARALLEL_PORTS; vl.c parallel_parse exits beyond it."""


def split_props(text: str) -> list[str]:
    """Split QEMU's ``a=1,b=2`` syntax, where ``,,`` stands for a literal comma.

    >>> split_props("virtio-net-pci,id=n0,romfile=a,,b")
    ['virtio-net-pci', 'id=n0', 'romfile=a,b']
    """
    out: list[str] = []
    cur: list[str] = []
    i = 0
    while True:  # str.find keeps this linear on a 10 MB value
        j = text.find(",", i)
        if j < 0:
            cur.append(text[i:])
            break
        cur.append(text[i:j])
        if text[j + 1 : j + 2] == ",":
            cur.append(",")
            i = j + 2
            continue
        out.append("".join(cur))
        cur = []
        i = j + 1
    out.append("".join(cur))
    return out


def _json_props(text: str, origin: str, implied: str) -> tuple[str, dict[str, str]]:
    """QEMU's JSON form of an option (``-device {"driver":"e1000e","id":"n0"}``, as libvirt
    writes it): values become the strings the key=value form would carry."""
    try:
        data = json_loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(origin, f"{text!r}: expected a JSON object ({exc.msg} at column {exc.colno})") from None
    except LimitError as exc:
        raise ScenarioError(origin, f"{shown(text)}: expected a JSON object with {exc.expected} "
                            f"(column {exc.column})") from None
    if not isinstance(data, dict):
        raise ScenarioError(origin, f"{text!r}: expected a JSON object")
    if implied in data and not isinstance(data[implied], str):
        raise ScenarioError(origin, f"{implied!r}: expected a string, got {json.dumps(data[implied])}")
    props: dict[str, str] = {}
    for key, value in data.items():
        if isinstance(value, bool):
            props[str(key)] = "on" if value else "off"
        elif isinstance(value, str | int | float):
            props[str(key)] = str(value)
        else:
            props[str(key)] = json.dumps(value, sort_keys=True)
    return props.pop(implied, ""), props


def _props(text: str, origin: str, implied: str) -> tuple[str, dict[str, str]]:
    if text.lstrip().startswith("{"):
        return _json_props(text, origin, implied)
    parts = split_props(text)
    head = ""
    props: dict[str, str] = {}
    for i, part in enumerate(parts):
        if "=" in part:
            key, value = part.split("=", 1)
            if not key:
                raise ScenarioError(origin, f"{text!r}: expected KEY=VALUE, got {part!r}")
            props[key] = value
        elif i == 0:
            head = part
        elif part:
            props[part] = "on"
    head = head or props.pop(implied, "")
    return head, props


def _size_ok(text: str) -> bool:
    return qemu_size(text, "m") is not None


_SMP_KEYS = ("maxcpus", "sockets", "dies", "cores", "threads", "clusters", "books", "drawers", "modules")
_SMP_LEVELS = ("clusters", "modules", "books", "drawers")
"""Levels a machine or release may lack (Vm.smp_levels; judged in ordering.apic_ids)."""


def _smp(text: str, origin: str) -> tuple[Topology, tuple[str, ...], bool, dict[str, int]]:
    """``-smp``: the topology, and the parameters given as 0. A 0 is read as omitted here (as
    7.2 does, with a warning); releases that refuse it do so in :mod:`ordering.refusals`.
    Nothing is allocated per vCPU: the machine's ``max_cpus`` is checked there too."""
    head, props = _props(text, origin, "cpus")
    unknown = set(props) - set(_SMP_KEYS)
    if unknown:
        raise ScenarioError(origin, f"-smp {text}: unknown key {sorted(unknown)[0]!r}")
    try:
        given = {"cpus": int(head)} if head else {}
        given.update({k: int(v) for k, v in props.items()})
    except ValueError:
        raise ScenarioError(origin, f"-smp {text}: expected whole numbers") from None
    negative = [k for k, v in given.items() if v < 0]
    if negative:
        raise ScenarioError(
            origin,
            f"-smp {text}: QEMU refuses a negative {negative[0]} (it reads it as a huge unsigned "
            "number: 'Invalid SMP CPUs ...' or 'Invalid CPU topology: product of the hierarchy "
            "must match maxcpus'; captured on 7.2, 10.0 and 11.1)",
        )
    zeros = tuple(k for k, v in given.items() if v == 0)
    vals = {k: v for k, v in given.items() if v > 0}
    cpus = vals.get("cpus", 0)
    sockets = vals.get("sockets", 0)
    dies = vals.get("dies", 1)
    modules = vals.get("modules", 1)
    dm = dies * modules  # x86 modules sit between dies and cores (ordering.model.vm.Topology)
    cores = vals.get("cores", 0)
    threads = vals.get("threads", 1)
    maxcpus = vals.get("maxcpus", 0)
    if not cpus:
        cpus = maxcpus or (sockets or 1) * dm * (cores or 1) * threads
    maxcpus = maxcpus or cpus
    if not sockets and not cores:
        # machine types since 6.2 fill cores first, older ones sockets (hw/core/machine-smp.c
        # prefer_sockets): the APIC ids differ only with dies (captured: -smp 6,dies=2 is
        # sockets=1,cores=3 on q35, sockets=3,cores=1 on pc-q35-5.2); refusals.refuse swaps
        # them back on an older machine type (Vm.smp_cores_filled)
        sockets, cores = 1, maxcpus // (dm * threads) or 1
    elif not sockets:
        sockets = max(1, maxcpus // (dm * cores * threads))
    elif not cores:
        cores = max(1, maxcpus // (sockets * dm * threads))
    if sockets * dm * cores * threads != maxcpus:
        mods = f"{modules}*" if modules > 1 else ""
        raise ScenarioError(
            origin,
            f"-smp {text}: expected sockets*dies*{'modules*' if mods else ''}cores*threads == maxcpus "
            f"({sockets}*{dies}*{mods}{cores}*{threads} != {maxcpus}), as QEMU requires",
        )
    if cpus > maxcpus:
        raise ScenarioError(
            origin,
            f"-smp {text}: QEMU refuses it: 'Invalid CPU topology: maxcpus must be equal to or "
            f"greater than smp' (maxcpus {maxcpus} < cpus {cpus})",
        )
    filled = dm > 1 and not vals.get("sockets") and not vals.get("cores")
    levels = {k: v for k, v in given.items() if k in _SMP_LEVELS}
    return Topology(cpus, maxcpus, sockets, dies, cores, threads, modules), zeros, filled, levels


_CONTINUATION = re.compile(r"(?<!\\)((?:\\\\)*)\\\n")
"""A backslash-newline (not itself escaped): the shell joins the lines, as in a script."""

MAX_ARG_STRLEN = 32 * 4096
"""Linux's limit on one argument, its NUL included (include/uapi/linux/binfmts.h:
``PAGE_SIZE * 32``): execve fails with E2BIG beyond it, so no QEMU starts with such an argument."""


def _check_arg_sizes(args: Sequence[str], where: str) -> None:
    """Refuse an argument no process can be given, before any work on it."""
    for n, arg in enumerate(args, 1):
        if len(arg) >= MAX_ARG_STRLEN // 4:
            size = len(arg.encode("utf-8", "surrogateescape")) + 1
            if size > MAX_ARG_STRLEN:
                raise ScenarioError(
                    f"{where}: argument {n}",
                    f"{size} bytes: longer than Linux lets one argument be (128 KiB, "
                    "MAX_ARG_STRLEN; execve fails with E2BIG), so no QEMU can be started with it",
                )


def parse_command_line(
    argv: Sequence[str] | str,
    *,
    where: str = "command line",
    name: str = "command-line",
    require_nodefaults: bool = False,
) -> Vm:
    """Build a :class:`Vm` from QEMU arguments (with or without the binary's name first).

    With ``require_nodefaults`` (what the CLI and scenario files use), a command line without
    ``-nodefaults`` is refused: QEMU's default devices are not modelled.

    Examples
    --------
    >>> vm = parse_command_line("qemu-system-x86_64 -nodefaults -machine q35 -smp 2 -device e1000e,id=n0")
    >>> vm.machine, vm.topology.cpus, vm.devices[0].driver, vm.devices[0].id
    ('q35', 2, 'e1000e', 'n0')
    """
    try:
        # split by regular expressions as a POSIX shell does (shlex.split is quadratic in a
        # word's length: a 1 MiB word took 15 s); a word no process could take is refused below
        args = shell_words(_CONTINUATION.sub(r"\1", argv)) if isinstance(argv, str) else list(argv)
    except ValueError as exc:
        raise ScenarioError(where, f"expected a shell-quoted command line ({exc})") from None
    _check_arg_sizes(args, where)
    binary = ""
    if args and not args[0].startswith("-"):
        binary = args.pop(0)
    machine = ""
    machine_options: dict[str, str] = {}
    topology = Topology()
    smp_zero: tuple[str, ...] = ()
    smp_cores_filled = False
    smp_levels: dict[str, int] = {}
    memory = ""
    devices: list[DeviceSpec] = []
    objects: list[dict[str, str]] = []
    globals_: list[tuple[str, str, str]] = []
    audiodevs: list[str] = []
    serials: list[str] = []
    parallels: list[str] = []
    drives: list[str] = []
    removed: list[str] = []
    newer: list[str] = []
    newer_values: list[tuple[str, str]] = []
    netdevs: list[str] = []
    chardevs: list[str] = []
    firmware = ""
    cpu = ""
    accels: list[tuple[str, str]] = []
    """(form, origin) of each accelerator choice: -accel, or -machine accel= / -enable-kvm."""
    i = 0
    while i < len(args):
        opt = args[i]
        origin = f"{where}: argument {i + 1 + bool(binary)} ({opt})"
        norm = "-" + opt.lstrip("-") if opt.startswith("--") else opt
        if not norm.startswith("-"):
            raise ScenarioError(origin, f"expected an option starting with '-', got {opt!r}")
        if norm in _IGNORED_FLAGS:
            i += 1
            continue
        if norm in _REMOVED_FLAGS:
            key, value = _REMOVED_FLAGS[norm]
            machine_options[key] = value
            removed.append(norm)
            i += 1
            continue
        if norm == "-enable-kvm":  # -machine accel=kvm (captured: the later of the two wins)
            accels.append(("machine", origin))
            _one_accel_form(accels)
            machine_options["accel"] = "kvm"
            i += 1
            continue
        if norm in _UNSUPPORTED:
            raise ScenarioError(origin, f"{norm} is not modelled by migorder: {_UNSUPPORTED[norm]}")
        if i + 1 >= len(args):
            raise ScenarioError(origin, f"{norm}: expected an argument after it")
        value = args[i + 1]
        i += 2
        if norm in ("-machine", "-M"):
            head, props = _props(value, origin, "type")
            machine = head or machine
            machine_options.update(machine_props(props))
            if "accel" in props:
                accels.append(("machine", origin))
                _one_accel_form(accels)
        elif norm == "-accel":
            head, props = _props(value, origin, "accel")
            if ":" in head:  # only -machine accel= takes a list (captured on 7.2)
                raise ScenarioError(origin, f"-accel {value}: QEMU refuses it: 'invalid accelerator {head}'")
            accels.append(("accel", origin))
            _one_accel_form(accels)
            machine_options.setdefault("accel", head)  # QEMU tries each -accel in turn: the first starts
            for key in props:
                if "_" in key:  # -accel takes dashes only (unlike -machine; captured on 11.1)
                    raise ScenarioError(origin, f"-accel {value}: QEMU refuses it: \"Property '{head}-accel.{key}' not found\"")
            if "kernel-irqchip" in props:  # -accel kvm,kernel-irqchip=split is -machine's option too
                machine_options["kernel-irqchip"] = props["kernel-irqchip"]
        elif norm == "-cpu":  # registers nothing; its x2apic decides large APIC ids
            cpu = value
        elif norm == "-smp":
            topology, smp_zero, smp_cores_filled, smp_levels = _smp(value, origin)
        elif norm == "-m":
            head, props = _props(value, origin, "size")
            if head and not _size_ok(head):
                raise ScenarioError(
                    origin,
                    f"-m {value}: expected a size such as 128 or 4G below 2^64 (QEMU: \"Parameter "
                    "'size' expects a non-negative number below 2^64\")",
                )
            memory = value
        elif norm == "-device":
            devices.append(device_from_text(value, origin))
        elif norm == "-global":
            globals_.append(parse_global(value, origin))
        elif norm == "-audiodev":
            head, props = _props(value, origin, "driver")
            audiodevs.append(props.get("id", f"audiodev{len(audiodevs)}"))
            if (norm, head) in NEWER_VALUES:
                newer_values.append((norm, head))
        elif norm == "-serial":
            serials.append(value.strip())
        elif norm == "-parallel":
            if value.strip() != "none":
                if len(parallels) == _MAX_PARALLEL_PORTS:
                    raise ScenarioError(origin, "QEMU refuses it: 'too many parallel ports' (at most 3)")
                parallels.append(value.strip())
        elif norm == "-drive":
            _, props = _props(value, origin, "file")
            drives.append(props.get("if", ""))
        elif norm in _DRIVE_SHORTHANDS:
            drives.append("")
        elif norm == "-pflash":  # vl.c: drive_add(IF_PFLASH, -1, optarg, PFLASH_OPTS)
            drives.append("pflash")
        elif norm == "-chardev":
            head, _ = _props(value, origin, "backend")
            chardevs.append(head)
        elif norm == "-netdev":
            head, _ = _props(value, origin, "type")
            netdevs.append(head)
        elif norm == "-bios":
            firmware = value
        elif norm == "-object":
            head, props = _props(value, origin, "qom-type")
            for key in ("size", "align"):
                if key in props and qemu_size(props[key]) is None:
                    raise ScenarioError(origin, f"-object {head},{key}={props[key]}: QEMU refuses it: \"Parameter '{key}' expects a size value\" (captured on 7.2 and 11.1)")
            objects.append({"qom-type": head, **props})
            if (norm, head) in NEWER_VALUES:
                newer_values.append((norm, head))
        elif norm in NEWER_OPTIONS:
            newer.append(norm)
        elif norm in _IGNORED_WITH_ARG:
            continue
        else:
            raise ScenarioError(
                origin,
                f"unknown or unmodelled QEMU option {opt!r}; migorder models -machine, -smp, -m, "
                "-device, -object, -accel and accepts options that register no device state",
            )
    if not machine:
        raise ScenarioError(where, "expected -machine TYPE (migorder has no default machine)")
    if require_nodefaults and "-nodefaults" not in args and "--nodefaults" not in args:
        raise ScenarioError(
            where,
            "expected -nodefaults: without it QEMU adds default devices (a NIC, VGA, serial ...) "
            "that migorder does not predict; add -nodefaults (libvirt always does) and give every "
            "device with -device",
        )
    return Vm(
        name=name,
        machine=machine,
        machine_options=machine_options,
        topology=topology,
        devices=tuple(with_globals(d, globals_) for d in devices),
        memory=memory,
        objects=tuple(objects),
        audiodevs=tuple(audiodevs),
        serials=tuple(serials),
        parallels=tuple(parallels),
        drives=tuple(drives),
        netdevs=tuple(netdevs),
        firmware=firmware,
        removed_options=tuple(removed),
        newer_options=tuple(newer),
        newer_values=tuple(newer_values),
        smp_zero=smp_zero,
        smp_cores_filled=smp_cores_filled,
        smp_levels=smp_levels,
        # -global migration.PROP=VALUE sets a migration property (store-global-state ...)
        migration={p: v for d, p, v in globals_ if d == "migration"},
        source=where,
        binary=binary,
        chardevs=tuple(chardevs),
        cpu=cpu,
    )


def _one_accel_form(accels: list[tuple[str, str]]) -> None:
    """``-accel`` and ``-machine accel=`` (or ``-enable-kvm``, which is the latter) cannot be
    mixed (captured on 7.2 and 11.1)."""
    if len({form for form, _ in accels}) > 1:
        raise ScenarioError(accels[-1][1], "QEMU refuses it: 'The -accel and \"-machine accel=\" options are incompatible'")


def machine_props(props: dict[str, str]) -> dict[str, str]:
    """``-machine`` keys as QEMU reads them: an underscore is a dash (``kernel_irqchip`` is
    ``kernel-irqchip``; system/vl.c keyval_dashify, machine_set_property in 7.2). Only
    ``-machine`` does this: ``-device`` and ``-global`` names are taken as written.

    >>> machine_props({"kernel_irqchip": "split", "usb": "off"})
    {'kernel-irqchip': 'split', 'usb': 'off'}
    """
    return {key.replace("_", "-"): value for key, value in props.items()}


def parse_global(text: str, origin: str) -> tuple[str, str, str]:
    """``-global DRIVER.PROP=VALUE`` or ``-global driver=D,property=P,value=V``."""
    if text.lstrip().startswith("{") or text.startswith("driver="):
        _, props = _props(text, origin, "_")
        try:
            return props["driver"], props["property"], props["value"]
        except KeyError as missing:
            raise ScenarioError(origin, f"-global {text}: expected driver, property and value (no {missing})") from None
    left, sep, value = text.partition("=")
    driver, dot, prop = left.rpartition(".")
    if not sep or not dot or not driver or not prop:
        raise ScenarioError(origin, f"-global {text}: expected DRIVER.PROPERTY=VALUE")
    return driver, prop, value


_ABSTRACT = {
    "virtio-device": "virtio-",
    "virtio-pci": "virtio-",
    "virtio-pci-base": "virtio-",
    "pci-device": "",
    "device": "",
}
"""QOM parent classes a -global may name: it reaches every subclass (object_dynamic_cast)."""


def _applies(driver: str, device: str) -> bool:
    if driver == device:
        return True
    prefix = _ABSTRACT.get(driver)
    return prefix is not None and device.startswith(prefix)


def with_globals(spec: DeviceSpec, globals_: list[tuple[str, str, str]]) -> DeviceSpec:
    """A device's properties with ``-global`` defaults for its driver (its own win, as in QEMU)."""
    extra = {p: v for d, p, v in globals_ if _applies(d, spec.driver) and p not in spec.props}
    if not extra:
        return spec
    return DeviceSpec(spec.driver, spec.id, spec.bus, spec.addr, {**extra, **spec.props}, spec.origin)


def device_from_text(text: str, origin: str) -> DeviceSpec:
    """One ``device_add``-style string (``e1000e,id=hp0,bus=rp2``)."""
    head, props = _props(text, origin, "driver")
    if not head:
        raise ScenarioError(origin, f"-device {text}: expected a device type first")
    if head in ("help", "?") or props.get("help") is not None:
        raise ScenarioError(origin, "-device help is QEMU's; see `migorder devices`")
    return DeviceSpec(
        driver=head,
        id=props.pop("id", ""),
        bus=props.pop("bus", ""),
        addr=props.pop("addr", ""),
        props=props,
        origin=origin,
    )
