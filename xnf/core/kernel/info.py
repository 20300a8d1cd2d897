"""Info about live kernel objects (``BPF_OBJ_GET_INFO_BY_FD``) as plain Python values."""
import ctypes

import attrs

from xnf.core.kernel import syscall

u8, u32, u64 = ctypes.c_uint8, ctypes.c_uint32, ctypes.c_uint64


class bpf_prog_info(ctypes.Structure):
    _fields_ = [("type", u32), ("id", u32), ("tag", u8 * 8), ("jited_prog_len", u32),
                ("xlated_prog_len", u32), ("jited_prog_insns", u64), ("xlated_prog_insns", u64),
                ("load_time", u64), ("created_by_uid", u32), ("nr_map_ids", u32), ("map_ids", u64),
                ("name", ctypes.c_char * 16), ("ifindex", u32), ("gpl_compatible", u32),
                ("netns_dev", u64), ("netns_ino", u64), ("nr_jited_ksyms", u32),
                ("nr_jited_func_lens", u32), ("jited_ksyms", u64), ("jited_func_lens", u64),
                ("btf_id", u32), ("func_info_rec_size", u32), ("func_info", u64),
                ("nr_func_info", u32), ("nr_line_info", u32), ("line_info", u64),
                ("jited_line_info", u64), ("nr_jited_line_info", u32), ("line_info_rec_size", u32),
                ("jited_line_info_rec_size", u32), ("nr_prog_tags", u32), ("prog_tags", u64),
                ("run_time_ns", u64), ("run_cnt", u64), ("recursion_misses", u64),
                ("verified_insns", u32), ("attach_btf_obj_id", u32), ("attach_btf_id", u32)]


class bpf_map_info(ctypes.Structure):
    _fields_ = [("type", u32), ("id", u32), ("key_size", u32), ("value_size", u32),
                ("max_entries", u32), ("map_flags", u32), ("name", ctypes.c_char * 16),
                ("ifindex", u32), ("btf_vmlinux_value_type_id", u32), ("netns_dev", u64),
                ("netns_ino", u64), ("btf_id", u32), ("btf_key_type_id", u32),
                ("btf_value_type_id", u32), ("btf_vmlinux_id", u32), ("map_extra", u64)]


class bpf_link_info(ctypes.Structure):
    _fields_ = [("type", u32), ("id", u32), ("prog_id", u32), ("_pad", u32), ("u", u32 * 16)]


@attrs.frozen
class ProgInfo:
    type: int
    id: int
    tag: str
    name: str
    ifindex: int
    map_ids: tuple
    btf_id: int
    gpl_compatible: bool
    xlated_len: int
    jited_len: int
    run_cnt: int
    run_time_ns: int
    verified_insns: int  # instructions the verifier processed (0 before Linux 5.16)


@attrs.frozen
class MapInfo:
    type: int
    id: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    ifindex: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    map_extra: int


@attrs.frozen
class LinkInfo:
    type: int
    id: int
    prog_id: int
    ifindex: int
    attach_type: int


def prog_info(fd):
    info = bpf_prog_info()
    syscall.obj_get_info_by_fd(fd, info)
    n = info.nr_map_ids
    ids = (u32 * n)() if n else None
    if n:
        info2 = bpf_prog_info(nr_map_ids=n, map_ids=ctypes.addressof(ids))
        syscall.obj_get_info_by_fd(fd, info2)
    return ProgInfo(type=info.type, id=info.id, tag=bytes(info.tag).hex(),
                    name=info.name.decode(errors="replace"), ifindex=info.ifindex,
                    map_ids=tuple(ids) if n else (), btf_id=info.btf_id,
                    gpl_compatible=bool(info.gpl_compatible & 1), xlated_len=info.xlated_prog_len,
                    jited_len=info.jited_prog_len, run_cnt=info.run_cnt, run_time_ns=info.run_time_ns,
                    verified_insns=info.verified_insns)


def map_info(fd):
    info = bpf_map_info()
    syscall.obj_get_info_by_fd(fd, info)
    return MapInfo(type=info.type, id=info.id, name=info.name.decode(errors="replace"),
                   key_size=info.key_size, value_size=info.value_size, max_entries=info.max_entries,
                   flags=info.map_flags, ifindex=info.ifindex, btf_id=info.btf_id,
                   btf_key_type_id=info.btf_key_type_id, btf_value_type_id=info.btf_value_type_id,
                   map_extra=info.map_extra)


def link_info(fd):
    """Link info; ``ifindex``/``attach_type`` are filled for XDP, tcx and netkit links."""
    info = bpf_link_info()
    syscall.obj_get_info_by_fd(fd, info)
    return LinkInfo(type=info.type, id=info.id, prog_id=info.prog_id,
                    ifindex=info.u[0], attach_type=info.u[1])
