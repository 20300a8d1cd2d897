"""libbpf's program section names -> program type, expected attach type and load flags.

One table, matched the way libbpf matches it: a name ending in ``+`` matches itself
exactly or followed by ``/anything``; a name ending in ``/`` matches as a prefix; any
other name matches exactly. The first match wins, so more specific names come first.
"""
import functools

import attrs

from xnf.core import uapi as u
from xnf.core.errors import SectionError

BPF_F_SLEEPABLE = u.BPF_F_SLEEPABLE
BPF_F_XDP_HAS_FRAGS = u.BPF_F_XDP_HAS_FRAGS

#: what the part after the prefix names, for programs that attach to a kernel symbol
TARGET_NONE, TARGET_KFUNC, TARGET_ITER, TARGET_TP_BTF, TARGET_PROG, TARGET_STRUCT_OPS = range(6)


@attrs.frozen
class SectionDef:
    name: str
    prog_type: int
    attach_type: int = 0
    flags: int = 0
    target: int = TARGET_NONE


def _d(name, prog_type, attach_type=0, flags=0, target=TARGET_NONE):
    return SectionDef(name, prog_type, attach_type, flags, target)


_T = u
SECTION_DEFS = (
    _d("socket", _T.BPF_PROG_TYPE_SOCKET_FILTER),
    _d("sk_reuseport/migrate", _T.BPF_PROG_TYPE_SK_REUSEPORT, _T.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE),
    _d("sk_reuseport", _T.BPF_PROG_TYPE_SK_REUSEPORT, _T.BPF_SK_REUSEPORT_SELECT),
    _d("kprobe+", _T.BPF_PROG_TYPE_KPROBE),
    _d("uprobe+", _T.BPF_PROG_TYPE_KPROBE),
    _d("uprobe.s+", _T.BPF_PROG_TYPE_KPROBE, flags=BPF_F_SLEEPABLE),
    _d("kretprobe+", _T.BPF_PROG_TYPE_KPROBE),
    _d("uretprobe+", _T.BPF_PROG_TYPE_KPROBE),
    _d("uretprobe.s+", _T.BPF_PROG_TYPE_KPROBE, flags=BPF_F_SLEEPABLE),
    _d("kprobe.multi+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_KPROBE_MULTI),
    _d("kretprobe.multi+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_KPROBE_MULTI),
    _d("kprobe.session+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_KPROBE_SESSION),
    _d("uprobe.multi+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_UPROBE_MULTI),
    _d("uretprobe.multi+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_UPROBE_MULTI),
    _d("uprobe.multi.s+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_UPROBE_MULTI, BPF_F_SLEEPABLE),
    _d("uretprobe.multi.s+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_UPROBE_MULTI, BPF_F_SLEEPABLE),
    _d("uprobe.session+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_UPROBE_SESSION),
    _d("uprobe.session.s+", _T.BPF_PROG_TYPE_KPROBE, _T.BPF_TRACE_UPROBE_SESSION, BPF_F_SLEEPABLE),
    _d("ksyscall+", _T.BPF_PROG_TYPE_KPROBE),
    _d("kretsyscall+", _T.BPF_PROG_TYPE_KPROBE),
    _d("usdt+", _T.BPF_PROG_TYPE_KPROBE),
    _d("usdt.s+", _T.BPF_PROG_TYPE_KPROBE, flags=BPF_F_SLEEPABLE),
    _d("tc/ingress", _T.BPF_PROG_TYPE_SCHED_CLS, _T.BPF_TCX_INGRESS),
    _d("tc/egress", _T.BPF_PROG_TYPE_SCHED_CLS, _T.BPF_TCX_EGRESS),
    _d("tcx/ingress", _T.BPF_PROG_TYPE_SCHED_CLS, _T.BPF_TCX_INGRESS),
    _d("tcx/egress", _T.BPF_PROG_TYPE_SCHED_CLS, _T.BPF_TCX_EGRESS),
    _d("tc", _T.BPF_PROG_TYPE_SCHED_CLS),
    _d("classifier", _T.BPF_PROG_TYPE_SCHED_CLS),
    _d("action", _T.BPF_PROG_TYPE_SCHED_ACT),
    _d("netkit/primary", _T.BPF_PROG_TYPE_SCHED_CLS, _T.BPF_NETKIT_PRIMARY),
    _d("netkit/peer", _T.BPF_PROG_TYPE_SCHED_CLS, _T.BPF_NETKIT_PEER),
    _d("tracepoint+", _T.BPF_PROG_TYPE_TRACEPOINT),
    _d("tp+", _T.BPF_PROG_TYPE_TRACEPOINT),
    _d("raw_tracepoint+", _T.BPF_PROG_TYPE_RAW_TRACEPOINT),
    _d("raw_tp+", _T.BPF_PROG_TYPE_RAW_TRACEPOINT),
    _d("raw_tracepoint.w+", _T.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE),
    _d("raw_tp.w+", _T.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE),
    _d("tp_btf+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_TRACE_RAW_TP, target=TARGET_TP_BTF),
    _d("fentry+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_TRACE_FENTRY, target=TARGET_KFUNC),
    _d("fmod_ret+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_MODIFY_RETURN, target=TARGET_KFUNC),
    _d("fexit+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_TRACE_FEXIT, target=TARGET_KFUNC),
    _d("fentry.s+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_TRACE_FENTRY, BPF_F_SLEEPABLE, TARGET_KFUNC),
    _d("fmod_ret.s+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_MODIFY_RETURN, BPF_F_SLEEPABLE, TARGET_KFUNC),
    _d("fexit.s+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_TRACE_FEXIT, BPF_F_SLEEPABLE, TARGET_KFUNC),
    _d("freplace+", _T.BPF_PROG_TYPE_EXT, target=TARGET_PROG),
    _d("lsm+", _T.BPF_PROG_TYPE_LSM, _T.BPF_LSM_MAC, target=TARGET_KFUNC),
    _d("lsm.s+", _T.BPF_PROG_TYPE_LSM, _T.BPF_LSM_MAC, BPF_F_SLEEPABLE, TARGET_KFUNC),
    _d("lsm_cgroup+", _T.BPF_PROG_TYPE_LSM, _T.BPF_LSM_CGROUP, target=TARGET_KFUNC),
    _d("iter+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_TRACE_ITER, target=TARGET_ITER),
    _d("iter.s+", _T.BPF_PROG_TYPE_TRACING, _T.BPF_TRACE_ITER, BPF_F_SLEEPABLE, TARGET_ITER),
    _d("syscall", _T.BPF_PROG_TYPE_SYSCALL, flags=BPF_F_SLEEPABLE),
    _d("xdp.frags/devmap", _T.BPF_PROG_TYPE_XDP, _T.BPF_XDP_DEVMAP, BPF_F_XDP_HAS_FRAGS),
    _d("xdp/devmap", _T.BPF_PROG_TYPE_XDP, _T.BPF_XDP_DEVMAP),
    _d("xdp.frags/cpumap", _T.BPF_PROG_TYPE_XDP, _T.BPF_XDP_CPUMAP, BPF_F_XDP_HAS_FRAGS),
    _d("xdp/cpumap", _T.BPF_PROG_TYPE_XDP, _T.BPF_XDP_CPUMAP),
    _d("xdp.frags", _T.BPF_PROG_TYPE_XDP, _T.BPF_XDP, BPF_F_XDP_HAS_FRAGS),
    _d("xdp", _T.BPF_PROG_TYPE_XDP, _T.BPF_XDP),
    _d("perf_event", _T.BPF_PROG_TYPE_PERF_EVENT),
    _d("lwt_in", _T.BPF_PROG_TYPE_LWT_IN),
    _d("lwt_out", _T.BPF_PROG_TYPE_LWT_OUT),
    _d("lwt_xmit", _T.BPF_PROG_TYPE_LWT_XMIT),
    _d("lwt_seg6local", _T.BPF_PROG_TYPE_LWT_SEG6LOCAL),
    _d("sockops", _T.BPF_PROG_TYPE_SOCK_OPS, _T.BPF_CGROUP_SOCK_OPS),
    _d("sk_skb/stream_parser", _T.BPF_PROG_TYPE_SK_SKB, _T.BPF_SK_SKB_STREAM_PARSER),
    _d("sk_skb/stream_verdict", _T.BPF_PROG_TYPE_SK_SKB, _T.BPF_SK_SKB_STREAM_VERDICT),
    _d("sk_skb/verdict", _T.BPF_PROG_TYPE_SK_SKB, _T.BPF_SK_SKB_VERDICT),
    _d("sk_skb", _T.BPF_PROG_TYPE_SK_SKB),
    _d("sk_msg", _T.BPF_PROG_TYPE_SK_MSG, _T.BPF_SK_MSG_VERDICT),
    _d("lirc_mode2", _T.BPF_PROG_TYPE_LIRC_MODE2, _T.BPF_LIRC_MODE2),
    _d("flow_dissector", _T.BPF_PROG_TYPE_FLOW_DISSECTOR, _T.BPF_FLOW_DISSECTOR),
    _d("cgroup_skb/ingress", _T.BPF_PROG_TYPE_CGROUP_SKB, _T.BPF_CGROUP_INET_INGRESS),
    _d("cgroup_skb/egress", _T.BPF_PROG_TYPE_CGROUP_SKB, _T.BPF_CGROUP_INET_EGRESS),
    _d("cgroup/skb", _T.BPF_PROG_TYPE_CGROUP_SKB),
    _d("cgroup/sock_create", _T.BPF_PROG_TYPE_CGROUP_SOCK, _T.BPF_CGROUP_INET_SOCK_CREATE),
    _d("cgroup/sock_release", _T.BPF_PROG_TYPE_CGROUP_SOCK, _T.BPF_CGROUP_INET_SOCK_RELEASE),
    _d("cgroup/sock", _T.BPF_PROG_TYPE_CGROUP_SOCK, _T.BPF_CGROUP_INET_SOCK_CREATE),
    _d("cgroup/post_bind4", _T.BPF_PROG_TYPE_CGROUP_SOCK, _T.BPF_CGROUP_INET4_POST_BIND),
    _d("cgroup/post_bind6", _T.BPF_PROG_TYPE_CGROUP_SOCK, _T.BPF_CGROUP_INET6_POST_BIND),
    _d("cgroup/bind4", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_INET4_BIND),
    _d("cgroup/bind6", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_INET6_BIND),
    _d("cgroup/connect4", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_INET4_CONNECT),
    _d("cgroup/connect6", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_INET6_CONNECT),
    _d("cgroup/connect_unix", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UNIX_CONNECT),
    _d("cgroup/sendmsg4", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UDP4_SENDMSG),
    _d("cgroup/sendmsg6", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UDP6_SENDMSG),
    _d("cgroup/sendmsg_unix", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UNIX_SENDMSG),
    _d("cgroup/recvmsg4", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UDP4_RECVMSG),
    _d("cgroup/recvmsg6", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UDP6_RECVMSG),
    _d("cgroup/recvmsg_unix", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UNIX_RECVMSG),
    _d("cgroup/getpeername4", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_INET4_GETPEERNAME),
    _d("cgroup/getpeername6", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_INET6_GETPEERNAME),
    _d("cgroup/getpeername_unix", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UNIX_GETPEERNAME),
    _d("cgroup/getsockname4", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_INET4_GETSOCKNAME),
    _d("cgroup/getsockname6", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_INET6_GETSOCKNAME),
    _d("cgroup/getsockname_unix", _T.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, _T.BPF_CGROUP_UNIX_GETSOCKNAME),
    _d("cgroup/sysctl", _T.BPF_PROG_TYPE_CGROUP_SYSCTL, _T.BPF_CGROUP_SYSCTL),
    _d("cgroup/getsockopt", _T.BPF_PROG_TYPE_CGROUP_SOCKOPT, _T.BPF_CGROUP_GETSOCKOPT),
    _d("cgroup/setsockopt", _T.BPF_PROG_TYPE_CGROUP_SOCKOPT, _T.BPF_CGROUP_SETSOCKOPT),
    _d("cgroup/dev", _T.BPF_PROG_TYPE_CGROUP_DEVICE, _T.BPF_CGROUP_DEVICE),
    _d("struct_ops+", _T.BPF_PROG_TYPE_STRUCT_OPS, target=TARGET_STRUCT_OPS),
    _d("struct_ops.s+", _T.BPF_PROG_TYPE_STRUCT_OPS, flags=BPF_F_SLEEPABLE, target=TARGET_STRUCT_OPS),
    _d("sk_lookup", _T.BPF_PROG_TYPE_SK_LOOKUP, _T.BPF_SK_LOOKUP),
    _d("netfilter", _T.BPF_PROG_TYPE_NETFILTER, _T.BPF_NETFILTER),
)


def _matches(defn, section):
    name = defn.name
    if name.endswith("+"):
        base = name[:-1]
        return section == base or section.startswith(base + "/")
    if name.endswith("/"):
        return section.startswith(name)
    return section == name


@functools.lru_cache(maxsize=256)
def match(section):
    """The :class:`SectionDef` for a program section, and the target named after the prefix."""
    for defn in SECTION_DEFS:
        if _matches(defn, section):
            base = defn.name.rstrip("+")
            target = section[len(base) + 1:] if len(section) > len(base) else ""
            return defn, target
    raise SectionError(f"section {section!r} names no known BPF program type",
                       "use a libbpf section name such as SEC(\"xdp\"), SEC(\"tc\") or SEC(\"tcx/ingress\")")
