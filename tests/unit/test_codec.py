"""BTF value codecs: structs (fast and bitfield paths), unions, arrays, char arrays,
enums, floats, data sections and raw bytes, on hand-built and on random layouts."""
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xnf.core.errors import ConfigError, ValueEncodeError
from xnf.core.object import btf as B
from xnf.core.object.codec import ArrayCodec, CharArrayCodec, IntCodec, RawCodec, Struct, StructCodec, codec_for


class Types:
    """A BTF built type by type: ``add`` returns the new id."""

    def __init__(self):
        self.types = [B.VOID]

    def add(self, **kw):
        self.types.append(B.Type(**kw))
        return len(self.types) - 1

    def int(self, size, signed=False, name=None, char=False):
        enc = (B.INT_SIGNED if signed else 0) | (B.INT_CHAR if char else 0)
        return self.add(kind=B.KIND_INT, name=name or f"{'s' if signed else 'u'}{size * 8}", size=size,
                        int_encoding=enc, int_bits=size * 8)

    def btf(self):
        return B.BTF(self.types)


@pytest.fixture
def t():
    return Types()


def test_integers(t):
    u8, s16, u32, s64 = t.int(1), t.int(2, True), t.int(4), t.int(8, True)
    btf = t.btf()
    assert codec_for(btf, u8).decode(b"\xff") == 255
    assert codec_for(btf, s16).decode(b"\xff\xff") == -1
    assert codec_for(btf, u32).encode(7) == b"\x07\0\0\0"
    assert codec_for(btf, s64).encode(-2) == struct.pack("<q", -2)
    with pytest.raises(ConfigError, match="does not fit an? unsigned 32-bit"):
        codec_for(btf, u32).encode(2**32)
    with pytest.raises(ConfigError, match="does not fit a signed 16-bit"):
        codec_for(btf, s16).encode(40000)
    # a 16-byte integer (__int128) goes through int.from_bytes
    u128 = t.int(16, name="unsigned __int128")
    c = codec_for(t.btf(), u128)
    assert c.decode(c.encode(2**100 + 5)) == 2**100 + 5


def test_typedefs_qualifiers_enum_pointer_float(t):
    u32 = t.int(4)
    td = t.add(kind=B.KIND_TYPEDEF, name="__u32", type=u32)
    cv = t.add(kind=B.KIND_CONST, type=t.add(kind=B.KIND_VOLATILE, type=td))
    en = t.add(kind=B.KIND_ENUM, name="color", size=4, members=[("RED", 1), ("BLUE", 7)])
    sen = t.add(kind=B.KIND_ENUM, name="delta", size=4, members=[("NEG", -1)], kind_flag=True)
    e64 = t.add(kind=B.KIND_ENUM64, name="big", size=8, members=[("HUGE", 2**40)])
    ptr = t.add(kind=B.KIND_PTR, type=u32)
    f64 = t.add(kind=B.KIND_FLOAT, name="double", size=8)
    btf = t.btf()
    assert codec_for(btf, cv).decode(b"\x2a\0\0\0") == 42
    assert codec_for(btf, en).decode(b"\x07\0\0\0") == 7
    assert codec_for(btf, sen).decode(b"\xff\xff\xff\xff") == -1
    assert codec_for(btf, e64).encode(2**40) == (2**40).to_bytes(8, "little")
    assert codec_for(btf, ptr).size == 8
    c = codec_for(btf, f64)
    assert c.decode(c.encode(1.5)) == 1.5


def test_plain_struct_uses_the_precompiled_format(t):
    u8, u16, u32, u64 = t.int(1), t.int(2), t.int(4), t.int(8)
    st_ = t.add(kind=B.KIND_STRUCT, name="s", size=24,
                members=[("a", u8, 0, 0), ("b", u16, 16, 0), ("c", u32, 32, 0), ("d", u64, 128, 0)])
    c = codec_for(t.btf(), st_)
    assert isinstance(c, StructCodec) and c._fast is not None
    raw = c.encode({"a": 1, "b": 2, "c": 3, "d": 4})
    assert raw == struct.pack("<BxHI8xQ", 1, 2, 3, 4)
    v = c.decode(raw)
    assert (v.a, v.b, v.c, v.d) == (1, 2, 3, 4)
    assert v == {"a": 1, "b": 2, "c": 3, "d": 4} and dict(v) == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert v["c"] == 3 and list(v.keys()) == ["a", "b", "c", "d"]
    assert c.encode(v) == raw                                 # a decoded Struct encodes back
    assert c.encode(Struct(a=1)) == struct.pack("<B23x", 1)  # missing fields are zero
    assert c.encode(raw) == raw                               # raw bytes of the right size
    with pytest.raises(ConfigError, match="expected 24 bytes, got 3"):
        c.encode(b"abc")
    with pytest.raises(ConfigError, match="unknown field"):
        c.encode({"a": 1, "zz": 2})
    with pytest.raises(ConfigError, match="does not fit"):
        c.encode({"a": 256})


def test_bitfields(t):
    u32, s32 = t.int(4), t.int(4, True)
    flags = t.add(kind=B.KIND_STRUCT, name="flags", size=8, kind_flag=True,
                  members=[("ver", u32, 0, 4), ("ihl", u32, 4, 4), ("neg", s32, 8, 5), ("rest", u32, 13, 19),
                           ("word", u32, 32, 0)])
    c = codec_for(t.btf(), flags)
    assert c._fast is None
    raw = c.encode({"ver": 4, "ihl": 5, "neg": -3, "rest": 0x7FFFF, "word": 0xDEADBEEF})
    lo = 4 | (5 << 4) | ((-3 & 0x1F) << 8) | (0x7FFFF << 13)
    assert raw == struct.pack("<II", lo, 0xDEADBEEF)
    v = c.decode(raw)
    assert (v.ver, v.ihl, v.neg, v.rest, v.word) == (4, 5, -3, 0x7FFFF, 0xDEADBEEF)
    # a value wider than its bitfield is refused (it used to be masked: silent corruption)
    with pytest.raises(ValueEncodeError, match=r"field 'ver': 31 does not fit an unsigned 4-bit bitfield \(0\.\.15\)"):
        c.encode({"ver": 0x1F, "ihl": 1})
    with pytest.raises(ValueEncodeError, match=r"field 'neg': -17 does not fit a signed 5-bit bitfield \(-16\.\.15\)"):
        c.encode({"neg": -17})
    with pytest.raises(ValueEncodeError, match="field 'rest': -1 does not fit an unsigned"):
        c.encode({"rest": -1})
    with pytest.raises(ValueEncodeError, match="field 'ihl': expected an integer, got str 'x'"):
        c.encode({"ihl": "x"})
    assert c.decode(c.encode({"neg": -16, "rest": (1 << 19) - 1})).neg == -16


def test_union_arrays_and_char_arrays(t):
    u8, u16, u32 = t.int(1), t.int(2), t.int(4)
    char = t.int(1, signed=True, name="char", char=True)
    mac = t.add(kind=B.KIND_ARRAY, array=(u8, u32, 6))
    v6 = t.add(kind=B.KIND_ARRAY, array=(u8, u32, 16))
    addr = t.add(kind=B.KIND_UNION, name="addr", size=16, members=[("v4", u32, 0, 0), ("v6", v6, 0, 0)])
    name = t.add(kind=B.KIND_ARRAY, array=(char, u32, 8))
    row = t.add(kind=B.KIND_ARRAY, array=(u16, u32, 3))
    grid = t.add(kind=B.KIND_ARRAY, array=(row, u32, 2))
    rec = t.add(kind=B.KIND_STRUCT, name="rec", size=48,
                members=[("mac", mac, 0, 0), ("addr", addr, 64, 0), ("name", name, 192, 0), ("grid", grid, 256, 0)])
    btf = t.btf()
    assert isinstance(codec_for(btf, mac), CharArrayCodec)     # u8[N] is bytes
    assert isinstance(codec_for(btf, name), CharArrayCodec)    # char[N] too
    assert isinstance(codec_for(btf, grid), ArrayCodec)
    c = codec_for(btf, rec)
    value = {"mac": bytes.fromhex("02000000005e"), "addr": {"v4": 0x0A000001}, "name": "xnf",
             "grid": [[1, 2, 3], [4, 5, 6]]}
    raw = c.encode(value)
    assert raw[:6] == bytes.fromhex("02000000005e") and raw[6:8] == b"\0\0"
    assert raw[8:12] == struct.pack("<I", 0x0A000001) and raw[12:24] == bytes(12)
    assert raw[24:32] == b"xnf\0\0\0\0\0"
    assert raw[32:44] == struct.pack("<6H", 1, 2, 3, 4, 5, 6)
    v = c.decode(raw)
    assert v.mac == bytes.fromhex("02000000005e") and v.name == b"xnf\0\0\0\0\0"
    assert v.addr.v4 == 0x0A000001 and v.addr.v6[:4] == struct.pack("<I", 0x0A000001)
    assert v.grid == [[1, 2, 3], [4, 5, 6]]
    # short arrays are zero-padded, long ones refused
    assert codec_for(btf, row).encode([9]) == struct.pack("<3H", 9, 0, 0)
    with pytest.raises(ConfigError, match="4 elements do not fit an array of 3"):
        codec_for(btf, row).encode([1, 2, 3, 4])
    with pytest.raises(ConfigError, match="9 bytes do not fit char\\[8\\]"):
        codec_for(btf, name).encode(b"123456789")


def test_decoded_union_encodes_back(t):
    """A union read from a map must write back unchanged (read-modify-write of a value
    holding a union): every member was decoded from the same bytes, so the largest one
    carries them all."""
    u8, u32 = t.int(1), t.int(4)
    v6 = t.add(kind=B.KIND_ARRAY, array=(u8, u32, 16))
    addr = t.add(kind=B.KIND_UNION, name="addr", size=16, members=[("v4", u32, 0, 0), ("v6", v6, 0, 0)])
    key = t.add(kind=B.KIND_STRUCT, name="key", size=20, members=[("ifindex", u32, 0, 0), ("addr", addr, 32, 0)])
    btf = t.btf()
    raw = struct.pack("<II", 3, 0x0A000001) + bytes(range(12))
    for type_id, data in ((addr, raw[4:]), (key, raw)):
        c = codec_for(btf, type_id)
        assert c.encode(c.decode(data)) == data


def test_datasec_codec(t):
    u32, u64 = t.int(4), t.int(8)
    a = t.add(kind=B.KIND_VAR, name="limit", type=u32, linkage=B.VAR_GLOBAL_ALLOCATED)
    b = t.add(kind=B.KIND_VAR, name="total", type=u64, linkage=B.VAR_GLOBAL_ALLOCATED)
    sec = t.add(kind=B.KIND_DATASEC, name=".data", size=16, members=[[a, 0, 4], [b, 8, 8]])
    c = codec_for(t.btf(), sec)
    v = c.decode(struct.pack("<I4xQ", 5, 6))
    assert (v.limit, v.total) == (5, 6)
    assert codec_for(t.btf(), a).encode(3) == b"\x03\0\0\0"


def test_without_btf():
    assert isinstance(codec_for(None, 0, 4), IntCodec)        # 1/2/4/8-byte keys read as ints
    raw = codec_for(None, 0, 12)
    assert isinstance(raw, RawCodec) and raw.decode(b"x" * 12) == b"x" * 12
    with pytest.raises(ConfigError):
        raw.encode(b"short")
    assert RawCodec(4).encode(-1) == b"\xff\xff\xff\xff"


# --- values of the wrong kind or range (issue 9: they were stored as all-zero structs) ---

def _struct_codec(t):
    u32, u64 = t.int(4), t.int(8)
    inner = t.add(kind=B.KIND_STRUCT, name="inner", size=8, members=[("lo", u32, 0, 0), ("hi", u32, 32, 0)])
    row = t.add(kind=B.KIND_ARRAY, array=(u32, u32, 2))
    outer = t.add(kind=B.KIND_STRUCT, name="outer", size=32,
                  members=[("packets", u64, 0, 0), ("bytes", u64, 64, 0), ("range", inner, 128, 0),
                           ("row", row, 192, 0)])
    simple = t.add(kind=B.KIND_STRUCT, name="pair", size=16, members=[("a", u64, 0, 0), ("b", u64, 64, 0)])
    btf = t.btf()
    return codec_for(btf, outer), codec_for(btf, simple)


@pytest.mark.parametrize("value", [5, 1 << 70, "hello", 2.5, None, [1, 2], (1, 2), b"xxx"])
def test_struct_refuses_values_that_are_not_structs(t, value):
    """``m[k] = 5`` on a struct-valued map stored zeros: the fast path read every field
    with getattr(5, name, 0). Both codec paths (precompiled and member by member) refuse."""
    outer, simple = _struct_codec(t)
    assert simple._fast is not None and outer._fast is None
    for c in (outer, simple):
        with pytest.raises(ValueEncodeError) as e:
            c.encode(value)
        assert isinstance(e.value, TypeError) and isinstance(e.value, ConfigError)
        if not isinstance(value, bytes):
            assert "expected a dict or Struct" in str(e.value) and repr(list(c.names)) in str(e.value), str(e.value)


def test_field_errors_name_the_field(t):
    outer, simple = _struct_codec(t)
    cases = [({"packets": 1 << 70}, "field 'packets': 1180591620717411303424 does not fit an unsigned 64-bit"),
             ({"bytes": "hello"}, "field 'bytes': expected an integer, got str 'hello'"),
             ({"range": {"hi": -1}}, "field 'range.hi': -1 does not fit an unsigned 32-bit"),
             ({"range": 5}, "field 'range': expected a dict or Struct"),
             ({"row": [1, 1 << 40]}, r"field 'row\[1\]': 1099511627776 does not fit"),
             ({"row": "ab"}, "field 'row': expected a list"),
             (Struct(packets=2.5), "field 'packets': expected an integer, got float 2.5")]
    for value, message in cases:
        with pytest.raises(ValueEncodeError, match=message):
            outer.encode(value)
    with pytest.raises(ValueEncodeError, match="field 'a': 1180591620717411303424 does not fit"):
        simple.encode(Struct(a=1 << 70))                      # the precompiled path falls back to name it
    with pytest.raises(ValueEncodeError, match="field 'b': expected an integer"):
        simple.encode({"b": "x"})


def test_struct_accepts_objects_with_its_fields(t):
    """attrs classes, namedtuples and namespaces with the fields still encode."""
    import collections
    import types

    _, simple = _struct_codec(t)
    want = struct.pack("<QQ", 1, 2)
    assert simple.encode(types.SimpleNamespace(a=1, b=2)) == want
    assert simple.encode(collections.namedtuple("P", "a b")(1, 2)) == want
    assert simple.encode({}) == bytes(16)                     # an empty dict: every field 0, on purpose


def test_scalar_codecs_refuse_other_kinds(t):
    u32 = t.int(4)
    f64 = t.add(kind=B.KIND_FLOAT, name="float", size=4)
    char = t.int(1, signed=True, name="char", char=True)
    name = t.add(kind=B.KIND_ARRAY, array=(char, char, 4))
    btf = t.btf()
    for codec, value, message in [
        (codec_for(btf, u32), "7", "expected an integer, got str '7'"),
        (codec_for(btf, u32), 7.0, "expected an integer, got float 7.0"),
        (codec_for(btf, f64), "x", "expected a number"),
        (codec_for(btf, f64), 1e300, "does not fit a 32-bit float"),
        (codec_for(btf, name), 5, r"expected str or bytes for char\[4\], got int 5"),
        (RawCodec(8), 1 << 70, "does not fit 8 bytes"),
        (RawCodec(12), 5, "expected 12 bytes"),
    ]:
        with pytest.raises(ValueEncodeError, match=message):
            codec.encode(value)


def test_struct_object():
    s = Struct(("x", "y"), x=1, y=2)
    assert repr(s) == "Struct(x=1, y=2)"
    assert s == Struct(x=1, y=2) and s != Struct(x=1, y=3)
    assert s.__eq__(5) is NotImplemented


# --- random layouts ---------------------------------------------------------------------

@st.composite
def layouts(draw):
    """A struct of byte-aligned integers and bitfields laid out one after another, and a value."""
    t = Types()
    sizes = {}
    for size in (1, 2, 4, 8):
        sizes[(size, False)] = t.int(size)
        sizes[(size, True)] = t.int(size, True)
    members, value, bit = [], {}, 0
    bitfields = False
    for i in range(draw(st.integers(1, 8))):
        size, signed = draw(st.sampled_from(sorted(sizes)))
        name = f"f{i}"
        if draw(st.booleans()):  # a bitfield
            width = draw(st.integers(1, size * 8))
            members.append((name, sizes[(size, signed)], bit, width))
            lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
            bit += width
            bitfields = True
        else:
            bit = (bit + size * 8 - 1) // (size * 8) * (size * 8)  # natural alignment
            members.append((name, sizes[(size, signed)], bit, 0))
            lo, hi = (-(1 << (size * 8 - 1)), (1 << (size * 8 - 1)) - 1) if signed else (0, (1 << size * 8) - 1)
            bit += size * 8
        value[name] = draw(st.integers(lo, hi))
    size = (bit + 63) // 64 * 8
    sid = t.add(kind=B.KIND_STRUCT, name="rand", size=size, members=members, kind_flag=bitfields)
    return t.btf(), sid, value


@settings(max_examples=300, deadline=None)
@given(layouts())
def test_random_struct_round_trip(layout):
    btf, sid, value = layout
    c = codec_for(btf, sid)
    raw = c.encode(value)
    assert len(raw) == c.size
    assert dict(c.decode(raw)) == value
    assert c.encode(c.decode(raw)) == raw


@settings(max_examples=200, deadline=None)
@given(layouts(), st.data())
def test_random_bytes_decode_then_encode(layout, data):
    """Any byte string of the struct's size decodes, and encoding the result gives the same
    bits back in every field (padding bits may be dropped)."""
    btf, sid, _ = layout
    c = codec_for(btf, sid)
    raw = data.draw(st.binary(min_size=c.size, max_size=c.size))
    v = c.decode(raw)
    assert c.decode(c.encode(v)) == v
