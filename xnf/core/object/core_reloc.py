"""CO-RE: rewrite a program's field offsets, sizes, type ids and enum values for the target kernel.

clang records, for each instruction that depends on a kernel type's layout, a
``bpf_core_relo`` in ``.BTF.ext`` (instruction, local type, access string such as
``0:2:1``, kind). Before loading, each one is resolved against the target's BTF (the
running kernel's vmlinux, then its modules; or a BTF file the caller names) and the
instruction's immediate, offset or memory size is patched. This module follows
libbpf's ``relo_core.c`` rule for rule, so that the kernel ends up holding the same
instructions whichever loader was used:

* candidates are the target types of the same *essential* name (everything before a
  trailing ``___flavour``) and a compatible kind; vmlinux first, modules only when
  vmlinux has none; each candidate that matches the access path must give the same
  answer, or the relocation is ambiguous (an error);
* a field or enum value that no candidate has *poisons* the instruction: it becomes a
  call to helper ``0xbad2310``, harmless if the code is dead (guarded by
  ``bpf_core_field_exists`` and the like), fatal in the verifier otherwise; the
  verifier's complaint is mapped back to the relocation (:func:`explain_rejection`).

Pure: nothing here touches the kernel, so it runs unprivileged and offline.
"""
import os
import re
import struct
import weakref

import attrs

from xnf.core.errors import BTFError, LinkError, VerifierError, XnfError
from xnf.core.object import btf as B
from xnf.core.object import insn as I
from xnf.core.object.spec import ProgramSpec

(FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_EXISTS, FIELD_SIGNED, FIELD_LSHIFT_U64, FIELD_RSHIFT_U64,
 TYPE_ID_LOCAL, TYPE_ID_TARGET, TYPE_EXISTS, TYPE_SIZE, ENUMVAL_EXISTS, ENUMVAL_VALUE, TYPE_MATCHES) = range(13)

KIND_NAMES = {FIELD_BYTE_OFFSET: "byte_off", FIELD_BYTE_SIZE: "byte_sz", FIELD_EXISTS: "field_exists",
              FIELD_SIGNED: "signed", FIELD_LSHIFT_U64: "lshift_u64", FIELD_RSHIFT_U64: "rshift_u64",
              TYPE_ID_LOCAL: "local_type_id", TYPE_ID_TARGET: "target_type_id", TYPE_EXISTS: "type_exists",
              TYPE_MATCHES: "type_matches", TYPE_SIZE: "type_size", ENUMVAL_EXISTS: "enumval_exists",
              ENUMVAL_VALUE: "enumval_value"}
"""libbpf's short names for the kinds, as its debug log prints them."""

POISON_HELPER_ID = 0xBAD2310
"""The helper id of a poisoned instruction; the verifier says ``invalid func unknown#195896080``."""

SPEC_MAX_LEN = 64
_COMPAT_LEVEL = 32
_FIELD_KINDS = frozenset(range(FIELD_BYTE_OFFSET, FIELD_RSHIFT_U64 + 1))
_TYPE_KINDS = frozenset((TYPE_ID_LOCAL, TYPE_ID_TARGET, TYPE_EXISTS, TYPE_SIZE, TYPE_MATCHES))
_ENUMVAL_KINDS = frozenset((ENUMVAL_EXISTS, ENUMVAL_VALUE))
_ENUMS = (B.KIND_ENUM, B.KIND_ENUM64)
_COMPOSITES = (B.KIND_STRUCT, B.KIND_UNION)
_U64 = (1 << 64) - 1
_SHRT_MAX = 0x7FFF
_SIZE_CODES = {8: I.BPF_DW, 4: I.BPF_W, 2: I.BPF_H, 1: I.BPF_B}
_SIZE_BYTES = {v: k for k, v in _SIZE_CODES.items()}


class CoreRelocationError(LinkError):
    """A CO-RE relocation libbpf would refuse too: a malformed access string, candidates that
    disagree, or an instruction of a form the relocation cannot patch. Nothing is loaded."""


class PoisonedInstructionError(VerifierError):
    """The verifier reached an instruction whose CO-RE relocation could not be satisfied.

    ``resolution`` is the :class:`Resolution` of that relocation; ``log`` the verifier's log.
    """

    def __init__(self, program, err, log, resolution):
        super().__init__(program, err, log)
        self.resolution = resolution
        where = f"instruction {resolution.insn}"
        if resolution.source:
            file, line, _col, text = resolution.source
            where += f" ({file}:{line}: {text})"
        XnfError.__init__(  # the message names the relocation; the log stays in .log
            self, f"program {program!r} reaches {where}, whose CO-RE relocation cannot be satisfied on this "
            f"kernel: {resolution.kind_name} of {resolution.local}: {resolution.reason}",
            "guard the access with bpf_core_field_exists() / bpf_core_type_exists(), or fix the local "
            "type definition; the verifier log is in .log")
        self.errno, self.strerror = err, os.strerror(err)  # OSError.__init__ reset them


# --- target BTF ----------------------------------------------------------------------------------

class Target:
    """One BTF to search for candidates: vmlinux, a kernel module (split BTF on top of vmlinux),
    or a file. Type ids below ``start_id`` belong to the base and are not candidates."""

    def __init__(self, name, btf, start_id=1):
        self.name = name
        self.btf = btf
        self.start_id = start_id
        self._index = None

    def candidates(self, essential, local_type):
        """Ids of this target's own types with that essential name and a compatible kind, in id order."""
        if self._index is None:
            self._index = B.without_gc(_name_index, self.btf, self.start_id)
        return [i for i in self._index.get(essential, ()) if _kind_compat(self.btf.types[i], local_type)]

    def __repr__(self):
        return f"Target({self.name!r}, {len(self.btf.types)} types)"


def _name_index(btf, start):
    """{essential name: [type id]} of the named types of ``btf`` from ``start`` on, ids in order."""
    index = {}
    for i, name, _kind in btf.named(start):
        key = essential_name(name)
        ids = index.get(key)
        if ids is None:
            index[key] = [i]
        else:
            ids.append(i)
    return index


KERNEL_BTF_DIR = "/sys/kernel/btf"
_BTF_HDR = struct.Struct("<HBBIIIII")
_MODULES = weakref.WeakKeyDictionary()
"""{vmlinux BTF: {path: ((path, mtime, size), Target)}}: keyed on the object itself, weakly, not on
its id(), which a later vmlinux BTF can be given once this one is freed."""
_VMLINUX_TARGET = None


def kernel_module_targets(vmlinux, sysfs=None):
    """Every loaded module's BTF, parsed as split BTF on top of ``vmlinux`` (cached while unchanged)."""
    out = []
    sysfs = sysfs or KERNEL_BTF_DIR
    cache = _MODULES.setdefault(vmlinux, {})
    try:
        names = sorted(os.listdir(sysfs))
    except OSError:
        return out
    for name in names:
        if name == "vmlinux":
            continue
        path = os.path.join(sysfs, name)
        try:
            st = os.stat(path)
            key = (path, st.st_mtime_ns, st.st_size)
            target = cache.get(path)
            if target is None or target[0] != key:
                with open(path, "rb") as f:
                    target = (key, Target(name, parse_split(f.read(), vmlinux), len(vmlinux.types)))
                cache[path] = target
        except OSError:
            continue  # the module went away while we listed them
        out.append(target[1])
    return out


def parse_split(raw, base):
    """Parse split BTF (a kernel module's) whose type ids and string offsets continue ``base``'s.

    Returns one :class:`~xnf.core.object.btf.BTF` holding the base's types followed by the split's,
    so that ids from either side index it directly.
    """
    if len(raw) < _BTF_HDR.size:
        raise BTFError(f"split BTF is truncated: {len(raw)} bytes")
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = _BTF_HDR.unpack_from(raw)
    if magic != B.BTF_MAGIC or hdr_len + max(type_off + type_len, str_off + str_len) > len(raw):
        raise BTFError("split BTF has a bad header or is truncated")
    types = raw[hdr_len + type_off:hdr_len + type_off + type_len]
    strings = base.strings + raw[hdr_len + str_off:hdr_len + str_off + str_len]
    joined = _BTF_HDR.pack(magic, version, flags, _BTF_HDR.size, 0, len(types), len(types), len(strings))
    own = B.parse(joined + types + strings)
    return B.BTF(base.types + own.types[1:], strings)


def load_btf_file(path):
    """A BTF file for relocation: raw BTF (``/sys/kernel/btf/vmlinux``, ``bpftool btf dump ... format
    raw``) or an ELF holding a ``.BTF`` section (a vmlinux image built with BTF)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BTFError(f"cannot read BTF file {path}: {e.strerror}") from None
    if data[:4] == b"\x7fELF":
        data = _elf_btf_section(path, data)
    return B.parse(data)


def _elf_btf_section(path, data):
    try:
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        shdrs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        names = shdrs[shstrndx]
        for sh in shdrs:
            start = names[4] + sh[0]
            if data[start:data.index(b"\0", start)] == b".BTF":
                return data[sh[4]:sh[4] + sh[5]]
    except (struct.error, ValueError, IndexError):
        raise BTFError(f"{path} is an ELF file but not a readable one") from None
    raise BTFError(f"{path} is an ELF file without a .BTF section", "build the kernel with CONFIG_DEBUG_INFO_BTF=y")


# --- names, kinds, sizes --------------------------------------------------------------------------

def essential_name(name):
    """``name`` without its flavour: ``task_struct___v2`` -> ``task_struct`` (X___Y, X and Y not '_')."""
    if "___" not in name:  # nearly every name: indexing vmlinux asks for 124k of them
        return name
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1:i + 4] == "___" and name[i + 4] != "_":
            return name[:i + 1]
    return name


def _kind_compat(a, b):
    return a.kind == b.kind or (a.kind in _ENUMS and b.kind in _ENUMS)


def _skip(btf, type_id):
    """Skip typedefs and qualifiers: (id, Type), or (id, None) for an id past the table."""
    try:
        return btf.resolve(type_id)
    except BTFError:
        return type_id, None


def _size(btf, type_id):
    """libbpf's btf__resolve_size: the byte size, or None for void, functions and the like."""
    nelems = 1
    for _ in range(32):
        if type_id >= len(btf.types):
            return None
        t = btf.types[type_id]
        if t.kind in (B.KIND_INT, B.KIND_STRUCT, B.KIND_UNION, B.KIND_ENUM, B.KIND_ENUM64, B.KIND_DATASEC,
                      B.KIND_FLOAT):
            size = t.size
        elif t.kind == B.KIND_PTR:
            size = 8
        elif t.kind in (B.KIND_TYPEDEF, B.KIND_VOLATILE, B.KIND_CONST, B.KIND_RESTRICT, B.KIND_VAR,
                        B.KIND_DECL_TAG, B.KIND_TYPE_TAG):
            type_id = t.type
            continue
        elif t.kind == B.KIND_ARRAY:
            nelems *= t.array[2]
            type_id = t.array[0]
            continue
        else:
            return None
        return nelems * size
    return None


def _kind_str(t):
    return B.KIND_NAMES[t.kind].lower() if t is not None else "?"


# --- specs: an access string walked through one BTF -----------------------------------------------

@attrs.define
class Accessor:
    type_id: int
    """The struct/union holding a named field, or the element type of an array access."""
    idx: int
    name: str = None
    """The field's (or enumerator's) name; None for an array index."""


@attrs.define
class CoreSpec:
    """An access path through one BTF: ``raw`` every step of the access string, ``accessors``
    only the named fields and array indices, ``bit_offset`` where it lands."""

    btf: object
    root_type_id: int
    kind: int
    raw: list = attrs.Factory(list)
    accessors: list = attrs.Factory(list)
    bit_offset: int = 0

    def path(self):
        """The C-like path: ``struct task_struct.pids[1].pid`` or ``enum e::VALUE``."""
        t = self.btf.types[self.root_type_id]
        text = f"{_kind_str(t)} {t.name or '<anon>'}"
        if self.kind in _ENUMVAL_KINDS and self.accessors:
            return f"{text}::{self.accessors[0].name}"
        if self.kind in _FIELD_KINDS:
            for i, acc in enumerate(self.accessors):
                if acc.name:
                    text += "." + acc.name
                elif i > 0 or acc.idx > 0:
                    text += f"[{acc.idx}]"
        return text

    def describe(self):
        """As libbpf prints a spec: ``[id] struct foo.a[3].b (0:1:3:0 @ offset 12)``."""
        text = f"[{self.root_type_id}] {self.path()}"
        if self.kind in _FIELD_KINDS:
            raw = ":".join(map(str, self.raw))
            off = self.bit_offset
            at = f"{off // 8}.{off % 8}" if off % 8 else f"{off // 8}"
            text += f" ({raw} @ offset {at})"
        elif self.kind in _ENUMVAL_KINDS and self.accessors:
            _, t = _skip(self.btf, self.root_type_id)
            text += f" = {dict(t.members).get(self.accessors[0].name)}"
        return text


class _BadSpec(Exception):
    pass


def parse_spec(btf, relo):
    """The local spec of ``relo`` (bpf_core_parse_spec); a malformed one raises ``_BadSpec``."""
    access = relo.access
    if not access or access[0] == ":":
        raise _BadSpec(f"empty or malformed access string {access!r}")
    spec = CoreSpec(btf=btf, root_type_id=relo.type_id, kind=relo.kind)
    if relo.kind in _TYPE_KINDS:
        if access != "0":
            raise _BadSpec(f"type relocation with access string {access!r} (expected '0')")
        return spec
    try:
        spec.raw = [int(x) for x in access.split(":")]
    except ValueError:
        raise _BadSpec(f"access string {access!r} is not a list of indices") from None
    if len(spec.raw) > SPEC_MAX_LEN:
        raise _BadSpec(f"access string {access!r} is longer than {SPEC_MAX_LEN}")
    type_id, t = _skip(btf, relo.type_id)
    if t is None:
        raise _BadSpec(f"type [{relo.type_id}] does not exist")
    idx = spec.raw[0]
    acc = Accessor(type_id, idx)
    spec.accessors.append(acc)
    if relo.kind in _ENUMVAL_KINDS:
        if t.kind not in _ENUMS or len(spec.raw) > 1 or not 0 <= idx < len(t.members):
            raise _BadSpec(f"enum value relocation {access!r} on {_kind_str(t)} {t.name!r}")
        acc.name = t.members[idx][0]
        return spec
    if relo.kind not in _FIELD_KINDS:
        raise _BadSpec(f"unknown relocation kind {relo.kind}")
    size = _size(btf, type_id)
    if size is None:
        raise _BadSpec(f"type [{type_id}] has no size")
    spec.bit_offset = idx * size * 8
    for pos in range(1, len(spec.raw)):
        type_id, t = _skip(btf, type_id)
        if t is None:
            raise _BadSpec(f"type [{type_id}] does not exist")
        idx = spec.raw[pos]
        if t.kind in _COMPOSITES:
            if not 0 <= idx < len(t.members):
                raise _BadSpec(f"member {idx} of {_kind_str(t)} {t.name!r}, which has {len(t.members)}")
            mname, mtype, bit_off, _bf = t.members[idx]
            spec.bit_offset += bit_off
            if mname:
                spec.accessors.append(Accessor(type_id, idx, mname))
            type_id = mtype
        elif t.kind == B.KIND_ARRAY:
            elem, _index_type, nelems = t.array
            type_id, et = _skip(btf, elem)
            if et is None:
                raise _BadSpec(f"array element type [{elem}] does not exist")
            if not _is_flex(btf, spec.accessors[-1], nelems) and idx >= nelems:
                raise _BadSpec(f"index {idx} of an array of {nelems}")
            spec.accessors.append(Accessor(type_id, idx))
            size = _size(btf, type_id)
            if size is None:
                raise _BadSpec(f"array element type [{type_id}] has no size")
            spec.bit_offset += idx * size * 8
        else:
            raise _BadSpec(f"access {access!r} steps into {_kind_str(t)} [{type_id}] at position {pos}")
    return spec


def _is_flex(btf, acc, nelems):
    """A flexible array: zero elements, and the last member of the struct holding it."""
    if acc.name is None or nelems > 0:
        return False
    return acc.idx == len(btf.types[acc.type_id].members) - 1


# --- compatibility and matching (libbpf's rules) --------------------------------------------------

def types_are_compat(local_btf, local_id, targ_btf, targ_id, level=_COMPAT_LEVEL):
    """bpf_core_types_are_compat: 1 compatible, 0 not, -1 error (too deep, or an id past its
    table, which a prototype's parameter in a corrupt object can name)."""
    if local_id >= len(local_btf.types) or targ_id >= len(targ_btf.types):
        return -1
    if not _kind_compat(local_btf.types[local_id], targ_btf.types[targ_id]):
        return 0
    for _ in range(32):
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        if lt is None or tt is None:
            return -1
        if not _kind_compat(lt, tt):
            return 0
        k = lt.kind
        if k in (0, B.KIND_STRUCT, B.KIND_UNION, B.KIND_ENUM, B.KIND_FWD, B.KIND_ENUM64):
            return 1
        if k == B.KIND_INT:
            return int(lt.int_offset == 0 and tt.int_offset == 0)
        if k == B.KIND_PTR:
            local_id, targ_id = lt.type, tt.type
        elif k == B.KIND_ARRAY:
            local_id, targ_id = lt.array[0], tt.array[0]
        elif k == B.KIND_FUNC_PROTO:
            if len(lt.members) != len(tt.members):
                return 0
            for (_ln, lp), (_tn, tp) in zip(lt.members, tt.members):
                if level <= 0:
                    return -1
                err = types_are_compat(local_btf, _skip(local_btf, lp)[0], targ_btf, _skip(targ_btf, tp)[0],
                                       level - 1)
                if err <= 0:
                    return err
            local_id, targ_id = _skip(local_btf, lt.type)[0], _skip(targ_btf, tt.type)[0]
        else:
            return 0
    return -1


def _fields_are_compat(local_btf, local_id, targ_btf, targ_id):
    while True:
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        if lt is None or tt is None:
            return -1
        if lt.kind in _COMPOSITES and tt.kind in _COMPOSITES:
            return 1
        if not _kind_compat(lt, tt):
            return 0
        if lt.kind in (B.KIND_PTR, B.KIND_FLOAT):
            return 1
        if lt.kind in (B.KIND_FWD, B.KIND_ENUM, B.KIND_ENUM64):
            ln, tn = essential_name(lt.name), essential_name(tt.name)
            return int(not ln or not tn or ln == tn)
        if lt.kind == B.KIND_INT:
            return int(lt.int_offset == 0 and tt.int_offset == 0)
        if lt.kind == B.KIND_ARRAY:
            local_id, targ_id = lt.array[0], tt.array[0]
            continue
        return 0


def _match_member(local_btf, local_acc, targ_btf, targ_id, spec):
    """Find the local accessor's field in the target composite, descending into anonymous members.

    Returns (result, next target type id); ``spec`` is extended with the path taken.
    """
    targ_id, tt = _skip(targ_btf, targ_id)
    if tt is None:
        return -1, 0
    if tt.kind not in _COMPOSITES:
        return 0, 0
    lname, ltype = local_btf.types[local_acc.type_id].members[local_acc.idx][:2]
    for i, (tname, ttype, bit_off, _bf) in enumerate(tt.members):
        if len(spec.raw) == SPEC_MAX_LEN:
            return -1, 0
        spec.bit_offset += bit_off
        spec.raw.append(i)
        if not tname:
            found, next_id = _match_member(local_btf, local_acc, targ_btf, ttype, spec)
            if found:
                return found, next_id
        elif tname == lname:
            spec.accessors.append(Accessor(targ_id, i, tname))
            found = _fields_are_compat(local_btf, ltype, targ_btf, ttype)
            if not found:
                spec.accessors.pop()
            return found, ttype
        spec.bit_offset -= bit_off
        spec.raw.pop()
    return 0, 0


def spec_match(local, targ_btf, targ_id):
    """bpf_core_spec_match: (1 and the target spec) when ``targ_id`` has the local access path."""
    targ = CoreSpec(btf=targ_btf, root_type_id=targ_id, kind=local.kind)
    if local.kind in _TYPE_KINDS:
        if local.kind == TYPE_MATCHES:
            return types_match(local.btf, local.root_type_id, targ_btf, targ_id), targ
        return types_are_compat(local.btf, local.root_type_id, targ_btf, targ_id), targ
    if local.kind in _ENUMVAL_KINDS:
        targ_id, tt = _skip(targ_btf, targ_id)
        if tt is None or tt.kind not in _ENUMS:
            return 0, targ
        want = essential_name(local.accessors[0].name)
        for i, (name, _value) in enumerate(tt.members):
            if essential_name(name) == want:
                targ.accessors.append(Accessor(targ_id, i, name))
                targ.raw.append(i)
                return 1, targ
        return 0, targ
    for pos, lacc in enumerate(local.accessors):
        targ_id, tt = _skip(targ_btf, targ_id)
        if tt is None:
            return -1, targ
        if lacc.name:
            matched, targ_id = _match_member(local.btf, lacc, targ_btf, targ_id, targ)
            if matched <= 0:
                return matched, targ
            continue
        if pos > 0:
            if tt.kind != B.KIND_ARRAY:
                return 0, targ
            elem, _index_type, nelems = tt.array
            if not _is_flex(targ_btf, targ.accessors[-1], nelems) and lacc.idx >= nelems:
                return 0, targ
            targ_id, et = _skip(targ_btf, elem)
            if et is None:
                return -1, targ
        if len(targ.raw) == SPEC_MAX_LEN:
            return -1, targ
        targ.accessors.append(Accessor(targ_id, lacc.idx))
        targ.raw.append(lacc.idx)
        size = _size(targ_btf, targ_id)
        if size is None:
            return -1, targ
        targ.bit_offset += lacc.idx * size * 8
    return 1, targ


def _names_match(local_name, targ_name):
    if not targ_name:
        return not local_name
    return essential_name(local_name) == essential_name(targ_name)


def types_match(local_btf, local_id, targ_btf, targ_id, behind_ptr=False, level=_COMPAT_LEVEL):
    """__bpf_core_types_match: the stricter relation behind ``bpf_core_type_matches``."""
    if level <= 0:
        return -1
    for _ in range(32):
        local_id, lt = _skip(local_btf, local_id)
        targ_id, tt = _skip(targ_btf, targ_id)
        if lt is None or tt is None:
            return -1
        if not _names_match(lt.name, tt.name):
            return 0
        lk, tk = lt.kind, tt.kind
        if lk == 0:
            return int(lk == tk)
        if lk == B.KIND_FWD:
            if behind_ptr and lk != tk:
                # a forward declaration's kflag says union (1) or struct (0)
                return int((tk == B.KIND_STRUCT and not lt.kind_flag) or (tk == B.KIND_UNION and lt.kind_flag))
            return int(lk == tk and lt.kind_flag == tt.kind_flag)
        if lk in _ENUMS:
            return int(tk in _ENUMS and _enums_match(lt, tt))
        if lk in _COMPOSITES:
            if behind_ptr:
                if lk == tk:
                    return 1
                return int(tk == B.KIND_FWD and (lk == B.KIND_UNION) == tt.kind_flag)
            if lk != tk:
                return 0
            return _composites_match(local_btf, lt, targ_btf, tt, behind_ptr, level)
        if lk == B.KIND_INT:
            return int(lk == tk and lt.size == tt.size
                       and (lt.int_encoding & B.INT_SIGNED) == (tt.int_encoding & B.INT_SIGNED))
        if lk == B.KIND_PTR:
            if lk != tk:
                return 0
            behind_ptr = True
            local_id, targ_id = lt.type, tt.type
        elif lk == B.KIND_ARRAY:
            if lk != tk or lt.array[2] != tt.array[2]:
                return 0
            local_id, targ_id = lt.array[0], tt.array[0]
        elif lk == B.KIND_FUNC_PROTO:
            if lk != tk or len(lt.members) != len(tt.members):
                return 0
            for (_ln, lp), (_tn, tp) in zip(lt.members, tt.members):
                err = types_match(local_btf, lp, targ_btf, tp, behind_ptr, level - 1)
                if err <= 0:
                    return err
            local_id, targ_id = lt.type, tt.type
        else:
            return 0
    return -1


def _enums_match(lt, tt):
    if lt.size != tt.size or len(lt.members) > len(tt.members):
        return False
    return all(any(_names_match(ln, tn) for tn, _tv in tt.members) for ln, _lv in lt.members)


def _composites_match(local_btf, lt, targ_btf, tt, behind_ptr, level):
    if len(lt.members) > len(tt.members):
        return 0
    for lname, ltype, _lo, _lb in lt.members:
        matched = False
        for tname, ttype, _to, _tb in tt.members:
            if not _names_match(lname, tname):
                continue
            err = types_match(local_btf, ltype, targ_btf, ttype, behind_ptr, level - 1)
            if err < 0:
                return err
            if err > 0:
                matched = True
                break
        if not matched:
            return 0
    return 1


# --- values -------------------------------------------------------------------------------------

class _Poison(Exception):
    pass


@attrs.define
class _Result:
    orig_val: int = 0
    new_val: int = 0
    poison: bool = False
    validate: bool = True
    fail_memsz_adjust: bool = False
    orig_sz: int = 0
    new_sz: int = 0
    orig_type_id: int = 0
    new_type_id: int = 0


def _field_value(kind, spec):
    """bpf_core_calc_field_relo: (value, memory size, field type id, validate)."""
    if kind == FIELD_EXISTS:
        return (1 if spec else 0), 0, 0, True
    if spec is None:
        raise _Poison
    acc = spec.accessors[-1]
    btf = spec.btf
    if acc.name is None:  # a[n]: the element itself
        size = _size(btf, acc.type_id)
        if size is None:
            raise CoreRelocationError(f"array element type [{acc.type_id}] has no size")
        if kind == FIELD_BYTE_OFFSET:
            return spec.bit_offset // 8, size, acc.type_id, True
        if kind == FIELD_BYTE_SIZE:
            return size, 0, 0, True
        raise CoreRelocationError(f"relocation {KIND_NAMES.get(kind, kind)} cannot apply to an array element")
    _mname, mtype, _off, bit_sz = btf.types[acc.type_id].members[acc.idx]
    field_type_id, mt = _skip(btf, mtype)
    bit_off = spec.bit_offset
    bitfield = bit_sz > 0
    if bitfield:
        if mt is None or mt.kind not in (B.KIND_INT,) + _ENUMS or mt.size not in (1, 2, 4, 8):
            raise CoreRelocationError(f"bitfield {spec.path()} is not of an integer type of 1, 2, 4 or 8 bytes")
        byte_sz = mt.size
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:  # smallest load that holds the bits
            if byte_sz >= 8:
                raise CoreRelocationError(f"bitfield {spec.path()} cannot be read with one 64-bit load")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        size = _size(btf, field_type_id)
        if size is None:
            raise CoreRelocationError(f"field {spec.path()} has no size")
        byte_sz, byte_off, bit_sz = size, bit_off // 8, size * 8
    validate = not bitfield  # the compiler's bitfield layout may differ from ours: only check the rest
    mem_sz, type_id = 0, 0
    if kind == FIELD_BYTE_OFFSET:
        value = byte_off
        if not bitfield:
            mem_sz, type_id = byte_sz, field_type_id
    elif kind == FIELD_BYTE_SIZE:
        value = byte_sz
    elif kind == FIELD_SIGNED:
        value = int((mt.kind in _ENUMS and mt.kind_flag)
                    or (mt.kind == B.KIND_INT and bool(mt.int_encoding & B.INT_SIGNED)))
        validate = True
    elif kind == FIELD_LSHIFT_U64:
        value = 64 - (bit_off + bit_sz - byte_off * 8)
    elif kind == FIELD_RSHIFT_U64:
        value = 64 - bit_sz
        validate = True
    else:
        raise CoreRelocationError(f"unknown relocation kind {kind}")
    return value, mem_sz, type_id, validate


def _type_value(kind, spec):
    if spec is None:
        return 0  # a missing type reads as 0 for every type relocation
    if kind == TYPE_ID_TARGET:
        return spec.root_type_id
    if kind in (TYPE_EXISTS, TYPE_MATCHES):
        return 1
    if kind == TYPE_SIZE:
        size = _size(spec.btf, spec.root_type_id)
        if size is None:
            raise CoreRelocationError(f"type {spec.path()} has no size")
        return size
    raise CoreRelocationError(f"unknown relocation kind {kind}")


def _enumval_value(kind, spec):
    if kind == ENUMVAL_EXISTS:
        return 1 if spec else 0
    if spec is None:
        raise _Poison
    acc = spec.accessors[0]
    t = spec.btf.types[acc.type_id]
    value = t.members[acc.idx][1]
    if t.kind == B.KIND_ENUM:  # btf_enum.val is an s32, widened to u64 with its sign
        value = (value & 0xFFFFFFFF) - ((value & 0x80000000) << 1)
    return value & _U64


def _calc(kind, local, targ):
    """bpf_core_calc_relo: the expected and the new value, or a poison decision."""
    res = _Result()
    try:
        if kind in _FIELD_KINDS:
            res.orig_val, res.orig_sz, res.orig_type_id, res.validate = _field_value(kind, local)
            res.new_val, res.new_sz, res.new_type_id, _ = _field_value(kind, targ)
            if res.orig_sz != res.new_sz:
                ot = local.btf.types[res.orig_type_id]
                nt = targ.btf.types[res.new_type_id]
                # only pointers and unsigned integers read right with another load size
                safe = (ot.kind == B.KIND_PTR and nt.kind == B.KIND_PTR) or (
                    ot.kind == B.KIND_INT and nt.kind == B.KIND_INT
                    and ot.int_encoding != B.INT_SIGNED and nt.int_encoding != B.INT_SIGNED)
                res.fail_memsz_adjust = not safe
        elif kind in _TYPE_KINDS:
            res.orig_val = _type_value(kind, local)
            res.new_val = _type_value(kind, targ)
            res.validate = kind != TYPE_ID_TARGET  # type ids move when objects are linked
        elif kind in _ENUMVAL_KINDS:
            res.orig_val = _enumval_value(kind, local)
            res.new_val = _enumval_value(kind, targ)
        else:
            raise CoreRelocationError(f"unknown relocation kind {kind}")
    except _Poison:
        res.poison = True
    return res


# --- resolving one relocation ---------------------------------------------------------------------

@attrs.define
class _Resolved:
    result: _Result
    local: CoreSpec
    target: CoreSpec = None
    target_name: str = ""
    reason: str = ""


class Relocator:
    """Resolves the relocations of one object against one target (the kernel, or a BTF file).

    Candidates are cached per local type and narrowed by each relocation, as libbpf does for
    one object, so resolve the relocations of one load through one Relocator.
    """

    def __init__(self, local_btf, target_btf=None, kernel_btf_dir=KERNEL_BTF_DIR):
        self.local = local_btf
        self._btf_dir = kernel_btf_dir
        """Where the kernel's BTF is (vmlinux and one file per module); tests point it elsewhere."""
        if target_btf is None:
            self._vmlinux = None
            self._override = None
        else:
            btf = load_btf_file(os.fspath(target_btf)) if not isinstance(target_btf, B.BTF) else target_btf
            name = os.fspath(target_btf) if not isinstance(target_btf, B.BTF) else "target BTF"
            self._override = Target(name, btf)
        self._cands = {}

    def _main_target(self):
        if self._override is not None:
            return self._override
        if self._vmlinux is None:
            global _VMLINUX_TARGET
            path = os.path.join(self._btf_dir, "vmlinux")
            try:
                vmlinux = B.load_vmlinux() if self._btf_dir == KERNEL_BTF_DIR else load_btf_file(path)
            except BTFError:
                raise CoreRelocationError(
                    f"CO-RE relocations need the kernel's BTF and {path} is missing or unreadable",
                    "use a kernel built with CONFIG_DEBUG_INFO_BTF=y, or pass target_btf= (a BTF file "
                    "describing the target kernel)") from None
            if _VMLINUX_TARGET is None or _VMLINUX_TARGET.btf is not vmlinux:
                _VMLINUX_TARGET = Target("vmlinux", vmlinux)  # its name index is built once per process
            self._vmlinux = _VMLINUX_TARGET
        return self._vmlinux

    def candidates(self, local_id):
        """bpf_core_find_cands: [(Target, type id)] of the same essential name, vmlinux first."""
        cands = self._cands.get(local_id)
        if cands is not None:
            return cands
        local_type = self.local.types[local_id]
        if not local_type.name:
            raise CoreRelocationError(f"relocation against anonymous type [{local_id}]",
                                      "CO-RE relocates named types only")
        essential = essential_name(local_type.name)
        main = self._main_target()
        cands = [(main, i) for i in main.candidates(essential, local_type)]
        if not cands and self._override is None:  # modules only when vmlinux has none, like libbpf
            for module in kernel_module_targets(main.btf, self._btf_dir):
                cands.extend((module, i) for i in module.candidates(essential, local_type))
        self._cands[local_id] = cands
        return cands

    def resolve(self, relo):
        """bpf_core_calc_relo_insn for one relocation record: a :class:`_Resolved`."""
        try:
            return self._resolve(relo)
        except (IndexError, KeyError, TypeError, AttributeError, ZeroDivisionError) as e:
            # only reachable with a malformed object: BTF ids or members that do not hold together
            raise CoreRelocationError(f"malformed CO-RE record or BTF ({type(e).__name__}: {e})") from None

    def _resolve(self, relo):
        if relo.type_id >= len(self.local.types) or relo.type_id == 0:
            raise CoreRelocationError(f"relocation refers to local type [{relo.type_id}], which does not exist")
        try:
            local = parse_spec(self.local, relo)
        except _BadSpec as e:
            t = self.local.types[relo.type_id]
            raise CoreRelocationError(f"cannot parse {KIND_NAMES.get(relo.kind, relo.kind)} relocation "
                                      f"[{relo.type_id}] {_kind_str(t)} {t.name or '<anon>'} + {relo.access}: {e}") \
                from None
        if relo.kind == TYPE_ID_LOCAL:
            res = _Result(orig_val=relo.type_id, new_val=relo.type_id, validate=False)
            return _Resolved(res, local, local, "local")
        cands = self.candidates(relo.type_id)
        chosen = None
        kept = []
        for target, cand_id in cands:
            matched, cand_spec = spec_match(local, target.btf, cand_id)
            if matched < 0:
                raise CoreRelocationError(f"error matching {local.describe()} against {target.name} "
                                          f"candidate [{cand_id}] (types nest too deep)")
            if not matched:
                continue
            res = _calc(relo.kind, local, cand_spec)
            if chosen is None:
                chosen = _Resolved(res, local, cand_spec, target.name)
            elif cand_spec.bit_offset != chosen.target.bit_offset:
                raise CoreRelocationError(
                    f"{local.describe()}: field offset ambiguity between candidates "
                    f"{chosen.target.describe()} and {cand_spec.describe()} of {target.name}",
                    "make the local type or its ___flavour name specific to one kernel type")
            elif res.poison != chosen.result.poison or res.new_val != chosen.result.new_val:
                raise CoreRelocationError(
                    f"{local.describe()}: relocation decision ambiguity between candidates "
                    f"{chosen.target.describe()} ({_outcome(chosen.result)}) and {cand_spec.describe()} "
                    f"({_outcome(res)})", "make the local type or its ___flavour name specific to one kernel type")
            kept.append((target, cand_id))
        if kept:
            cands[:] = kept  # later relocations of this type only consider the candidates that matched
            return chosen
        res = _calc(relo.kind, local, None)
        return _Resolved(res, local, None, "", _why_missing(local, cands) if res.poison else "")


def _outcome(res):
    return "failure" if res.poison else f"success {res.new_val}"


def _why_missing(local, cands):
    t = local.btf.types[local.root_type_id]
    what = f"{_kind_str(t)} {essential_name(t.name)}"
    if not cands:
        return f"the target has no {what}"
    if local.kind in _ENUMVAL_KINDS:
        return f"no {what} in the target has the value {essential_name(local.accessors[0].name)}"
    fields = "".join(f".{a.name}" if a.name else f"[{a.idx}]" for a in local.accessors[1:])
    return f"no {what} in the target has a compatible field {fields}"


# --- patching instructions ------------------------------------------------------------------------

def _poisoned():
    return I.Instruction(I.CALL, 0, 0, 0, POISON_HELPER_ID)


def _s64(v):
    v &= _U64
    return v - (1 << 64) if v >> 63 else v


def _patch(ins, res):
    """bpf_core_patch_insn: [replacement instruction(s)] for ``ins``, plus a poison reason or ''."""
    if res.poison:
        return ([_poisoned(), _poisoned()] if ins.is_lddw else [_poisoned()]), None
    cls = ins.cls
    orig, new = res.orig_val & _U64, res.new_val & _U64
    out = I.Instruction(ins.code, ins.dst, ins.src, ins.off, ins.imm, ins.reference)
    if cls in (I.BPF_ALU, I.BPF_ALU64):
        if ins.code & I.BPF_X:
            raise CoreRelocationError(f"instruction {ins} takes a register, not an immediate to relocate")
        if res.validate and ins.imm & _U64 != orig:
            raise CoreRelocationError(f"unexpected value in {ins}: expected {_s64(orig)}")
        out.imm = _s32(new)
        return [out], None
    if cls in (I.BPF_LDX, I.BPF_ST, I.BPF_STX):
        if res.validate and ins.off & _U64 != orig:
            raise CoreRelocationError(f"unexpected offset in {ins}: expected {_s64(orig)}")
        if new > _SHRT_MAX:
            raise CoreRelocationError(f"offset {new} does not fit instruction {ins}")
        if res.fail_memsz_adjust:
            return [_poisoned()], (f"the field's size changes from {res.orig_sz} to {res.new_sz} bytes and it is "
                                   "neither a pointer nor an unsigned integer, so the access cannot be resized")
        out.off = new
        if res.new_sz != res.orig_sz:
            if _SIZE_BYTES.get(ins.code & 0x18) != res.orig_sz:
                raise CoreRelocationError(f"{ins} accesses {_SIZE_BYTES.get(ins.code & 0x18)} bytes of a field "
                                          f"of {res.orig_sz}")
            code = _SIZE_CODES.get(res.new_sz)
            if code is None:
                raise CoreRelocationError(f"{ins}: the field's new size {res.new_sz} is no load size")
            out.code = (ins.code & 0xE0) | code | cls
        return [out], None
    if ins.is_lddw:
        if ins.src or ins.off:
            raise CoreRelocationError(f"ldimm64 {ins} has an unexpected form for a CO-RE relocation")
        if res.validate and ins.imm & _U64 != orig:
            raise CoreRelocationError(f"unexpected value in {ins}: expected {orig}")
        out.imm = new
        return [out], None
    raise CoreRelocationError(f"cannot relocate instruction {ins} (code {ins.code:#04x})")


def _s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


# --- programs -------------------------------------------------------------------------------------

@attrs.frozen
class Resolution:
    """How one relocation of one program was resolved (``xnf prog core`` prints these)."""

    program: str
    insn: int
    """Instruction slot in the linked program (as the verifier numbers them)."""
    kind: int
    local: str
    """The local access path, libbpf style: ``[7] struct task_struct.pid (0:1 @ offset 4)``."""
    target: str = None
    """The target's (``vmlinux [123] struct task_struct.pid (0:51 @ offset 2464)``), None if none matched."""
    old: int = None
    new: int = None
    poisoned: bool = False
    reason: str = ""
    """Why the instruction was poisoned, or why resolving failed (``error``)."""
    error: bool = False
    before: str = ""
    after: str = ""
    source: tuple = None
    """``(file, line, col, text)`` of the C source line, from line info."""

    @property
    def kind_name(self):
        return KIND_NAMES.get(self.kind, str(self.kind))

    def describe(self):
        where = f"{self.program} insn {self.insn}"
        if self.source:
            where += f" ({os.path.basename(self.source[0])}:{self.source[1]})"
        head = f"{where}: {self.kind_name} {self.local}"
        if self.error:
            return f"{head}: ERROR {self.reason}"
        if self.poisoned:
            return f"{head}: POISONED ({self.reason}); `{self.before}` -> call {POISON_HELPER_ID:#x}"
        return f"{head} -> {self.target or 'no target'}: {self.old} -> {self.new}; `{self.before}` -> `{self.after}`"

    def as_dict(self):
        d = attrs.asdict(self)
        d["kind"] = self.kind_name
        return d


@attrs.define(eq=False)
class RelocatedProgramSpec(ProgramSpec):
    """A ProgramSpec whose instructions were relocated; ``core_resolutions`` says how."""

    core_resolutions: list = attrs.Factory(list)


def relocate_program(relocator, prog, collect_errors=False):
    """Relocate one linked program: (new instruction list, [Resolution]). The input is not changed.

    A relocation libbpf would refuse raises :class:`CoreRelocationError` naming the program,
    the instruction and its source line; with ``collect_errors`` it is recorded instead.
    """
    insns = list(prog.instructions)
    index_of, slot = {}, 0
    for i, ins in enumerate(insns):
        index_of[slot] = i
        slot += ins.slots
    patched = {}
    out = []
    for relo in prog.core_relos:
        source = prog.source_line(relo.insn_off)
        i = index_of.get(relo.insn_off)
        base = dict(program=prog.name, insn=relo.insn_off, kind=relo.kind, source=source,
                    local=f"[{relo.type_id}] + {relo.access}")
        try:
            if i is None:
                raise CoreRelocationError(f"relocation at instruction {relo.insn_off}, which is not one "
                                          f"(the program has {slot} slots)")
            resolved = relocator.resolve(relo)
            base["local"] = resolved.local.describe()
            current = patched.get(i, [insns[i]])[0]
            new, memsz_reason = _patch(current, resolved.result)
        except CoreRelocationError as e:
            if not collect_errors:
                where = f" ({source[0]}:{source[1]}: {source[3]})" if source else ""
                e.args = (f"program {prog.name!r} instruction {relo.insn_off}{where}: {e.args[0]}",)
                raise
            out.append(Resolution(**base, reason=str(e), error=True, before=str(insns[i]) if i is not None else ""))
            continue
        patched[i] = new
        res = resolved.result
        target = f"{resolved.target_name} {resolved.target.describe()}" if resolved.target is not None else None
        poisoned = res.poison or memsz_reason is not None
        out.append(Resolution(**base, target=target, old=_s64(res.orig_val), new=_s64(res.new_val),
                              poisoned=poisoned, reason=memsz_reason or resolved.reason,
                              before=str(current), after=str(new[0])))
    result = []
    for i, ins in enumerate(insns):
        result.extend(patched.get(i, (ins,)))
    return result, out


def relocate_spec(spec, programs=None, target_btf=None):
    """The spec to load: ``spec`` itself if nothing needs CO-RE, else a shallow copy whose
    programs (those named, default all) carry relocated instructions. ``spec`` is not changed,
    so it can be loaded again against another target."""
    names = [n for n in (spec.programs if programs is None else programs) if spec.programs[n].core_relos]
    if not names:
        return spec
    if spec.btf is None:
        raise CoreRelocationError(f"{spec.path} has CO-RE relocations but no .BTF section")
    relocator = Relocator(spec.btf, target_btf)
    progs = dict(spec.programs)
    for name in names:
        p = spec.programs[name]
        insns, resolutions = relocate_program(relocator, p)
        fields = {a.name: getattr(p, a.name) for a in attrs.fields(ProgramSpec)}
        fields["instructions"] = insns
        progs[name] = RelocatedProgramSpec(**fields, core_resolutions=resolutions)
    return attrs.evolve(spec, programs=progs)


def explain(spec, target_btf=None):
    """Every relocation of every program of ``spec``, resolved (errors recorded, not raised)."""
    if not any(p.core_relos for p in spec.programs.values()):
        return []
    if spec.btf is None:
        raise CoreRelocationError(f"{spec.path} has CO-RE relocations but no .BTF section")
    relocator = Relocator(spec.btf, target_btf)
    out = []
    for p in spec.programs.values():
        out.extend(relocate_program(relocator, p, collect_errors=True)[1])
    return out


_POISON_CALL = re.compile(rf"^(\d+): \(85\) call unknown#{POISON_HELPER_ID}\b", re.M)


def explain_rejection(error, prog):
    """Map a verifier rejection on a poisoned instruction back to its relocation.

    Returns a :class:`PoisonedInstructionError` when ``error``'s log says the verifier reached
    the poison call of a relocation of ``prog``; otherwise ``error`` itself.
    """
    resolutions = getattr(prog, "core_resolutions", None)
    if not resolutions or not isinstance(error, VerifierError) or f"invalid func unknown#{POISON_HELPER_ID}" \
            not in (error.log or ""):
        return error
    calls = _POISON_CALL.findall(error.log)
    if not calls:
        return error
    insn = int(calls[-1])
    for r in resolutions:
        if r.poisoned and r.insn in (insn, insn - 1):  # an ldimm64 is poisoned in both its slots
            return PoisonedInstructionError(error.program, error.errno, error.log, r)
    return error
