"""libbpf as the oracle for CO-RE: load one program of an object with libbpf (through ctypes,
the libbpf.so that bpftool is built against) and with xnf, and compare the instructions the
kernel holds afterwards (``BPF_OBJ_GET_INFO_BY_FD`` xlated), map references masked.

Used by tests/kernel/test_core_exactness.py; the library itself never uses libbpf.
"""
import ctypes
import ctypes.util
import re
import struct

import xnf
from xnf.core.errors import BPFError, XnfError
from xnf.core.kernel import info as xinfo
from xnf.core.kernel import syscall

LDDW = 0x18
_MAP_SRC = {1: "map", 2: "map_value", 5: "map_idx", 6: "map_idx_value"}
_PRINT_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


class Libbpf:
    """The few libbpf calls needed to load selected programs of an object."""

    def __init__(self):
        path = ctypes.util.find_library("bpf") or "libbpf.so.1"
        self.lib = lib = ctypes.CDLL(path, use_errno=True)
        self.libc = ctypes.CDLL(None)
        vp = ctypes.c_void_p
        lib.bpf_object__open_file.restype = vp
        lib.bpf_object__open_file.argtypes = [ctypes.c_char_p, vp]
        lib.bpf_object__next_program.restype = vp
        lib.bpf_object__next_program.argtypes = [vp, vp]
        lib.bpf_program__name.restype = ctypes.c_char_p
        lib.bpf_program__name.argtypes = [vp]
        lib.bpf_program__set_autoload.argtypes = [vp, ctypes.c_bool]
        lib.bpf_object__load.argtypes = [vp]
        lib.bpf_program__fd.argtypes = [vp]
        lib.bpf_object__close.argtypes = [vp]
        lib.libbpf_set_print.restype = vp
        self.log = []
        self._printer = _PRINT_FN(self._print)  # kept alive while libbpf may call it
        lib.libbpf_set_print(self._printer)

    def _print(self, level, fmt, args):
        buf = ctypes.create_string_buffer(4096)
        self.libc.vsnprintf(buf, ctypes.c_size_t(len(buf)), fmt, ctypes.c_void_p(args))
        self.log.append(buf.value.decode(errors="replace"))
        return 0

    def programs(self, path):
        obj = self.lib.bpf_object__open_file(path.encode(), None)
        if not obj:
            return None
        try:
            return [name for name, _p in self._progs(obj)]
        finally:
            self.lib.bpf_object__close(obj)

    def _progs(self, obj):
        p = self.lib.bpf_object__next_program(obj, None)
        while p:
            yield self.lib.bpf_program__name(p).decode(), p
            p = self.lib.bpf_object__next_program(obj, p)

    def load_program(self, path, name):
        """(xlated slots, None) for program ``name`` loaded alone, or (None, libbpf's reason)."""
        self.log = []
        obj = self.lib.bpf_object__open_file(path.encode(), None)
        if not obj:
            return None, self._reason("open")
        try:
            fd = -1
            target = None
            for pname, p in self._progs(obj):
                self.lib.bpf_program__set_autoload(p, pname == name)
                if pname == name:
                    target = p
            err = self.lib.bpf_object__load(obj)
            if err:
                return None, self._reason("load")
            fd = self.lib.bpf_program__fd(target)
            return masked_xlated(fd), None
        finally:
            self.lib.bpf_object__close(obj)

    def core_log(self, path, name):
        """libbpf's CO-RE decisions (see :func:`core_decisions`) when loading program ``name``;
        CO-RE runs before any program is loaded, so this works for programs the kernel refuses."""
        self.load_program(path, name)
        return core_decisions(self.log)

    def _reason(self, phase):
        lines = [line.strip() for line in self.log if line.strip() and not line.startswith("libbpf: -- ")]
        errors = [line for line in lines if "failed" in line or "error" in line.lower() or "invalid" in line]
        return f"libbpf {phase}: " + " | ".join((errors or lines)[-3:])


_RELO = re.compile(r"prog '(?P<prog>[^']+)': relo #(?P<relo>\d+): (?:"
                   r"patched insn #(?P<insn>\d+) \([^)]*\) (?P<what>imm64|imm|off|mem_sz) \d+ -> (?P<new>\d+)"
                   r"|substituting insn #(?P<poisoned>\d+) w/ invalid insn"
                   r"|matching candidate #\d+ <[a-z_0-9]+> (?P<target>.*))$")


def core_decisions(log):
    """libbpf's debug log -> {(function, insn): {"new": value, "poisoned": bool, "target": spec}}.

    ``insn`` counts slots from the start of the function (a subprogram is a program of its
    own for libbpf's relocation); ``target`` is the first matching candidate as libbpf prints it.
    """
    by_relo, out = {}, {}
    for line in log:
        m = _RELO.search(line.strip())
        if not m:
            continue
        key = (m["prog"], int(m["relo"]))
        entry = by_relo.setdefault(key, {"target": None})
        if m["target"] is not None:
            if entry["target"] is None:
                entry["target"] = m["target"]
        elif m["poisoned"] is not None:
            insn = int(m["poisoned"])
            entry.setdefault("insn", insn)
            entry["insn"] = min(entry["insn"], insn)  # an ldimm64 is poisoned in both slots
            entry["poisoned"] = True
        elif m["what"] == "mem_sz":
            entry["mem_sz"] = int(m["new"])
        else:
            entry.update(insn=int(m["insn"]), new=int(m["new"]), poisoned=False)
    for (prog, _relo), entry in by_relo.items():
        if "insn" in entry:
            out[(prog, entry["insn"])] = entry
    return out


def xlated(fd):
    """The kernel's (translated) instructions of program ``fd``, raw."""
    info = xinfo.bpf_prog_info()
    syscall.obj_get_info_by_fd(fd, info)
    n = info.xlated_prog_len
    buf = ctypes.create_string_buffer(n)
    info = xinfo.bpf_prog_info(xlated_prog_len=n, xlated_prog_insns=ctypes.addressof(buf))
    syscall.obj_get_info_by_fd(fd, info)
    return buf.raw[:n]


def masked_xlated(fd):
    """xlated instructions as (code, dst, src, off, imm) slots; an ldimm64 of a map names the map
    (kind, kernel map name, offset) instead of its id, which differs between two loads."""
    raw = xlated(fd)
    slots = [(c, r & 0xF, r >> 4, off, imm) for c, r, off, imm in struct.iter_unpack("<BBhi", raw)]
    out = []
    i = 0
    while i < len(slots):
        code, dst, src, off, imm = slots[i]
        if code == LDDW and src in _MAP_SRC and i + 1 < len(slots):
            out.append((code, dst, _MAP_SRC[src], off, ("map", map_name(imm))))
            out.append(slots[i + 1][:4] + (slots[i + 1][4],))
            i += 2
            continue
        out.append(slots[i])
        i += 1
    return out


def map_name(map_id):
    try:
        fd = syscall.fd_by_id("map", map_id)
    except BPFError:
        return f"id:{map_id}"
    try:
        return xinfo.map_info(fd).name
    finally:
        fd.close()


def xnf_load_program(path, name):
    """(xlated slots, None) for program ``name`` loaded alone by xnf, or (None, xnf's error)."""
    try:
        spec = xnf.open_object(path)
        with xnf.load(spec, programs=[name]) as coll:
            return masked_xlated(int(coll.programs[name].fd)), None
    except XnfError as e:
        return None, f"{type(e).__name__}: {e}"


def first_difference(a, b):
    """(slot, a's instruction, b's instruction) of the first difference, or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i, x, y
    if len(a) != len(b):
        i = min(len(a), len(b))
        return i, a[i] if i < len(a) else None, b[i] if i < len(b) else None
    return None


def xnf_core_decisions(path, name):
    """xnf's CO-RE decisions for program ``name`` and the subprograms it calls, keyed like
    :func:`core_decisions` (function, slot within the function)."""
    from xnf.core.object import core_reloc
    from xnf.core.object.spec import ProgramSpec

    spec = xnf.open_object(path)
    relocator = core_reloc.Relocator(spec.btf)
    called = set()
    order = [name]
    while order:
        fname = order.pop()
        if fname in called:
            continue
        called.add(fname)
        order.extend(i.reference[1] for i in spec.functions[fname].instructions
                     if i.reference and i.reference[0] == "func")
    out = {}
    for fname in called:
        fn = spec.functions[fname]
        if not fn.core_relos:
            continue
        as_prog = ProgramSpec(name=fname, section=fn.section, type=0, instructions=fn.instructions,
                              core_relos=fn.core_relos, line_info=fn.line_info)
        for r in core_reloc.relocate_program(relocator, as_prog, collect_errors=True)[1]:
            out[(fname, r.insn)] = r
    return out
