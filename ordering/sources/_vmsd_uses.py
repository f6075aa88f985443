"""How VMSDs reach the stream: their uses, ``register_savevm_live`` handlers, and verdicts.

Private to :mod:`ordering.sources.qemu_tree`. A use is a ``dc->vmsd`` assignment (or a
VirtioDeviceClass's inner one), class data ``.vmsd``, a CPU's ``.legacy_vmsd``, a
``vmstate_register*`` call or a reference from inside another VMSD; from them
:func:`classify` says whether each priority-bearing VMSD is a section of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ordering.sources._c_text import match_close, resolve, split_top, strip_comments_keep_strings
from ordering.sources._tree_model import Handler, PriorityUser, UnmigratableUse, Use, VmsdDef
from ordering.sources._vmsd_defs import SourceFile, find_field_refs

_ASSIGN_VMSD = re.compile(
    r"(?P<lhs>[A-Za-z_][\w.]*(?:\s*\([^()]*\))?(?:\s*->\s*\w+)*)\s*->\s*vmsd\s*=\s*&\s*"
    r"(?P<sym>[A-Za-z_]\w*)\b"
)
_DESIGNATED_VMSD = re.compile(r"\.\s*(?P<f>legacy_vmsd|vmsd)\s*=\s*&\s*(?P<sym>[A-Za-z_]\w*)\b")
_REGISTER = re.compile(r"\b(?P<fn>vmstate_register(?:_with_alias_id|_any)?)\s*\(")
_SAVEVM_LIVE = re.compile(r"\bregister_savevm_live\s*\(")
UseMap = dict[tuple[str, str], list[Use]]
"""Uses by (file, symbol) of the VMSD used."""


def _type_for_class_init(
    files: list[SourceFile], fn: str, home: SourceFile, defines: Mapping[str, str]
) -> list[str]:
    """QOM type names whose TypeInfo has ``.class_init = fn`` (home file first)."""
    found: list[str] = []
    for f in [home, *(x for x in files if x is not home and fn in x.class_inits())]:
        for start in f.class_inits().get(fn, []):
            # the enclosing initializer: scan back to the unmatched '{'
            depth = 0
            i = start
            while i > 0:
                i -= 1
                c = f.prep[i]
                if c == "}":
                    depth += 1
                elif c == "{":
                    if depth == 0:
                        break
                    depth -= 1
            end = match_close(f.prep, i)
            if end < 0:
                continue
            for a, b in split_top(f.prep, i + 1, end):
                im = re.match(r"\s*\.\s*name\s*=", f.prep[a:b])
                if im:
                    expr = strip_comments_keep_strings(
                        f.text[a + im.end():b], f.prep[a + im.end():b]
                    ).strip()
                    found.append(resolve(expr, defines) or expr)
        if found:
            break
    return found


def _is_virtio_class(f: SourceFile, lhs: str, fn_start: int, fn_end: int,
                     whole_file: dict[str, bool]) -> bool:
    if "VIRTIO_DEVICE_CLASS" in lhs:
        return True
    var = lhs.strip()
    if not re.fullmatch(r"[A-Za-z_]\w*", var):
        return False
    decl = re.compile(r"\bVirtioDeviceClass\s*\*\s*" + re.escape(var) + r"\b")
    if decl.search(f.prep, fn_start, fn_end):
        return True
    if var not in whole_file:
        whole_file[var] = bool(decl.search(f.prep))
    return whole_file[var]


class _UseIndex:
    """VMSDs by symbol, and the uses found so far keyed by the VMSD they resolve to."""

    def __init__(self, vmsds: list[VmsdDef]) -> None:
        self.by_symbol: dict[str, list[VmsdDef]] = {}
        for d in vmsds:
            self.by_symbol.setdefault(d.symbol, []).append(d)
        self.uses: UseMap = {}

    def lookup(self, sym: str, f: SourceFile) -> VmsdDef | None:
        """The VMSD ``sym`` names in ``f``: its own, else a non-static one, else the only one."""
        cands = self.by_symbol.get(sym, [])
        for d in cands:
            if d.file == f.rel:
                return d
        for d in cands:
            if not d.static:
                return d
        return cands[0] if len(cands) == 1 else None

    def add(self, sym: str, f: SourceFile, use: Use) -> None:
        """Record ``use`` of ``sym`` (made in ``f``) when the symbol resolves to a VMSD."""
        d = self.lookup(sym, f)
        if d is not None:
            self.uses.setdefault((d.file, d.symbol), []).append(use)


def find_uses(
    files: list[SourceFile], vmsds: list[VmsdDef], defines: Mapping[str, str]
) -> UseMap:
    """Uses of every VMSD with a priority, ``early_setup`` or ``unmigratable``.

    Nested uses (a VMSD body, or its separate fields array, naming one) come first, then the
    uses in each file in turn. ``files`` must have been through
    :func:`~ordering.sources._vmsd_defs.find_vmsds` (its VMSD spans are recorded).
    """
    index = _UseIndex(vmsds)
    field_refs = find_field_refs(files)
    interesting = {d.symbol for d in vmsds if d.priority or d.early_setup or d.unmigratable}
    by_rel = {f.rel: f for f in files}
    for d in vmsds:
        refs = set(d.refs)
        for r in list(refs):
            refs |= field_refs.get((d.file, r), set())
        for r in sorted(refs & interesting):
            home = by_rel[d.file]
            index.add(r, home, Use("field", d.file, d.line, f"inside VMSD '{d.name}'",
                                   outer=d.symbol))
    for f in files:
        if any(s in f.prep for s in interesting):
            _file_uses(files, f, interesting, defines, index)
    return index.uses


def _file_uses(
    files: list[SourceFile],
    f: SourceFile,
    interesting: set[str],
    defines: Mapping[str, str],
    index: _UseIndex,
) -> None:
    """The ``->vmsd``, ``.vmsd``/``.legacy_vmsd`` and ``vmstate_register*`` uses in ``f``."""
    virtio_vars: dict[str, bool] = {}
    for m in _ASSIGN_VMSD.finditer(f.prep):
        sym = m.group("sym")
        if sym not in interesting:
            continue
        fn, fs, fe = f.enclosing_function(m.start())
        lhs = m.group("lhs")
        devs = _type_for_class_init(files, fn, f, defines) if fn else []
        dev = devs[0] if devs else ""
        line = f.line(m.start())
        if _is_virtio_class(f, lhs, fs, fe, virtio_vars):
            outer = ""
            for om in _ASSIGN_VMSD.finditer(f.prep, fs, fe):
                if not _is_virtio_class(f, om.group("lhs"), fs, fe, virtio_vars):
                    outer = om.group("sym")
            index.add(sym, f, Use("vdc", f.rel, line, f"{lhs.strip()}->vmsd in {fn}",
                                  device=dev, outer=outer))
        else:
            index.add(sym, f, Use("dc", f.rel, line, f"{lhs.strip()}->vmsd in {fn}",
                                  device=dev))
    for m in _DESIGNATED_VMSD.finditer(f.prep):
        sym = m.group("sym")
        if sym not in interesting or f.in_vmsd(m.start()):
            continue
        kind = "legacy_vmsd" if m.group("f") == "legacy_vmsd" else "class_data"
        index.add(sym, f, Use(kind, f.rel, f.line(m.start()), f".{m.group('f')}"))
    for m in _REGISTER.finditer(f.prep):
        close = match_close(f.prep, m.end() - 1)
        if close < 0:
            continue
        for a, b in split_top(f.prep, m.end(), close):
            arg = f.prep[a:b].strip().lstrip("&").strip()
            if arg in interesting:
                index.add(arg, f, Use("register", f.rel, f.line(m.start()),
                                      m.group("fn")))


def find_handlers(files: list[SourceFile], defines: Mapping[str, str]) -> list[Handler]:
    """Every ``register_savevm_live`` call (not its declaration), in file order."""
    handlers: list[Handler] = []
    for f in files:
        if "register_savevm_live" not in f.prep:
            continue
        for m in _SAVEVM_LIVE.finditer(f.prep):
            j = m.start()
            while j > 0 and f.prep[j - 1].isspace():
                j -= 1
            word = re.search(r"(\w+)$", f.prep[max(0, j - 64):j])
            if word and word.group(1) not in ("else", "return", "do"):
                continue  # a declaration or definition, not a call
            close = match_close(f.prep, m.end() - 1)
            if close < 0:
                continue
            args = list(split_top(f.prep, m.end(), close))
            if not args:
                continue
            a, b = args[0]
            expr = strip_comments_keep_strings(f.text[a:b], f.prep[a:b]).strip()
            resolved = resolve(expr, defines)
            ops = ""
            if len(args) >= 4:
                oa, ob = args[3]
                ops = f.prep[oa:ob].strip().lstrip("&").strip()
            handlers.append(Handler(
                idstr=resolved if resolved is not None else expr,
                idstr_expr=expr,
                literal=resolved is not None,
                ops=ops,
                file=f.rel,
                line=f.line(m.start()),
            ))
    return handlers


def classify(
    vmsds: list[VmsdDef], uses: UseMap
) -> tuple[list[PriorityUser], list[UnmigratableUse]]:
    """How each priority-bearing VMSD is registered; the ``-device`` types of unmigratables."""
    name_of = {(d.file, d.symbol): d.name for d in vmsds}
    sym_file = {d.symbol: d.file for d in vmsds}

    def outer_name(use: Use) -> str:
        if not use.outer:
            return ""
        return name_of.get((use.file, use.outer)) or name_of.get(
            (sym_file.get(use.outer, ""), use.outer), use.outer
        )

    users: list[PriorityUser] = []
    unmig: list[UnmigratableUse] = []
    for d in vmsds:
        us = tuple(uses.get((d.file, d.symbol), []))
        if d.unmigratable:
            types = tuple(dict.fromkeys(u.device for u in us if u.kind == "dc" and u.device))
            unmig.append(UnmigratableUse(d, types))
        if not (d.priority or d.early_setup):
            continue
        section = [u for u in us if u.kind in ("dc", "class_data", "legacy_vmsd", "register")]
        nested = [u for u in us if u.kind in ("vdc", "field")]
        if section:
            u = section[0]
            registration = "early_setup" if d.early_setup else "section"
            how = _how_section(u)
            inside = ""
        elif nested:
            u = nested[0]
            registration = "nested"
            inside = outer_name(u)
            if u.kind == "vdc":
                how = (f"vdc->vmsd of {u.device or '?'} (VirtioDeviceClass, {u.file}:{u.line}), "
                       f"saved by VMSTATE_VIRTIO_DEVICE inside '{inside}'")
            else:
                how = f"referenced inside VMSD '{inside}' ({u.file}:{u.line})"
        else:
            registration = "nested"
            inside = ""
            how = "never registered: no dc->vmsd, vmstate_register or use inside another VMSD"
        users.append(PriorityUser(d, registration, how, inside, us))
    return users, unmig


def _how_section(u: Use) -> str:
    """How a use that makes a section of its own registers it."""
    if u.kind == "dc":
        owner = u.device or f"the device whose {u.detail.split(' in ')[-1]} sets it"
        return f"dc->vmsd of {owner} ({u.file}:{u.line}), registered by device_set_realized"
    if u.kind == "register":
        return f"{u.detail}() at {u.file}:{u.line}"
    if u.kind == "legacy_vmsd":
        return f"sysemu_ops .legacy_vmsd ({u.file}:{u.line}), registered by vmstate_register"
    return f"class data .vmsd ({u.file}:{u.line}), assigned to dc->vmsd in class_init"
