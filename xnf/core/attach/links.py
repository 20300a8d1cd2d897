"""Tracing, cgroup, socket and iterator programs attached through BPF links.

One function per hook, as libbpf's ``bpf_program__attach_*``; each returns a
:class:`LinkAttachment`: the link (pinnable, found again with ``load_pinned``), closed
or detached to end it. Probes and tracepoints are perf events that the link holds
(``BPF_LINK_CREATE`` with ``BPF_PERF_EVENT``), so the perf fd is closed once linked.

Kernel facts these rely on: the kprobe and uprobe PMUs (``/sys/bus/event_source/
devices/{kprobe,uprobe}/type``, absent without ``CONFIG_KPROBES`` / ``CONFIG_UPROBE_EVENTS``),
tracepoint ids under tracefs, and ``BPF_TRACE_KPROBE_MULTI`` (needs ``CONFIG_FPROBE``).
"""
import ctypes
import errno
import fnmatch
import os
import platform
import re
import weakref

import attrs

from xnf.core import uapi
from xnf.core.attach.base import Attachment, check_type, program_fd
from xnf.core.errors import AttachError, BPFError, XnfError
from xnf.core.kernel import info, syscall
from xnf.core.kernel.fd import FD
from xnf.core.kernel.perfbuf import perf_event_open

PMU_DIR = "/sys/bus/event_source/devices"
TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
#: the syscall wrapper ksyscall probes, per machine (libbpf's arch_specific_syscall_pfx)
SYSCALL_PREFIX = {"x86_64": "__x64_sys_", "aarch64": "__arm64_sys_", "s390x": "__s390x_sys_",
                  "armv7l": "sys_", "ppc64le": "sys_", "riscv64": "__riscv_sys_"}
_PERF_UPROBE_REF_CTR_OFFSET_SHIFT = 32
ENOTSUPP = 524  # the kernel's own 'operation not supported' (perf links cannot be detached)


class PerfEventAttrV1(ctypes.Structure):
    """``struct perf_event_attr`` up to ``config2`` (PERF_ATTR_SIZE_VER1): probes put the
    function name or path in ``config1`` and the offset in ``config2``."""

    _fields_ = [("type", ctypes.c_uint32), ("size", ctypes.c_uint32), ("config", ctypes.c_uint64),
                ("sample_period", ctypes.c_uint64), ("sample_type", ctypes.c_uint64),
                ("read_format", ctypes.c_uint64), ("flags", ctypes.c_uint64),
                ("wakeup_events", ctypes.c_uint32), ("bp_type", ctypes.c_uint32),
                ("config1", ctypes.c_uint64), ("config2", ctypes.c_uint64)]


class _KprobeMultiAttr(ctypes.Structure):
    """``bpf_attr.link_create`` with its ``kprobe_multi`` member."""

    _fields_ = [("prog_fd", ctypes.c_uint32), ("target_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("multi_flags", ctypes.c_uint32), ("cnt", ctypes.c_uint32),
                ("syms", ctypes.c_uint64), ("addrs", ctypes.c_uint64), ("cookies", ctypes.c_uint64)]


class _UprobeMultiAttr(ctypes.Structure):
    """``bpf_attr.link_create`` with its ``uprobe_multi`` member."""

    _fields_ = [("prog_fd", ctypes.c_uint32), ("target_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("path", ctypes.c_uint64), ("offsets", ctypes.c_uint64), ("ref_ctr_offsets", ctypes.c_uint64),
                ("cookies", ctypes.c_uint64), ("cnt", ctypes.c_uint32), ("multi_flags", ctypes.c_uint32),
                ("pid", ctypes.c_uint32)]


@attrs.define(eq=False, kw_only=True)
class LinkAttachment(Attachment):
    """A program attached through a link to a hook that is not an interface's.

    ``target`` says where (``kprobe:do_unlinkat``, ``tracepoint:syscalls/sys_enter_getpid``,
    ``cgroup:/sys/fs/cgroup/x``, ...). Closing the last reference (ours and any pin) ends it.
    """

    kind = "link"

    ifname: str = ""
    ifindex: int = 0
    target: str = ""

    @property
    def attached(self):
        if self.link is None or self.link.closed:
            return False
        try:
            info.link_info(self.link)
        except BPFError:
            return False
        return True

    def _fields(self):
        return {"target": self.target}

    def detach(self):
        """End the link (detach it for every holder where the kernel can, else drop ours and the pin)."""
        if self.closed:
            return False
        try:
            syscall.link_detach(self.link)
        except BPFError as e:
            if e.errno not in (errno.EOPNOTSUPP, ENOTSUPP, errno.ENOLINK, errno.EINVAL):
                raise AttachError(f"detaching {self}: {e}") from None
        if self.pin_path:
            self.unpin()
        self.close()
        return True

    def read(self):
        """An iterator link's output: a new ``BPF_ITER_CREATE`` fd read to its end."""
        fd = syscall.iter_create(self.link)
        try:
            chunks = []
            while True:
                try:
                    chunk = os.read(int(fd), 65536)
                except InterruptedError:
                    continue
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        finally:
            fd.close()

    def __str__(self):
        return f"prog {self.prog_id} on {self.target}"


def _checked(program, types, hook):
    fd = program_fd(program)
    try:
        pinfo = check_type(fd, types, hook)
    except BaseException:
        fd.close()
        raise
    return fd, pinfo


def _make(program, types, hook, target, create):
    """Check the program, make the link with ``create(prog_fd)``, wrap it; nothing left on failure."""
    fd, pinfo = _checked(program, types, hook)
    try:
        link = create(fd)
    except BPFError as e:
        fd.close()
        raise AttachError(f"attaching {pinfo.name!r} to {target}: {e}", _hint(e)) from None
    except BaseException:
        fd.close()
        raise
    return LinkAttachment(prog_id=pinfo.id, program=fd, link=link, target=target)


def _hint(e):
    if e.errno == errno.EPERM:
        return "run as root (CAP_BPF and CAP_PERFMON, CAP_NET_ADMIN for networking hooks)"
    if e.errno == errno.EINVAL:
        return "check the program's section: its expected attach type must match the hook"
    return None


def _perf_link(fd, event, cookie=0):
    """``BPF_LINK_CREATE`` on a perf event; ``cookie`` is what ``bpf_get_attach_cookie()`` returns."""
    try:
        if not cookie:
            return syscall.link_create(fd, event, uapi.BPF_PERF_EVENT)
        attr = syscall.LinkCreateAttr(prog_fd=int(fd), target_fd=int(event), attach_type=uapi.BPF_PERF_EVENT)
        attr.extra0, attr.extra1 = cookie & 0xFFFFFFFF, cookie >> 32  # perf_event.bpf_cookie, a u64
        return FD(syscall.bpf(uapi.BPF_LINK_CREATE, attr))
    finally:
        event.close()  # the link holds the perf event now


# --- probes ---------------------------------------------------------------------------------

def _pmu(name):
    path = os.path.join(PMU_DIR, name, "type")
    try:
        with open(path) as f:
            return int(f.read())
    except OSError:
        config = {"kprobe": "CONFIG_KPROBES", "uprobe": "CONFIG_UPROBE_EVENTS"}[name]
        raise AttachError(f"this kernel has no {name} PMU ({path} is missing: built without {config})",
                          f"use a tracepoint or raw_tp instead, or a kernel with {config}=y") from None


def _retprobe_bit(name):
    """The ``config`` bit that makes a probe a return probe (``format/retprobe``: ``config:0``)."""
    with open(os.path.join(PMU_DIR, name, "format", "retprobe")) as f:
        return 1 << int(f.read().strip().split(":")[1])


def _probe_event(pmu, where, offset, retprobe, ref_ctr_offset=0, pid=-1):
    attr = PerfEventAttrV1(type=_pmu(pmu), size=ctypes.sizeof(PerfEventAttrV1))
    name = ctypes.create_string_buffer(os.fsencode(where))
    attr.config1 = ctypes.addressof(name)
    attr.config2 = offset
    if retprobe:
        attr.config |= _retprobe_bit(pmu)
    attr.config |= ref_ctr_offset << _PERF_UPROBE_REF_CTR_OFFSET_SHIFT
    return perf_event_open(attr, pid, 0 if pid == -1 else -1)


def attach_kprobe(program, symbol, offset=0, retprobe=False, cookie=0):
    """``SEC("kprobe/SYM")`` / ``SEC("kretprobe/SYM")`` at ``symbol`` (+ ``offset``); ``cookie``
    is the BPF cookie the program reads with ``bpf_get_attach_cookie()``."""
    kind = "kretprobe" if retprobe else "kprobe"
    return _make(program, {uapi.BPF_PROG_TYPE_KPROBE}, kind, f"{kind}:{symbol}",
                 lambda fd: _perf_link(fd, _probe_event("kprobe", symbol, offset, retprobe), cookie))


def attach_ksyscall(program, syscall_name, retprobe=False, cookie=0):
    """``SEC("ksyscall/NAME")``: a kprobe on the architecture's syscall wrapper (``__x64_sys_NAME``)."""
    prefix = SYSCALL_PREFIX.get(platform.machine(), "sys_")
    return attach_kprobe(program, prefix + syscall_name, retprobe=retprobe, cookie=cookie)


def attach_kprobe_multi(program, symbols, retprobe=False):
    """``SEC("kprobe.multi/PATTERN")``: one link on many functions; ``symbols`` is a list of
    names or one glob matched against ``available_filter_functions`` (as libbpf does)."""
    if isinstance(symbols, str):
        pattern = symbols
        symbols = sorted(s for s in _filter_functions() if fnmatch.fnmatchcase(s, pattern))
        if not symbols:
            raise AttachError(f"no traceable kernel function matches {pattern!r}",
                              f"see {_tracefs()}/available_filter_functions")
    names = [ctypes.create_string_buffer(s.encode()) for s in symbols]
    array = (ctypes.c_uint64 * len(names))(*(ctypes.addressof(n) for n in names))

    def create(fd):
        attr = _KprobeMultiAttr(prog_fd=int(fd), attach_type=uapi.BPF_TRACE_KPROBE_MULTI,
                                multi_flags=uapi.BPF_F_KPROBE_MULTI_RETURN if retprobe else 0,
                                cnt=len(names), syms=ctypes.addressof(array))
        try:
            return FD(syscall.bpf(uapi.BPF_LINK_CREATE, attr))
        except BPFError as e:
            if e.errno == errno.EOPNOTSUPP:
                raise AttachError(f"this kernel refuses kprobe.multi links ({e.strerror}: kernels built "
                                  "without CONFIG_FPROBE do)", "attach one kprobe per function") from None
            raise

    kind = "kretprobe.multi" if retprobe else "kprobe.multi"
    return _make(program, {uapi.BPF_PROG_TYPE_KPROBE}, kind, f"{kind}:{len(names)} functions", create)


def _filter_functions():
    with open(os.path.join(_tracefs(), "available_filter_functions")) as f:
        return {line.split()[0] for line in f if line.strip()}


def attach_uprobe(program, binary, function=None, offset=0, retprobe=False, pid=-1, ref_ctr_offset=0, cookie=0):
    """``SEC("uprobe/PATH:FUNC")``: at ``function`` of the ELF file ``binary`` (its file offset
    found from the symbol table) plus ``offset``, or at file offset ``offset`` alone;
    ``cookie`` is the BPF cookie (``bpf_get_attach_cookie()``)."""
    binary = os.path.realpath(binary)
    if function is not None:
        offset += function_offset(binary, function)
    kind = "uretprobe" if retprobe else "uprobe"
    target = f"{kind}:{binary}:{function or hex(offset)}"
    return _make(program, {uapi.BPF_PROG_TYPE_KPROBE}, kind, target,
                 lambda fd: _perf_link(fd, _probe_event("uprobe", binary, offset, retprobe, ref_ctr_offset, pid),
                                       cookie))


def attach_uprobe_multi(program, binary, functions, retprobe=False, pid=0):
    """``SEC("uprobe.multi/PATH:PATTERN")``: one ``BPF_TRACE_UPROBE_MULTI`` link on many
    functions of ``binary`` (a list of names, or one glob over its function symbols)."""
    binary = os.path.realpath(binary)
    if isinstance(functions, str):
        pattern = functions
        functions = sorted(f for f in function_names(binary) if fnmatch.fnmatchcase(f, pattern))
        if not functions:
            raise AttachError(f"no function of {binary} matches {pattern!r}", "check the names with `nm -D`")
    offsets = (ctypes.c_uint64 * len(functions))(*(function_offset(binary, f) for f in functions))
    path = ctypes.create_string_buffer(os.fsencode(binary))

    def create(fd):
        attr = _UprobeMultiAttr(prog_fd=int(fd), attach_type=uapi.BPF_TRACE_UPROBE_MULTI,
                                path=ctypes.addressof(path), offsets=ctypes.addressof(offsets),
                                cnt=len(functions), multi_flags=uapi.BPF_F_UPROBE_MULTI_RETURN if retprobe else 0,
                                pid=pid)
        return FD(syscall.bpf(uapi.BPF_LINK_CREATE, attr))

    kind = "uretprobe.multi" if retprobe else "uprobe.multi"
    return _make(program, {uapi.BPF_PROG_TYPE_KPROBE}, kind, f"{kind}:{binary}:{len(functions)} functions", create)


def function_names(binary):
    """The defined function symbols of ``binary`` (``.symtab`` and ``.dynsym``)."""
    elf = _elf(binary)
    try:
        return {sym.name for name in (".symtab", ".dynsym") if elf.get_section_by_name(name) is not None
                for sym in elf.get_section_by_name(name).iter_symbols()
                if sym["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC") and sym["st_value"] and sym.name}
    finally:
        elf.stream.close()


def _elf(binary):
    # pyelftools (about 40 ms) is needed only by uprobes: keeps `import xnf.core.attach` light
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    try:
        return ELFFile(open(binary, "rb"))
    except (OSError, ELFError) as e:
        raise AttachError(f"cannot read {binary} as an ELF file: {e}", "give the path of an executable or library") \
            from None


def _vaddr_to_offset(elf, vaddr, binary):
    for seg in elf.iter_segments("PT_LOAD"):
        if seg["p_vaddr"] <= vaddr < seg["p_vaddr"] + seg["p_memsz"]:
            return vaddr - seg["p_vaddr"] + seg["p_offset"]
    raise AttachError(f"address {vaddr:#x} is in no loadable segment of {binary}")


def function_offset(binary, function):
    """The file offset of ``function`` in ``binary`` (``.symtab`` or ``.dynsym``), as uprobes want it."""
    elf = _elf(binary)
    try:
        for name in (".symtab", ".dynsym"):
            table = elf.get_section_by_name(name)
            if table is None:
                continue
            for sym in table.get_symbol_by_name(function) or ():
                if sym["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC") and sym["st_value"]:
                    return _vaddr_to_offset(elf, sym["st_value"], binary)
        raise AttachError(f"{binary} has no function {function!r}", "check the name with `nm -D`")
    finally:
        elf.stream.close()


@attrs.frozen
class UsdtNote:
    """One ``.note.stapsdt`` probe: where to put the uprobe and its semaphore."""

    provider: str
    name: str
    offset: int
    """file offset of the probe's instruction"""
    semaphore_offset: int
    """file offset of the semaphore (0: none)"""
    args: str


def usdt_notes(binary):
    """The USDT probes of ``binary`` from its ``.note.stapsdt`` notes (addresses adjusted by
    ``.stapsdt.base`` as for prelinked files)."""
    elf = _elf(binary)
    try:
        notes = elf.get_section_by_name(".note.stapsdt")
        if notes is None:
            return []
        base = elf.get_section_by_name(".stapsdt.base")
        out = []
        for note in notes.iter_notes():
            # type 3 (NT_STAPSDT), which pyelftools names after GNU's type 3
            if note["n_name"] != "stapsdt" or note["n_type"] not in (3, "NT_GNU_BUILD_ID"):
                continue
            desc = note["n_descdata"]
            pc, note_base, sema = (int.from_bytes(desc[i:i + 8], "little") for i in (0, 8, 16))
            provider, name, args = desc[24:].split(b"\0")[:3]
            if base is not None and note_base:
                delta = base["sh_addr"] - note_base
                pc += delta
                sema = sema + delta if sema else 0
            sema_off = _sema_offset(elf, sema) if sema else 0
            out.append(UsdtNote(provider.decode(), name.decode(), _vaddr_to_offset(elf, pc, binary),
                                sema_off, args.decode()))
        return out
    finally:
        elf.stream.close()


def _sema_offset(elf, vaddr):
    """Semaphores live in ``.probes`` (data): the kernel wants their file offset too."""
    for sec in elf.iter_sections():
        if sec["sh_addr"] <= vaddr < sec["sh_addr"] + sec["sh_size"] and sec["sh_type"] != "SHT_NOBITS":
            return vaddr - sec["sh_addr"] + sec["sh_offset"]
    return 0


#: offsetof(struct pt_regs, REG) on x86-64 for each name of a register, as libbpf's usdt.c
#: (``calc_pt_regs_off``) maps the operands that ``.note.stapsdt`` argument strings name
X86_64_PT_REGS = {name: off for off, names in (
    (0, ("r15", "r15d", "r15w", "r15b")), (8, ("r14", "r14d", "r14w", "r14b")),
    (16, ("r13", "r13d", "r13w", "r13b")), (24, ("r12", "r12d", "r12w", "r12b")),
    (32, ("rbp", "ebp", "bp", "bpl")), (40, ("rbx", "ebx", "bx", "bl")),
    (48, ("r11", "r11d", "r11w", "r11b")), (56, ("r10", "r10d", "r10w", "r10b")),
    (64, ("r9", "r9d", "r9w", "r9b")), (72, ("r8", "r8d", "r8w", "r8b")),
    (80, ("rax", "eax", "ax", "al")), (88, ("rcx", "ecx", "cx", "cl")), (96, ("rdx", "edx", "dx", "dl")),
    (104, ("rsi", "esi", "si", "sil")), (112, ("rdi", "edi", "di", "dil")), (128, ("rip",)),
    (152, ("rsp", "esp", "sp", "spl"))) for name in names}
#: ``enum __bpf_usdt_arg_type`` of libbpf's usdt.bpf.h
USDT_ARG_CONST, USDT_ARG_REG, USDT_ARG_REG_DEREF, USDT_ARG_SIB = range(4)
USDT_SPECS_MAP = "__bpf_usdt_specs"

_NUM = r"(-?(?:0x[0-9a-fA-F]+|\d+))"
_USDT_ARG_FORMS = (  # libbpf's sscanf patterns for x86, in its order
    (re.compile(rf"{_NUM}@{_NUM}?\(%(\w+),%(\w+)(?:,{_NUM})?\)"), USDT_ARG_SIB),
    (re.compile(rf"{_NUM}@{_NUM}?\(%(\w+)\)"), USDT_ARG_REG_DEREF),
    (re.compile(rf"{_NUM}@%(\w+)"), USDT_ARG_REG),
    (re.compile(rf"{_NUM}@\${_NUM}"), USDT_ARG_CONST),
)


@attrs.frozen
class UsdtArg:
    """One USDT argument as ``bpf_usdt_arg()`` reads it (``struct __bpf_usdt_arg_spec``)."""

    kind: int
    """USDT_ARG_CONST (``val_off`` is the value), _REG (a register), _REG_DEREF (memory at
    register + ``val_off``) or _SIB (base + index << scale_bitshift + ``val_off``)"""
    size: int
    """bytes, negative when signed (the ``N@`` prefix)"""
    val_off: int = 0
    reg_off: int = 0
    idx_reg_off: int = 0
    scale_bitshift: int = 0

    def spec(self):
        """The fields of ``struct __bpf_usdt_arg_spec`` (libbpf 1.0 to 1.7 names)."""
        fields = {"val_off": self.val_off & (1 << 64) - 1, "arg_type": self.kind, "reg_off": self.reg_off,
                  "arg_signed": int(self.size < 0), "arg_bitshift": 64 - abs(self.size) * 8}
        if self.kind == USDT_ARG_SIB:
            fields.update(idx_reg_off=self.idx_reg_off, scale_bitshift=self.scale_bitshift)
        return fields


def parse_usdt_args(text, machine="x86_64"):
    """The arguments of a ``.note.stapsdt`` probe (``-4@%edi 8@-8(%rbp) -4@$5``), parsed as
    libbpf's ``parse_usdt_arg`` does; :class:`AttachError` for what libbpf refuses too."""
    if machine != "x86_64":
        raise AttachError(f"USDT arguments are decoded for x86-64 only, not {machine}",
                          "read the registers from PT_REGS in the program")
    args = []
    for word in text.split():
        for pattern, kind in _USDT_ARG_FORMS:
            m = pattern.fullmatch(word)
            if m:
                break
        else:
            raise AttachError(f"USDT argument {word!r} (of {text!r}) has a form libbpf does not read either")
        size = int(m.group(1), 0)
        if abs(size) not in (1, 2, 4, 8):
            raise AttachError(f"USDT argument {word!r}: size {size} is not 1, 2, 4 or 8 bytes")
        if kind == USDT_ARG_CONST:
            args.append(UsdtArg(kind, size, val_off=int(m.group(2), 0)))
            continue
        if kind == USDT_ARG_REG:
            args.append(UsdtArg(kind, size, reg_off=_pt_regs_off(m.group(2), word)))
            continue
        off = int(m.group(2), 0) if m.group(2) else 0
        if kind == USDT_ARG_REG_DEREF:
            args.append(UsdtArg(kind, size, val_off=off, reg_off=_pt_regs_off(m.group(3), word)))
            continue
        scale = int(m.group(5), 0) if m.group(5) else 1
        if scale not in (1, 2, 4, 8):
            raise AttachError(f"USDT argument {word!r}: scale {scale} is not 1, 2, 4 or 8")
        args.append(UsdtArg(kind, size, val_off=off, reg_off=_pt_regs_off(m.group(3), word),
                            idx_reg_off=_pt_regs_off(m.group(4), word), scale_bitshift=scale.bit_length() - 1))
    if len(args) > USDT_MAX_ARGS:
        raise AttachError(f"USDT probe with {len(args)} arguments ({text!r}); usdt.bpf.h reads up to {USDT_MAX_ARGS}")
    return args


USDT_MAX_ARGS = 12  # BPF_USDT_MAX_ARG_CNT


def _pt_regs_off(reg, word):
    try:
        return X86_64_PT_REGS[reg]
    except KeyError:
        raise AttachError(f"USDT argument {word!r} names register %{reg}, which libbpf does not map either") \
            from None


# slots handed out per loaded __bpf_usdt_specs map (the Map object, as libbpf's per-object usdt
# manager): {(args, cookie): slot}
_usdt_spec_ids = weakref.WeakKeyDictionary()


def _usdt_spec_id(specs, args, cookie):
    """The slot of ``specs`` holding this spec: an equal one is shared, a new one takes the next
    free slot (libbpf numbers them the same way, per object)."""
    key = (tuple(args), cookie)
    ids = _usdt_spec_ids.setdefault(specs, {})
    if key in ids:
        return ids[key]
    spec_id = len(ids)
    if spec_id >= specs.max_entries:
        raise AttachError(f"map {USDT_SPECS_MAP!r} is full ({specs.max_entries} USDT specs)",
                          "define BPF_USDT_MAX_SPEC_CNT larger before including usdt.bpf.h")
    value = {"args": [a.spec() for a in args], "usdt_cookie": cookie, "arg_cnt": len(args)}
    try:
        raw = specs.value_codec.encode(value)  # through the map's BTF: the layout of the program's usdt.bpf.h
    except XnfError as e:
        if any(a.kind == USDT_ARG_SIB for a in args):
            raise AttachError("a USDT argument uses SIB addressing, which the program's usdt.bpf.h (libbpf "
                              f"before 1.7) cannot read ({e})", "build it with libbpf 1.7's usdt.bpf.h") from None
        raise AttachError(f"map {USDT_SPECS_MAP!r} does not hold libbpf's struct __bpf_usdt_spec: {e}",
                          "include <bpf/usdt.bpf.h> and keep the object's BTF") from None
    specs[spec_id] = raw
    ids[key] = spec_id
    return spec_id


def attach_usdt(program, binary, provider, name, pid=-1, specs=None, cookie=0):
    """``SEC("usdt/PATH:PROVIDER:NAME")``: a uprobe at every note of that probe (semaphores
    counted by the kernel).

    With ``specs``, the loaded object's ``__bpf_usdt_specs`` map (or its Collection), each
    note's arguments are parsed and written there as libbpf does, and the uprobe's BPF cookie
    names the slot, so ``bpf_usdt_arg()``, ``bpf_usdt_arg_cnt()`` and ``bpf_usdt_cookie()``
    (which returns ``cookie``) work; without it they find no spec, and the program reads the
    probe's registers (``PT_REGS``) as a uprobe does."""
    binary = os.path.realpath(binary)
    notes = [n for n in usdt_notes(binary) if (n.provider, n.name) == (provider, name)]
    if not notes:
        raise AttachError(f"{binary} has no USDT probe {provider}:{name}", "list them with `readelf -n`")
    if specs is not None and hasattr(specs, "maps"):
        if USDT_SPECS_MAP not in specs.maps:
            raise AttachError(f"the collection has no {USDT_SPECS_MAP!r} map", "include <bpf/usdt.bpf.h>")
        specs = specs.maps[USDT_SPECS_MAP]
    spec_ids = [_usdt_spec_id(specs, parse_usdt_args(n.args, platform.machine()), cookie) if specs is not None
                else 0 for n in notes]
    atts = []
    try:
        for note, spec_id in zip(notes, spec_ids):
            att = attach_uprobe(program, binary, offset=note.offset, pid=pid, ref_ctr_offset=note.semaphore_offset,
                                cookie=spec_id)
            att.target = f"usdt:{binary}:{provider}:{name}"
            atts.append(att)
    except BaseException:
        for att in atts:
            att.detach()
        raise
    return atts


# --- tracepoints ----------------------------------------------------------------------------

def _tracefs():
    for path in TRACEFS_DIRS:
        if os.path.isdir(os.path.join(path, "events")):
            return path
    path = TRACEFS_DIRS[0]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"tracefs", path.encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise AttachError(f"no tracefs, and mounting it at {path} failed: {os.strerror(err)}",
                          f"run as root, or mount it: mount -t tracefs tracefs {path}")
    return path


def tracepoint_id(category, name):
    path = os.path.join(_tracefs(), "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read())
    except OSError:
        raise AttachError(f"no tracepoint {category}/{name} ({path} is missing)",
                          f"list them in {_tracefs()}/events") from None


def attach_tracepoint(program, category, name):
    """``SEC("tracepoint/CAT/NAME")``: a perf event on the tracepoint's id, held by a link."""
    def create(fd):
        attr = PerfEventAttrV1(type=uapi.PERF_TYPE_TRACEPOINT, size=ctypes.sizeof(PerfEventAttrV1),
                               config=tracepoint_id(category, name))
        return _perf_link(fd, perf_event_open(attr, -1, 0))

    return _make(program, {uapi.BPF_PROG_TYPE_TRACEPOINT}, "tracepoint", f"tracepoint:{category}/{name}", create)


def attach_raw_tracepoint(program, name):
    """``SEC("raw_tp/NAME")`` (and ``raw_tp.w``): ``BPF_RAW_TRACEPOINT_OPEN``."""
    types = {uapi.BPF_PROG_TYPE_RAW_TRACEPOINT, uapi.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE}
    return _make(program, types, "raw_tp", f"raw_tp:{name}", lambda fd: syscall.raw_tracepoint_open(name, fd))


def attach_trace(program):
    """``tp_btf``, ``fentry``, ``fexit``, ``fmod_ret``, ``lsm``: the target was fixed at load
    (``attach_btf_id``), so the link names none."""
    types = {uapi.BPF_PROG_TYPE_TRACING, uapi.BPF_PROG_TYPE_LSM}
    return _make(program, types, "tracing", "btf target", lambda fd: syscall.raw_tracepoint_open(None, fd))


# --- cgroups, sockets, iterators ------------------------------------------------------------

def _open_dir(path, what):
    try:
        return FD(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
    except OSError as e:
        raise AttachError(f"cannot open {what} {path}: {e.strerror}") from None


def attach_cgroup(program, cgroup, attach_type, flags=0):
    """A cgroup program (``cgroup_skb/ingress``, ``cgroup/connect4``, ``sockops``...) on the
    cgroup directory ``cgroup`` (cgroup v2), ``attach_type`` as the section says
    (``uapi.BPF_CGROUP_INET_INGRESS``...)."""
    types = {uapi.BPF_PROG_TYPE_CGROUP_SKB, uapi.BPF_PROG_TYPE_CGROUP_SOCK, uapi.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
             uapi.BPF_PROG_TYPE_SOCK_OPS, uapi.BPF_PROG_TYPE_CGROUP_DEVICE, uapi.BPF_PROG_TYPE_CGROUP_SYSCTL,
             uapi.BPF_PROG_TYPE_CGROUP_SOCKOPT, uapi.BPF_PROG_TYPE_LSM}

    def create(fd):
        target = _open_dir(cgroup, "cgroup")
        try:
            return syscall.link_create(fd, target, attach_type, flags)
        finally:
            target.close()

    return _make(program, types, "cgroup", f"cgroup:{cgroup}", create)


def attach_netns(program, netns=None):
    """``SEC("sk_lookup")`` (or ``flow_dissector``) on a network namespace: a name from
    ``ip netns`` (``/run/netns/NAME``), a path to an nsfs file, or None for the caller's."""
    types = {uapi.BPF_PROG_TYPE_SK_LOOKUP, uapi.BPF_PROG_TYPE_FLOW_DISSECTOR}
    netns_path = ("/proc/self/ns/net" if netns is None else netns if "/" in netns
                  else os.path.join("/run/netns", netns))

    def create(fd):
        sk_lookup = info.prog_info(fd).type == uapi.BPF_PROG_TYPE_SK_LOOKUP
        attach_type = uapi.BPF_SK_LOOKUP if sk_lookup else uapi.BPF_FLOW_DISSECTOR
        target = _open_dir(netns_path, "network namespace")
        try:
            return syscall.link_create(fd, target, attach_type)
        finally:
            target.close()

    return _make(program, types, "netns", f"netns:{netns_path}", create)


def attach_sockmap(program, sockmap, attach_type):
    """``sk_msg`` / ``sk_skb/stream_verdict`` / ``sk_skb/stream_parser`` / ``sk_skb/verdict`` on
    a sockmap or sockhash (``uapi.BPF_SK_MSG_VERDICT``...), through a sockmap link."""
    types = {uapi.BPF_PROG_TYPE_SK_MSG, uapi.BPF_PROG_TYPE_SK_SKB}
    map_fd = getattr(sockmap, "fd", sockmap)
    return _make(program, types, "sockmap", f"sockmap:{getattr(sockmap, 'name', map_fd)}",
                 lambda fd: syscall.link_create(fd, int(map_fd), attach_type))


def attach_iter(program):
    """``SEC("iter/KIND")``: a ``BPF_TRACE_ITER`` link; ``.read()`` runs the iterator once."""
    return _make(program, {uapi.BPF_PROG_TYPE_TRACING}, "iter", "iter",
                 lambda fd: syscall.link_create(fd, 0, uapi.BPF_TRACE_ITER))


# --- by section, as a skeleton's __attach() -------------------------------------------------

_TRACING_PREFIXES = ("tp_btf/", "fentry/", "fexit/", "fmod_ret/", "lsm/", "fentry.s/", "fexit.s/",
                     "fmod_ret.s/", "lsm.s/")


def attach_auto(program, section=None):
    """Attach ``program`` where its section says, as libbpf's ``bpf_program__attach()``:
    ``tracepoint/CAT/NAME``, ``raw_tp/NAME``, ``tp_btf/`` and the other BTF-targeted kinds,
    ``kprobe/SYM[+OFF]``, ``ksyscall/NAME``, ``uprobe/PATH:FUNC[+OFF]``,
    ``usdt/PATH:PROVIDER:NAME`` (a list, one per note) and ``iter/``. ``section`` defaults
    to the section of the spec the program was loaded from."""
    if section is None:
        section = getattr(getattr(program, "spec", None), "section", None)
        if section is None:
            raise AttachError(f"{program!r} carries no section to attach by", "pass section=")
    kind, _, rest = section.partition("/")
    if kind in ("tracepoint", "tp") and rest.count("/") == 1:
        return attach_tracepoint(program, *rest.split("/"))
    if kind in ("raw_tp", "raw_tracepoint", "raw_tp.w", "raw_tracepoint.w") and rest:
        return attach_raw_tracepoint(program, rest)
    if section.startswith(_TRACING_PREFIXES):
        return attach_trace(program)
    if kind in ("kprobe", "kretprobe") and rest:
        symbol, _, offset = rest.partition("+")
        return attach_kprobe(program, symbol, int(offset or "0", 0), retprobe=kind == "kretprobe")
    if kind in ("ksyscall", "kretsyscall") and rest:
        return attach_ksyscall(program, rest, retprobe=kind == "kretsyscall")
    if kind in ("uprobe", "uretprobe", "uprobe.s", "uretprobe.s") and ":" in rest:
        binary, _, where = rest.rpartition(":")
        function, _, offset = where.partition("+")
        return attach_uprobe(program, binary, function or None, int(offset or "0", 0),
                             retprobe=kind.startswith("uretprobe"))
    if kind in ("usdt", "usdt.s") and rest.count(":") >= 2:
        binary, provider, name = rest.rsplit(":", 2)
        return attach_usdt(program, binary, provider, name)
    if kind in ("iter", "iter.s"):
        return attach_iter(program)
    raise AttachError(f"section {section!r} says nowhere to attach by itself",
                      "call the attach_* function of its hook with the target")
