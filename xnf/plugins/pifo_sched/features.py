"""Which scheduling data paths the running kernel offers (shown by `xnf features`)."""
from xnf.core.errors import BTFError
from xnf.core.object import btf



def bpf_qdisc_available():
    """True when the kernel has the BPF qdisc (struct_ops on Qdisc_ops, Linux 6.16+, CONFIG_NET_SCH_BPF)."""
    try:
        vmlinux = btf.load_vmlinux()
    except BTFError:
        return False
    return vmlinux.find("bpf_struct_ops_Qdisc_ops", btf.KIND_STRUCT) is not None


def scheduling_features():
    bpf_qdisc = bpf_qdisc_available()
    return {
        "bpf_qdisc": bpf_qdisc,
        "pifo_map": False,  # BPF_MAP_TYPE_PIFO_* was an RFC and never merged
        "pifo_sched_data_path": "exact PIFO in a BPF qdisc (later release)" if bpf_qdisc
        else "SP-PIFO over 8 strict-priority HTB bands, ranks computed at tc egress",
    }
