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

import attrs

from xnf.core import uapi
from xnf.core.attach.base import Attachment, check_type, program_fd
from xnf.core.errors import AttachError, BPFError
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


def _perf_link(fd, event):
    try:
        return syscall.link_create(fd, event, uapi.BPF_PERF_EVENT)
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


def attach_kprobe(program, symbol, offset=0, retprobe=False):
    """``SEC("kprobe/SYM")`` / ``SEC("kretprobe/SYM")`` at ``symbol`` (+ ``offset``)."""
    kind = "kretprobe" if retprobe else "kprobe"
    return _make(program, {uapi.BPF_PROG_TYPE_KPROBE}, kind, f"{kind}:{symbol}",
                 lambda fd: _perf_link(fd, _probe_event("kprobe", symbol, offset, retprobe)))


def attach_ksyscall(program, syscall_name, retprobe=False):
    """``SEC("ksyscall/NAME")``: a kprobe on the architecture's syscall wrapper (``__x64_sys_NAME``)."""
    prefix = SYSCALL_PREFIX.get(platform.machine(), "sys_")
    return attach_kprobe(program, prefix + syscall_name, retprobe=retprobe)


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


def attach_uprobe(program, binary, function=None, offset=0, retprobe=False, pid=-1, ref_ctr_offset=0):
    """``SEC("uprobe/PATH:FUNC")``: at ``function`` of the ELF file ``binary`` (its file offset
    found from the symbol table) plus ``offset``, or at file offset ``offset`` alone."""
    binary = os.path.realpath(binary)
    if function is not None:
        offset += function_offset(binary, function)
    kind = "uretprobe" if retprobe else "uprobe"
    target = f"{kind}:{binary}:{function or hex(offset)}"
    return _make(program, {uapi.BPF_PROG_TYPE_KPROBE}, kind, target,
                 lambda fd: _perf_link(fd, _probe_event("uprobe", binary, offset, retprobe, ref_ctr_offset, pid)))


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


def attach_usdt(program, binary, provider, name, pid=-1):
    """``SEC("usdt/PATH:PROVIDER:NAME")``: a uprobe at every note of that probe (semaphores
    counted by the kernel). Arguments are not decoded: ``bpf_usdt_arg()`` finds no spec and
    returns an error; the program sees the probe's registers (``PT_REGS``) as a uprobe does."""
    binary = os.path.realpath(binary)
    notes = [n for n in usdt_notes(binary) if (n.provider, n.name) == (provider, name)]
    if not notes:
        raise AttachError(f"{binary} has no USDT probe {provider}:{name}", "list them with `readelf -n`")
    atts = []
    try:
        for note in notes:
            att = attach_uprobe(program, binary, offset=note.offset, pid=pid, ref_ctr_offset=note.semaphore_offset)
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
