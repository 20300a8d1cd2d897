"""BTF: parse and encode type information (``.BTF``), and read ``.BTF.ext``.

Types are kept as a list indexed by type id (id 0 is ``void``), so that the loader can
edit them (fix data section sizes, extern linkage) and encode them back for BPF_BTF_LOAD;
the kernel's (vmlinux), only read, as a :class:`LazyTypes` that parses a type when it is
first indexed.
Codecs that turn map keys and values into Python objects live in :mod:`xnf.core.object.codec`.
"""
import gc
import os
import struct
import zlib
from array import array
from typing import NamedTuple

import attrs

from xnf.core.errors import BTFError

BTF_MAGIC = 0xEB9F

KIND_NAMES = ["UNKN", "INT", "PTR", "ARRAY", "STRUCT", "UNION", "ENUM", "FWD", "TYPEDEF", "VOLATILE",
              "CONST", "RESTRICT", "FUNC", "FUNC_PROTO", "VAR", "DATASEC", "FLOAT", "DECL_TAG",
              "TYPE_TAG", "ENUM64"]
(KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD, KIND_TYPEDEF,
 KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR, KIND_DATASEC,
 KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64) = range(1, 20)

# BTF_INT_ENCODING bits
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4
# BTF_VAR linkage
VAR_STATIC, VAR_GLOBAL_ALLOCATED, VAR_GLOBAL_EXTERN = 0, 1, 2
# BTF_FUNC linkage
FUNC_STATIC, FUNC_GLOBAL, FUNC_EXTERN = 0, 1, 2

MAX_NESTING = 64
"""Deepest nesting of arrays and members followed; real C types stay far below it."""

MAX_NAME_LEN = 1024
"""Longest type or member name read. The kernel refuses BTF names over KSYM_NAME_LEN (512)."""

MAX_LINE_LEN = 64 * 1024
""".BTF.ext line info quotes source lines; longer ones are a corrupt offset, not C."""


class StringReader:
    """NUL-terminated strings of one string table, read by offset, each decoded once.

    A string longer than ``limit`` (or without its NUL) is an error, and the characters
    decoded in all stay below four times the table plus 64 KiB: offsets into the middle of
    a long string would otherwise cost memory quadratic in the table's size.
    """

    def __init__(self, table, what, error=None, limit=MAX_NAME_LEN, errors="strict"):
        self.table = table
        self.errors = errors
        self.what = what
        self.error = error or BTFError
        self.limit = limit
        self.budget = 4 * len(table) + 65536
        self._cache = {}

    def prefill(self):
        """Decode the whole table at once (one split instead of a find and a decode per name).

        Only for an ASCII table, where byte and character offsets agree; a name over
        ``limit`` is left out, so reading it still fails as above.
        """
        if not self.table.isascii():
            return
        cache, limit, off = self._cache, self.limit, 0
        for text in self.table.decode("ascii").split("\0")[:-1]:
            if len(text) <= limit:
                cache[off] = text
            off += len(text) + 1

    def __call__(self, off):
        text = self._cache.get(off)
        if text is None:
            table = self.table
            if off >= len(table):
                raise self.error(f"{self.what}: string offset {off} is past the string table ({len(table)} bytes)")
            end = table.find(b"\0", off, off + self.limit + 1)
            if end < 0:
                raise self.error(f"{self.what}: the string at offset {off} is unterminated or longer than "
                                 f"{self.limit} bytes")
            self.budget -= end - off
            if self.budget < 0:
                raise self.error(f"{self.what}: strings overlap far more than any compiler emits "
                                 f"(offsets into the middle of long strings); the table is corrupt")
            try:
                text = table[off:end].decode(errors=self.errors)
            except UnicodeDecodeError:
                raise self.error(f"{self.what}: the string at offset {off} is not UTF-8") from None
            self._cache[off] = text
        return text

_MODIFIERS = (KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG)
_SIZED = frozenset((KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT))
"""Kinds whose record holds a size, not a type id."""

#: bytes after the 12-byte record, per kind, and per vlen entry
_KIND_EXTRA = {KIND_INT: 4, KIND_ARRAY: 12, KIND_VAR: 4, KIND_DECL_TAG: 4}
_KIND_VLEN = {KIND_STRUCT: 12, KIND_UNION: 12, KIND_ENUM: 8, KIND_FUNC_PROTO: 8, KIND_DATASEC: 12, KIND_ENUM64: 12}

_HDR = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")
_U32 = struct.Struct("<I")
_3U32 = struct.Struct("<III")
_2U32 = struct.Struct("<II")
_NAME_VAL = struct.Struct("<Ii")


@attrs.define(slots=True)
class Type:
    """One BTF type. ``members`` depends on the kind (see :func:`parse`)."""

    kind: int
    name: str = ""
    size: int = 0
    """Byte size for INT/STRUCT/UNION/ENUM/DATASEC/FLOAT; for reference kinds, see ``type``."""
    type: int = 0
    """Referenced type id (PTR, TYPEDEF, modifiers, FUNC, VAR, DECL_TAG)."""
    kind_flag: bool = False
    int_encoding: int = 0
    int_offset: int = 0
    int_bits: int = 0
    array: tuple = None
    """(elem_type, index_type, nelems) for ARRAY."""
    members: list = None
    """STRUCT/UNION: [(name, type, bit_offset, bitfield_size)]; ENUM: [(name, value)];
    FUNC_PROTO: [(name, type)]; DATASEC: [[type, offset, size]]."""
    linkage: int = 0
    """VAR linkage, or FUNC linkage (stored in vlen on the wire)."""
    component_idx: int = -1

    @property
    def kind_name(self):
        return KIND_NAMES[self.kind]

    @property
    def vlen(self):
        """The wire's vlen: member count, or a FUNC's linkage."""
        if self.kind == KIND_FUNC:
            return self.linkage
        return len(self.members) if self.members is not None else 0


VOID = Type(kind=0)


class BTF:
    """A parsed BTF blob; ``types[0]`` is void."""

    def __init__(self, types, strings=b"\0"):
        self.types = types
        self.strings = strings
        """The original string table: kept so that offsets in .BTF.ext stay valid."""
        self._by_name = None

    # --- look-ups ---------------------------------------------------------------

    def __getitem__(self, type_id):
        return self.types[type_id]

    def __len__(self):
        return len(self.types)

    def find(self, name, kind=None):
        """Type id of the first type called ``name`` (optionally of ``kind``), or None."""
        if self._by_name is None:
            self._by_name = without_gc(self._name_index)
        return self._by_name.get((name, kind))

    def _name_index(self):
        by_name = {}
        for i, type_name, type_kind in self.named():
            by_name.setdefault((type_name, type_kind), i)
            by_name.setdefault((type_name, None), i)
        return by_name

    def named(self, start=0):
        """(type id, name, kind) of each named type from ``start`` on, in id order; of
        :class:`LazyTypes`, without parsing them."""
        types = self.types
        if isinstance(types, LazyTypes):
            names, kinds = types.names, types.kinds
            return ((i, names[i], kinds[i]) for i in range(start, len(names)) if names[i])
        return ((i, types[i].name, types[i].kind) for i in range(start, len(types)) if types[i].name)

    def resolve(self, type_id):
        """Skip typedefs and qualifiers; returns (type_id, Type). A cycle is a BTFError."""
        start = type_id
        t = self._type(type_id)
        for _ in range(len(self.types)):
            if t.kind not in _MODIFIERS:
                return type_id, t
            type_id = t.type
            t = self._type(type_id)
        raise BTFError(f"BTF type [{start}] is part of a cycle of typedefs or qualifiers")

    def _type(self, type_id):
        try:
            return self.types[type_id]
        except IndexError:
            raise BTFError(f"BTF refers to type [{type_id}], past the last type [{len(self.types) - 1}]") from None

    def size_of(self, type_id, _depth=0):
        if _depth > MAX_NESTING:
            raise BTFError(f"BTF type [{type_id}] nests deeper than {MAX_NESTING} levels (a cycle?)")
        type_id, t = self.resolve(type_id)
        if t.kind in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT):
            return t.size
        if t.kind == KIND_PTR:
            return 8
        if t.kind == KIND_ARRAY:
            return self.size_of(t.array[0], _depth + 1) * t.array[2]
        if t.kind == KIND_VAR:
            return self.size_of(t.type, _depth + 1)
        raise BTFError(f"type [{type_id}] {t.kind_name} {t.name!r} has no size")

    def type_name(self, type_id, _depth=0):
        """A C-like name for error messages."""
        if _depth > MAX_NESTING:
            return "..."
        t = self._type(type_id)
        if t.kind == 0:
            return "void"
        if t.kind == KIND_PTR:
            return self.type_name(t.type, _depth + 1) + " *"
        if t.kind == KIND_ARRAY:
            return f"{self.type_name(t.array[0], _depth + 1)}[{t.array[2]}]"
        if t.kind in (KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64):
            return f"{KIND_NAMES[t.kind].lower().rstrip('64')} {t.name}".rstrip()
        if t.kind in _MODIFIERS and not t.name:
            return self.type_name(t.type, _depth + 1)
        return t.name or t.kind_name.lower()

    def enum_values(self, name):
        """{enumerator: value} of a named ENUM or ENUM64."""
        type_id = self.find(name, KIND_ENUM)
        if type_id is None:
            type_id = self.find(name, KIND_ENUM64)
        if type_id is None:
            raise BTFError(f"no enum {name!r} in this BTF")
        return dict(self.types[type_id].members)

    def datasec_var(self, sec_id, var_name):
        """The [type, offset, size] entry of ``var_name`` in a DATASEC, or None."""
        for entry in self.types[sec_id].members:
            if self.types[entry[0]].name == var_name:
                return entry
        return None

    # --- encode -----------------------------------------------------------------

    def encode(self):
        """Encode back into a BTF blob the kernel accepts."""
        strings = _StringTable(self.strings)
        out = []
        for t in self.types[1:]:
            k = t.kind
            info = (t.vlen & 0xFFFF) | (k << 24) | (int(t.kind_flag) << 31)
            size_or_type = t.size if k in (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64,
                                           KIND_DATASEC, KIND_FLOAT) else t.type
            out.append(_TYPE.pack(strings.add(t.name), info, size_or_type))
            if k == KIND_INT:
                out.append(_U32.pack((t.int_encoding << 24) | (t.int_offset << 16) | t.int_bits))
            elif k == KIND_ARRAY:
                out.append(_3U32.pack(*t.array))
            elif k in (KIND_STRUCT, KIND_UNION):
                for name, mtype, bit_off, bf_size in t.members:
                    off = (bf_size << 24) | bit_off if t.kind_flag else bit_off
                    out.append(_3U32.pack(strings.add(name), mtype, off))
            elif k == KIND_ENUM:
                for name, val in t.members:
                    out.append(_U32.pack(strings.add(name)) + struct.pack("<I", val & 0xFFFFFFFF))
            elif k == KIND_ENUM64:
                for name, val in t.members:
                    v = val & 0xFFFFFFFFFFFFFFFF
                    out.append(_3U32.pack(strings.add(name), v & 0xFFFFFFFF, v >> 32))
            elif k == KIND_FUNC_PROTO:
                for name, ptype in t.members:
                    out.append(_2U32.pack(strings.add(name), ptype))
            elif k == KIND_VAR:
                out.append(_U32.pack(t.linkage))
            elif k == KIND_DATASEC:
                for vtype, off, size in t.members:
                    out.append(_3U32.pack(vtype, off, size))
            elif k == KIND_DECL_TAG:
                out.append(struct.pack("<i", t.component_idx))
        type_blob = b"".join(out)
        str_blob = strings.blob()
        hdr = _HDR.pack(BTF_MAGIC, 1, 0, _HDR.size, 0, len(type_blob), len(type_blob), len(str_blob))
        return hdr + type_blob + str_blob



class _StringTable:
    """Strings by offset, starting from an existing table so its offsets do not move."""

    def __init__(self, initial=b"\0"):
        self._offsets = {}
        pos = 0
        for raw in initial.split(b"\0")[:-1]:
            self._offsets.setdefault(raw.decode(errors="replace"), pos)
            pos += len(raw) + 1
        self._offsets.setdefault("", 0)
        self._parts = [initial]
        self._size = len(initial)

    def add(self, s):
        off = self._offsets.get(s)
        if off is None:
            off = self._offsets[s] = self._size
            raw = s.encode() + b"\0"
            self._parts.append(raw)
            self._size += len(raw)
        return off

    def blob(self):
        return b"".join(self._parts)


def without_gc(fn, *args):
    """``fn(*args)`` with the garbage collector paused. For passes over vmlinux's 125k
    types: they make no reference cycles, yet enough objects to set off dozens of
    collections that each scan everything made so far (a third of the parse's time, five
    sixths of the CO-RE name index's)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return fn(*args)
    finally:
        if collecting:
            gc.enable()


def parse(raw):
    """Parse a ``.BTF`` blob (little-endian, as clang emits for ``bpf``/``bpfel``).

    Any malformation raises :class:`BTFError`, never a lower-level exception.
    """
    try:
        return without_gc(_parse, raw)
    except (struct.error, ValueError, IndexError) as e:  # UnicodeDecodeError is a ValueError
        raise BTFError(f"BTF is corrupt: {e}") from None


def _parse(raw):
    pos, end, strs = _layout(raw)
    name_at = StringReader(strs, "BTF")
    name_at.prefill()
    cached_name = name_at._cache.get  # most names repeat (member names): skip the call then
    types = [VOID]
    while pos < end:
        t, pos = _read_type(raw, pos, end, len(types), name_at, cached_name)
        types.append(t)
    if pos != end:
        raise BTFError("BTF type section ends in the middle of a type; the object is truncated")
    return BTF(types, bytes(strs))


def _layout(raw):
    """(where the type section starts, where it ends, the string table) of a ``.BTF`` blob."""
    if len(raw) < _HDR.size:
        raise BTFError(f"BTF is truncated: {len(raw)} bytes, the header alone needs {_HDR.size}")
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = _HDR.unpack_from(raw)
    if magic != BTF_MAGIC:
        if magic == 0x9FEB:
            raise BTFError("big-endian BTF is not supported; build the object with -target bpfel")
        raise BTFError(f"bad BTF magic {magic:#x}")
    if version != 1:
        raise BTFError(f"BTF version {version} is not supported")
    types_start, strs_start = hdr_len + type_off, hdr_len + str_off
    if types_start + type_len > len(raw) or strs_start + str_len > len(raw):
        raise BTFError("BTF section offsets point past the end of the data; the object is truncated")
    return types_start, types_start + type_len, raw[strs_start:strs_start + str_len]


def _read_type(raw, pos, end, type_id, name_at, cached_name):
    """The type whose record starts at ``pos`` (its id ``type_id``, for messages), and
    where the next record starts."""
    if pos + _TYPE.size > end:
        raise BTFError("BTF type section ends in the middle of a type; the object is truncated")
    name_off, info, size_or_type = _TYPE.unpack_from(raw, pos)
    pos += _TYPE.size
    kind = (info >> 24) & 0x1F
    vlen = info & 0xFFFF
    kflag = bool(info >> 31)
    need = _KIND_EXTRA.get(kind, 0) + _KIND_VLEN.get(kind, 0) * vlen
    if pos + need > end:
        # checked before the members are read: vlen is 16 bits of the record, not the data
        raise BTFError(f"BTF type [{type_id}] ({KIND_NAMES[kind] if kind < len(KIND_NAMES) else kind}) "
                       f"declares {vlen} members that end past the type section; the object is truncated")
    name = cached_name(name_off)
    t = Type(kind, name_at(name_off) if name is None else name, 0, 0, kflag)
    if kind in _SIZED:
        t.size = size_or_type
    else:
        t.type = size_or_type
    if kind == KIND_FUNC:  # the commonest kinds first: vmlinux is 44% FUNC, 12% PTR
        t.linkage = vlen
    elif kind == KIND_PTR:
        pass
    elif kind == KIND_INT:
        (v,) = _U32.unpack_from(raw, pos)
        pos += 4
        t.int_encoding, t.int_offset, t.int_bits = (v >> 24) & 0x0F, (v >> 16) & 0xFF, v & 0xFF
    elif kind == KIND_ARRAY:
        t.array = _3U32.unpack_from(raw, pos)
        pos += 12
    elif kind in (KIND_STRUCT, KIND_UNION):
        members = []
        for mname, mtype, off in _3U32.iter_unpack(raw[pos:pos + 12 * vlen]):
            name = cached_name(mname)
            if name is None:
                name = name_at(mname)
            if kflag:
                members.append((name, mtype, off & 0xFFFFFF, off >> 24))
            else:
                members.append((name, mtype, off, 0))
        pos += 12 * vlen
        t.members = members
    elif kind == KIND_ENUM:
        members = []
        signed = kflag
        for _ in range(vlen):
            mname, val = _NAME_VAL.unpack_from(raw, pos)
            pos += 8
            members.append((name_at(mname), val if signed else val & 0xFFFFFFFF))
        t.members = members
    elif kind == KIND_ENUM64:
        members = []
        for _ in range(vlen):
            mname, lo, hi = _3U32.unpack_from(raw, pos)
            pos += 12
            v = lo | (hi << 32)
            if kflag and v >> 63:
                v -= 1 << 64
            members.append((name_at(mname), v))
        t.members = members
    elif kind == KIND_FUNC_PROTO:
        members = []
        for pname, ptype in _2U32.iter_unpack(raw[pos:pos + 8 * vlen]):
            name = cached_name(pname)
            members.append((name_at(pname) if name is None else name, ptype))
        pos += 8 * vlen
        t.members = members
    elif kind == KIND_VAR:
        (t.linkage,) = _U32.unpack_from(raw, pos)
        pos += 4
    elif kind == KIND_DATASEC:
        t.members = [list(_3U32.unpack_from(raw, pos + 12 * i)) for i in range(vlen)]
        pos += 12 * vlen
    elif kind == KIND_DECL_TAG:
        (t.component_idx,) = struct.unpack_from("<i", raw, pos)
        pos += 4
    elif kind not in (KIND_FWD, KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT,
                      KIND_FLOAT, KIND_TYPE_TAG):
        raise BTFError(f"unknown BTF kind {kind} at type id {type_id}")
    return t, pos


class LazyTypes:
    """The types of a big BTF blob (vmlinux: 125k), each parsed when first indexed, as a
    read-only sequence indexed by type id. A CO-RE relocation or a kfunc look-up needs a
    few hundred of them: parsing all cost ~0.2 s, and the garbage collections that then
    scanned the ~0.5M objects made about as much again. One pass reads where each record
    starts, its kind and its name (for :meth:`BTF.find` and the CO-RE name index); a
    record is read as :func:`parse` reads it, with the same checks."""

    def __init__(self, raw, pos, end, strs, cache=False):
        self._raw, self._end = raw, end
        self._name_at = StringReader(strs, "BTF")
        path = _index_path(raw) if cache else None
        index = _read_index(path) if path else None
        if index is None:
            self._name_at.prefill()  # every name is read: one split of the table (not for a few hundred)
            index = without_gc(self._scan, pos)
            if path:
                _write_index(path, *index)
        self.offsets, self.kinds, self.names = index
        self._parsed = [VOID] + [None] * len(self.offsets)
        self.offsets.insert(0, 0)  # void has no record: ids index the tables directly
        self.kinds.insert(0, 0)
        self.names.insert(0, "")

    def _scan(self, pos):
        raw, end, name_at = self._raw, self._end, self._name_at
        cached_name, extra, per_member, unpack = name_at._cache.get, _KIND_EXTRA.get, _KIND_VLEN.get, _2U32.unpack_from
        offsets, kinds, names = array("I"), bytearray(), []
        while pos < end:
            if pos + _TYPE.size > end:
                raise BTFError("BTF type section ends in the middle of a type; the object is truncated")
            name_off, info = unpack(raw, pos)
            kind = (info >> 24) & 0x1F
            if not KIND_INT <= kind <= KIND_ENUM64:
                raise BTFError(f"unknown BTF kind {kind} at type id {len(offsets) + 1}")
            offsets.append(pos)
            kinds.append(kind)
            name = cached_name(name_off)
            names.append(name_at(name_off) if name is None else name)
            pos += _TYPE.size + extra(kind, 0) + per_member(kind, 0) * (info & 0xFFFF)
        if pos != end:
            raise BTFError("BTF type section ends in the middle of a type; the object is truncated")
        return offsets, kinds, names

    def __len__(self):
        return len(self._parsed)

    def __getitem__(self, type_id):
        if isinstance(type_id, slice):
            return [self[i] for i in range(*type_id.indices(len(self)))]
        t = self._parsed[type_id]
        if t is None:
            if type_id < 0:
                type_id += len(self)
            try:
                t, _ = _read_type(self._raw, self.offsets[type_id], self._end, type_id, self._name_at,
                                  self._name_at._cache.get)
            except (struct.error, ValueError, IndexError) as e:
                raise BTFError(f"BTF is corrupt: {e}") from None
            self._parsed[type_id] = t
        return t

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __add__(self, other):
        """Every type, then ``other``'s (split BTF on top of this one): parses them all."""
        return without_gc(list, self) + list(other)


_INDEX_MAGIC, _INDEX_VERSION = b"XNFBTFIX", 1
_INDEX_HDR = struct.Struct("<8sIII")  # magic, version, types, CRC-32 of what follows


def _index_path(raw):
    """Where the record index of the BTF ``raw`` is cached: named by its size and CRC-32,
    so another kernel's BTF never finds this one's index."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "xnf", f"btf-index-{len(raw)}-{zlib.crc32(raw):08x}.bin")


def _read_index(path):
    """(offsets, kinds, names) cached at ``path``; None if missing, unreadable or corrupt, or
    if another user could have written it (root with a user's $XDG_CACHE_HOME)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                return None
            data = f.read()
        magic, version, count, crc = _INDEX_HDR.unpack_from(data)
        body = memoryview(data)[_INDEX_HDR.size:]
        if magic != _INDEX_MAGIC or version != _INDEX_VERSION or zlib.crc32(body) != crc:
            return None
        offsets = array("I")
        offsets.frombytes(body[:4 * count])
        kinds = bytearray(body[4 * count:5 * count])
        names = str(body[5 * count:], "utf-8").split("\0")
    except (OSError, struct.error, ValueError):
        return None
    return (offsets, kinds, names) if len(offsets) == len(kinds) == len(names) == count else None


def _write_index(path, offsets, kinds, names):
    """Cache the index at ``path`` (written whole, then renamed); a read-only home only means
    the next process reads the records again."""
    body = offsets.tobytes() + bytes(kinds) + "\0".join(names).encode()
    tmp = f"{path}.{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(_INDEX_HDR.pack(_INDEX_MAGIC, _INDEX_VERSION, len(offsets), zlib.crc32(body)) + body)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)  # a full disk: no half-written file left behind
        except OSError:
            pass


def parse_lazy(raw, cache=False):
    """:func:`parse`, the types read as they are indexed (see :class:`LazyTypes`); with
    ``cache``, the index of the records is kept under ``$XDG_CACHE_HOME/xnf`` (vmlinux:
    read once per boot instead of once per process)."""
    try:
        pos, end, strs = _layout(raw)
        return BTF(LazyTypes(raw, pos, end, strs, cache), bytes(strs))
    except (struct.error, ValueError, IndexError) as e:
        raise BTFError(f"BTF is corrupt: {e}") from None


def load_vmlinux(path="/sys/kernel/btf/vmlinux"):
    """The running kernel's BTF (read once per process; its types parsed as they are used)."""
    global _VMLINUX
    if _VMLINUX is None:
        try:
            with open(path, "rb") as f:
                _VMLINUX = parse_lazy(f.read(), cache=True)
        except FileNotFoundError:
            raise BTFError(f"{path} does not exist", "the kernel needs CONFIG_DEBUG_INFO_BTF=y") from None
    return _VMLINUX


_VMLINUX = None


# --- .BTF.ext ---------------------------------------------------------------------------

class LineInfo(NamedTuple):
    insn_off: int
    """Instruction slot (not bytes) within the section, later within the program."""
    file: str
    line_text: str
    line: int
    col: int
    file_off: int
    line_off: int


class FuncInfo(NamedTuple):
    insn_off: int
    type_id: int


class CoreRelo(NamedTuple):
    insn_off: int
    type_id: int
    access: str
    kind: int


@attrs.define
class BTFExt:
    """Per-section func info, line info and CO-RE relocations, keyed by section name."""

    func_info: dict = attrs.Factory(dict)
    line_info: dict = attrs.Factory(dict)
    core_relos: dict = attrs.Factory(dict)


def parse_ext(raw, btf_strings):
    """Parse ``.BTF.ext``; ``btf_strings`` is the string section of the matching ``.BTF``."""
    try:
        return _parse_ext(raw, btf_strings)
    except (struct.error, ValueError, IndexError) as e:
        raise BTFError(f".BTF.ext is corrupt: {e}") from None


def _parse_ext(raw, btf_strings):
    if len(raw) < 24:
        raise BTFError(".BTF.ext is truncated")
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", raw)
    if magic != BTF_MAGIC:
        raise BTFError(f"bad .BTF.ext magic {magic:#x}")
    if not 24 <= hdr_len <= len(raw):
        raise BTFError(f".BTF.ext header of {hdr_len} bytes does not fit the section ({len(raw)} bytes)")
    fi_off, fi_len, li_off, li_len = struct.unpack_from("<IIII", raw, 8)
    core_off = core_len = 0
    if hdr_len >= 32:
        core_off, core_len = struct.unpack_from("<II", raw, 24)

    name_at = StringReader(btf_strings, ".BTF.ext", limit=MAX_LINE_LEN)

    def records(what, off, length, rec_min, make):
        out = {}
        if not length:
            return out
        pos = hdr_len + off
        end = pos + length
        if end > len(raw) or length < 4:
            raise BTFError(f".BTF.ext {what} (offset {off}, {length} bytes) ends past the section "
                           f"({len(raw)} bytes); the object is truncated")
        (rec_size,) = _U32.unpack_from(raw, pos)
        if rec_size < rec_min:
            raise BTFError(f".BTF.ext record size {rec_size} is smaller than {rec_min}")
        pos += 4
        while pos < end:
            if pos + 8 > end:
                raise BTFError(f".BTF.ext {what} ends in the middle of a section header")
            sec_off, count = _2U32.unpack_from(raw, pos)
            pos += 8
            if pos + count * rec_size > end:
                raise BTFError(f".BTF.ext {what} declares {count} records of {rec_size} bytes at offset {pos}, "
                               f"past its end ({end})")
            sec = name_at(sec_off)
            out[sec] = [make(pos + i * rec_size) for i in range(count)]
            pos += count * rec_size
        return out

    def func(p):
        insn_off, type_id = _2U32.unpack_from(raw, p)
        return FuncInfo(insn_off // 8, type_id)

    def line(p):
        insn_off, file_off, line_off, line_col = struct.unpack_from("<IIII", raw, p)
        return LineInfo(insn_off // 8, name_at(file_off), name_at(line_off), line_col >> 10, line_col & 0x3FF,
                        file_off, line_off)

    def core(p):
        insn_off, type_id, access_off, kind = struct.unpack_from("<IIII", raw, p)
        return CoreRelo(insn_off // 8, type_id, name_at(access_off), kind)

    return BTFExt(func_info=records("func info", fi_off, fi_len, 8, func),
                  line_info=records("line info", li_off, li_len, 16, line),
                  core_relos=records("CO-RE relocations", core_off, core_len, 16, core))


def string_section(raw):
    """The string table of a ``.BTF`` blob (needed to read ``.BTF.ext``)."""
    _m, _v, _f, hdr_len, _to, _tl, str_off, str_len = _HDR.unpack_from(raw)
    return raw[hdr_len + str_off: hdr_len + str_off + str_len]
