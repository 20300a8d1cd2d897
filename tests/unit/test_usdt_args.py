"""USDT argument strings of .note.stapsdt parsed as libbpf's usdt.c parses them (x86-64),
and the __hidden subprograms of usdt.bpf.h given static BTF linkage as libbpf gives them."""
import os

import pytest

import xnf
from xnf.core.attach import links
from xnf.core.attach.links import (USDT_ARG_CONST, USDT_ARG_REG, USDT_ARG_REG_DEREF, USDT_ARG_SIB, UsdtArg,
                                   parse_usdt_args)
from xnf.core.errors import AttachError, ConfigError
from xnf.core.object import btf as B
from xnf.core.object.codec import codec_for

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "bpf", "usdt_args.bpf.o")

# offsetof(struct pt_regs, ...) on x86-64
R15, R14, R12, BP, BX, AX, CX, DX, SI, DI, SP = 0, 8, 24, 32, 40, 80, 88, 96, 104, 112, 152


@pytest.mark.parametrize("text, expected", [
    # CPython 3.11's notes (readelf -n /usr/bin/python3.11)
    ("8@%rbx 8@%r15", [UsdtArg(USDT_ARG_REG, 8, reg_off=BX), UsdtArg(USDT_ARG_REG, 8, reg_off=R15)]),
    ("-8@%r12", [UsdtArg(USDT_ARG_REG, -8, reg_off=R12)]),
    ("-4@112(%rsp)", [UsdtArg(USDT_ARG_REG_DEREF, -4, val_off=112, reg_off=SP)]),
    ("8@%r14 8@%rax -4@%ebp", [UsdtArg(USDT_ARG_REG, 8, reg_off=R14), UsdtArg(USDT_ARG_REG, 8, reg_off=AX),
                               UsdtArg(USDT_ARG_REG, -4, reg_off=BP)]),
    # gcc -O0 / -O2 forms of <sys/sdt.h> probes
    ("-4@-20(%rbp) 8@-32(%rbp)", [UsdtArg(USDT_ARG_REG_DEREF, -4, val_off=-20, reg_off=BP),
                                  UsdtArg(USDT_ARG_REG_DEREF, 8, val_off=-32, reg_off=BP)]),
    ("-4@$-5 4@$0x10", [UsdtArg(USDT_ARG_CONST, -4, val_off=-5), UsdtArg(USDT_ARG_CONST, 4, val_off=16)]),
    ("8@(%rax) -1@%sil 1@%dil 2@%dx -2@%cx", [
        UsdtArg(USDT_ARG_REG_DEREF, 8, reg_off=AX), UsdtArg(USDT_ARG_REG, -1, reg_off=SI),
        UsdtArg(USDT_ARG_REG, 1, reg_off=DI), UsdtArg(USDT_ARG_REG, 2, reg_off=DX), UsdtArg(USDT_ARG_REG, -2, reg_off=CX)]),
    # base + index * scale + displacement (libbpf 1.7)
    ("8@-8(%rbp,%rax,8) 4@(%rdi,%rcx)", [
        UsdtArg(USDT_ARG_SIB, 8, val_off=-8, reg_off=BP, idx_reg_off=AX, scale_bitshift=3),
        UsdtArg(USDT_ARG_SIB, 4, reg_off=DI, idx_reg_off=CX)]),
    ("", []),
])
def test_parse_known_note_strings(text, expected):
    assert parse_usdt_args(text) == expected


def test_spec_fields_as_usdt_bpf_h_reads_them():
    signed_int = parse_usdt_args("-4@-20(%rbp)")[0].spec()
    assert signed_int == {"val_off": (1 << 64) - 20, "arg_type": USDT_ARG_REG_DEREF, "reg_off": BP,
                          "arg_signed": 1, "arg_bitshift": 32}
    unsigned_byte = parse_usdt_args("1@%al")[0].spec()
    assert (unsigned_byte["arg_signed"], unsigned_byte["arg_bitshift"]) == (0, 56)


@pytest.mark.parametrize("text, says", [
    ("3@%rax", "size 3"),
    ("8@%xmm0", "register %xmm0"),
    ("8@-8(%rbp,%rax,3)", "scale 3"),
    ("%rax", "form"),
    (" ".join(["8@%rax"] * 13), "up to 12"),
])
def test_refused_as_libbpf_refuses(text, says):
    with pytest.raises(AttachError, match=says):
        parse_usdt_args(text)


def test_other_machines_refused_with_the_way_out():
    with pytest.raises(AttachError, match="x86-64 only"):
        parse_usdt_args("8@x0", machine="aarch64")


def test_spec_value_encodes_through_the_objects_btf():
    """The value written to __bpf_usdt_specs is encoded through the map's BTF type (the
    layout of the usdt.bpf.h the program was built with); SIB needs libbpf 1.7's fields."""
    spec = xnf.open_object(FIXTURE)
    m = spec.maps[links.USDT_SPECS_MAP]
    codec = codec_for(spec.btf, m.btf_value_type_id)
    args = parse_usdt_args("-4@-20(%rbp) 8@%rax")
    raw = codec.encode({"args": [a.spec() for a in args], "usdt_cookie": 9, "arg_cnt": 2})
    back = codec.decode(raw)
    assert back.arg_cnt == 2 and back.usdt_cookie == 9
    assert dict(back.args[0]) == {"val_off": (1 << 64) - 20, "arg_type": USDT_ARG_REG_DEREF, "reg_off": BP,
                                  "arg_signed": 1, "arg_bitshift": 32}
    with pytest.raises(ConfigError):
        codec.encode({"args": [a.spec() for a in parse_usdt_args("8@(%rdi,%rcx)")]})


def test_hidden_global_subprograms_get_static_linkage():
    """usdt.bpf.h's bpf_usdt_arg & co. are __weak __hidden globals: libbpf loads them with
    static BTF linkage so the verifier checks them in their caller's context; as global
    functions the kernel refuses `*res = 0` (res might be NULL)."""
    btf = xnf.open_object(FIXTURE).btf
    for name in ("bpf_usdt_arg", "bpf_usdt_arg_cnt", "bpf_usdt_cookie"):
        t = btf[btf.find(name, B.KIND_FUNC)]
        assert t.linkage == B.FUNC_STATIC, name
    assert btf[btf.find("usdt_args", B.KIND_FUNC)].linkage == B.FUNC_GLOBAL  # the program itself stays global
