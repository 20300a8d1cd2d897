"""Read a clang-built BPF ELF object into an :class:`~xnf.core.spec.ObjectSpec` (the *open* phase).

The order follows the data's dependencies: sections and symbols, BTF, functions and
their relocations, maps (``.maps``, legacy ``maps``, global data, ``.kconfig``), then
programs linked with their subprograms.
"""
import bisect
import os
import struct

from xnf.core import btf as B
from xnf.core import insn as I
from xnf.core import link, sections
from xnf.core import uapi as u
from xnf.core.errors import BTFError, ELFError, NotSupportedError
from xnf.core.spec import PIN_BY_NAME, Function, MapSpec, ObjectSpec, ProgramSpec

EM_BPF = 247
SHT_PROGBITS, SHT_SYMTAB, SHT_NOBITS, SHT_REL = 1, 2, 8, 9
SHF_EXECINSTR = 0x4
SHN_UNDEF = 0
STT_OBJECT, STT_FUNC, STT_SECTION = 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
R_BPF_64_64, R_BPF_64_ABS64, R_BPF_64_ABS32, R_BPF_64_32 = 1, 2, 3, 10

BPF_F_RDONLY_PROG = 1 << 7
BPF_F_MMAPABLE = 1 << 10
_DATA_PREFIXES = (".data", ".rodata", ".bss")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")


class _Section:
    __slots__ = ("name", "type", "flags", "offset", "size", "link", "info")

    def __init__(self, name, type_, flags, offset, size, link, info):
        self.name, self.type, self.flags, self.offset = name, type_, flags, offset
        self.size, self.link, self.info = size, link, info


class _Sym:
    __slots__ = ("name", "value", "size", "shndx", "type", "bind")

    def __init__(self, name, value, size, shndx, type_, bind):
        self.name, self.value, self.size, self.shndx, self.type, self.bind = name, value, size, shndx, type_, bind


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
        from io import BytesIO

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
            for s in self.sections:
                if s.type != SHT_NOBITS and s.offset + s.size > len(self.data):
                    raise ELFError(f"{self.path} is truncated: section {s.name!r} ends past the end of the file")
            symtab = next((s for s in self.sections if s.type == SHT_SYMTAB), None)
            if symtab is None:
                raise ELFError(f"{self.path} has no symbol table", "do not strip BPF objects")
            self.symbols = self._read_symbols(symtab)
            self._func_at = {(sym.shndx, sym.value // 8): sym for sym in self.symbols if sym.type == STT_FUNC}
            self.relocs = {}
            for s in self.sections:
                if s.type == SHT_REL:
                    self.relocs[s.info] = [(off, info >> 32, info & 0xFFFFFFFF)
                                                 for off, info in _REL.iter_unpack(self._raw(s))]
        except PyELFError as e:
            raise ELFError(f"{self.path} is not a readable ELF object: {e}") from None
        except (struct.error, ValueError, IndexError) as e:
            raise ELFError(f"{self.path} is truncated or corrupt ({e})") from None

    def _read_sections(self, header):
        """Section headers (Elf64_Shdr) from the table pyelftools located; names from shstrtab."""
        off, num, size = header["e_shoff"], header["e_shnum"], header["e_shentsize"]
        if size != _SHDR.size or off + num * size > len(self.data):
            raise ELFError(f"{self.path} is truncated: the section header table ends past the end of the file")
        raw = [_SHDR.unpack_from(self.data, off + i * size) for i in range(num)]
        names_hdr = raw[header["e_shstrndx"]]
        names = self.data[names_hdr[4]:names_hdr[4] + names_hdr[5]]
        out = []
        for name_off, type_, flags, _addr, offset, sec_size, sh_link, info, _align, _entsize in raw:
            name = names[name_off:names.find(b"\0", name_off)].decode(errors="replace")
            out.append(_Section(name, type_, flags, offset, sec_size, sh_link, info))
        return out

    def _raw(self, section):
        return self.data[section.offset:section.offset + section.size]

    def _read_symbols(self, symtab):
        """Elf64_Sym entries, read directly: pyelftools' per-entry parsing dominates load time."""
        strtab = self._raw(self.sections[symtab.link])
        out = []
        for name_off, info, _other, shndx, value, size in _SYM.iter_unpack(self._raw(symtab)):
            end = strtab.find(b"\0", name_off)
            name = strtab[name_off:end].decode(errors="replace")
            out.append(_Sym(name, value, size, shndx if shndx < 0xFF00 else 0, info & 0xF, info >> 4))
        return out

    def _section_data(self, idx):
        s = self.sections[idx]
        if s.type == SHT_NOBITS:
            return bytes(s.size)
        return self.data[s.offset:s.offset + s.size]

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
            # Corrupt tables (indices, offsets, strings): report the file, never a bare exception.
            raise ELFError(f"{self.path} is corrupt: {type(e).__name__}: {e}") from None

    def _read(self, pin_root):
        self._open()
        spec = ObjectSpec(path=self.path)
        if pin_root:
            spec.pin_root = pin_root
        lic = self._find_section("license")
        spec.license = self._section_data(lic).split(b"\0")[0].decode() if lic is not None else ""
        ver = self._find_section("version")
        spec.kern_version = struct.unpack("<I", self._section_data(ver)[:4])[0] if ver is not None else 0
        self._read_btf(spec)
        self._read_maps(spec)
        self._read_data_maps(spec)
        self._read_functions(spec)
        self._read_programs(spec)
        return spec

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
        """Fill what clang leaves to the loader: data section sizes, variable offsets, extern linkage."""
        btf = self.btf
        for t in btf.types:
            if t.kind == B.KIND_FUNC and t.linkage == B.FUNC_EXTERN:
                t.linkage = B.FUNC_STATIC
            if t.kind != B.KIND_DATASEC:
                continue
            if t.name == ".kconfig":
                self._layout_kconfig(t)
                continue
            idx = self._find_section(t.name)
            if idx is None:
                continue
            t.size = self.sections[idx].size
            by_name = {s.name: s for s in self.symbols if s.shndx == idx and s.type == STT_OBJECT}
            for entry in t.members:
                var = btf[entry[0]]
                sym = by_name.get(var.name)
                if sym is not None:
                    entry[1] = sym.value
                if var.kind == B.KIND_VAR and var.linkage == B.VAR_GLOBAL_EXTERN:
                    var.linkage = B.VAR_GLOBAL_ALLOCATED
            t.members.sort(key=lambda e: e[1])

    def _layout_kconfig(self, sec):
        """Give each ``__kconfig`` extern an aligned slot; the loader fills the values."""
        off = 0
        self.kconfig = {}
        for entry in sec.members:
            var = self.btf[entry[0]]
            size = self.btf.size_of(var.type)
            align = min(size, 8) or 1
            off = (off + align - 1) // align * align
            entry[1], entry[2] = off, size
            var.linkage = B.VAR_GLOBAL_ALLOCATED
            self.kconfig[var.name] = (off, size, var.type)
            off += size
        sec.size = max(off, 1)

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

    def _parse_map_def(self, name, type_id):
        btf = self.btf
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
                _, ptr = btf.resolve(mtype)
                target = ptr.type
                size = btf.size_of(target)
                if mname == "key":
                    m.key_size, m.btf_key_type_id = size, target
                else:
                    m.value_size, m.btf_value_type_id = size, target
            elif mname == "values":
                values_member = bit_off // 8
                _, arr = btf.resolve(mtype)
                _, ptr = btf.resolve(arr.array[0])
                inner_id, inner_t = btf.resolve(ptr.type)
                if inner_t.kind == B.KIND_STRUCT and inner_t.members and m.type != u.BPF_MAP_TYPE_PROG_ARRAY:
                    m.inner = self._parse_map_def(name + ".inner", inner_id)[0]
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
            var = self.btf[var_id]
            m, values_off = self._parse_map_def(var.name, var.type)
            m.section = ".maps"
            spec.maps[m.name] = m
            starts.append((off, size, m, values_off))
        for r_off, sym_idx, _rtype in self.relocs.get(idx, []):
            sym = self.symbols[sym_idx]
            for off, size, m, values_off in starts:
                if off <= r_off < off + size:
                    if values_off is None:
                        raise BTFError(f"{self.path}: relocation inside map {m.name!r} outside 'values'")
                    slot = (r_off - off - values_off) // 8
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
            chunk = raw[s.value:s.value + def_size]
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
            m = MapSpec(name=name, type=u.BPF_MAP_TYPE_ARRAY, key_size=4, value_size=s.size,
                        max_entries=1, section=name, data=bytearray(self._section_data(i)))
            if name.startswith(".rodata"):
                m.flags |= BPF_F_RDONLY_PROG
                m.freeze = True
            else:
                m.flags |= BPF_F_MMAPABLE
            if self.btf is not None:
                m.btf_value_type_id = self.btf.find(name, B.KIND_DATASEC) or 0
            spec.maps[name] = m
        if self.kconfig:
            size = self.btf[self.btf.find(".kconfig", B.KIND_DATASEC)].size
            spec.maps[".kconfig"] = MapSpec(
                name=".kconfig", type=u.BPF_MAP_TYPE_ARRAY, key_size=4, value_size=size, max_entries=1,
                flags=BPF_F_RDONLY_PROG, section=".kconfig", data=bytearray(size), freeze=True,
                btf_value_type_id=self.btf.find(".kconfig", B.KIND_DATASEC))
            spec.kconfig = dict(self.kconfig)

    # --- functions and relocations ---------------------------------------------------

    def _read_functions(self, spec):
        self.entry_points = []
        for idx, s in enumerate(self.sections):
            if s.type != SHT_PROGBITS or not s.flags & SHF_EXECINSTR or not s.size:
                continue
            insns = I.decode(self._section_data(idx))
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
                i = index_at.get(r_off // 8)
                if i is None:
                    raise ELFError(f"{self.path}: relocation at {s.name}+{r_off} is not on an instruction")
                self._relocate(s.name, insns, i, slot_of[i], self.symbols[sym_idx], rtype)
            for i, ins in enumerate(insns):  # calls clang resolved itself (same section, static)
                if ins.is_bpf_to_bpf_call and ins.reference is None:
                    target = slot_of[i] + ins.imm + 1
                    f = func_at.get(target)
                    if f is None:
                        raise ELFError(f"{self.path}: call at {s.name}+{slot_of[i]} targets no function")
                    ins.reference = ("func", f.name)
            sec_fi = self.btf_ext.func_info.get(s.name, []) if self.btf_ext else []
            sec_li = self.btf_ext.line_info.get(s.name, []) if self.btf_ext else []
            sec_core = sorted(self.btf_ext.core_relos.get(s.name, []), key=_insn_off) if self.btf_ext else []
            for f in funcs:
                start = f.value // 8
                end = (f.value + f.size) // 8 if f.size else pos
                first = index_at[start]
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

    def _relocate(self, section, insns, i, slot, sym, rtype):
        ins = insns[i]
        target_sec = self.sections[sym.shndx] if sym.shndx else None
        tname = target_sec.name if target_sec is not None else None
        if target_sec is not None and target_sec.flags & SHF_EXECINSTR:
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
                raise NotSupportedError(f"kfunc calls yet (extern function {sym.name!r} in {section})", by="xnf",
                                        hint="call BPF helpers instead of kfuncs")
            raise ELFError(f"{self.path}: {section}+{slot}: relocation against {sym.name!r} on a non-lddw instruction")
        if tname in (".maps", "maps"):
            if sym.type == STT_SECTION:
                raise ELFError(f"{self.path}: {section}+{slot}: reference to a static map", "make the map global")
            ins.reference = ("map", sym.name)
            return
        if tname is not None and tname.startswith(_DATA_PREFIXES):
            offset = (0 if sym.type == STT_SECTION else sym.value) + (ins.imm & 0xFFFFFFFF)
            ins.reference = ("data", tname, offset)
            return
        if sym.shndx == SHN_UNDEF:
            if sym.name in getattr(self, "kconfig", {}):
                ins.reference = ("data", ".kconfig", self.kconfig[sym.name][0] + (ins.imm & 0xFFFFFFFF))
                return
            raise NotSupportedError(f"extern {sym.name!r}", by="xnf", hint="only __kconfig externs are supported")
        raise ELFError(f"{self.path}: {section}+{slot}: relocation against {sym.name!r} in unsupported section {tname!r}")

    # --- programs ----------------------------------------------------------------------

    def _read_programs(self, spec):
        for key in self.entry_points:
            fn = spec.functions[key]
            defn, target = sections.match(fn.section)
            insns, fi, li, core = link.flatten(spec.functions, key)
            spec.programs[fn.name] = ProgramSpec(
                name=fn.name, section=fn.section, type=defn.prog_type,
                expected_attach_type=defn.attach_type, attach_to=target, target_kind=defn.target,
                flags=defn.flags, license=spec.license, kern_version=spec.kern_version,
                instructions=insns, func_info=fi, line_info=li, core_relos=core)


def _within(records, start, end):
    """The records of one function (``records`` sorted by offset), relative to its start."""
    lo = bisect.bisect_left(records, start, key=_insn_off)
    hi = bisect.bisect_left(records, end, key=_insn_off)
    if not start:
        return records[lo:hi]
    return [r._replace(insn_off=r.insn_off - start) for r in records[lo:hi]]


def _insn_off(record):
    return record.insn_off
