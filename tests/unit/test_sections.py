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
