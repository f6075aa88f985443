"""What QEMU refuses in an x86 VM whose APIC ids reach 255, and KVM without an in-kernel irqchip.

An APIC id follows the ``-smp`` topology (each level packed into a power of two:
:meth:`~ordering.model.vm.Topology.apic_id`), so fewer than 256 vCPUs can reach id 255
(``-smp 195,sockets=3,cores=65`` ends at id 320). What each release does (its ``[features]``,
captured from the real binaries and confirmed in QEMU's source):

- ``x2apic_needs_kernel_irqchip`` (7.2): ids of 255 or more among ``maxcpus`` need KVM with an
  in-kernel irqchip (``kernel-irqchip=on`` or ``split``) and KVM's X2APIC API; anything else
  exits with "current -smp configuration requires kernel irqchip and X2APIC API support.".
- ``x2apic_needs_cpu_feature`` (10.0, 11.1): each vCPU *made* with an id of 255 or more needs
  x2APIC in its CPU model ("APIC ID 255 requires x2APIC feature in CPU"); at start that is
  the vCPUs of ``-smp``, later each hot-plugged one. TCG's default ``qemu64`` lacks it; under
  KVM every model but ``base`` has it.
- ``kvm_userspace_apic_refused`` (10.0, 11.1): ``-accel kvm`` with ``kernel-irqchip=off`` is
  refused whatever the vCPUs: "KVM does not support userspace APIC".

KVM's X2APIC API (``KVM_CAP_X2APIC_API``, Linux 4.7) is assumed present, as on any host kernel
QEMU 7.2 or later supports; the host CPU is assumed to have x2APIC (every x86 server CPU since
2009). :func:`ordering.report.order_notes` says so for a KVM VM that relies on it.

Nothing here is per vCPU: the first vCPU with an id of 255 or more is found by bisection
(ids grow with the vCPU index), so ``-smp 4096`` costs a dozen steps.
"""

from __future__ import annotations

from ordering.errors import ScenarioError
from ordering.model.machine import MachineLayout, is_on
from ordering.model.release import Release
from ordering.model.vm import DeviceSpec, Topology, Vm

XAPIC_IDS = 255
"""xAPIC ids are 0..254 (255 is the broadcast id): a higher id needs x2APIC."""

KVM_MAX_VCPUS = 1024
"""The vCPUs a default Linux x86 host's KVM takes (``KVM_CAP_MAX_VCPUS``; 4096 with
``CONFIG_MAXSMP``). Captured on a Linux 6.18 host with 11.1: ``-smp 4096 -accel kvm`` is
refused, "Number of SMP cpus requested (4096) exceeds the maximum cpus supported by KVM (1024)"
(accel/kvm/kvm-all.c kvm_init). A host's limit, not a release's: a VM being migrated runs on
its source host, so migorder judges it and says, in :func:`ordering.report.order_notes`, that a
destination host with the default refuses it."""

_IRQCHIP_IN_KERNEL = frozenset({"on", "split"})
_IRQCHIP_VALUES = frozenset({"on", "off", "split"})
"""KVM's ``kernel-irqchip`` is OnOffSplit: anything else is refused under KVM (captured on 7.2
and 11.1: "Parameter 'kernel-irqchip' does not accept value 'yes'"); TCG ignores it."""


def accelerator(vm: Vm) -> str:
    """The accelerator QEMU uses: the first of ``-accel``/``-machine accel=`` (``kvm:tcg``
    is taken as KVM, as on a host with ``/dev/kvm``), else TCG (the default of every
    ``qemu-system-x86_64`` migorder models: captured, no ``-accel`` behaves as ``-accel tcg``).

    >>> from ordering.sources.cmdline import parse_command_line
    >>> accelerator(parse_command_line("-machine q35")), accelerator(parse_command_line("-machine q35 -enable-kvm"))
    ('tcg', 'kvm')
    """
    return vm.machine_options.get("accel", "").split(":")[0] or "tcg"


def kernel_irqchip(vm: Vm) -> bool:
    """Under KVM, whether the local APICs are in the kernel (``kernel-irqchip`` on, the
    default, or split)."""
    return vm.machine_options.get("kernel-irqchip", "on") in _IRQCHIP_IN_KERNEL


def apic_id_limit(topology: Topology) -> int:
    """One above the highest APIC id among ``maxcpus`` (QEMU's ``apic_id_limit``).

    >>> apic_id_limit(Topology(cpus=195, maxcpus=195, sockets=3, cores=65))
    321
    >>> apic_id_limit(Topology(cpus=200, maxcpus=200, sockets=2, cores=100))
    228
    """
    return topology.apic_id(topology.maxcpus - 1) + 1


def first_x2apic_index(topology: Topology, below: int) -> int | None:
    """The first vCPU index under ``below`` whose APIC id is 255 or more, if any.

    >>> first_x2apic_index(Topology(cpus=256, maxcpus=256, sockets=256), 256)
    255
    >>> first_x2apic_index(Topology(cpus=195, maxcpus=195, sockets=3, cores=65), 195)
    130
    >>> first_x2apic_index(Topology(cpus=8, maxcpus=256, sockets=256), 8) is None
    True
    """
    lo, hi = 0, min(below, topology.maxcpus)
    if hi == 0 or topology.apic_id(hi - 1) < XAPIC_IDS:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if topology.apic_id(mid) < XAPIC_IDS:
            lo = mid + 1
        else:
            hi = mid
    return lo


def cpu_has_x2apic(release: Release, vm: Vm, accel: str) -> bool | None:
    """Whether the vCPUs of ``-cpu`` have x2APIC on ``release`` under ``accel``; ``None``
    when migorder does not know the model. ``-x2apic`` or ``x2apic=off`` wins over
    ``+x2apic`` (QEMU applies the minus features last).

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> rel = load_knowledge().release("11.1")
    >>> [cpu_has_x2apic(rel, parse_command_line(f"-machine q35 {c}"), "tcg")
    ...  for c in ("", "-cpu max", "-cpu qemu64,+x2apic", "-cpu max,-x2apic", "-cpu Skylake-Server")]
    [False, True, True, False, True]
    """
    model, *flags = vm.cpu.split(",") if vm.cpu else ("qemu64",)
    wanted: bool | None = None
    for flag in flags:
        if flag in ("-x2apic", "x2apic=off", "x2apic=false"):
            return False
        if flag in ("+x2apic", "x2apic=on", "x2apic=true", "x2apic"):
            wanted = True
    if wanted:
        return True
    models = release.cpu_models
    if accel == "kvm":
        return model != "base" and (models is None or model not in models.kvm_without)
    if models is not None:
        return model in models.tcg_x2apic if model in models.names else None
    # a release whose models were not captured (10.1, 10.2): as 10.0 and 11.1 have them
    return {"max": True, "qemu64": False}.get(model)


def check_apic_ids(vm: Vm, release: Release) -> None:
    """What ``release`` refuses at start for the APIC ids of ``vm`` (x86 only), in QEMU's
    words; nothing per vCPU.

    Raises
    ------
    ScenarioError
        The release refuses the VM.

    Examples
    --------
    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> k = load_knowledge()
    >>> check_apic_ids(parse_command_line("-machine q35 -smp 256 -accel kvm"), k.release("7.2"))
    >>> check_apic_ids(parse_command_line("-machine q35 -smp 256"), k.release("7.2"))
    Traceback (most recent call last):
    ...
    ordering.errors.ScenarioError: command line: -smp 256: QEMU 7.2 refuses it: 'current -smp configuration requires kernel irqchip and X2APIC API support.' (its highest APIC id is 255; ids from 255 up need -accel kvm with kernel-irqchip=on or split)
    """
    f = release.features
    accel = accelerator(vm)
    where = vm.source or vm.name
    model = vm.cpu.split(",")[0] if vm.cpu else ""
    models = release.cpu_models
    if model and models is not None and model not in models.names | {"host"}:
        raise ScenarioError(where, f"-cpu {vm.cpu}: QEMU {release.name} refuses it: 'unable to find CPU model '{model}''")
    t = vm.topology
    irqchip = vm.machine_options.get("kernel-irqchip", "on")
    if accel == "kvm" and irqchip not in _IRQCHIP_VALUES:
        raise ScenarioError(
            where,
            f"-machine kernel-irqchip={irqchip}: QEMU {release.name} refuses it: \"can't apply global "
            f"kvm-accel.kernel-irqchip={irqchip}: Parameter 'kernel-irqchip' does not accept value '{irqchip}'\"",
        )
    if accel == "kvm" and f.kvm_userspace_apic_refused and not kernel_irqchip(vm):
        raise ScenarioError(
            where,
            f"-accel kvm with kernel-irqchip={vm.machine_options['kernel-irqchip']}: QEMU {release.name} "
            "refuses it: 'KVM does not support userspace APIC' (give kernel-irqchip=on or split)",
        )
    limit = apic_id_limit(t)
    if limit > XAPIC_IDS and f.x2apic_needs_kernel_irqchip:
        _check_limit(vm, release, accel, limit)
    if model == "host" and accel != "kvm":
        raise ScenarioError(where, f"-cpu {vm.cpu}: QEMU {release.name} refuses it: 'CPU model 'host' requires KVM or HVF'")
    if limit > XAPIC_IDS and f.x2apic_needs_cpu_feature:
        _check_limit(vm, release, accel, limit)


def _check_limit(vm: Vm, release: Release, accel: str, limit: int) -> None:
    f = release.features
    t = vm.topology
    where = vm.source or vm.name
    smp = f"-smp {t.cpus}" + (f",maxcpus={t.maxcpus}" if t.maxcpus != t.cpus else "")
    levels = (("sockets", t.sockets), ("dies", t.dies), ("cores", t.cores), ("threads", t.threads))
    if sum(1 for _, n in levels if n > 1) > 1:  # the topology makes the ids: show it
        smp += "".join(f",{name}={n}" for name, n in levels if n > 1)
    if f.x2apic_needs_kernel_irqchip and not (accel == "kvm" and kernel_irqchip(vm)):
        raise ScenarioError(
            where,
            f"{smp}: QEMU {release.name} refuses it: 'current -smp configuration requires kernel irqchip "
            f"and X2APIC API support.' (its highest APIC id is {limit - 1}; ids from 255 up need -accel kvm "
            "with kernel-irqchip=on or split)",
        )
    if f.x2apic_needs_cpu_feature:
        index = first_x2apic_index(t, t.cpus)
        if index is not None:
            _check_cpu_feature(vm, release, accel, t.apic_id(index), f"{smp}: vCPU {index}")


X86_IOMMUS = frozenset({"intel-iommu", "amd-iommu"})
"""Both share x86-iommu's realize (hw/i386/x86-iommu.c), which checks interrupt remapping."""


def check_interrupt_remapping(vm: Vm, release: Release, spec: DeviceSpec) -> None:
    """One x86 vIOMMU's interrupt remapping against the irqchip (captured on 7.2, 10.0, 11.1):
    ``intremap`` (default auto: on unless KVM keeps the whole irqchip in the kernel) cannot
    work with ``kernel-irqchip=on``; ``eim=on`` needs interrupt remapping, and on 7.2 KVM with
    ``kernel-irqchip=split`` too; under KVM, ``amd-iommu`` with APIC ids from 255 up
    (:func:`apic_id_limit`) needs ``xtsup=on`` on releases with ``amd_iommu_x2apic_needs_xtsup``.
    Called for the vIOMMU only (:func:`ordering.refusals.check_device`: once per device type,
    and QEMU takes one x86 vIOMMU), so it costs nothing per device.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> vm = parse_command_line("-machine q35 -accel kvm -device intel-iommu,intremap=on")
    >>> check_interrupt_remapping(vm, load_knowledge().release("11.1"), vm.devices[0])
    Traceback (most recent call last):
    ...
    ordering.errors.ScenarioError: command line: argument 5 (-device): -device intel-iommu,intremap=on: QEMU 11.1 refuses it: 'Interrupt Remapping cannot work with kernel-irqchip=on, please use 'split|off'.'
    """
    if spec.driver not in X86_IOMMUS:
        return
    if spec.driver == "amd-iommu":  # beside an intel-iommu (a VM with amd-iommu is rare: only it scans)
        both = [d for d in vm.devices if d.driver in X86_IOMMUS]
        if len({d.driver for d in both}) > 1:
            raise ScenarioError(
                both[1].origin, f"-device {both[1].driver}: QEMU refuses it: 'QEMU does not support multiple vIOMMUs for x86 yet.'"
            )
    f = release.features
    accel = accelerator(vm)
    irqchip = vm.machine_options.get("kernel-irqchip", "on")
    all_kernel = accel == "kvm" and kernel_irqchip(vm) and irqchip != "split"
    split = accel == "kvm" and irqchip == "split"
    given = spec.props.get("intremap", "auto")
    intremap = given == "on" or (given == "auto" and not all_kernel)
    eim = spec.props.get("eim", "auto") if spec.driver == "intel-iommu" else "off"
    refusal = ""
    if given == "on" and all_kernel and f.intremap_needs_userspace_ioapic:
        refusal = "Interrupt Remapping cannot work with kernel-irqchip=on, please use 'split|off'."
    elif eim == "on" and not intremap:
        refusal = "eim=on cannot be selected without intremap=on"
    elif eim == "on" and not split and f.eim_needs_kvm_split:
        refusal = "eim=on requires accel=kvm,kernel-irqchip=split"
    elif (
        spec.driver == "amd-iommu"
        and accel == "kvm"
        and f.amd_iommu_x2apic_needs_xtsup
        and not is_on(spec.props.get("xtsup", "off"))
        and apic_id_limit(vm.topology) > XAPIC_IDS
    ):
        refusal = "AMD IOMMU with x2APIC configuration requires xtsup=on"
    if refusal:
        said = ",".join(f"{k}={spec.props[k]}" for k in ("intremap", "eim") if k in spec.props)
        raise ScenarioError(
            spec.origin, f"-device {spec.driver}{',' + said if said else ''}: QEMU {release.name} refuses it: '{refusal}'"
        )


_NEWER_SMP_LEVELS = frozenset({"books", "drawers", "modules"})


def check_smp_levels(vm: Vm, layout: MachineLayout, release: Release) -> None:
    """``-smp`` levels beyond sockets, cores and threads: one the release does not know is
    refused whatever its value; one the machine's CPU topology lacks, above 1 (captured on 7.2,
    10.0 and 11.1, q35 and virt). ``dies`` is checked here too: virt has none.

    >>> from ordering.sources.models import load_knowledge
    >>> from ordering.sources.cmdline import parse_command_line
    >>> rel = load_knowledge().release("11.1")
    >>> check_smp_levels(parse_command_line("-machine q35 -smp 8,clusters=2"), rel.machine("q35")[0], rel)
    Traceback (most recent call last):
    ...
    ordering.errors.ScenarioError: command line: -smp ...,clusters=2: QEMU 11.1 refuses it: 'clusters > 1 not supported by this machine's CPU topology'
    """
    given = dict(vm.smp_levels)
    if vm.topology.dies > 1:
        given["dies"] = vm.topology.dies
    newer = release.features.smp_books_drawers_modules
    for level, value in given.items():
        if level in _NEWER_SMP_LEVELS and not newer:
            raise ScenarioError(
                vm.source or vm.name, f"-smp ...,{level}={value}: QEMU {release.name} refuses it: \"Parameter 'smp.{level}' is unexpected\""
            )
        if value > 1 and layout.smp_levels and level not in layout.smp_levels:
            raise ScenarioError(
                vm.source or vm.name,
                f"-smp ...,{level}={value}: QEMU {release.name} refuses it: '{level}{' > 1' if newer else ''} not "
                "supported by this machine's CPU topology'",
            )


def check_hotplug_cpu(vm: Vm, release: Release, index: int) -> None:
    """A hot-plugged vCPU with an APIC id of 255 or more needs x2APIC in ``-cpu``'s model
    (releases with ``x2apic_needs_cpu_feature``; on 7.2 :func:`check_apic_ids` already
    refused the VM)."""
    apic_id = vm.topology.apic_id(index)
    if apic_id >= XAPIC_IDS and release.features.x2apic_needs_cpu_feature:
        _check_cpu_feature(vm, release, accelerator(vm), apic_id, f"hot-plug of vCPU {index}")


def _check_cpu_feature(vm: Vm, release: Release, accel: str, apic_id: int, what: str) -> None:
    has = cpu_has_x2apic(release, vm, accel)
    model = vm.cpu or "qemu64 (the default)"
    where = vm.source or vm.name
    if has is None:
        raise ScenarioError(
            where,
            f"{what} has APIC id {apic_id}: QEMU {release.name} needs x2APIC in -cpu {model} for it, and "
            f"migorder does not know whether that model has it under {accel.upper()} (QEMU refuses a model "
            "it does not know: 'unable to find CPU model'); give -cpu max or add +x2apic",
        )
    if has:
        return
    if release.features.x2apic_refusal_aborts:
        how = "aborts"
    else:
        how = "refuses the device_add" if what.startswith("hot-plug") else "refuses it"
    raise ScenarioError(
        where,
        f"{what} has APIC id {apic_id}: QEMU {release.name} {how}: 'APIC ID {apic_id} requires x2APIC feature "
        f"in CPU' ('Try x2apic=on in -cpu.'; -cpu {model} has no x2APIC under {accel.upper()})",
    )
