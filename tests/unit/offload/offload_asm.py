"""A tiny assembler for hand-written test programs (kernel-style mnemonics)."""
from xnf.core.object import insn as I
from xnf.core.object.insn import Instruction

SIZES = {1: I.BPF_B, 2: I.BPF_H, 4: I.BPF_W, 8: I.BPF_DW}
ADD, XCHG, FETCH = 0x00, 0xE1, 0x01


def mov(dst, imm):
    return Instruction(I.BPF_ALU64 | I.BPF_MOV | I.BPF_K, dst, 0, 0, imm)


def movr(dst, src):
    return Instruction(I.BPF_ALU64 | I.BPF_MOV | I.BPF_X, dst, src, 0, 0)


def add(dst, imm):
    return Instruction(I.BPF_ALU64 | 0x00 | I.BPF_K, dst, 0, 0, imm)


def addr(dst, src):
    return Instruction(I.BPF_ALU64 | 0x00 | I.BPF_X, dst, src, 0, 0)


def ldx(size, dst, src, off):
    return Instruction(I.BPF_LDX | I.BPF_MEM | SIZES[size], dst, src, off, 0)


def stx(size, dst, off, src):
    return Instruction(I.BPF_STX | I.BPF_MEM | SIZES[size], dst, src, off, 0)


def st(size, dst, off, imm):
    return Instruction(I.BPF_ST | I.BPF_MEM | SIZES[size], dst, 0, off, imm)


def atomic(size, dst, off, src, op=ADD):
    return Instruction(I.BPF_STX | I.BPF_ATOMIC | SIZES[size], dst, src, off, op)


def lddw_map(dst, name):
    return Instruction(I.LDDW, dst, I.BPF_PSEUDO_MAP_FD, 0, 0, reference=("map", name))


def lddw_data(dst, name, off=0):
    return Instruction(I.LDDW, dst, I.BPF_PSEUDO_MAP_VALUE, 0, 0, reference=("data", name, off))


def lddw(dst, imm):
    return Instruction(I.LDDW, dst, 0, 0, imm)


def call(helper):
    return Instruction(I.CALL, 0, 0, 0, helper)


def call_sub(slots):
    return Instruction(I.CALL, 0, I.BPF_PSEUDO_CALL, 0, slots)


def kfunc(btf_id):
    return Instruction(I.CALL, 0, I.BPF_PSEUDO_KFUNC_CALL, 0, btf_id)


def jeq(dst, imm, off):
    return Instruction(I.BPF_JMP | 0x10 | I.BPF_K, dst, 0, off, imm)


def ja(off):
    return Instruction(I.BPF_JMP | I.BPF_JA, 0, 0, off, 0)


def exit_():
    return Instruction(I.EXIT)


def lookup(map_name, key_off=-4):
    """r0 = bpf_map_lookup_elem(&map, &key on the stack at key_off); key = 0."""
    return [st(4, 10, key_off, 0), lddw_map(1, map_name), movr(2, 10), add(2, key_off), call(1)]
