"""kprobe, kretprobe and ksyscall links through attach_auto (by section, as a skeleton
attaches them) and with a BPF cookie.

The host kernel (6.18) is built without CONFIG_KPROBES, so these skip there naming it; they
run on the VM tier's bpf-qdisc kernel (Linux 7.3.4), which has kprobes, one test per boot:
there the first kprobe of a boot fires, but once it is removed the next one made crashes the
kernel (a call to address 0 on the next hit; libbpf's kprobes alike, whatever the function):

    for t in $(python3 -m pytest -q --collect-only tests/kernel/test_attach_kprobe.py | grep ::); do
        tools/vm/run --kernel bpf-qdisc -- python3 -m pytest -p no:cacheprovider "$t"; done
"""
import ctypes
import os

import pytest

import xnf
from xnf.core.attach import links
from xnf.core.errors import AttachError

pytestmark = pytest.mark.root

HERE = os.path.dirname(__file__)
LINKS_OBJ = os.path.join(HERE, "..", "bpf", "links.bpf.o")
USDT_OBJ = os.path.join(HERE, "..", "bpf", "usdt_args.bpf.o")
KINDS = ["tracepoint", "raw_tp", "tp_btf", "fentry", "kprobe", "kretprobe", "ksyscall"]  # links.bpf.c's slots
TRIGGERS = 20
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def require_kprobes():
    if not os.path.exists(os.path.join(links.PMU_DIR, "kprobe", "type")):
        pytest.skip("this kernel has no kprobe PMU (built without CONFIG_KPROBES): run in the VM tier, "
                    "tools/vm/run --kernel bpf-qdisc")


@pytest.mark.parametrize("prog, kind", [("l_kprobe", "kprobe"), ("l_kretprobe", "kretprobe"),
                                        ("l_ksyscall", "ksyscall")])
def test_kprobe_sections_attach_by_themselves_and_fire(prog, kind):
    """kprobe/__x64_sys_getpid, kretprobe/__x64_sys_getpid and ksyscall/getpid: attach_auto
    reads the target from the section; this process's getpid() calls are counted (Python
    may call getpid() too: >=)."""
    require_kprobes()
    spec = xnf.open_object(LINKS_OBJ)
    spec.rodata["target_tgid"] = os.getpid()
    with xnf.load(spec, programs=[prog]) as coll:
        with links.attach_auto(coll.programs[prog]) as att:
            assert att.target.startswith(("kprobe:", "kretprobe:")), att.target
            for _ in range(TRIGGERS):
                libc.getpid()
            assert coll.maps["hits"][KINDS.index(kind)] >= TRIGGERS


def test_kprobe_cookie_reaches_the_program():
    """attach_kprobe(..., cookie=...): the program reads it with bpf_get_attach_cookie()."""
    require_kprobes()
    with xnf.load(USDT_OBJ, programs=["kprobe_cookie"]) as coll:
        with links.attach_kprobe(coll.programs["kprobe_cookie"], "__x64_sys_getpid", cookie=0x5EED_0000_0001):
            libc.getpid()
        seen = coll.maps["seen"][0]
        assert seen.hits >= 1 and seen.cookie == 0x5EED_0000_0001, seen


def test_kprobe_on_a_missing_function_is_refused():
    require_kprobes()
    spec = xnf.open_object(LINKS_OBJ)
    with xnf.load(spec, programs=["l_kprobe"]) as coll:
        with pytest.raises(AttachError, match="xnf_no_such_function"):
            links.attach_kprobe(coll.programs["l_kprobe"], "xnf_no_such_function")
