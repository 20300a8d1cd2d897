"""Section names -> program type, expected attach type, flags and target, by libbpf's rules:
a name ending in ``+`` matches itself or itself followed by ``/anything``; others match exactly."""
import pytest

from xnf.core import uapi as u
from xnf.core.errors import ELFError, SectionError
from xnf.core.object import sections

CASES = [
    # section, program type, expected attach type, flags, target
    ("xdp", u.BPF_PROG_TYPE_XDP, u.BPF_XDP, 0, ""),
    ("xdp.frags", u.BPF_PROG_TYPE_XDP, u.BPF_XDP, sections.BPF_F_XDP_HAS_FRAGS, ""),
    ("xdp/devmap", u.BPF_PROG_TYPE_XDP, u.BPF_XDP_DEVMAP, 0, ""),
    ("xdp.frags/cpumap", u.BPF_PROG_TYPE_XDP, u.BPF_XDP_CPUMAP, sections.BPF_F_XDP_HAS_FRAGS, ""),
    ("tc", u.BPF_PROG_TYPE_SCHED_CLS, 0, 0, ""),
    ("classifier", u.BPF_PROG_TYPE_SCHED_CLS, 0, 0, ""),
    ("action", u.BPF_PROG_TYPE_SCHED_ACT, 0, 0, ""),
    ("tcx/ingress", u.BPF_PROG_TYPE_SCHED_CLS, u.BPF_TCX_INGRESS, 0, ""),
    ("tcx/egress", u.BPF_PROG_TYPE_SCHED_CLS, u.BPF_TCX_EGRESS, 0, ""),
    ("tc/ingress", u.BPF_PROG_TYPE_SCHED_CLS, u.BPF_TCX_INGRESS, 0, ""),
    ("socket", u.BPF_PROG_TYPE_SOCKET_FILTER, 0, 0, ""),
    ("iter/bpf_map", u.BPF_PROG_TYPE_TRACING, u.BPF_TRACE_ITER, 0, "bpf_map"),
    ("iter.s/task", u.BPF_PROG_TYPE_TRACING, u.BPF_TRACE_ITER, sections.BPF_F_SLEEPABLE, "task"),
    ("tracepoint/syscalls/sys_enter_getpid", u.BPF_PROG_TYPE_TRACEPOINT, 0, 0, "syscalls/sys_enter_getpid"),
    ("tp/sched/sched_switch", u.BPF_PROG_TYPE_TRACEPOINT, 0, 0, "sched/sched_switch"),
    ("raw_tp/sys_enter", u.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 0, "sys_enter"),
    ("raw_tracepoint/sys_exit", u.BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 0, "sys_exit"),
    ("raw_tp.w/foo", u.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, 0, 0, "foo"),
    ("tp_btf/sched_switch", u.BPF_PROG_TYPE_TRACING, u.BPF_TRACE_RAW_TP, 0, "sched_switch"),
    ("fentry/bpf_fentry_test1", u.BPF_PROG_TYPE_TRACING, u.BPF_TRACE_FENTRY, 0, "bpf_fentry_test1"),
    ("fexit/do_unlinkat", u.BPF_PROG_TYPE_TRACING, u.BPF_TRACE_FEXIT, 0, "do_unlinkat"),
    ("fentry.s/do_sys_open", u.BPF_PROG_TYPE_TRACING, u.BPF_TRACE_FENTRY, sections.BPF_F_SLEEPABLE, "do_sys_open"),
    ("fmod_ret/x", u.BPF_PROG_TYPE_TRACING, u.BPF_MODIFY_RETURN, 0, "x"),
    ("freplace/xnf_target_func", u.BPF_PROG_TYPE_EXT, 0, 0, "xnf_target_func"),
    ("struct_ops/xnf_test_op", u.BPF_PROG_TYPE_STRUCT_OPS, 0, 0, "xnf_test_op"),
    ("struct_ops", u.BPF_PROG_TYPE_STRUCT_OPS, 0, 0, ""),
    ("kprobe/do_sys_open", u.BPF_PROG_TYPE_KPROBE, 0, 0, "do_sys_open"),
    ("kretprobe", u.BPF_PROG_TYPE_KPROBE, 0, 0, ""),
    ("lsm/file_open", u.BPF_PROG_TYPE_LSM, u.BPF_LSM_MAC, 0, "file_open"),
    ("cgroup_skb/ingress", u.BPF_PROG_TYPE_CGROUP_SKB, u.BPF_CGROUP_INET_INGRESS, 0, ""),
    ("cgroup/connect4", u.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, u.BPF_CGROUP_INET4_CONNECT, 0, ""),
    ("sk_skb/stream_verdict", u.BPF_PROG_TYPE_SK_SKB, u.BPF_SK_SKB_STREAM_VERDICT, 0, ""),
    ("sk_lookup", u.BPF_PROG_TYPE_SK_LOOKUP, u.BPF_SK_LOOKUP, 0, ""),
    ("syscall", u.BPF_PROG_TYPE_SYSCALL, 0, sections.BPF_F_SLEEPABLE, ""),
]


@pytest.mark.parametrize("section, prog_type, attach_type, flags, target", CASES, ids=[c[0] for c in CASES])
def test_match(section, prog_type, attach_type, flags, target):
    defn, got_target = sections.match(section)
    assert (defn.prog_type, defn.attach_type, defn.flags, got_target) == (prog_type, attach_type, flags, target)


@pytest.mark.parametrize("section", [
    "bogus/foo",       # unknown prefix
    "xdpfoo",          # exact names match exactly, not as prefixes
    "xdp/unknown",     # xdp has no '+': only its listed sub-sections exist
    "tcx",             # tcx needs a direction
    "tcx/sideways",
    "socketfilter",
    "kprobe_x",        # '+' means "itself or itself/...", not any continuation
    "fentryx/foo",
    "",
    "license",
])
def test_unknown_sections_are_a_section_error(section):
    with pytest.raises(SectionError) as info:
        sections.match(section)
    message = str(info.value)
    assert repr(section) in message and "SEC(" in message and "\n" not in message
    assert isinstance(info.value, ELFError)


def test_more_specific_names_come_first():
    """Every name is reachable: no earlier entry swallows a later one."""
    for defn in sections.SECTION_DEFS:
        probe = defn.name.rstrip("+")
        first, _ = sections.match(probe)
        assert first == defn, f"{defn.name} is shadowed by {first.name}"


def test_table_names_are_unique():
    names = [d.name for d in sections.SECTION_DEFS]
    assert len(names) == len(set(names))


#: libbpf's section_defs[] (libbpf.c, v1.5/1.6): section name -> (program type, expected attach type),
#: read from the table's SEC_DEF(name, PROG_TYPE, expected_attach_type, flags) lines. SEC_SLEEPABLE
#: entries load with BPF_F_SLEEPABLE, SEC_XDP_FRAGS with BPF_F_XDP_HAS_FRAGS; the rest with no flags.
LIBBPF_SECTION_DEFS = {
    "socket": ("SOCKET_FILTER", 0),
    "sk_reuseport/migrate": ("SK_REUSEPORT", "SK_REUSEPORT_SELECT_OR_MIGRATE"),
    "sk_reuseport": ("SK_REUSEPORT", "SK_REUSEPORT_SELECT"),
    "kprobe+": ("KPROBE", 0),
    "uprobe+": ("KPROBE", 0),
    "uprobe.s+": ("KPROBE", 0),
    "kretprobe+": ("KPROBE", 0),
    "uretprobe+": ("KPROBE", 0),
    "uretprobe.s+": ("KPROBE", 0),
    "kprobe.multi+": ("KPROBE", "TRACE_KPROBE_MULTI"),
    "kretprobe.multi+": ("KPROBE", "TRACE_KPROBE_MULTI"),
    "kprobe.session+": ("KPROBE", "TRACE_KPROBE_SESSION"),
    "uprobe.multi+": ("KPROBE", "TRACE_UPROBE_MULTI"),
    "uretprobe.multi+": ("KPROBE", "TRACE_UPROBE_MULTI"),
    "uprobe.multi.s+": ("KPROBE", "TRACE_UPROBE_MULTI"),
    "uretprobe.multi.s+": ("KPROBE", "TRACE_UPROBE_MULTI"),
    "uprobe.session+": ("KPROBE", "TRACE_UPROBE_SESSION"),
    "uprobe.session.s+": ("KPROBE", "TRACE_UPROBE_SESSION"),
    "ksyscall+": ("KPROBE", 0),
    "kretsyscall+": ("KPROBE", 0),
    "usdt+": ("KPROBE", 0),
    "usdt.s+": ("KPROBE", 0),
    "tc/ingress": ("SCHED_CLS", "TCX_INGRESS"),
    "tc/egress": ("SCHED_CLS", "TCX_EGRESS"),
    "tcx/ingress": ("SCHED_CLS", "TCX_INGRESS"),
    "tcx/egress": ("SCHED_CLS", "TCX_EGRESS"),
    "tc": ("SCHED_CLS", 0),
    "classifier": ("SCHED_CLS", 0),
    "action": ("SCHED_ACT", 0),
    "netkit/primary": ("SCHED_CLS", "NETKIT_PRIMARY"),
    "netkit/peer": ("SCHED_CLS", "NETKIT_PEER"),
    "tracepoint+": ("TRACEPOINT", 0),
    "tp+": ("TRACEPOINT", 0),
    "raw_tracepoint+": ("RAW_TRACEPOINT", 0),
    "raw_tp+": ("RAW_TRACEPOINT", 0),
    "raw_tracepoint.w+": ("RAW_TRACEPOINT_WRITABLE", 0),
    "raw_tp.w+": ("RAW_TRACEPOINT_WRITABLE", 0),
    "tp_btf+": ("TRACING", "TRACE_RAW_TP"),
    "fentry+": ("TRACING", "TRACE_FENTRY"),
    "fmod_ret+": ("TRACING", "MODIFY_RETURN"),
    "fexit+": ("TRACING", "TRACE_FEXIT"),
    "fentry.s+": ("TRACING", "TRACE_FENTRY"),
    "fmod_ret.s+": ("TRACING", "MODIFY_RETURN"),
    "fexit.s+": ("TRACING", "TRACE_FEXIT"),
    "freplace+": ("EXT", 0),
    "lsm+": ("LSM", "LSM_MAC"),
    "lsm.s+": ("LSM", "LSM_MAC"),
    "lsm_cgroup+": ("LSM", "LSM_CGROUP"),
    "iter+": ("TRACING", "TRACE_ITER"),
    "iter.s+": ("TRACING", "TRACE_ITER"),
    "syscall": ("SYSCALL", 0),
    "xdp.frags/devmap": ("XDP", "XDP_DEVMAP"),
    "xdp/devmap": ("XDP", "XDP_DEVMAP"),
    "xdp.frags/cpumap": ("XDP", "XDP_CPUMAP"),
    "xdp/cpumap": ("XDP", "XDP_CPUMAP"),
    "xdp.frags": ("XDP", "XDP"),
    "xdp": ("XDP", "XDP"),
    "perf_event": ("PERF_EVENT", 0),
    "lwt_in": ("LWT_IN", 0),
    "lwt_out": ("LWT_OUT", 0),
    "lwt_xmit": ("LWT_XMIT", 0),
    "lwt_seg6local": ("LWT_SEG6LOCAL", 0),
    "sockops": ("SOCK_OPS", "CGROUP_SOCK_OPS"),
    "sk_skb/stream_parser": ("SK_SKB", "SK_SKB_STREAM_PARSER"),
    "sk_skb/stream_verdict": ("SK_SKB", "SK_SKB_STREAM_VERDICT"),
    "sk_skb/verdict": ("SK_SKB", "SK_SKB_VERDICT"),
    "sk_skb": ("SK_SKB", 0),
    "sk_msg": ("SK_MSG", "SK_MSG_VERDICT"),
    "lirc_mode2": ("LIRC_MODE2", "LIRC_MODE2"),
    "flow_dissector": ("FLOW_DISSECTOR", "FLOW_DISSECTOR"),
    "cgroup_skb/ingress": ("CGROUP_SKB", "CGROUP_INET_INGRESS"),
    "cgroup_skb/egress": ("CGROUP_SKB", "CGROUP_INET_EGRESS"),
    "cgroup/skb": ("CGROUP_SKB", 0),
    "cgroup/sock_create": ("CGROUP_SOCK", "CGROUP_INET_SOCK_CREATE"),
    "cgroup/sock_release": ("CGROUP_SOCK", "CGROUP_INET_SOCK_RELEASE"),
    "cgroup/sock": ("CGROUP_SOCK", "CGROUP_INET_SOCK_CREATE"),
    "cgroup/post_bind4": ("CGROUP_SOCK", "CGROUP_INET4_POST_BIND"),
    "cgroup/post_bind6": ("CGROUP_SOCK", "CGROUP_INET6_POST_BIND"),
    "cgroup/bind4": ("CGROUP_SOCK_ADDR", "CGROUP_INET4_BIND"),
    "cgroup/bind6": ("CGROUP_SOCK_ADDR", "CGROUP_INET6_BIND"),
    "cgroup/connect4": ("CGROUP_SOCK_ADDR", "CGROUP_INET4_CONNECT"),
    "cgroup/connect6": ("CGROUP_SOCK_ADDR", "CGROUP_INET6_CONNECT"),
    "cgroup/connect_unix": ("CGROUP_SOCK_ADDR", "CGROUP_UNIX_CONNECT"),
    "cgroup/sendmsg4": ("CGROUP_SOCK_ADDR", "CGROUP_UDP4_SENDMSG"),
    "cgroup/sendmsg6": ("CGROUP_SOCK_ADDR", "CGROUP_UDP6_SENDMSG"),
    "cgroup/sendmsg_unix": ("CGROUP_SOCK_ADDR", "CGROUP_UNIX_SENDMSG"),
    "cgroup/recvmsg4": ("CGROUP_SOCK_ADDR", "CGROUP_UDP4_RECVMSG"),
    "cgroup/recvmsg6": ("CGROUP_SOCK_ADDR", "CGROUP_UDP6_RECVMSG"),
    "cgroup/recvmsg_unix": ("CGROUP_SOCK_ADDR", "CGROUP_UNIX_RECVMSG"),
    "cgroup/getpeername4": ("CGROUP_SOCK_ADDR", "CGROUP_INET4_GETPEERNAME"),
    "cgroup/getpeername6": ("CGROUP_SOCK_ADDR", "CGROUP_INET6_GETPEERNAME"),
    "cgroup/getpeername_unix": ("CGROUP_SOCK_ADDR", "CGROUP_UNIX_GETPEERNAME"),
    "cgroup/getsockname4": ("CGROUP_SOCK_ADDR", "CGROUP_INET4_GETSOCKNAME"),
    "cgroup/getsockname6": ("CGROUP_SOCK_ADDR", "CGROUP_INET6_GETSOCKNAME"),
    "cgroup/getsockname_unix": ("CGROUP_SOCK_ADDR", "CGROUP_UNIX_GETSOCKNAME"),
    "cgroup/sysctl": ("CGROUP_SYSCTL", "CGROUP_SYSCTL"),
    "cgroup/getsockopt": ("CGROUP_SOCKOPT", "CGROUP_GETSOCKOPT"),
    "cgroup/setsockopt": ("CGROUP_SOCKOPT", "CGROUP_SETSOCKOPT"),
    "cgroup/dev": ("CGROUP_DEVICE", "CGROUP_DEVICE"),
    "struct_ops+": ("STRUCT_OPS", 0),
    "struct_ops.s+": ("STRUCT_OPS", 0),
    "sk_lookup": ("SK_LOOKUP", "SK_LOOKUP"),
    "netfilter": ("NETFILTER", "NETFILTER"),
}


@pytest.mark.parametrize("name", list(LIBBPF_SECTION_DEFS))
def test_libbpf_section_defs(name):
    """Each of libbpf's names (and, for '+' names, the name with a target) gets libbpf's pair."""
    prog_type, attach_type = LIBBPF_SECTION_DEFS[name]
    want = (getattr(u, "BPF_PROG_TYPE_" + prog_type), getattr(u, "BPF_" + attach_type) if attach_type else 0)
    probes = [name.rstrip("+")] + ([name.rstrip("+") + "/some_target"] if name.endswith("+") else [])
    for probe in probes:
        defn, _ = sections.match(probe)
        assert (defn.prog_type, defn.attach_type) == want, probe
        sleepable = name.rstrip("+").endswith(".s") or name == "syscall"
        assert sleepable == bool(defn.flags & sections.BPF_F_SLEEPABLE), probe


def test_table_is_libbpfs_table():
    """No name of ours that libbpf lacks, none of libbpf's that we lack."""
    assert {d.name for d in sections.SECTION_DEFS} == set(LIBBPF_SECTION_DEFS)
