"""Tiny programs built from raw instructions, so attach tests need no ELF loader.

``counter_program(kind, counters, slot)`` loads a program that adds 1 to
``counters[slot]`` (an ARRAY of u64) on every packet and returns ``ret``: real
packets on a veth then prove the program ran where it was attached.
"""
import ctypes

from xnf.core import uapi
from xnf.core.kernel import syscall
from xnf.core.object import insn
from xnf.core.object.insn import Instruction as I

PROG_TYPES = {"xdp": uapi.BPF_PROG_TYPE_XDP, "sched_cls": uapi.BPF_PROG_TYPE_SCHED_CLS}
XDP_PASS, TC_ACT_OK, TCX_NEXT = uapi.XDP_PASS, 0, -1

_GPL = ctypes.create_string_buffer(b"GPL")


class Counters:
    """An ARRAY map of ``n`` u64 counters, readable from Python."""

    def __init__(self, n=4):
        self.n = n
        self.fd = syscall.map_create(uapi.BPF_MAP_TYPE_ARRAY, 4, 8, n, name=b"xnf_test_cnt")

    def __getitem__(self, slot):
        key, value = ctypes.c_uint32(slot), ctypes.c_uint64()
        syscall.map_lookup_elem(self.fd, key, value)
        return value.value

    def values(self):
        return [self[i] for i in range(self.n)]

    def close(self):
        self.fd.close()


def load(prog_type, instructions, name=b"xnf_test", ifindex=0):
    code = insn.encode(instructions)
    buf = ctypes.create_string_buffer(code, len(code))
    attr = syscall.ProgLoadAttr(prog_type=PROG_TYPES.get(prog_type, prog_type), insn_cnt=len(code) // 8,
                                insns=ctypes.addressof(buf), license=ctypes.addressof(_GPL),
                                prog_name=name[:15], prog_ifindex=ifindex)
    return syscall.prog_load(attr)


SKB_PRIORITY, SKB_TC_CLASSID = 32, 72  # offsetof(struct __sk_buff, priority / tc_classid)


def _count(counters, slot):
    return [
        I(0x62, 10, 0, -4, slot),          # *(u32 *)(r10 - 4) = slot
        I(0xBF, 2, 10),                    # r2 = r10
        I(0x07, 2, 0, 0, -4),              # r2 += -4
        I(0x18, 1, 1, 0, int(counters.fd)),  # r1 = map fd (lddw, BPF_PSEUDO_MAP_FD)
        I(0x85, 0, 0, 0, 1),               # call bpf_map_lookup_elem
        I(0x15, 0, 0, 2, 0),               # if r0 == 0 goto +2
        I(0xB7, 1, 0, 0, 1),               # r1 = 1
        I(0xDB, 0, 1, 0, 0),               # lock *(u64 *)(r0 + 0) += r1
    ]


def counter_program(prog_type, counters, slot=0, ret=None, name=b"xnf_count"):
    """A program that does ``counters[slot] += 1`` (atomically) and returns ``ret``."""
    if ret is None:
        ret = XDP_PASS if prog_type == "xdp" else TC_ACT_OK
    body = _count(counters, slot) + [
        I(0xB7, 0, 0, 0, ret),             # r0 = ret
        I(0x95),                           # exit
    ]
    return load(prog_type, body, name=name)


def classify_program(counters, slot, value, field="tc_classid", name=b"xnf_classify"):
    """A sched_cls program setting ``skb->tc_classid`` (or ``skb->priority``) to ``value``,
    counting into ``counters[slot]`` and returning TC_ACT_OK (for direct-action mode)."""
    offset = {"tc_classid": SKB_TC_CLASSID, "priority": SKB_PRIORITY}[field]
    body = [
        I(0xB7, 2, 0, 0, value),           # r2 = value
        I(0x63, 1, 2, offset),             # *(u32 *)(r1 + offset) = r2
    ] + _count(counters, slot) + [
        I(0xB7, 0, 0, 0, TC_ACT_OK),
        I(0x95),
    ]
    return load("sched_cls", body, name=name)


def return_program(prog_type, ret, name=b"xnf_ret"):
    """A program that only returns ``ret``."""
    return load(prog_type, [I(0xB7, 0, 0, 0, ret), I(0x95)], name=name)
