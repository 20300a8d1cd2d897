"""Where the fields of a BPF object are: ELF header, section headers, symbols, relocations,
BTF header and type records, .BTF.ext header. Read independently of xnf's reader, so that
crafted-object tests and the fuzzer can overwrite one field and know what they hit.
"""
import struct

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")
_BTF_HDR = struct.Struct("<HBBIIIII")
_TYPE = struct.Struct("<III")

# (name, offset, size) of the Elf64_Ehdr, Elf64_Shdr, Elf64_Sym and Elf64_Rel fields
EHDR_FIELDS = [("e_type", 16, 2), ("e_machine", 18, 2), ("e_version", 20, 4), ("e_shoff", 40, 8),
               ("e_flags", 48, 4), ("e_ehsize", 52, 2), ("e_shentsize", 58, 2), ("e_shnum", 60, 2),
               ("e_shstrndx", 62, 2), ("ei_class", 4, 1), ("ei_data", 5, 1)]
SHDR_FIELDS = [("sh_name", 0, 4), ("sh_type", 4, 4), ("sh_flags", 8, 8), ("sh_offset", 24, 8),
               ("sh_size", 32, 8), ("sh_link", 40, 4), ("sh_info", 44, 4), ("sh_entsize", 56, 8)]
SYM_FIELDS = [("st_name", 0, 4), ("st_info", 4, 1), ("st_shndx", 6, 2), ("st_value", 8, 8), ("st_size", 16, 8)]
REL_FIELDS = [("r_offset", 0, 8), ("r_type", 8, 4), ("r_sym", 12, 4)]
BTF_HDR_FIELDS = [("magic", 0, 2), ("version", 2, 1), ("hdr_len", 4, 4), ("type_off", 8, 4),
                  ("type_len", 12, 4), ("str_off", 16, 4), ("str_len", 20, 4)]
BTF_TYPE_FIELDS = [("name_off", 0, 4), ("vlen", 4, 2), ("kind", 7, 1), ("size_or_type", 8, 4)]
BTF_EXT_FIELDS = [("hdr_len", 4, 4), ("func_info_off", 8, 4), ("func_info_len", 12, 4),
                  ("line_info_off", 16, 4), ("line_info_len", 20, 4)]

# extra bytes after the 12-byte record, per BTF kind, and per vlen entry
_KIND_EXTRA = {1: 4, 3: 12, 14: 4, 17: 4}
_KIND_VLEN = {4: 12, 5: 12, 6: 8, 13: 8, 15: 12, 19: 12}


class Section:
    def __init__(self, index, name, header_at, type_, offset, size, link, info):
        self.index, self.name, self.header_at = index, name, header_at
        self.type, self.offset, self.size, self.link, self.info = type_, offset, size, link, info


def sections(data):
    """Every section of a well-formed object, with where its header is."""
    ehdr = _EHDR.unpack_from(data)
    shoff, shnum, shstrndx = ehdr[6], ehdr[12], ehdr[13]
    raw = [_SHDR.unpack_from(data, shoff + i * _SHDR.size) for i in range(shnum)]
    names_off = raw[shstrndx][4]
    out = []
    for i, h in enumerate(raw):
        name_end = data.index(b"\0", names_off + h[0])
        name = data[names_off + h[0]:name_end].decode()
        out.append(Section(i, name, shoff + i * _SHDR.size, h[1], h[4], h[5], h[6], h[7]))
    return out


def section(data, name):
    return next(s for s in sections(data) if s.name == name)


def symbols(data):
    """[(name, offset of the Elf64_Sym, st_shndx, st_value)]."""
    secs = sections(data)
    symtab = next(s for s in secs if s.type == 2)
    strtab = secs[symtab.link]
    out = []
    for i in range(symtab.size // _SYM.size):
        at = symtab.offset + i * _SYM.size
        name_off, _info, _other, shndx, value, _size = _SYM.unpack_from(data, at)
        start = strtab.offset + name_off
        out.append((data[start:data.index(b"\0", start)].decode(), at, shndx, value))
    return out


def btf_type_offsets(data):
    """File offsets of each BTF type record (index 0 is type id 1)."""
    btf = section(data, ".BTF")
    _m, _v, _f, hdr_len, type_off, type_len, _so, _sl = _BTF_HDR.unpack_from(data, btf.offset)
    pos = btf.offset + hdr_len + type_off
    end = pos + type_len
    out = []
    while pos < end:
        out.append(pos)
        _name, info, _st = _TYPE.unpack_from(data, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        pos += 12 + _KIND_EXTRA.get(kind, 0) + _KIND_VLEN.get(kind, 0) * vlen
    return out


def fields(data):
    """Every structural field as (label, file offset, size): what the fuzzer overwrites."""
    out = [(f"ehdr.{n}", off, size) for n, off, size in EHDR_FIELDS]
    secs = sections(data)
    for s in secs:
        out += [(f"shdr[{s.name}].{n}", s.header_at + off, size) for n, off, size in SHDR_FIELDS]
        if s.type == 2:      # SHT_SYMTAB
            for i in range(s.size // _SYM.size):
                out += [(f"sym[{i}].{n}", s.offset + i * _SYM.size + off, size) for n, off, size in SYM_FIELDS]
        elif s.type == 9:    # SHT_REL
            for i in range(s.size // _REL.size):
                out += [(f"rel[{s.name}][{i}].{n}", s.offset + i * _REL.size + off, size)
                        for n, off, size in REL_FIELDS]
        elif s.name == ".BTF":
            out += [(f"btf.{n}", s.offset + off, size) for n, off, size in BTF_HDR_FIELDS]
            for i, at in enumerate(btf_type_offsets(data)):
                out += [(f"btf.type[{i + 1}].{n}", at + off, size) for n, off, size in BTF_TYPE_FIELDS]
                out.append((f"btf.type[{i + 1}].extra", at + 12, 4))
        elif s.name == ".BTF.ext":
            out += [(f"btf_ext.{n}", s.offset + off, size) for n, off, size in BTF_EXT_FIELDS]
            out.append(("btf_ext.func_info.rec_size", s.offset + 32, 4))
            out.append(("btf_ext.func_info.first_count", s.offset + 40, 4))
        elif s.name in (".maps", "maps") and s.type == 1:
            for pos in range(s.offset, s.offset + s.size, 4):
                out.append((f"{s.name}+{pos - s.offset}", pos, 4))
    return [(label, off, size) for label, off, size in out if off + size <= len(data)]


def put(data, offset, size, value):
    """``data`` (a bytearray) with the little-endian field at ``offset`` set to ``value``."""
    data[offset:offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    return data
