"""The bpf(2) system call: one ctypes layout per ``union bpf_attr`` member, one function per command.

Layouts follow include/uapi/linux/bpf.h. Only the fields a command uses are declared;
the kernel accepts a shorter attr as long as the bytes it does not get are zero.
Every function raises :class:`~xnf.core.errors.BPFError` (or a subclass) on failure
and returns owned :class:`~xnf.core.kernel.fd.FD` objects for new descriptors.
"""
import ctypes
import os
import platform

from xnf.core.errors import BPFError
from xnf.core.kernel.fd import FD
from xnf.core.uapi import (  # noqa: F401 (callers use syscall.BPF_*): enum bpf_cmd, map and file flags
    BPF_ANY, BPF_BTF_GET_FD_BY_ID, BPF_BTF_GET_NEXT_ID, BPF_BTF_LOAD, BPF_EXIST, BPF_F_LOCK, BPF_F_RDONLY,
    BPF_F_WRONLY, BPF_ITER_CREATE, BPF_LINK_CREATE, BPF_LINK_DETACH, BPF_LINK_GET_FD_BY_ID,
    BPF_LINK_GET_NEXT_ID, BPF_LINK_UPDATE, BPF_MAP_CREATE, BPF_MAP_DELETE_ELEM, BPF_MAP_FREEZE,
    BPF_MAP_GET_FD_BY_ID, BPF_MAP_GET_NEXT_ID, BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_AND_DELETE_BATCH,
    BPF_MAP_LOOKUP_AND_DELETE_ELEM, BPF_MAP_LOOKUP_BATCH, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_BATCH,
    BPF_MAP_UPDATE_ELEM, BPF_NOEXIST, BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD, BPF_OBJ_PIN, BPF_PROG_ATTACH,
    BPF_PROG_DETACH, BPF_PROG_GET_FD_BY_ID, BPF_PROG_GET_NEXT_ID, BPF_PROG_LOAD, BPF_PROG_QUERY,
    BPF_PROG_TEST_RUN, BPF_RAW_TRACEPOINT_OPEN)
from xnf.core.uapi import BPF_CMD_NAMES as _COMMAND_NAMES

_NR_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}

u8, u16, u32, s32, u64 = ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64


class _Attr(ctypes.Structure):
    """Base for attr layouts: zero-initialised, with a keep-alive list for buffers."""

    def keep(self, *objs):
        self.__dict__.setdefault("_keep", []).extend(objs)


class MapCreateAttr(_Attr):
    _fields_ = [("map_type", u32), ("key_size", u32), ("value_size", u32), ("max_entries", u32),
                ("map_flags", u32), ("inner_map_fd", u32), ("numa_node", u32),
                ("map_name", ctypes.c_char * 16), ("map_ifindex", u32), ("btf_fd", u32),
                ("btf_key_type_id", u32), ("btf_value_type_id", u32),
                ("btf_vmlinux_value_type_id", u32), ("map_extra", u64)]


class MapElemAttr(_Attr):
    _fields_ = [("map_fd", u32), ("_pad", u32), ("key", u64), ("value", u64), ("flags", u64)]


class MapBatchAttr(_Attr):
    _fields_ = [("in_batch", u64), ("out_batch", u64), ("keys", u64), ("values", u64),
                ("count", u32), ("map_fd", u32), ("elem_flags", u64), ("flags", u64)]


class ProgLoadAttr(_Attr):
    _fields_ = [("prog_type", u32), ("insn_cnt", u32), ("insns", u64), ("license", u64),
                ("log_level", u32), ("log_size", u32), ("log_buf", u64), ("kern_version", u32),
                ("prog_flags", u32), ("prog_name", ctypes.c_char * 16), ("prog_ifindex", u32),
                ("expected_attach_type", u32), ("prog_btf_fd", u32), ("func_info_rec_size", u32),
                ("func_info", u64), ("func_info_cnt", u32), ("line_info_rec_size", u32),
                ("line_info", u64), ("line_info_cnt", u32), ("attach_btf_id", u32),
                ("attach_prog_fd", u32), ("core_relo_cnt", u32), ("fd_array", u64),
                ("core_relos", u64), ("core_relo_rec_size", u32), ("log_true_size", u32)]


class ObjAttr(_Attr):
    _fields_ = [("pathname", u64), ("bpf_fd", u32), ("file_flags", u32), ("path_fd", s32)]


class ProgAttachAttr(_Attr):
    _fields_ = [("target_fd", u32), ("attach_bpf_fd", u32), ("attach_type", u32),
                ("attach_flags", u32), ("replace_bpf_fd", u32), ("relative_fd", u32),
                ("expected_revision", u64)]


class TestRunAttr(_Attr):
    _fields_ = [("prog_fd", u32), ("retval", u32), ("data_size_in", u32), ("data_size_out", u32),
                ("data_in", u64), ("data_out", u64), ("repeat", u32), ("duration", u32),
                ("ctx_size_in", u32), ("ctx_size_out", u32), ("ctx_in", u64), ("ctx_out", u64),
                ("flags", u32), ("cpu", u32), ("batch_size", u32)]


class GetIdAttr(_Attr):
    _fields_ = [("start_id", u32), ("next_id", u32), ("open_flags", u32)]


class InfoAttr(_Attr):
    _fields_ = [("bpf_fd", u32), ("info_len", u32), ("info", u64)]


class ProgQueryAttr(_Attr):
    _fields_ = [("target_fd", u32), ("attach_type", u32), ("query_flags", u32), ("attach_flags", u32),
                ("prog_ids", u64), ("count", u32), ("_pad", u32), ("prog_attach_flags", u64),
                ("link_ids", u64), ("link_attach_flags", u64), ("revision", u64)]


class BtfLoadAttr(_Attr):
    _fields_ = [("btf", u64), ("btf_log_buf", u64), ("btf_size", u32), ("btf_log_size", u32),
                ("btf_log_level", u32), ("btf_log_true_size", u32)]


class LinkCreateAttr(_Attr):
    # The union after ``flags`` is laid out as two u32 and one u64 slot, which covers
    # target_btf_id, iter_info/iter_info_len and tcx/netkit relative_fd + expected_revision.
    _fields_ = [("prog_fd", u32), ("target_fd", u32), ("attach_type", u32), ("flags", u32),
                ("extra0", u32), ("extra1", u32), ("extra2", u64), ("extra3", u64)]


class LinkUpdateAttr(_Attr):
    _fields_ = [("link_fd", u32), ("new_prog_fd", u32), ("flags", u32), ("old_prog_fd", u32)]


class FdAttr(_Attr):
    """Commands that take only one fd (MAP_FREEZE, LINK_DETACH, ITER_CREATE)."""

    _fields_ = [("fd", u32), ("flags", u32)]


class RawTracepointAttr(_Attr):
    _fields_ = [("name", u64), ("prog_fd", u32), ("_pad", u32), ("cookie", u64)]


_libc = ctypes.CDLL(None, use_errno=True)
# A prototyped entry point: arguments convert without per-call ctypes wrappers.
_syscall = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint,
                            use_errno=True)(("syscall", _libc))


def _nr_bpf():
    try:
        return _NR_BPF[platform.machine()]
    except KeyError:
        raise BPFError("bpf", 38, f"no bpf(2) syscall number known for {platform.machine()}") from None


_NR = _nr_bpf()


def bpf(cmd, attr):
    """Issue one bpf(2) command; returns the non-negative result or raises BPFError."""
    return bpf_at(cmd, ctypes.addressof(attr), ctypes.sizeof(attr))


def bpf_at(cmd, attr_addr, attr_size):
    """:func:`bpf` with the attr given by address and size (for prepared, reused attrs)."""
    while True:
        ret = _syscall(_NR, cmd, attr_addr, attr_size)
        if ret >= 0:
            return ret
        err = ctypes.get_errno()
        if err != 4:  # EINTR: retry
            raise BPFError(_COMMAND_NAMES.get(cmd, f"bpf cmd {cmd}"), err)


def addr(buf):
    """The address of a ctypes buffer or bytes-like object kept alive by the caller."""
    if buf is None:
        return 0
    return ctypes.addressof(buf)


def cstr(value):
    """A NUL-terminated buffer for a str path/name."""
    return ctypes.create_string_buffer(os.fsencode(value))


# --- maps -----------------------------------------------------------------------------

def map_create(map_type, key_size, value_size, max_entries, flags=0, name=b"", inner_map_fd=0,
               numa_node=0, ifindex=0, btf_fd=0, btf_key_type_id=0, btf_value_type_id=0,
               btf_vmlinux_value_type_id=0, map_extra=0):
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                         max_entries=max_entries, map_flags=flags, inner_map_fd=inner_map_fd,
                         numa_node=numa_node, map_name=name[:15], map_ifindex=ifindex, btf_fd=btf_fd,
                         btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id,
                         btf_vmlinux_value_type_id=btf_vmlinux_value_type_id, map_extra=map_extra)
    return FD(bpf(BPF_MAP_CREATE, attr))


def _elem(cmd, map_fd, key, value, flags):
    attr = MapElemAttr(map_fd=map_fd, key=addr(key), value=addr(value), flags=flags)
    return bpf(cmd, attr)


def map_lookup_elem(map_fd, key, value, flags=0):
    """Fill ``value`` (a ctypes buffer) for ``key``; raises BPFError(ENOENT) when absent."""
    _elem(BPF_MAP_LOOKUP_ELEM, map_fd, key, value, flags)


def map_update_elem(map_fd, key, value, flags=BPF_ANY):
    _elem(BPF_MAP_UPDATE_ELEM, map_fd, key, value, flags)


def map_delete_elem(map_fd, key):
    _elem(BPF_MAP_DELETE_ELEM, map_fd, key, None, 0)


def map_lookup_and_delete_elem(map_fd, key, value, flags=0):
    _elem(BPF_MAP_LOOKUP_AND_DELETE_ELEM, map_fd, key, value, flags)


def map_get_next_key(map_fd, key, next_key):
    """Write the key after ``key`` (or the first key when ``key`` is None) into ``next_key``."""
    _elem(BPF_MAP_GET_NEXT_KEY, map_fd, key, next_key, 0)


def map_freeze(map_fd):
    bpf(BPF_MAP_FREEZE, FdAttr(fd=map_fd))


def map_batch(cmd, map_fd, in_batch, out_batch, keys, values, count, elem_flags=0):
    """One batch command; returns how many elements the kernel processed.

    ENOENT from a lookup means the end of the map was reached; the processed count is
    still valid, so it is returned with ``done=True`` instead of raised.
    """
    attr = MapBatchAttr(in_batch=addr(in_batch), out_batch=addr(out_batch), keys=addr(keys),
                        values=addr(values), count=count, map_fd=map_fd, elem_flags=elem_flags)
    try:
        bpf(cmd, attr)
    except BPFError as e:
        if e.errno == 2 and cmd in (BPF_MAP_LOOKUP_BATCH, BPF_MAP_LOOKUP_AND_DELETE_BATCH):
            return attr.count, True
        raise
    return attr.count, False


# --- programs -------------------------------------------------------------------------

def prog_load(attr):
    """Load a program from a filled :class:`ProgLoadAttr`; the loader handles logs and retries."""
    return FD(bpf(BPF_PROG_LOAD, attr))


def prog_test_run(prog_fd, data_in=b"", data_out_size=0, repeat=1, ctx_in=None, ctx_out_size=0,
                  flags=0, cpu=0):
    """Run a program on ``data_in``; returns (retval, data_out, ctx_out, duration_ns)."""
    din = ctypes.create_string_buffer(bytes(data_in), len(data_in)) if data_in else None
    dout = ctypes.create_string_buffer(data_out_size) if data_out_size else None
    cin = ctypes.create_string_buffer(bytes(ctx_in), len(ctx_in)) if ctx_in else None
    cout = ctypes.create_string_buffer(ctx_out_size) if ctx_out_size else None
    attr = TestRunAttr(prog_fd=prog_fd, data_size_in=len(data_in), data_size_out=data_out_size,
                       data_in=addr(din), data_out=addr(dout), repeat=repeat,
                       ctx_size_in=len(ctx_in) if ctx_in else 0, ctx_size_out=ctx_out_size,
                       ctx_in=addr(cin), ctx_out=addr(cout), flags=flags, cpu=cpu)
    bpf(BPF_PROG_TEST_RUN, attr)
    out = dout.raw[: attr.data_size_out] if dout is not None else b""
    ctx = cout.raw[: attr.ctx_size_out] if cout is not None else b""
    return attr.retval, out, ctx, attr.duration


def prog_attach(target_fd, prog_fd, attach_type, flags=0, replace_fd=0, relative_fd=0, expected_revision=0):
    bpf(BPF_PROG_ATTACH, ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                                        attach_flags=flags, replace_bpf_fd=replace_fd,
                                        relative_fd=relative_fd, expected_revision=expected_revision))


def prog_detach(target_fd, prog_fd, attach_type, flags=0, relative_fd=0, expected_revision=0):
    bpf(BPF_PROG_DETACH, ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                                        attach_flags=flags, relative_fd=relative_fd,
                                        expected_revision=expected_revision))


def prog_query(target_fd, attach_type, max_progs=64, query_flags=0):
    """Programs and links attached at a hook: (prog_ids, link_ids, attach_flags, revision)."""
    ids = (u32 * max_progs)()
    links = (u32 * max_progs)()
    attr = ProgQueryAttr(target_fd=target_fd, attach_type=attach_type, query_flags=query_flags,
                         prog_ids=addr(ids), link_ids=addr(links), count=max_progs)
    bpf(BPF_PROG_QUERY, attr)
    n = attr.count
    return list(ids[:n]), [i for i in links[:n]], attr.attach_flags, attr.revision


def raw_tracepoint_open(name, prog_fd):
    buf = cstr(name) if name else None
    return FD(bpf(BPF_RAW_TRACEPOINT_OPEN, RawTracepointAttr(name=addr(buf), prog_fd=prog_fd)))


# --- pinning --------------------------------------------------------------------------

def obj_pin(fd, path):
    buf = cstr(path)
    bpf(BPF_OBJ_PIN, ObjAttr(pathname=addr(buf), bpf_fd=fd))


def obj_get(path, flags=0):
    buf = cstr(path)
    return FD(bpf(BPF_OBJ_GET, ObjAttr(pathname=addr(buf), file_flags=flags)))


# --- ids and info ---------------------------------------------------------------------

def _next_id(cmd, start_id):
    attr = GetIdAttr(start_id=start_id)
    try:
        bpf(cmd, attr)
    except BPFError as e:
        if e.errno == 2:
            return None
        raise
    return attr.next_id


def iter_ids(kind):
    """All ids of one object kind ('prog', 'map', 'btf', 'link') currently in the kernel."""
    cmd = {"prog": BPF_PROG_GET_NEXT_ID, "map": BPF_MAP_GET_NEXT_ID,
           "btf": BPF_BTF_GET_NEXT_ID, "link": BPF_LINK_GET_NEXT_ID}[kind]
    current = 0
    while True:
        current = _next_id(cmd, current)
        if current is None:
            return
        yield current


def fd_by_id(kind, obj_id, open_flags=0):
    cmd = {"prog": BPF_PROG_GET_FD_BY_ID, "map": BPF_MAP_GET_FD_BY_ID,
           "btf": BPF_BTF_GET_FD_BY_ID, "link": BPF_LINK_GET_FD_BY_ID}[kind]
    return FD(bpf(cmd, GetIdAttr(start_id=obj_id, open_flags=open_flags)))


def obj_get_info_by_fd(fd, info):
    """Fill a ctypes info struct (see :mod:`xnf.core.kernel.info`); returns the length the kernel wrote."""
    attr = InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info))
    bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    return attr.info_len


# --- BTF ------------------------------------------------------------------------------

def btf_load(raw, log_level=0, log_size=0):
    """Load raw BTF; returns (fd, log). The log is filled only when ``log_level`` is set."""
    data = ctypes.create_string_buffer(bytes(raw), len(raw))
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = BtfLoadAttr(btf=addr(data), btf_size=len(raw), btf_log_buf=addr(log),
                       btf_log_size=log_size, btf_log_level=log_level)
    try:
        return FD(bpf(BPF_BTF_LOAD, attr)), ""
    except BPFError as e:
        e.log = log.value.decode(errors="replace") if log is not None else ""
        raise


# --- links ----------------------------------------------------------------------------

def link_create(prog_fd, target_fd, attach_type, flags=0, target_btf_id=0, relative_fd=0,
                expected_revision=0, iter_info=None):
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type, flags=flags)
    if iter_info is not None:
        attr.keep(iter_info)
        # iter_info (u64) sits at the start of the union, iter_info_len right after it.
        ptr = ctypes.addressof(iter_info)
        attr.extra0, attr.extra1 = ptr & 0xFFFFFFFF, ptr >> 32
        attr.extra2 = ctypes.sizeof(iter_info)
    elif target_btf_id:
        attr.extra0 = target_btf_id
    else:
        attr.extra0 = relative_fd
        attr.extra2 = expected_revision
    return FD(bpf(BPF_LINK_CREATE, attr))


def link_update(link_fd, new_prog_fd, old_prog_fd=0, flags=0):
    bpf(BPF_LINK_UPDATE, LinkUpdateAttr(link_fd=link_fd, new_prog_fd=new_prog_fd,
                                        old_prog_fd=old_prog_fd, flags=flags))


def link_detach(link_fd):
    bpf(BPF_LINK_DETACH, FdAttr(fd=link_fd))


def link_detach_by_id(link_id):
    """Detach the link ``link_id`` (one whose owner is gone or unknown): open it, detach, close."""
    link = fd_by_id("link", link_id)
    try:
        link_detach(link)
    finally:
        link.close()


def iter_create(link_fd):
    return FD(bpf(BPF_ITER_CREATE, FdAttr(fd=link_fd)))
