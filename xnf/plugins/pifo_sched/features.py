"""Which scheduling data paths the running kernel offers (shown by `xnf features`)."""
import functools

from xnf.core.errors import BTFError, NotSupportedError
from xnf.core.object import btf

BPF_QDISC_OPTION = "CONFIG_NET_SCH_BPF"
BPF_QDISC_VERSION = "6.16"


@functools.lru_cache(maxsize=1)
def bpf_qdisc_available():
    """True when the kernel has the BPF qdisc (struct_ops on Qdisc_ops, Linux 6.16+, CONFIG_NET_SCH_BPF).

    Asked once per process: a kernel does not grow the option while running."""
    try:
        vmlinux = btf.load_vmlinux()
    except BTFError:
        return False
    return vmlinux.find("bpf_struct_ops_Qdisc_ops", btf.KIND_STRUCT) is not None


def require_bpf_qdisc():
    """Raise :class:`NotSupportedError` naming the kernel option when there is no BPF qdisc."""
    if not bpf_qdisc_available():
        raise NotSupportedError(f"BPF qdiscs ({BPF_QDISC_OPTION})", BPF_QDISC_VERSION,
                                hint=f"use --qdisc htb or --qdisc auto (SP-PIFO over HTB bands), or boot a "
                                     f"{BPF_QDISC_VERSION}+ kernel built with {BPF_QDISC_OPTION}=y")


def scheduling_features():
    bpf_qdisc = bpf_qdisc_available()
    return {
        "bpf_qdisc": bpf_qdisc,
        "pifo_map": False,  # BPF_MAP_TYPE_PIFO_* was an RFC and never merged
        "pifo_sched_data_path": "exact PIFO in a BPF qdisc (--qdisc auto chooses it)" if bpf_qdisc
        else "SP-PIFO over 8 strict-priority HTB bands, ranks computed at tc egress",
    }
