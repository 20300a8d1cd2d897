"""BPF instructions: decode, encode and the opcode fields the linker and checkers need."""
import struct

import attrs

# src_reg values with special meaning
from xnf.core.uapi import (BPF_PSEUDO_BTF_ID, BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC, BPF_PSEUDO_KFUNC_CALL,  # noqa: F401
                           BPF_PSEUDO_MAP_FD, BPF_PSEUDO_MAP_IDX, BPF_PSEUDO_MAP_IDX_VALUE, BPF_PSEUDO_MAP_VALUE)

# instruction classes
BPF_LD, BPF_LDX, BPF_ST, BPF_STX, BPF_ALU, BPF_JMP, BPF_JMP32, BPF_ALU64 = range(8)
# sizes and modes
BPF_W, BPF_H, BPF_B, BPF_DW = 0x00, 0x08, 0x10, 0x18
BPF_IMM, BPF_ABS, BPF_IND, BPF_MEM, BPF_ATOMIC = 0x00, 0x20, 0x40, 0x60, 0xC0
# jump ops
BPF_JA, BPF_CALL, BPF_EXIT = 0x00, 0x80, 0x90
BPF_K, BPF_X = 0x00, 0x08
BPF_MOV = 0xB0

LDDW = BPF_LD | BPF_IMM | BPF_DW
CALL = BPF_JMP | BPF_CALL
EXIT = BPF_JMP | BPF_EXIT

_INSN = struct.Struct("<BBhi")


@attrs.define(slots=True)
class Instruction:
    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    """For ``lddw`` the full 64-bit immediate; the instruction then takes two slots."""
    reference: str = None
    """A symbol this instruction must be relocated against (map, data section or function)."""

    @property
    def cls(self):
        return self.code & 0x07

    @property
    def is_lddw(self):
        return self.code == LDDW

    @property
    def slots(self):
        return 2 if self.code == LDDW else 1

    @property
    def is_call(self):
        return self.code == CALL

    @property
    def is_bpf_to_bpf_call(self):
        return self.code == CALL and self.src == BPF_PSEUDO_CALL

    @property
    def is_helper_call(self):
        return self.code == CALL and self.src == 0

    @property
    def is_exit(self):
        return self.code == EXIT

    @property
    def is_jump(self):
        return self.cls in (BPF_JMP, BPF_JMP32) and self.code & 0xF0 not in (BPF_CALL, BPF_EXIT)

    def __str__(self):
        return disassemble(self)


def decode(raw):
    """Raw little-endian bytecode -> list of Instruction (``lddw`` pairs merged)."""
    if len(raw) % 8:
        raise ValueError(f"bytecode length {len(raw)} is not a multiple of 8")
    out = []
    pending = None
    for code, regs, off, imm in _INSN.iter_unpack(raw):
        if pending is not None:
            pending.imm = (pending.imm & 0xFFFFFFFF) | ((imm & 0xFFFFFFFF) << 32)
            pending = None
            continue
        ins = Instruction(code, regs & 0x0F, regs >> 4, off, imm)
        if code == LDDW:
            pending = ins
        out.append(ins)
    if pending is not None:
        raise ValueError("lddw at the end of the bytecode has no second half")
    return out


def encode(insns):
    """List of Instruction -> raw bytecode, packed in one call."""
    fields = []
    add = fields.extend
    for ins in insns:
        regs = (ins.dst & 0x0F) | ((ins.src & 0x0F) << 4)
        if ins.code == LDDW:
            add((LDDW, regs, ins.off, _s32(ins.imm), 0, 0, 0, _s32(ins.imm >> 32)))
        else:
            add((ins.code, regs, ins.off, ins.imm))
    return struct.pack("<" + "BBhi" * (len(fields) // 4), *fields)


def slot_count(insns):
    return len(insns) + sum(1 for i in insns if i.code == LDDW)


def _s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


_ALU_OPS = {0x00: "+=", 0x10: "-=", 0x20: "*=", 0x30: "/=", 0x40: "|=", 0x50: "&=", 0x60: "<<=",
            0x70: ">>=", 0x80: "neg", 0x90: "%=", 0xA0: "^=", 0xB0: "=", 0xC0: "s>>=", 0xD0: "endian"}
_JMP_OPS = {0x10: "==", 0x20: ">", 0x30: ">=", 0x40: "&", 0x50: "!=", 0x60: "s>", 0x70: "s>=",
            0xA0: "<", 0xB0: "<=", 0xC0: "s<", 0xD0: "s<="}
_SIZES = {BPF_W: "u32", BPF_H: "u16", BPF_B: "u8", BPF_DW: "u64"}


def disassemble(ins):
    """A short human-readable form, close to the verifier's, for error messages."""
    c, cls = ins.code, ins.cls
    if c == LDDW:
        return f"r{ins.dst} = {ins.imm:#x} ll" + (f" (pseudo {ins.src})" if ins.src else "")
    if cls in (BPF_ALU, BPF_ALU64):
        r = "r" if cls == BPF_ALU64 else "w"
        op = _ALU_OPS.get(c & 0xF0, "?")
        rhs = f"{r}{ins.src}" if c & BPF_X else str(ins.imm)
        return f"{r}{ins.dst} {op} {rhs}"
    if cls == BPF_LDX:
        return f"r{ins.dst} = *({_SIZES[c & 0x18]} *)(r{ins.src} {ins.off:+d})"
    if cls == BPF_ST:
        return f"*({_SIZES[c & 0x18]} *)(r{ins.dst} {ins.off:+d}) = {ins.imm}"
    if cls == BPF_STX:
        if c & 0xE0 == BPF_ATOMIC:
            return f"atomic op {ins.imm:#x} on *({_SIZES[c & 0x18]} *)(r{ins.dst} {ins.off:+d}) with r{ins.src}"
        return f"*({_SIZES[c & 0x18]} *)(r{ins.dst} {ins.off:+d}) = r{ins.src}"
    if c == CALL:
        if ins.src == BPF_PSEUDO_CALL:
            return f"call pc{ins.imm:+d}"
        if ins.src == BPF_PSEUDO_KFUNC_CALL:
            return f"call kfunc#{ins.imm}"
        return f"call helper#{ins.imm}"
    if c == EXIT:
        return "exit"
    if cls in (BPF_JMP, BPF_JMP32):
        if c & 0xF0 == BPF_JA:
            return f"goto pc{ins.off:+d}"
        r = "r" if cls == BPF_JMP else "w"
        rhs = f"{r}{ins.src}" if c & BPF_X else str(ins.imm)
        return f"if {r}{ins.dst} {_JMP_OPS.get(c & 0xF0, '?')} {rhs} goto pc{ins.off:+d}"
    return f"insn code={c:#04x} dst=r{ins.dst} src=r{ins.src} off={ins.off} imm={ins.imm}"
