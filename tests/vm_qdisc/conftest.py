"""The VM tier's BPF-qdisc tests, run on the bpf-qdisc kernel (``tools/vm/run --kernel bpf-qdisc``).

Every test here is marked ``vm`` and ``vm_qdisc`` and skips, naming the kernel option, on a
kernel without ``CONFIG_NET_SCH_BPF`` (Linux 6.16+): the host's, and the VM tier's 6.1 kernel.
"""
import os

import pytest

VMLINUX_BTF = "/sys/kernel/btf/vmlinux"
# A kfunc of net/sched/bpf_qdisc.c: its name is in vmlinux BTF only when that file is built.
BPF_QDISC_KFUNC = b"\0bpf_qdisc_skb_drop\0"


def kernel_has_bpf_qdisc():
    """True when the running kernel was built with CONFIG_NET_SCH_BPF (and BTF, which it needs)."""
    try:
        with open(VMLINUX_BTF, "rb") as f:
            return BPF_QDISC_KFUNC in f.read()
    except OSError:
        return False


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    mine = [item for item in items if str(item.fspath).startswith(here + os.sep)]
    if not mine:
        return
    skip = None if kernel_has_bpf_qdisc() else pytest.mark.skip(
        reason="needs CONFIG_NET_SCH_BPF (BPF qdiscs, Linux 6.16+): run in the VM tier with "
               "tools/vm/run --kernel bpf-qdisc")
    for item in mine:
        item.add_marker(pytest.mark.vm)
        item.add_marker(pytest.mark.vm_qdisc)
        if skip:
            item.add_marker(skip)
