"""The bpf-qdisc kernel has what the BPF qdisc needs: struct Qdisc_ops as a struct_ops type
in vmlinux BTF, the qdisc kfuncs (tagged as kfuncs), tc, and kprobe events for tracing."""
import os
import subprocess

from xnf.core.object.btf import KIND_DECL_TAG, KIND_FUNC, KIND_STRUCT, load_vmlinux

# net/sched/bpf_qdisc.c's kfunc set (Linux 6.16+).
QDISC_KFUNCS = ("bpf_qdisc_skb_drop", "bpf_kfree_skb", "bpf_skb_get_hash", "bpf_qdisc_watchdog_schedule",
                "bpf_qdisc_init_prologue", "bpf_qdisc_reset_destroy_epilogue", "bpf_qdisc_bstats_update")


def test_qdisc_ops_is_a_struct_ops_type_in_vmlinux_btf():
    btf = load_vmlinux()
    ops = btf.find("Qdisc_ops", KIND_STRUCT)
    assert ops is not None
    members = {m[0] for m in btf[ops].members}
    assert {"enqueue", "dequeue", "init", "reset", "destroy", "id"} <= members
    # The kernel's wrapper for a registered struct_ops type (bpf_struct_ops_<name>).
    assert btf.find("bpf_struct_ops_Qdisc_ops", KIND_STRUCT) is not None


def test_qdisc_kfuncs_are_in_vmlinux_btf_tagged_as_kfuncs():
    btf = load_vmlinux()
    funcs = {name: btf.find(name, KIND_FUNC) for name in QDISC_KFUNCS}
    assert [n for n, i in funcs.items() if i is None] == []
    # resolve_btfids tags every kfunc with the decl tag "bpf_kfunc" (with the host's pahole 1.24 too).
    tagged = {t.type for t in btf.types if t.kind == KIND_DECL_TAG and t.name == "bpf_kfunc"}
    assert [n for n, i in funcs.items() if i not in tagged] == []


def test_tc_and_kprobe_events_are_there():
    out = subprocess.run(["tc", "qdisc", "show", "dev", "lo"], capture_output=True, text=True, check=True)
    assert "qdisc" in out.stdout
    assert os.path.exists("/sys/kernel/debug/tracing/kprobe_events")
