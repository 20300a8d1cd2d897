"""BTF parse/encode: random type graphs round-trip byte for byte, so do the kernel's own
BTF and every committed object's ``.BTF``; malformed blobs raise BTFError, nothing else.

No privileges needed: ``/sys/kernel/btf/vmlinux`` is world-readable where it exists.
"""
import glob
import os
import struct

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xnf.core.errors import BTFError
from xnf.core.object import btf as B

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OBJECTS = sorted(glob.glob(os.path.join(ROOT, "tests", "bpf", "*.bpf.o"))) + [
    os.path.join(ROOT, "bench", "bpf", "many.bpf.o")]
VMLINUX = "/sys/kernel/btf/vmlinux"

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=0, max_size=12)
ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=10)
u32 = st.integers(0, 2**32 - 1)


def type_strategy(n_types):
    """One BTF type whose references point into a graph of ``n_types`` types (ids 0..n)."""
    ref = st.integers(0, n_types)
    int_t = st.builds(lambda name, size, enc, bits: B.Type(
        kind=B.KIND_INT, name=name, size=size, int_encoding=enc, int_bits=min(bits, size * 8)),
        ident, st.sampled_from([1, 2, 4, 8, 16]), st.sampled_from([0, B.INT_SIGNED, B.INT_CHAR, B.INT_BOOL]),
        st.integers(1, 128))
    ptr_t = st.builds(lambda r: B.Type(kind=B.KIND_PTR, type=r), ref)
    array_t = st.builds(lambda e, i, n: B.Type(kind=B.KIND_ARRAY, array=(e, i, n)), ref, ref, u32)

    def struct_t(kind):
        plain = st.lists(st.tuples(names, ref, st.integers(0, 2**24 - 1).map(lambda b: b * 8),
                                   st.just(0)), max_size=6)
        bitfields = st.lists(st.tuples(names, ref, st.integers(0, 2**24 - 1), st.integers(0, 255)),
                             max_size=6)
        return st.one_of(
            st.builds(lambda name, size, m: B.Type(kind=kind, name=name, size=size, members=m),
                      names, u32, plain),
            st.builds(lambda name, size, m: B.Type(kind=kind, name=name, size=size, members=m, kind_flag=True),
                      names, u32, bitfields))

    enum_t = st.one_of(
        st.builds(lambda name, size, m: B.Type(kind=B.KIND_ENUM, name=name, size=size, members=m),
                  names, st.sampled_from([1, 2, 4]), st.lists(st.tuples(ident, u32), max_size=6)),
        st.builds(lambda name, m: B.Type(kind=B.KIND_ENUM, name=name, size=4, members=m, kind_flag=True),
                  names, st.lists(st.tuples(ident, st.integers(-2**31, 2**31 - 1)), max_size=6)))
    enum64_t = st.one_of(
        st.builds(lambda name, m: B.Type(kind=B.KIND_ENUM64, name=name, size=8, members=m),
                  names, st.lists(st.tuples(ident, st.integers(0, 2**64 - 1)), max_size=6)),
        st.builds(lambda name, m: B.Type(kind=B.KIND_ENUM64, name=name, size=8, members=m, kind_flag=True),
                  names, st.lists(st.tuples(ident, st.integers(-2**63, 2**63 - 1)), max_size=6)))
    fwd_t = st.builds(lambda name, union: B.Type(kind=B.KIND_FWD, name=name, kind_flag=union), ident, st.booleans())
    modifier_t = st.builds(lambda kind, name, r: B.Type(kind=kind, name=name if kind == B.KIND_TYPEDEF else "", type=r),
                           st.sampled_from([B.KIND_TYPEDEF, B.KIND_VOLATILE, B.KIND_CONST, B.KIND_RESTRICT]),
                           ident, ref)
    type_tag_t = st.builds(lambda name, r: B.Type(kind=B.KIND_TYPE_TAG, name=name, type=r), ident, ref)
    func_t = st.builds(lambda name, r, link: B.Type(kind=B.KIND_FUNC, name=name, type=r, linkage=link),
                       ident, ref, st.sampled_from([B.FUNC_STATIC, B.FUNC_GLOBAL, B.FUNC_EXTERN]))
    proto_t = st.builds(lambda r, params: B.Type(kind=B.KIND_FUNC_PROTO, type=r, members=params),
                        ref, st.lists(st.tuples(names, ref), max_size=6))
    var_t = st.builds(lambda name, r, link: B.Type(kind=B.KIND_VAR, name=name, type=r, linkage=link),
                      ident, ref, st.sampled_from([B.VAR_STATIC, B.VAR_GLOBAL_ALLOCATED, B.VAR_GLOBAL_EXTERN]))
    datasec_t = st.builds(lambda name, size, entries: B.Type(kind=B.KIND_DATASEC, name=name, size=size,
                                                             members=[list(e) for e in entries]),
                          st.sampled_from([".data", ".bss", ".rodata", ".maps", ".data.x"]), u32,
                          st.lists(st.tuples(ref, u32, u32), max_size=6))
    float_t = st.builds(lambda name, size: B.Type(kind=B.KIND_FLOAT, name=name, size=size),
                        ident, st.sampled_from([2, 4, 8, 16]))
    decl_tag_t = st.builds(lambda name, r, idx: B.Type(kind=B.KIND_DECL_TAG, name=name, type=r, component_idx=idx),
                           ident, ref, st.integers(-1, 20))
    return st.one_of(int_t, ptr_t, array_t, struct_t(B.KIND_STRUCT), struct_t(B.KIND_UNION), enum_t, enum64_t,
                     fwd_t, modifier_t, type_tag_t, func_t, proto_t, var_t, datasec_t, float_t, decl_tag_t)


@st.composite
def type_graphs(draw):
    n = draw(st.integers(1, 16))
    return [B.VOID] + draw(st.lists(type_strategy(n), min_size=n, max_size=n))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(type_graphs())
def test_random_graph_round_trip(types):
    """encode -> parse gives the same types, and encoding again is byte-identical."""
    raw = B.BTF(types).encode()
    parsed = B.parse(raw)
    assert parsed.types == types
    assert parsed.encode() == raw


@settings(max_examples=100, deadline=None)
@given(type_graphs(), st.data())
def test_edit_then_encode_keeps_old_string_offsets(types, data):
    """A new name appended after parse leaves every existing string offset in place."""
    raw = B.BTF(types).encode()
    parsed = B.parse(raw)
    i = data.draw(st.integers(1, len(types) - 1))
    parsed.types[i].name = "xnf_renamed_" + str(i)
    again = parsed.encode()
    assert B.string_section(again).startswith(parsed.strings)
    assert B.parse(again).types[i].name == "xnf_renamed_" + str(i)


def test_header_layout():
    raw = B.BTF([B.VOID, B.Type(kind=B.KIND_INT, name="int", size=4, int_encoding=B.INT_SIGNED, int_bits=32)]).encode()
    magic, version, flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from("<HBBIIIII", raw)
    assert (magic, version, flags, hdr_len, type_off) == (0xEB9F, 1, 0, 24, 0)
    assert type_len == 16 and str_off == 16 and raw[24 + str_off:] == b"\0int\0"
    assert str_len == 5


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="kernel without BTF (CONFIG_DEBUG_INFO_BTF)")
def test_vmlinux_round_trip():
    with open(VMLINUX, "rb") as f:
        raw = f.read()
    btf = B.parse(raw)
    assert btf.encode() == raw
    task = btf.find("task_struct", B.KIND_STRUCT)
    assert task is not None and btf.size_of(task) > 1000
    kinds = {t.kind for t in btf.types[1:]}
    assert {B.KIND_INT, B.KIND_PTR, B.KIND_ARRAY, B.KIND_STRUCT, B.KIND_UNION, B.KIND_ENUM,
            B.KIND_FUNC, B.KIND_FUNC_PROTO} <= kinds
    assert btf.enum_values("bpf_map_type")["BPF_MAP_TYPE_HASH"] == 1


@pytest.mark.parametrize("path", OBJECTS, ids=os.path.basename)
def test_object_btf_round_trip(path):
    with open(path, "rb") as f:
        raw = ELFFile(f).get_section_by_name(".BTF").data()
    assert B.parse(raw).encode() == raw


def test_object_btf_ext_has_func_and_line_info():
    path = os.path.join(ROOT, "tests", "bpf", "subprog.bpf.o")
    with open(path, "rb") as f:
        elf = ELFFile(f)
        raw, ext = elf.get_section_by_name(".BTF").data(), elf.get_section_by_name(".BTF.ext").data()
    btf = B.parse(raw)
    info = B.parse_ext(ext, B.string_section(raw))
    assert set(info.func_info) >= {"xdp", "tc", ".text"}
    funcs = {btf[fi.type_id].name for recs in info.func_info.values() for fi in recs}
    assert {"sub_a", "sub_b", "sub_tc", "global_mul", "static_add"} <= funcs
    for recs in info.line_info.values():
        offsets = [li.insn_off for li in recs]
        assert offsets == sorted(offsets)
        assert all(li.file.endswith("subprog.bpf.c") for li in recs)
        assert any(li.line > 0 for li in recs)
    assert not info.core_relos


def test_look_ups_on_a_small_graph():
    t = [B.VOID,
         B.Type(kind=B.KIND_INT, name="unsigned int", size=4, int_bits=32),                        # 1
         B.Type(kind=B.KIND_TYPEDEF, name="u32", type=1),                                          # 2
         B.Type(kind=B.KIND_CONST, type=2),                                                        # 3
         B.Type(kind=B.KIND_ARRAY, array=(3, 1, 6)),                                               # 4
         B.Type(kind=B.KIND_STRUCT, name="pt", size=24, members=[("x", 2, 0, 0), ("v", 4, 0, 0)]),  # 5
         B.Type(kind=B.KIND_PTR, type=5),                                                          # 6
         B.Type(kind=B.KIND_ENUM, name="color", size=4, members=[("RED", 1), ("BLUE", 7)]),       # 7
         B.Type(kind=B.KIND_VAR, name="v", type=5, linkage=B.VAR_GLOBAL_ALLOCATED)]                # 8
    btf = B.BTF(t)
    assert btf.resolve(3) == (1, t[1])
    assert [btf.size_of(i) for i in (1, 2, 3, 4, 5, 6, 7, 8)] == [4, 4, 4, 24, 24, 8, 4, 24]
    assert btf.find("pt") == 5 and btf.find("pt", B.KIND_UNION) is None
    assert btf.type_name(6) == "struct pt *" and btf.type_name(4) == "u32[6]"
    assert btf.enum_values("color") == {"RED": 1, "BLUE": 7}
    with pytest.raises(BTFError, match="no enum"):
        btf.enum_values("shape")
    with pytest.raises(BTFError, match="has no size"):
        B.BTF([B.VOID, B.Type(kind=B.KIND_FUNC_PROTO, members=[])]).size_of(1)


# --- malformed input -----------------------------------------------------------------------

def _good_blob():
    with open(os.path.join(ROOT, "tests", "bpf", "btf_types.bpf.o"), "rb") as f:
        return ELFFile(f).get_section_by_name(".BTF").data()


@pytest.mark.parametrize("raw, message", [
    (b"", "truncated"),
    (b"\xeb\x9f" + bytes(22), "big-endian"),
    (b"\x00\x00" + bytes(22), "bad BTF magic"),
    (struct.pack("<HBBIIIII", 0xEB9F, 2, 0, 24, 0, 0, 0, 1) + b"\0", "version 2"),
    (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 100, 100, 1) + b"\0", "past the end"),
])
def test_malformed_headers(raw, message):
    with pytest.raises(BTFError, match=message):
        B.parse(raw)


def test_truncated_blob():
    raw = _good_blob()
    for cut in (10, 24, len(raw) // 2, len(raw) - 1):
        with pytest.raises(BTFError):
            B.parse(raw[:cut])


def test_unknown_kind():
    raw = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1) + struct.pack("<III", 0, 25 << 24, 0) + b"\0"
    with pytest.raises(BTFError, match="unknown BTF kind 25"):
        B.parse(raw)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corrupted_blob_raises_btf_error_only(data):
    """Flipping bytes of a real blob either still parses or raises BTFError: never an
    IndexError, struct.error, ValueError or UnicodeDecodeError escaping to the caller."""
    raw = bytearray(_good_blob())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        B.parse(bytes(raw))
    except BTFError:
        pass


def test_huge_vlen_in_last_type_is_a_btf_error():
    """A member count that runs past the end of the blob is truncation, said as such."""
    raw = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1) + \
        struct.pack("<III", 0, (B.KIND_STRUCT << 24) | 1000, 8) + b"\0"
    with pytest.raises(BTFError):
        B.parse(raw)


def test_string_without_terminator_is_a_btf_error():
    raw = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 4) + \
        struct.pack("<III", 1, B.KIND_FWD << 24, 0) + b"\0abc"
    with pytest.raises(BTFError):
        B.parse(raw)


class _Timeout(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Timeout("still running after 5 s")


def test_type_cycles_raise_btf_error():
    """Corrupt BTF can make types refer to themselves: look-ups must raise, not loop
    forever (resolve) or overflow the stack (size_of)."""
    import signal

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(5)
    try:
        loop = B.BTF([B.VOID, B.Type(kind=B.KIND_TYPEDEF, name="loop", type=1)])
        with pytest.raises(BTFError):
            loop.resolve(1)
        nested = B.BTF([B.VOID, B.Type(kind=B.KIND_ARRAY, array=(1, 1, 2))])
        with pytest.raises(BTFError):
            nested.size_of(1)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
