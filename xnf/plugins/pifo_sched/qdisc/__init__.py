"""pifo_sched's BPF qdisc (Linux 6.16+ with CONFIG_NET_SCH_BPF): an exact PIFO in the
kernel's Qdisc layer. ``bpf_qdisc`` loads and attaches it; ``xnf_rank.h`` is the contract a
plugin's rank function compiles against (``INCLUDE_DIR`` is where it lives)."""
import os

INCLUDE_DIR = os.path.dirname(os.path.abspath(__file__))
"""The directory of ``xnf_rank.h`` and ``xnf_qdisc.h``: ``clang -I`` it to build a rank object."""
BUILTIN_OBJECT = os.path.join(INCLUDE_DIR, "pifo_qdisc.bpf.o")
"""The built-in schedulers' object (``bpf_qdisc.SCHEDULERS``)."""
MAX_FLOWS = 64
"""XNF_MAX_FLOWS (xnf_qdisc_base.h): the flows both qdisc objects count per flow."""
