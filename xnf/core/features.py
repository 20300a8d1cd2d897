"""What the running kernel can do, probed once per process and cached.

Every probe asks the kernel directly (load a tiny program, create a tiny map, attach
a throwaway link) instead of trusting the version number: distributions backport
features and configs disable them. Link probes run in a private network namespace,
so nothing visible is ever attached. Probes need root; without it the attach-kind
probes fall back to the first kernel version that had the feature.
"""
import ctypes
import errno
import functools
import os
import struct

from xnf.core import insn as _insn
from xnf.core import syscall
from xnf.core.errors import BPFError

# Kernel enum values (include/uapi/linux/bpf.h); xnf.core.uapi will generate them.
PROG_TYPES = {
    "socket_filter": 1, "kprobe": 2, "sched_cls": 3, "sched_act": 4, "tracepoint": 5, "xdp": 6,
    "perf_event": 7, "cgroup_skb": 8, "cgroup_sock": 9, "lwt_in": 10, "lwt_out": 11,
    "lwt_xmit": 12, "sock_ops": 13, "sk_skb": 14, "cgroup_device": 15, "sk_msg": 16,
    "raw_tracepoint": 17, "cgroup_sock_addr": 18, "lwt_seg6local": 19, "lirc_mode2": 20,
    "sk_reuseport": 21, "flow_dissector": 22, "cgroup_sysctl": 23,
    "raw_tracepoint_writable": 24, "cgroup_sockopt": 25, "tracing": 26, "struct_ops": 27,
    "ext": 28, "lsm": 29, "sk_lookup": 30, "syscall": 31, "netfilter": 32,
}
# Program types the kernel checks against an expected attach type before verifying.
_EXPECTED_ATTACH = {"cgroup_sock_addr": 10, "cgroup_sockopt": 21, "sk_lookup": 36, "netfilter": 45}

BPF_F_NO_PREALLOC = 1
# name: (type, key_size, value_size, max_entries, flags); inner-map and BTF-only types omitted.
MAP_TYPES = {
    "hash": (1, 4, 8, 1, 0), "array": (2, 4, 8, 1, 0), "prog_array": (3, 4, 4, 1, 0),
    "perf_event_array": (4, 4, 4, 1, 0), "percpu_hash": (5, 4, 8, 1, 0),
    "percpu_array": (6, 4, 8, 1, 0), "stack_trace": (7, 4, 8, 1, 0),
    "cgroup_array": (8, 4, 4, 1, 0), "lru_hash": (9, 4, 8, 1, 0),
    "lru_percpu_hash": (10, 4, 8, 1, 0), "lpm_trie": (11, 8, 8, 1, BPF_F_NO_PREALLOC),
    "devmap": (14, 4, 4, 1, 0), "sockmap": (15, 4, 4, 1, 0), "cpumap": (16, 4, 4, 1, 0),
    "xskmap": (17, 4, 4, 1, 0), "sockhash": (18, 4, 4, 1, 0), "queue": (22, 0, 4, 1, 0),
    "stack": (23, 0, 4, 1, 0), "devmap_hash": (25, 4, 4, 1, 0), "ringbuf": (27, 0, 0, 4096, 0),
    "bloom_filter": (30, 0, 4, 1, 0), "user_ringbuf": (31, 0, 0, 4096, 0),
}
_MAP_IN_MAP = {"array_of_maps": 12, "hash_of_maps": 13}

# Helpers xnf's own programs and network functions rely on.
HELPERS = {
    "map_lookup_elem": 1, "map_update_elem": 2, "map_delete_elem": 3, "ktime_get_ns": 5,
    "trace_printk": 6, "get_prandom_u32": 7, "tail_call": 12, "redirect": 23,
    "perf_event_output": 25, "csum_diff": 28, "xdp_adjust_head": 44, "redirect_map": 51,
    "xdp_adjust_meta": 54, "xdp_adjust_tail": 65, "fib_lookup": 69, "skb_ecn_set_ce": 97,
    "ktime_get_boot_ns": 125, "ringbuf_output": 130, "ringbuf_reserve": 131,
    "ringbuf_submit": 132, "check_mtu": 163, "for_each_map_elem": 164, "timer_init": 169,
    "loop": 181, "skb_set_tstamp": 192,
}

BPF_XDP, BPF_TCX_INGRESS = 37, 46
XDP_FLAGS_SKB_MODE = 1 << 1
_FIRST_VERSION = {"xdp_link": (5, 9), "tcx": (6, 6)}

_GPL = ctypes.create_string_buffer(b"GPL")


@functools.lru_cache(maxsize=None)
def kernel_version():
    """(major, minor, patch) of the running kernel."""
    release = os.uname().release
    nums = []
    for part in release.replace("-", ".").split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        nums.append(int(digits) if digits else 0)
    return tuple(nums + [0] * (3 - len(nums)))


def _program(prog_type, insns, expected_attach_type=0, log_size=0):
    """Try to load a program; returns (FD or None, errno, verifier log)."""
    code = _insn.encode(insns)
    buf = ctypes.create_string_buffer(code, len(code))
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = syscall.ProgLoadAttr(prog_type=prog_type, insn_cnt=len(code) // 8,
                                insns=ctypes.addressof(buf), license=ctypes.addressof(_GPL),
                                expected_attach_type=expected_attach_type,
                                log_level=1 if log else 0, log_size=log_size,
                                log_buf=syscall.addr(log))
    try:
        return syscall.prog_load(attr), 0, ""
    except BPFError as e:
        if e.errno == errno.EPERM:
            raise
        return None, e.errno, log.value.decode(errors="replace") if log is not None else ""


def _ret(value):
    return [_insn.Instruction(0xB7, 0, 0, 0, value), _insn.Instruction(0x95)]


def _type_number(table, name):
    if isinstance(name, int):
        return name
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown name {name!r}; known: {', '.join(sorted(table))}") from None


@functools.lru_cache(maxsize=None)
def have_prog_type(prog_type):
    """Whether programs of this type load. A verifier complaint still means the type exists."""
    number = _type_number(PROG_TYPES, prog_type)
    name = next((k for k, v in PROG_TYPES.items() if v == number), "")
    fd, err, log = _program(number, _ret(0), _EXPECTED_ATTACH.get(name, 0), log_size=4096)
    if fd is not None:
        fd.close()
        return True
    return bool(log.strip())


@functools.lru_cache(maxsize=None)
def have_map_type(map_type):
    """Whether maps of this type can be created (None: cannot be probed without BTF)."""
    if map_type in _MAP_IN_MAP:
        inner = syscall.map_create(2, 4, 4, 1)
        try:
            return _try_map(_MAP_IN_MAP[map_type], 4, 4, 1, 0, inner_map_fd=int(inner))
        finally:
            inner.close()
    if map_type not in MAP_TYPES:
        return None
    return _try_map(*MAP_TYPES[map_type])


def _try_map(map_type, key_size, value_size, max_entries, flags, **kw):
    try:
        syscall.map_create(map_type, key_size, value_size, max_entries, flags, **kw).close()
        return True
    except BPFError as e:
        if e.errno == errno.EPERM:
            raise
        return False


@functools.lru_cache(maxsize=None)
def have_helper(prog_type, helper):
    """Whether a program of ``prog_type`` may call ``helper`` (name or number)."""
    number = _type_number(HELPERS, helper)
    call = [_insn.Instruction(0x85, 0, 0, 0, number)]
    fd, err, log = _program(_type_number(PROG_TYPES, prog_type), call + _ret(0), log_size=65536)
    if fd is not None:
        fd.close()
        return True
    refusals = ("invalid func ", "unknown func ", "program of this type cannot use helper")
    return not any(text in log for text in refusals)


@functools.lru_cache(maxsize=None)
def have_btf():
    """Whether the kernel accepts BTF (one ``int`` type)."""
    strings = b"\0int\0"
    types = struct.pack("<IIII", 1, 1 << 24, 4, 32)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    try:
        syscall.btf_load(header + types + strings)[0].close()
        return True
    except BPFError as e:
        if e.errno == errno.EPERM:
            raise
        return False


def have_vmlinux_btf():
    """Whether the kernel describes itself in BTF (needed for CO-RE and struct_ops)."""
    return os.path.exists("/sys/kernel/btf/vmlinux")


def _link_probe(prog_type, ret, attach_type, flags):
    from xnf.core import netns

    fd, err, _ = _program(prog_type, _ret(ret))
    if fd is None:
        return False
    try:
        with netns.private():
            link = syscall.link_create(fd, 1, attach_type, flags)  # ifindex 1: the private lo
            link.close()
        return True
    except BPFError as e:
        if e.errno == errno.EPERM:
            raise
        return False
    finally:
        fd.close()


@functools.lru_cache(maxsize=None)
def have_xdp_link():
    """XDP through BPF links (Linux 5.9)."""
    return _privileged_or_version("xdp_link", lambda: _link_probe(6, 2, BPF_XDP, XDP_FLAGS_SKB_MODE))


@functools.lru_cache(maxsize=None)
def have_tcx():
    """tc through tcx links with before/after anchors (Linux 6.6)."""
    return _privileged_or_version("tcx", lambda: _link_probe(3, -1, BPF_TCX_INGRESS, 0))


def _privileged_or_version(name, probe):
    try:
        return probe()
    except (BPFError, OSError) as e:
        if e.errno != errno.EPERM:
            raise
        return kernel_version() >= _FIRST_VERSION[name]


def clear_cache():
    """Forget every probe result (tests, or after loading a kernel module)."""
    for fn in (kernel_version, have_prog_type, have_map_type, have_helper, have_btf,
               have_xdp_link, have_tcx):
        fn.cache_clear()


def _probe_all(names, probe):
    out = {}
    for name in names:
        try:
            out[name] = probe(name)
        except BPFError:
            out[name] = None
    return out


def features_report(ifname=None, netns=None):
    """Everything probed, as plain data for ``xnf features [IFACE] [--json]``.

    Values are True/False, or None where the probe could not run (not root).
    With ``ifname``, adds the interface's XDP capabilities.
    """
    def safe(fn):
        try:
            return fn()
        except BPFError:
            return None

    report = {
        "kernel": ".".join(map(str, kernel_version())),
        "release": os.uname().release,
        "privileged": os.geteuid() == 0,
        "btf": {"load": safe(have_btf), "vmlinux": have_vmlinux_btf()},
        "links": {"xdp": have_xdp_link(), "tcx": have_tcx()},
        "program_types": _probe_all(PROG_TYPES, have_prog_type),
        "map_types": _probe_all(list(MAP_TYPES) + list(_MAP_IN_MAP), have_map_type),
        "helpers": {
            "xdp": _probe_all(HELPERS, functools.partial(have_helper, "xdp")),
            "sched_cls": _probe_all(HELPERS, functools.partial(have_helper, "sched_cls")),
        },
    }
    if ifname is not None:
        from xnf.core.attach.xdp import device_capabilities

        report["interface"] = device_capabilities(ifname, netns)
    return report
