"""How a map spec becomes BPF_MAP_CREATE arguments, by libbpf's rules (``bpf_object__create_map``).

Decided from tables, not from failed tries: map kinds whose kernel code refuses BTF key
and value types get none (libbpf's list), ring buffer sizes are rounded up to a
power-of-two number of pages (``adjust_ringbuf_sz``).
"""
import mmap

from xnf.core import uapi

NO_BTF_KINDS = frozenset({
    uapi.BPF_MAP_TYPE_PROG_ARRAY, uapi.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, uapi.BPF_MAP_TYPE_ARENA,
    uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY, uapi.BPF_MAP_TYPE_CGROUP_ARRAY, uapi.BPF_MAP_TYPE_STACK_TRACE,
    uapi.BPF_MAP_TYPE_ARRAY_OF_MAPS, uapi.BPF_MAP_TYPE_HASH_OF_MAPS, uapi.BPF_MAP_TYPE_DEVMAP,
    uapi.BPF_MAP_TYPE_DEVMAP_HASH, uapi.BPF_MAP_TYPE_CPUMAP, uapi.BPF_MAP_TYPE_XSKMAP,
    uapi.BPF_MAP_TYPE_SOCKMAP, uapi.BPF_MAP_TYPE_SOCKHASH, uapi.BPF_MAP_TYPE_QUEUE,
    uapi.BPF_MAP_TYPE_STACK,
})
"""Kinds created without BTF key/value types: the kernel refuses any (their ``map_check_btf``
is ``map_check_no_btf``). libbpf drops them for the kinds of its table and finds the rest
(prog arrays, reuseport arrays, arenas) by a failed try and a retry; xnf knows them all."""

RINGBUF_KINDS = frozenset({uapi.BPF_MAP_TYPE_RINGBUF, uapi.BPF_MAP_TYPE_USER_RINGBUF})


def btf_types(map_type, key_type_id, value_type_id):
    """The (key, value) BTF type ids to send for a map of ``map_type``."""
    if map_type in NO_BTF_KINDS:
        return 0, 0
    if map_type == uapi.BPF_MAP_TYPE_STRUCT_OPS:
        return key_type_id, 0  # the kernel's value type is given by btf_vmlinux_value_type_id
    return key_type_id, value_type_id


def is_known_kind(map_type):
    """Kinds this table was written for; only others get libbpf's retry without BTF."""
    return map_type in uapi.MAP_TYPE_NAMES


def ringbuf_size(size, page_size=mmap.PAGESIZE):
    """A ring buffer's ``max_entries`` as libbpf sends it: a power-of-two multiple of the page
    size at least ``size`` (unchanged when it already is one, when 0, or when none fits 32 bits)."""
    if size == 0:
        return 0
    if size % page_size == 0 and _pow2(size // page_size):
        return size
    mul = 1
    while mul * page_size <= 0xFFFFFFFF:
        if mul * page_size > size:
            return mul * page_size
        mul <<= 1
    return size


def max_entries(map_type, declared):
    return ringbuf_size(declared) if map_type in RINGBUF_KINDS else declared


def _pow2(n):
    return n > 0 and n & (n - 1) == 0
