"""Read a clang-built BPF ELF object into an :class:`~xnf.core.object.spec.ObjectSpec` (the *open* phase).

The order follows the data's dependencies: sections and symbols, BTF, functions and
their relocations, maps (``.maps``, legacy ``maps``, global data, ``.kconfig``), then
programs linked with their subprograms.
"""
import bisect
from io import BytesIO
import os
import struct

from xnf.core import uapi as u
from xnf.core.errors import BTFError, ELFError, LinkError, ObjectLimitError
from xnf.core.object import btf as B
from xnf.core.object import insn as I
from xnf.core.object import externs, link, sections, struct_ops
from xnf.core.object.spec import PIN_BY_NAME, Extern, Function, MapSpec, ObjectSpec, ProgramSpec, ZeroData

EM_BPF = 247
SHT_PROGBITS, SHT_SYMTAB, SHT_NOBITS, SHT_REL = 1, 2, 8, 9
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
STT_OBJECT, STT_FUNC, STT_SECTION = 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STV_INTERNAL, STV_HIDDEN = 1, 2
R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_32 = 1, 2, 3, 10

BPF_F_RDONLY_PROG = u.BPF_F_RDONLY_PROG
BPF_F_MMAPABLE = u.BPF_F_MMAPABLE
_DATA_PREFIXES = (".data", ".rodata", ".bss")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")

# Limits on what an object declares, checked before anything that size is allocated: the
# file's own bytes bound everything else (tables are read from it, never sized from a count).
MAX_DATA_SECTION = 1 << 29
"""Largest global-data section (.data, .rodata, .bss, ...): 512 MiB. The kernel refuses array
values over 2 GiB, older verifiers refuse variable offsets past 512 MiB
(BPF_MAX_VAR_OFF), and a .bss declares its size without storing it."""
MAX_KCONFIG = 1 << 16
"""Largest ``.kconfig`` layout: kernel config values are integers and short strings."""
MAX_PROG_INSNS = 1_000_000
"""Most instructions in one linked program: the kernel's BPF_COMPLEXITY_LIMIT_INSNS."""
MAX_LINKED_INSNS = 2_000_000
"""Most instructions of all programs together after linking: each program gets its own
copy of the subprograms it calls, so many programs sharing a large subprogram would
otherwise cost memory the file does not account for."""
MAX_MAP_IN_MAP_DEPTH = 1
"""The kernel supports one level of map-in-map (an inner map cannot hold maps)."""


class _Section:
    __slots__ = ("name", "type", "flags", "offset", "size", "link", "info")

    def __init__(self, name, type_, flags, offset, size, link, info):
        self.name, self.type, self.flags, self.offset = name, type_, flags, offset
        self.size, self.link, self.info = size, link, info


class _Sym:
    __slots__ = ("name", "value", "size", "shndx", "type", "bind", "hidden")

    def __init__(self, name, value, size, shndx, type_, bind, hidden=False):
        self.name, self.value, self.size, self.shndx, self.type, self.bind = name, value, size, shndx, type_, bind
        self.hidden = hidden
        """STV_HIDDEN or STV_INTERNAL visibility (``__hidden``)"""


def load_spec(path, pin_root=None):
    """Parse the BPF object at ``path``. Raises :class:`ELFError` for anything unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ELFError(f"cannot read {path}: {e.strerror}") from None
    return _Reader(path, data).read(pin_root)


class _Reader:
    def __init__(self, path, data):
        self.path = path
        self.data = data
        self.name = os.path.basename(path).split(".")[0]

    # --- phase 1: sections and symbols ------------------------------------------------

    def _open(self):
        # pyelftools: only when an object is opened, not on `import xnf`
        from elftools.common.exceptions import ELFError as PyELFError
        from elftools.elf.elffile import ELFFile

        if self.data[:4] != b"\x7fELF":
            raise ELFError(f"{self.path} is not an ELF file", "pass a BPF object built with clang -target bpf")
        try:
            elf = ELFFile(BytesIO(self.data))
            if elf.elfclass != 64 or not elf.little_endian:
                raise ELFError(f"{self.path} is not a 64-bit little-endian ELF", "build with clang -target bpf")
            if elf["e_machine"] not in ("EM_BPF", "EM_NONE"):
                raise ELFError(f"{self.path} is an ELF for {elf['e_machine']}, not BPF",
                               "build the object with clang -target bpf")
            self.sections = self._read_sections(elf.header)
            symtab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
            if symtab is None:
                raise ELFError(f"{self.path} has no symbol table", "do not strip BPF objects")
            self.symbols = self._read_symbols(symtab)
            self._func_at = {(sym.shndx, sym.value // 8): sym for sym in self.symbols if sym.type == STT_FUNC}
            self.relocs = {}
            for s in self.sections:
                if s.type == SHT_REL:
                    self.relocs[s.info] = [(off, info >> 32, info & 0xFFFFFFFF)
                                           for off, info in _REL.iter_unpack(self._raw(s, _REL.size))]
        except PyELFError as e:
            raise ELFError(f"{self.path} is not a readable ELF object: {e}") from None
        except (struct.error, ValueError, IndexError) as e:
            raise ELFError(f"{self.path} is truncated or corrupt ({e})") from None

    def _read_sections(self, header):
        """Section headers (Elf64_Shdr) from the table pyelftools located; names from shstrtab."""
        off, num, size = header["e_shoff"], header["e_shnum"], header["e_shentsize"]
        if size != _SHDR.size:
            raise ELFError(f"{self.path} declares section headers of {size} bytes (ELF64's are {_SHDR.size})")
        if off + num * size > len(self.data):
            raise ELFError(f"{self.path} is truncated: the section header table ends past the end of the file")
        raw = [_SHDR.unpack_from(self.data, off + i * size) for i in range(num)]
        shstrndx = header["e_shstrndx"]
        if shstrndx >= num:
            raise ELFError(f"{self.path} names section {shstrndx} as its section name table, but has {num}")
        names_hdr = raw[shstrndx]
        if names_hdr[4] + names_hdr[5] > len(self.data):
            raise ELFError(f"{self.path} is truncated: the section name table ends past the end of the file")
        name_at = B.StringReader(self.data[names_hdr[4]:names_hdr[4] + names_hdr[5]],
                                 f"{self.path}: section names", ELFError, errors="replace")
        out = []
        for i, (name_off, type_, flags, _addr, offset, sec_size, sh_link, info, _align, _entsize) in enumerate(raw):
            sec = _Section(name_at(name_off) if i else "", type_, flags, offset, sec_size, sh_link, info)
            if type_ != SHT_NOBITS and offset + sec_size > len(self.data):
                raise ELFError(f"{self.path} is truncated: section {sec.name!r} (offset {offset}, {sec_size} bytes) "
                               f"ends past the end of the file ({len(self.data)} bytes)")
            out.append(sec)
        return out

    def _raw(self, section, entry_size=1):
        """The bytes of ``section`` from the file (a NOBITS section has none to read)."""
        if section.type == SHT_NOBITS and section.size:
            raise ELFError(f"{self.path}: section {section.name!r} has no contents in the file (SHT_NOBITS) "
                           "but xnf needs them", "rebuild the object with clang -target bpf")
        if section.size % entry_size:
            raise ELFError(f"{self.path}: section {section.name!r} is {section.size} bytes, not a whole number "
                           f"of {entry_size}-byte entries")
        return self.data[section.offset:section.offset + section.size]

    def _section_at(self, idx, what):
        if not 0 <= idx < len(self.sections):
            raise ELFError(f"{self.path}: {what} names section {idx}, but the object has {len(self.sections)}")
        return self.sections[idx]

    def _read_symbols(self, symtab):
        """Elf64_Sym entries, read directly: pyelftools' per-entry parsing dominates load time."""
        strtab = self._raw(self._section_at(symtab.link, "the symbol table's string table"))
        name_at = B.StringReader(strtab, f"{self.path}: symbol names", ELFError, errors="replace")
        out = []
        for name_off, info, other, shndx, value, size in _SYM.iter_unpack(self._raw(symtab, _SYM.size)):
            out.append(_Sym(name_at(name_off), value, size, shndx if shndx < 0xFF00 else 0, info & 0xF, info >> 4,
                            other & 3 in (STV_INTERNAL, STV_HIDDEN)))
        return out

    def _symbol(self, idx, where):
        if not 0 <= idx < len(self.symbols):
            raise ELFError(f"{self.path}: relocation at {where} names symbol {idx}, "
                           f"but the symbol table has {len(self.symbols)}")
        return self.symbols[idx]

    def _section_data(self, idx):
        return self._raw(self.sections[idx])

    def _find_section(self, name):
        for i, s in enumerate(self.sections):
            if s.name == name:
                return i
        return None

    # --- the whole read ----------------------------------------------------------------

    def read(self, pin_root):
        try:
            return self._read(pin_root)
        except (struct.error, ValueError, IndexError, KeyError) as e:
            # A check this reader lacks: still report the file, never a bare exception.
            raise ELFError(f"{self.path} is corrupt: {type(e).__name__}: {e}") from None

    def _read(self, pin_root):
        self._open()
        spec = ObjectSpec(path=self.path)
        if pin_root:
            spec.pin_root = pin_root
        lic = self._find_section("license")
        spec.license = self._license(lic) if lic is not None else ""
        ver = self._find_section("version")
        if ver is not None and self.sections[ver].size < 4:
            raise ELFError(f"{self.path}: the version section has {self.sections[ver].size} bytes, not 4")
        spec.kern_version = struct.unpack("<I", self._section_data(ver)[:4])[0] if ver is not None else 0
        self._read_btf(spec)
        self._read_maps(spec)
        self._read_data_maps(spec)
        self._read_struct_ops(spec)
        self._read_functions(spec)
        self._read_programs(spec)
        return spec

    def _license(self, idx):
        raw = self._section_data(idx).split(b"\0")[0]
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise ELFError(f"{self.path}: the license section is not ASCII text ({bytes(raw[:16])!r})",
                           'write char LICENSE[] SEC("license") = "GPL";') from None

    # --- BTF -------------------------------------------------------------------------

    def _read_btf(self, spec):
        idx = self._find_section(".BTF")
        self.btf = None
        self.btf_ext = None
        if idx is None:
            return
        raw = self._section_data(idx)
        self.btf = spec.btf = B.parse(raw)
        ext = self._find_section(".BTF.ext")
        if ext is not None:
            self.btf_ext = spec.btf_ext = B.parse_ext(self._section_data(ext), B.string_section(raw))
        self._fixup_btf()

    def _fixup_btf(self):
        """Fill what clang leaves to the loader: data section sizes, variable offsets, extern linkage.

        As libbpf, a global subprogram of hidden visibility (``__hidden``, as usdt.bpf.h's
        ``bpf_usdt_arg``) gets static linkage, so the verifier checks it with its caller's
        context (a global function's pointer arguments may be NULL)."""
        btf = self.btf
        text = self._find_section(".text")
        hidden = {s.name for s in self.symbols
                  if s.hidden and s.type == STT_FUNC and s.bind != STB_LOCAL and s.shndx == text and text is not None}
        for t in btf.types:
            if t.kind == B.KIND_FUNC and t.linkage == B.FUNC_EXTERN:
                t.linkage = B.FUNC_STATIC
            if t.kind == B.KIND_FUNC and t.linkage == B.FUNC_GLOBAL and t.name in hidden:
                t.linkage = B.FUNC_STATIC
            if t.kind != B.KIND_DATASEC:
                continue
            if t.name == ".kconfig":
                self._layout_kconfig(t)
                continue
            if t.name == ".ksyms":
                self._fixup_ksyms(t)
                continue
            idx = self._find_section(t.name)
            if idx is None:
                continue
            size = t.size = self._data_section_size(idx)
            by_name = {s.name: s for s in self.symbols if s.shndx == idx and s.type == STT_OBJECT}
            for entry in t.members:
                var = btf._type(entry[0])
                sym = by_name.get(var.name)
                if sym is not None:
                    if sym.value + entry[2] > size:
                        raise ELFError(f"{self.path}: variable {var.name!r} at {t.name}+{sym.value} "
                                       f"({entry[2]} bytes) ends past the section ({size} bytes)")
                    entry[1] = sym.value
                if var.kind == B.KIND_VAR and var.linkage == B.VAR_GLOBAL_EXTERN:
                    var.linkage = B.VAR_GLOBAL_ALLOCATED
            t.members.sort(key=lambda e: e[1])

    def _data_section_size(self, idx):
        s = self.sections[idx]
        if s.size > MAX_DATA_SECTION:
            raise ObjectLimitError(
                f"{self.path}: section {s.name!r} declares {s.size} bytes of global data; xnf accepts up to "
                f"{MAX_DATA_SECTION >> 20} MiB per section (older verifiers cannot address past 512 MiB, "
                "the kernel refuses array values over 2 GiB)",
                "keep large state in a map (BPF_MAP_TYPE_ARRAY with max_entries) instead of a global array")
        return s.size

    def _layout_kconfig(self, sec):
        """Give each ``__kconfig`` extern a slot as libbpf does (by alignment, largest first,
        then size, then name), so programs hold the same offsets; the loader fills the values."""
        slots = []
        for entry in sec.members:
            var = self.btf._type(entry[0])
            size = self.btf.size_of(var.type)
            slots.append((-externs.kconfig_align(self.btf, var.type, size), size, var.name, entry, var))
        off = 0
        self.kconfig = {}
        for neg_align, size, name, entry, var in sorted(slots, key=lambda s: s[:3]):
            off = (off - neg_align - 1) // -neg_align * -neg_align
            if off + size > MAX_KCONFIG:
                raise ObjectLimitError(f"{self.path}: the __kconfig externs need more than {MAX_KCONFIG} bytes "
                                       f"(at {name!r}, {size} bytes)",
                                       "kernel config values are integers, bools and short strings")
            entry[1], entry[2] = off, size
            var.linkage = B.VAR_GLOBAL_ALLOCATED
            self.kconfig[name] = (off, size, var.type)
            off += size
        sec.members.sort(key=lambda e: e[1])
        sec.size = max(off, 1)

    def _fixup_ksyms(self, sec):
        """``.ksyms`` holds no data: as libbpf does, its variables become 4-byte ints at
        consecutive offsets and its kfuncs a dummy int variable, so the kernel accepts the BTF."""
        self.ksyms = externs.ksym_externs(self.btf, sec, self.path)
        int_id = next((i for i, t in enumerate(self.btf.types) if t.kind == B.KIND_INT and t.int_bits == 32), None)
        if int_id is None:
            int_id = len(self.btf.types)
            self.btf.types.append(B.Type(kind=B.KIND_INT, name="int", size=4, int_encoding=1, int_bits=32))
        dummy = None
        for i, entry in enumerate(sec.members):
            t = self.btf._type(entry[0])
            if t.kind == B.KIND_FUNC:
                if dummy is None:
                    dummy = len(self.btf.types)
                    self.btf.types.append(B.Type(kind=B.KIND_VAR, name="dummy_ksym", type=int_id,
                                                 linkage=B.VAR_GLOBAL_ALLOCATED))
                externs.name_params(self.btf, t.type)
                entry[0] = dummy
            else:
                t.linkage, t.type = B.VAR_GLOBAL_ALLOCATED, int_id
            entry[1], entry[2] = 4 * i, 4
        sec.size = 4 * len(sec.members)

    # --- maps ------------------------------------------------------------------------

    def _read_maps(self, spec):
        idx = self._find_section(".maps")
        if idx is not None:
            self._read_btf_maps(spec, idx)
        idx = self._find_section("maps")
        if idx is not None:
            self._read_legacy_maps(spec, idx)

    def _map_uint(self, type_id):
        """``int (*name)[N]`` encodes N."""
        _, t = self.btf.resolve(type_id)
        if t.kind != B.KIND_PTR:
            raise BTFError(f"{self.path}: map attribute is not encoded as __uint()")
        _, arr = self.btf.resolve(t.type)
        if arr.kind != B.KIND_ARRAY:
            raise BTFError(f"{self.path}: map attribute is not encoded as __uint()")
        return arr.array[2]

    def _pointee(self, name, attr, type_id, kind=B.KIND_PTR):
        """The type a ``__type()``/``__array()`` member points at, checking each step's kind."""
        _, t = self.btf.resolve(type_id)
        if t.kind != kind:
            raise BTFError(f"{self.path}: map {name!r} attribute {attr!r} is a {t.kind_name}, "
                           f"not a {B.KIND_NAMES[kind]}")
        return t

    def _sized(self, name, what, size):
        if size > 0xFFFFFFFF:
            raise ObjectLimitError(f"{self.path}: map {name!r} {what} is {size} bytes; the kernel's field is 32 bits")
        return size

    def _parse_map_def(self, name, type_id, depth=0):
        btf = self.btf
        _check_map_name(self.path, name)
        _, st = btf.resolve(type_id)
        if st.kind != B.KIND_STRUCT:
            raise BTFError(f"{self.path}: map {name!r} is not a struct in .maps")
        m = MapSpec(name=name, type=0, key_size=0, value_size=0, max_entries=0)
        values_member = None
        for mname, mtype, bit_off, _bf in st.members:
            if mname == "type":
                m.type = self._map_uint(mtype)
            elif mname == "max_entries":
                m.max_entries = self._map_uint(mtype)
            elif mname == "map_flags":
                m.flags = self._map_uint(mtype)
            elif mname == "numa_node":
                m.numa_node = self._map_uint(mtype)
            elif mname == "map_extra":
                m.map_extra = self._map_uint(mtype)
            elif mname == "pinning":
                m.pinning = self._map_uint(mtype)
            elif mname == "key_size":
                m.key_size = self._map_uint(mtype)
            elif mname == "value_size":
                m.value_size = self._map_uint(mtype)
            elif mname in ("key", "value"):
                target = self._pointee(name, mname, mtype).type
                size = self._sized(name, mname, btf.size_of(target))
                if mname == "key":
                    m.key_size, m.btf_key_type_id = size, target
                else:
                    m.value_size, m.btf_value_type_id = size, target
            elif mname == "values":
                values_member = bit_off // 8
                arr = self._pointee(name, mname, mtype, B.KIND_ARRAY)
                ptr = self._pointee(name, mname, arr.array[0])
                inner_id, inner_t = btf.resolve(ptr.type)
                if inner_t.kind == B.KIND_STRUCT and inner_t.members and m.type != u.BPF_MAP_TYPE_PROG_ARRAY:
                    if depth >= MAX_MAP_IN_MAP_DEPTH:
                        raise ObjectLimitError(f"{self.path}: map {name!r} is a map-in-map inside a map-in-map "
                                               "(or refers to itself)", "the kernel supports one level of map-in-map")
                    m.inner = self._parse_map_def(name + ".inner", inner_id, depth + 1)[0]
            else:
                raise BTFError(f"{self.path}: map {name!r} has unknown attribute {mname!r}")
        if m.type in (u.BPF_MAP_TYPE_ARRAY_OF_MAPS, u.BPF_MAP_TYPE_HASH_OF_MAPS, u.BPF_MAP_TYPE_PROG_ARRAY):
            m.value_size = m.value_size or 4
        if m.type in (u.BPF_MAP_TYPE_ARRAY_OF_MAPS, u.BPF_MAP_TYPE_HASH_OF_MAPS) and m.inner is None:
            raise BTFError(f"{self.path}: map-in-map {name!r} declares no inner map (__array(values, ...))")
        return m, values_member

    def _read_btf_maps(self, spec, idx):
        if self.btf is None:
            raise ELFError(f"{self.path} has a .maps section but no BTF", "compile with -g")
        sec_id = self.btf.find(".maps", B.KIND_DATASEC)
        if sec_id is None:
            raise BTFError(f"{self.path}: no BTF DATASEC for .maps")
        starts = []
        for var_id, off, size in self.btf[sec_id].members:
            var = self.btf._type(var_id)
            if var.kind != B.KIND_VAR:
                raise BTFError(f"{self.path}: the .maps DATASEC lists a {var.kind_name}, not a variable")
            m, values_off = self._parse_map_def(var.name, var.type)
            m.section = ".maps"
            spec.maps[m.name] = m
            starts.append((off, size, m, values_off))
        for r_off, sym_idx, _rtype in self.relocs.get(idx, []):
            sym = self._symbol(sym_idx, f".maps+{r_off}")
            for off, size, m, values_off in starts:
                if off <= r_off < off + size:
                    if values_off is None:
                        raise BTFError(f"{self.path}: relocation inside map {m.name!r} outside 'values'")
                    slot, rest = divmod(r_off - off - values_off, 8)
                    if slot < 0 or rest or (m.max_entries and slot >= m.max_entries):
                        raise BTFError(f"{self.path}: relocation at .maps+{r_off} is not a slot of map {m.name!r}'s "
                                       f"values ({m.max_entries} entries)")
                    m.contents.append((slot, sym.name))
                    break

    def _read_legacy_maps(self, spec, idx):
        syms = sorted((s for s in self.symbols if s.shndx == idx and s.type != STT_SECTION and s.name),
                      key=lambda s: s.value)
        raw = self._section_data(idx)
        if not syms:
            return
        def_size = syms[0].size or len(raw) // len(syms)
        if def_size < 20:
            raise ELFError(f"{self.path}: legacy map definitions of {def_size} bytes are too small")
        for s in syms:
            _check_map_name(self.path, s.name)
            chunk = raw[s.value:s.value + def_size]
            if len(chunk) < 20:
                raise ELFError(f"{self.path}: legacy map {s.name!r} at maps+{s.value} ends past the section "
                               f"({len(raw)} bytes)")
            mtype, ksize, vsize, maxe, flags = struct.unpack_from("<5I", chunk)
            m = MapSpec(name=s.name, type=mtype, key_size=ksize, value_size=vsize, max_entries=maxe,
                        flags=flags, section="maps", extra=bytes(chunk[20:]))
            if len(chunk) >= 28:
                # iproute2's struct bpf_elf_map: id, pinning (2 = PIN_GLOBAL_NS), inner_id, inner_idx
                _id, pinning = struct.unpack_from("<2I", chunk, 20)
                if pinning == 2:
                    m.pinning = PIN_BY_NAME
                    m.pin_path = os.path.join("tc", "globals", s.name)
            spec.maps[m.name] = m

    def _read_data_maps(self, spec):
        self.kconfig = getattr(self, "kconfig", {})
        for i, s in enumerate(self.sections):
            name = s.name
            if not name.startswith(_DATA_PREFIXES) or s.type not in (SHT_PROGBITS, SHT_NOBITS):
                continue
            if name.startswith(".rel") or s.size == 0:
                continue
            size = self._data_section_size(i)
            data = ZeroData(size) if s.type == SHT_NOBITS else bytearray(self._section_data(i))
            m = MapSpec(name=name, type=u.BPF_MAP_TYPE_ARRAY, key_size=4, value_size=size,
                        max_entries=1, section=name, data=data)
            m.flags |= BPF_F_MMAPABLE  # libbpf's internal maps all are: read and written after load
            if name.startswith(".rodata"):
                m.flags |= BPF_F_RDONLY_PROG
                m.freeze = True
            if self.btf is not None:
                m.btf_value_type_id = self.btf.find(name, B.KIND_DATASEC) or 0
            spec.maps[name] = m
        if self.kconfig:
            size = self.btf[self.btf.find(".kconfig", B.KIND_DATASEC)].size
            spec.maps[".kconfig"] = MapSpec(
                name=".kconfig", type=u.BPF_MAP_TYPE_ARRAY, key_size=4, value_size=size, max_entries=1,
                flags=BPF_F_RDONLY_PROG | BPF_F_MMAPABLE, section=".kconfig", data=bytearray(size), freeze=True,
                btf_value_type_id=self.btf.find(".kconfig", B.KIND_DATASEC))
            spec.kconfig = dict(self.kconfig)
        spec.externs = self._externs(spec)

    def _externs(self, spec):
        """Every extern, weak or not (from its ELF binding), in libbpf's order: ``.kconfig``
        ones as laid out, then ``.ksyms`` ones by name (a poisoned kfunc call's number is its index)."""
        weak = {s.name for s in self.symbols if s.shndx == SHN_UNDEF and s.bind == STB_WEAK}
        out = {}
        for name, (_off, _size, type_id) in sorted(self.kconfig.items(), key=lambda kv: kv[1][0]):
            out[name] = Extern(name, ".kconfig", self.btf.find(name, B.KIND_VAR) or 0, type_id, name in weak)
        for name in sorted(getattr(self, "ksyms", {})):
            ext = self.ksyms[name]
            ext.weak = name in weak
            out[name] = ext
        return out

    def _read_struct_ops(self, spec):
        for section in struct_ops.SECTIONS:
            idx = self._find_section(section)
            if idx is None:
                continue
            relocs = [(r_off, self._symbol(sym_idx, f"{section}+{r_off}").name)
                      for r_off, sym_idx, _rtype in self.relocs.get(idx, [])]
            for m in struct_ops.read_section(self.path, self.btf, section, self._section_data(idx), relocs):
                _check_map_name(self.path, m.name)
                spec.maps[m.name] = m

    # --- functions and relocations ---------------------------------------------------

    def _insn_index(self, section, slot_index, slot, what):
        i = slot_index.get(slot)
        if i is None:
            raise ELFError(f"{self.path}: {what} at {section}+{slot * 8} is not on an instruction")
        return i

    def _read_functions(self, spec):
        self.entry_points = []
        for idx, s in enumerate(self.sections):
            if s.type != SHT_PROGBITS or not s.flags & SHF_EXECINSTR or not s.size:
                continue
            try:
                insns = I.decode(self._raw(s, 8))
            except ValueError as e:  # an lddw cut off by the section's end
                raise ELFError(f"{self.path}: section {s.name!r}: {e}", "rebuild the object with clang -target bpf") \
                    from None
            slot_of, pos = [], 0
            for ins in insns:
                slot_of.append(pos)
                pos += 2 if ins.code == I.LDDW else 1
            index_at = {slot: i for i, slot in enumerate(slot_of)}
            funcs = sorted((sym for sym in self.symbols if sym.shndx == idx and sym.type == STT_FUNC),
                           key=lambda sym: sym.value)
            if not funcs:
                raise ELFError(f"{self.path}: section {s.name!r} has code but no function symbols")
            func_at = {f.value // 8: f for f in funcs}
            for r_off, sym_idx, rtype in self.relocs.get(idx, []):
                i = self._insn_index(s.name, index_at, r_off // 8, "relocation")
                self._relocate(spec, s.name, insns, i, slot_of[i], self._symbol(sym_idx, f"{s.name}+{r_off}"), rtype)
            for i, ins in enumerate(insns):  # calls clang resolved itself (same section, static)
                if ins.is_bpf_to_bpf_call and ins.reference is None:
                    target = slot_of[i] + ins.imm + 1
                    f = func_at.get(target)
                    if f is None:
                        raise ELFError(f"{self.path}: call at {s.name}+{slot_of[i]} targets no function")
                    ins.reference = ("func", f.name)
            ext = self.btf_ext
            sec_fi = sorted(ext.func_info.get(s.name, []), key=_insn_off) if ext else []
            sec_li = sorted(ext.line_info.get(s.name, []), key=_insn_off) if ext else []
            sec_core = sorted(ext.core_relos.get(s.name, []), key=_insn_off) if ext else []
            for f in funcs:
                start = f.value // 8
                end = (f.value + f.size) // 8 if f.size else pos
                if f.value % 8:
                    raise ELFError(f"{self.path}: function {f.name!r} starts at {s.name}+{f.value}, "
                                   "not on an instruction")
                first = self._insn_index(s.name, index_at, start, f"function {f.name!r}")
                last = bisect.bisect_left(slot_of, end)
                key = f.name
                if key in spec.functions:
                    raise ELFError(f"{self.path}: two functions are named {key!r}", "rename one of them")
                is_prog = s.name != ".text"
                spec.functions[key] = Function(
                    name=f.name, section=s.name, instructions=insns[first:last], is_program=is_prog,
                    func_info=_within(sec_fi, start, end), line_info=_within(sec_li, start, end),
                    core_relos=_within(sec_core, start, end))
                if is_prog:
                    self.entry_points.append(key)

    def _relocate(self, spec, section, insns, i, slot, sym, rtype):
        ins = insns[i]
        target_sec = self._section_at(sym.shndx, f"symbol {sym.name!r}") if sym.shndx else None
        tname = target_sec.name if target_sec is not None else None
        if target_sec is not None and target_sec.flags & SHF_EXECINSTR:
            if target_sec.type != SHT_PROGBITS:
                raise ELFError(f"{self.path}: {section}+{slot}: reference to {sym.name!r} in {tname}, "
                               "an executable section without code (not SHT_PROGBITS)")
            if ins.is_call:
                target = sym.value // 8 + ins.imm + 1
            elif ins.is_lddw:
                target = (sym.value + (ins.imm & 0xFFFFFFFF)) // 8
            else:
                raise ELFError(f"{self.path}: {section}+{slot}: unsupported code relocation to {tname}")
            f = self._func_at.get((sym.shndx, target))
            if f is None:
                raise ELFError(f"{self.path}: {section}+{slot}: reference into {tname} hits no function")
            ins.reference = ("func", f.name)
            return
        if not ins.is_lddw:
            if ins.is_call and sym.shndx == SHN_UNDEF:
                ext = getattr(self, "ksyms", {}).get(sym.name)
                if ext is None or not ext.is_func:
                    raise ELFError(f"{self.path}: {section}+{slot}: call to {sym.name!r}, which is no __ksym "
                                   "kernel function", "declare it: extern ... __ksym;")
                ins.src, ins.reference = I.BPF_PSEUDO_KFUNC_CALL, ("kfunc", sym.name)
                return
            raise ELFError(f"{self.path}: {section}+{slot}: relocation against {sym.name!r} on a non-lddw instruction")
        if tname in (".maps", "maps"):
            if sym.type == STT_SECTION:
                raise ELFError(f"{self.path}: {section}+{slot}: reference to a static map", "make the map global")
            if sym.name not in spec.maps:
                raise ELFError(f"{self.path}: {section}+{slot}: reference to {sym.name!r} in {tname}, "
                               "which defines no such map")
            ins.reference = ("map", sym.name)
            return
        if tname is not None and tname.startswith(_DATA_PREFIXES):
            offset = (0 if sym.type == STT_SECTION else sym.value) + (ins.imm & 0xFFFFFFFF)
            ins.reference = ("data", tname, self._data_offset(spec, section, slot, tname, offset))
            return
        if sym.shndx == SHN_UNDEF:
            if sym.name in getattr(self, "kconfig", {}):
                offset = self.kconfig[sym.name][0] + (ins.imm & 0xFFFFFFFF)
                ins.reference = ("data", ".kconfig", self._data_offset(spec, section, slot, ".kconfig", offset))
                return
            if sym.name in getattr(self, "ksyms", {}):
                ins.reference = ("ksym", sym.name)
                return
            raise ELFError(f"{self.path}: {section}+{slot}: extern {sym.name!r} is neither __kconfig nor __ksym",
                           "declare it with __kconfig or __ksym (and compile with -g for its BTF)")
        raise ELFError(f"{self.path}: {section}+{slot}: relocation against {sym.name!r} in unsupported section {tname!r}")

    def _data_offset(self, spec, section, slot, tname, offset):
        m = spec.maps.get(tname)
        if m is None or not m.is_data:
            raise ELFError(f"{self.path}: {section}+{slot}: reference into section {tname!r}, "
                           "which holds no global data")
        if offset >= m.value_size:
            raise ELFError(f"{self.path}: {section}+{slot}: reference to {tname}+{offset}, past its "
                           f"{m.value_size} bytes")
        return offset

    # --- programs ----------------------------------------------------------------------

    def _read_programs(self, spec):
        total = 0
        for key in self.entry_points:
            fn = spec.functions[key]
            defn, target = sections.match(fn.section)
            try:
                insns, fi, li, core = link.flatten(spec.functions, key, MAX_PROG_INSNS)
            except LinkError as e:
                raise LinkError(f"{self.path}: {e.args[0]}", e.hint) from None
            total += len(insns)
            if total > MAX_LINKED_INSNS:
                raise ObjectLimitError(f"{self.path}: its programs link to more than {MAX_LINKED_INSNS} "
                                       f"instructions in all (at program {key!r})",
                                       "split the object, or call fewer shared subprograms from each program")
            spec.programs[fn.name] = ProgramSpec(
                name=fn.name, section=fn.section, type=defn.prog_type,
                expected_attach_type=defn.attach_type, attach_to=target, target_kind=defn.target,
                flags=defn.flags, license=spec.license, kern_version=spec.kern_version,
                instructions=insns, func_info=fi, line_info=li, core_relos=core)


def _check_map_name(path, name):
    """Map names become pin names (``<pin_root>/<name>``, ``tc/globals/<name>``): refuse any
    that would leave the directory."""
    if not name or "/" in name or ".." in name or "\0" in name:
        raise ELFError(f"{path}: map name {name!r} cannot name a pin (empty, or contains '/', '..' or NUL)",
                       "rename the map in the source")


def _within(records, start, end):
    """The records of one function (``records`` sorted by offset), relative to its start."""
    lo = bisect.bisect_left(records, start, key=_insn_off)
    hi = bisect.bisect_left(records, end, key=_insn_off)
    if not start:
        return records[lo:hi]
    return [r._replace(insn_off=r.insn_off - start) for r in records[lo:hi]]


def _insn_off(record):
    return record.insn_off
