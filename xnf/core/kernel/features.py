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

from xnf.core import uapi
from xnf.core.errors import BPFError
from xnf.core.kernel import netns, syscall
from xnf.core.object import insn as _insn

PROG_TYPES = {name: number for number, name in uapi.PROG_TYPE_NAMES.items() if number}
# Program types the kernel checks against an expected attach type before verifying.
_EXPECTED_ATTACH = {"cgroup_sock_addr": uapi.BPF_CGROUP_INET4_CONNECT,
                    "cgroup_sockopt": uapi.BPF_CGROUP_GETSOCKOPT,
                    "sk_lookup": uapi.BPF_SK_LOOKUP, "netfilter": uapi.BPF_NETFILTER}

BPF_F_NO_PREALLOC = uapi.BPF_F_NO_PREALLOC
# name: (key_size, value_size, max_entries, flags); inner-map and BTF-only types omitted.
_MAP_SHAPES = {
    "hash": (4, 8, 1, 0), "array": (4, 8, 1, 0), "prog_array": (4, 4, 1, 0),
    "perf_event_array": (4, 4, 1, 0), "percpu_hash": (4, 8, 1, 0), "percpu_array": (4, 8, 1, 0),
    "stack_trace": (4, 8, 1, 0), "cgroup_array": (4, 4, 1, 0), "lru_hash": (4, 8, 1, 0),
    "lru_percpu_hash": (4, 8, 1, 0), "lpm_trie": (8, 8, 1, BPF_F_NO_PREALLOC),
    "devmap": (4, 4, 1, 0), "sockmap": (4, 4, 1, 0), "cpumap": (4, 4, 1, 0), "xskmap": (4, 4, 1, 0),
    "sockhash": (4, 4, 1, 0), "queue": (0, 4, 1, 0), "stack": (0, 4, 1, 0),
    "devmap_hash": (4, 4, 1, 0), "ringbuf": (0, 0, 4096, 0), "bloom_filter": (0, 4, 1, 0),
    "user_ringbuf": (0, 0, 4096, 0),
}
MAP_TYPES = {name: (getattr(uapi, f"BPF_MAP_TYPE_{name.upper()}"),) + shape
             for name, shape in _MAP_SHAPES.items()}
_MAP_IN_MAP = {"array_of_maps": uapi.BPF_MAP_TYPE_ARRAY_OF_MAPS,
               "hash_of_maps": uapi.BPF_MAP_TYPE_HASH_OF_MAPS}

# Helpers xnf's own programs and network functions rely on.
HELPERS = {name: getattr(uapi, f"BPF_FUNC_{name}") for name in (
    "map_lookup_elem", "map_update_elem", "map_delete_elem", "ktime_get_ns", "trace_printk",
    "get_prandom_u32", "tail_call", "redirect", "perf_event_output", "csum_diff",
    "xdp_adjust_head", "redirect_map", "xdp_adjust_meta", "xdp_adjust_tail", "fib_lookup",
    "skb_ecn_set_ce", "ktime_get_boot_ns", "ringbuf_output", "ringbuf_reserve", "ringbuf_submit",
    "check_mtu", "for_each_map_elem", "timer_init", "loop", "skb_set_tstamp")}

# Kfuncs of vmlinux network functions may call, probed per program type as the helpers are.
KFUNCS = ("bpf_dynptr_from_skb", "bpf_dynptr_from_xdp", "bpf_dynptr_slice", "bpf_xdp_ct_lookup",
          "bpf_skb_ct_lookup", "bpf_xdp_get_xfrm_state", "bpf_rcu_read_lock")

XDP_FLAGS_SKB_MODE = uapi.XDP_FLAGS_SKB_MODE
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
        inner = syscall.map_create(uapi.BPF_MAP_TYPE_ARRAY, 4, 4, 1)
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
def helper_support(prog_type, helper):
    """``available``: a program of ``prog_type`` may call ``helper`` (name or number);
    ``not_for_type``: the kernel has it, but its func_proto for this type does not return
    it (the verifier's "program of this type cannot use helper", "unknown func" before
    6.x); ``missing``: the kernel has no such helper ("invalid func"). The verifier is
    asked with a one-call program, as bpftool's ``feature probe`` does."""
    number = _type_number(HELPERS, helper)
    call = [_insn.Instruction(0x85, 0, 0, 0, number)]
    fd, err, log = _program(_type_number(PROG_TYPES, prog_type), call + _ret(0), log_size=65536)
    if fd is not None:
        fd.close()
        return "available"
    if "invalid func " in log:
        return "missing"
    if "unknown func " in log or "program of this type cannot use helper" in log:
        return "not_for_type"
    return "available"  # refused for its arguments only: the call itself is allowed


@functools.lru_cache(maxsize=None)
def kfunc_support(prog_type, kfunc):
    """``available``: a program of ``prog_type`` may call the vmlinux kfunc ``kfunc``;
    ``not_for_type``: no kfunc set the kernel registered for this type has it (the
    verifier's "calling kernel function ... is not allowed"); ``missing``: vmlinux's BTF has
    no such function (it may be in a module, which is not probed)."""
    from xnf.core.object import btf  # lazy: vmlinux's BTF is read only when kfuncs are probed

    try:
        type_id = btf.load_vmlinux().find(kfunc, btf.KIND_FUNC)
    except btf.BTFError:
        type_id = None
    if not type_id:
        return "missing"
    call = [_insn.Instruction(0x85, 0, uapi.BPF_PSEUDO_KFUNC_CALL, 0, type_id)]
    fd, err, log = _program(_type_number(PROG_TYPES, prog_type), call + _ret(0), log_size=65536)
    if fd is not None:
        fd.close()
        return "available"
    return "not_for_type" if f"calling kernel function {kfunc} is not allowed" in log else "available"


def have_helper(prog_type, helper):
    """Whether a program of ``prog_type`` may call ``helper`` (name or number)."""
    return helper_support(prog_type, helper) == "available"


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
    return _privileged_or_version("xdp_link", lambda: _link_probe(uapi.BPF_PROG_TYPE_XDP, uapi.XDP_PASS, uapi.BPF_XDP,
                                                             XDP_FLAGS_SKB_MODE))


@functools.lru_cache(maxsize=None)
def have_tcx():
    """tc through tcx links with before/after anchors (Linux 6.6), asked with a query of
    lo's tcx ingress hook: the kernels with tcx links answer it, the others (and those
    without CONFIG_NET_XGRESS) refuse the attach type. A probe link's release waited for
    an RCU grace period, ~15 ms of every `xnf run pping` start (issue 14)."""
    return _privileged_or_version("tcx", _tcx_query_probe)


def _tcx_query_probe():
    try:
        syscall.prog_query(1, uapi.BPF_TCX_INGRESS)  # ifindex 1: lo, in every namespace
        return True
    except BPFError as e:
        if e.errno == errno.EPERM:
            raise
        return False


def _privileged_or_version(name, probe):
    try:
        return probe()
    except (BPFError, OSError) as e:
        if e.errno != errno.EPERM:
            raise
        return kernel_version() >= _FIRST_VERSION[name]


def clear_cache():
    """Forget every probe result (tests, or after loading a kernel module)."""
    for fn in (kernel_version, have_prog_type, have_map_type, helper_support, kfunc_support, have_btf,
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


def features_report():
    """Everything probed, as plain data for ``xnf features [--json]``.

    Values are True/False, or None where the probe could not run (not root). What an
    interface offers is asked of the attach layer
    (:func:`xnf.core.attach.xdp.device_capabilities`) or of the drivers
    (:func:`xnf.drivers.report.features_report`): probes sit below attach, which uses them.
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
    }
    hooks = ("xdp", "sched_cls")
    report["helpers"], report["helpers_missing"] = _per_hook(hooks, HELPERS, helper_support)
    report["kfuncs"], report["kfuncs_missing"] = _per_hook(hooks, KFUNCS, kfunc_support)
    return report


def _per_hook(prog_types, names, support):
    """({prog_type: {name: True}} with only the helpers or kfuncs that apply to that type
    (None for every one where the probe cannot run), [those this kernel lacks])."""
    per_type, missing = {}, set()
    for prog_type in prog_types:
        found = _probe_all(names, functools.partial(support, prog_type))
        per_type[prog_type] = {name: True if answer == "available" else None
                               for name, answer in found.items() if answer in ("available", None)}
        missing |= {name for name, answer in found.items() if answer == "missing"}
    return per_type, sorted(missing)
