"""Codecs between map keys/values and Python objects, built from BTF.

Integers become ``int``, enums ``int``, ``char[N]`` ``bytes``, other arrays ``list``,
structs and unions :class:`Struct` objects with attribute access. ``bytes`` of the right
size are always accepted when encoding. Structs made only of byte-aligned integers are
coded with one precompiled :class:`struct.Struct`, which keeps map access fast.

Encoding never guesses: a value of the wrong kind (an ``int`` for a struct, a ``str`` for
an integer) or out of its field's range raises :class:`ValueEncodeError` naming the
field, so nothing is stored that the caller did not write.
"""
import struct

from xnf.core.errors import BTFError, ValueEncodeError
from xnf.core.object import btf as B


class Struct:
    """A decoded C struct: fields as attributes, comparable, convertible with ``dict()``."""

    __slots__ = ("_fields", "__dict__")

    def __init__(self, fields=(), **values):
        self._fields = tuple(fields) or tuple(values)
        self.__dict__.update(values)

    def __iter__(self):
        return ((f, getattr(self, f)) for f in self._fields)

    def keys(self):
        return self._fields

    def __getitem__(self, name):
        return getattr(self, name)

    def __hash__(self):
        return hash(_frozen(tuple(self)))

    def __eq__(self, other):
        if isinstance(other, Struct):
            return dict(self) == dict(other)
        if isinstance(other, dict):
            return dict(self) == other
        return NotImplemented

    def __repr__(self):
        return "Struct(" + ", ".join(f"{k}={v!r}" for k, v in self) + ")"


def _frozen(value):
    """A hashable form of decoded values (lists become tuples), so structs can be dict keys."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Struct):
        return _frozen(tuple(value))
    return value


def encode_error(problem, field=None, map=None, part="value"):
    """A :class:`ValueEncodeError` whose message says where: map, key or value, field."""
    where = f"map {map!r} {part}" if map is not None else ""
    if field:
        where += (", " if where else "") + f"field {field!r}"
    err = ValueEncodeError(f"{where}: {problem}" if where else problem)
    err.problem, err.field, err.map, err.part = problem, field, map, part
    return err


def in_field(err, name):
    """``err`` raised inside member or element ``name``: the same error one level out."""
    field = name if not err.field else (f"{name}{err.field}" if err.field.startswith("[") else f"{name}.{err.field}")
    return encode_error(err.problem, field, err.map, err.part)


def in_map(err, map, part):
    """``err`` from a map's key or value codec, now naming the map."""
    return encode_error(err.problem, err.field, map, part)


def _what(value):
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


_BYTES = (bytes, bytearray, memoryview)


class Codec:
    size = 0

    def decode(self, raw):
        raise NotImplementedError

    def encode(self, value):
        raise NotImplementedError

    def decode_many(self, raw, count):
        """Decode ``count`` values stored back to back in ``raw``."""
        n = self.size
        return [self.decode(raw[i * n:(i + 1) * n]) for i in range(count)]

    def decode_from(self, buf):
        """Decode from the start of a writable buffer (a ctypes buffer), without copying first."""
        return self.decode(bytes(memoryview(buf)[:self.size]))

    def encode_into(self, buf, value):
        """Encode ``value`` into the start of ``buf``."""
        raw = self.encode(value)
        memoryview(buf).cast("B")[:len(raw)] = raw

    def _check_bytes(self, value):
        if len(value) != self.size:
            raise encode_error(f"expected {self.size} bytes, got {len(value)}")
        return bytes(value)


class RawCodec(Codec):
    """No type information: bytes in, bytes out (ints accepted little-endian)."""

    def __init__(self, size):
        self.size = size

    def decode(self, raw):
        return bytes(raw)

    def encode(self, value):
        if isinstance(value, int) and self.size in (1, 2, 4, 8):
            try:
                return value.to_bytes(self.size, "little", signed=value < 0)
            except OverflowError:
                raise encode_error(f"{value} does not fit {self.size} bytes") from None
        if not isinstance(value, _BYTES):
            raise encode_error(f"expected {self.size} bytes (no BTF describes this map), got {_what(value)}")
        return self._check_bytes(value)


class IntCodec(Codec):
    _FORMATS = {1: "b", 2: "h", 4: "i", 8: "q"}

    def __init__(self, size, signed):
        self.size = size
        self.signed = signed
        fmt = self._FORMATS.get(size)
        self._struct = struct.Struct("<" + (fmt if signed else fmt.upper())) if fmt else None

    @property
    def format(self):
        return self._struct.format[1:] if self._struct else None

    def decode(self, raw):
        if self._struct:
            return self._struct.unpack(raw)[0]
        return int.from_bytes(raw, "little", signed=self.signed)

    def decode_from(self, buf):
        if self._struct:
            return self._struct.unpack_from(buf)[0]
        return super().decode_from(buf)

    def decode_many(self, raw, count):
        if self._struct:
            return list(struct.unpack_from(f"<{count}{self.format}", raw))
        return super().decode_many(raw, count)

    def encode_into(self, buf, value):
        if self._struct and isinstance(value, int):
            try:
                self._struct.pack_into(buf, 0, value)
                return
            except struct.error:
                pass  # fall through for a precise error message
        super().encode_into(buf, value)

    def encode(self, value):
        if isinstance(value, _BYTES):
            return self._check_bytes(value)
        if not isinstance(value, int):
            if not hasattr(value, "__index__"):
                raise encode_error(f"expected an integer, got {_what(value)}")
            value = value.__index__()
        try:
            if self._struct:
                return self._struct.pack(value)
            return value.to_bytes(self.size, "little", signed=self.signed)
        except (struct.error, OverflowError):
            raise encode_error(f"{value!r} does not fit {'a signed' if self.signed else 'an unsigned'} "
                               f"{self.size * 8}-bit integer") from None


class FloatCodec(Codec):
    def __init__(self, size):
        self.size = size
        self._struct = struct.Struct("<d" if size == 8 else "<f")

    def decode(self, raw):
        return self._struct.unpack(raw)[0]

    def encode(self, value):
        if isinstance(value, _BYTES):
            return self._check_bytes(value)
        if not isinstance(value, (int, float)):
            raise encode_error(f"expected a number, got {_what(value)}")
        try:
            return self._struct.pack(value)
        except OverflowError:
            raise encode_error(f"{value!r} does not fit a {self.size * 8}-bit float") from None


class CharArrayCodec(Codec):
    def __init__(self, size):
        self.size = size

    def decode(self, raw):
        return bytes(raw)

    def encode(self, value):
        if isinstance(value, str):
            value = value.encode()
        elif not isinstance(value, _BYTES):
            raise encode_error(f"expected str or bytes for char[{self.size}], got {_what(value)}")
        value = bytes(value)
        if len(value) > self.size:
            raise encode_error(f"{len(value)} bytes do not fit char[{self.size}]")
        return value.ljust(self.size, b"\0")


class ArrayCodec(Codec):
    def __init__(self, elem, count):
        self.elem = elem
        self.count = count
        self.size = elem.size * count

    def decode(self, raw):
        es = self.elem.size
        return [self.elem.decode(raw[i * es:(i + 1) * es]) for i in range(self.count)]

    def encode(self, value):
        if isinstance(value, _BYTES):
            return self._check_bytes(value)
        if isinstance(value, (str, dict, Struct)) or not hasattr(value, "__iter__"):
            raise encode_error(f"expected a list of up to {self.count} elements, got {_what(value)}")
        value = list(value)
        if len(value) > self.count:
            raise encode_error(f"{len(value)} elements do not fit an array of {self.count}")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(self.elem.encode(v))
            except ValueEncodeError as e:
                raise in_field(e, f"[{i}]") from None
        return b"".join(out).ljust(self.size, b"\0")


class StructCodec(Codec):
    """Struct or union: members at bit offsets, bitfields included."""

    def __init__(self, size, members, union=False):
        self.size = size
        self.members = members  # [(name, codec, bit_offset, bitfield_size)]
        self.union = union
        self.names = tuple(m[0] for m in members)
        self._fast = None if union else self._compile()

    def _compile(self):
        fmt, pos = "<", 0
        for _name, codec, bit_off, bf in self.members:
            if bf or bit_off % 8 or not isinstance(codec, IntCodec) or not codec.format:
                return None
            off = bit_off // 8
            if off < pos:
                return None
            fmt += "x" * (off - pos) + codec.format
            pos = off + codec.size
        fmt += "x" * (self.size - pos)
        s = struct.Struct(fmt)
        return s if s.size == self.size else None

    def decode_from(self, buf):
        if self._fast is not None:
            return Struct(self.names, **dict(zip(self.names, self._fast.unpack_from(buf))))
        return super().decode_from(buf)

    def decode_many(self, raw, count):
        if self._fast is not None:
            names = self.names
            return [Struct(names, **dict(zip(names, fields)))
                    for fields in self._fast.iter_unpack(raw[:count * self.size])]
        return super().decode_many(raw, count)

    def decode(self, raw):
        if self._fast is not None:
            return Struct(self.names, **dict(zip(self.names, self._fast.unpack(raw))))
        values = {}
        for name, codec, bit_off, bf in self.members:
            if bf:
                whole = int.from_bytes(raw, "little")
                v = (whole >> bit_off) & ((1 << bf) - 1)
                if isinstance(codec, IntCodec) and codec.signed and v >> (bf - 1):
                    v -= 1 << bf
                values[name] = v
            else:
                off = bit_off // 8
                values[name] = codec.decode(raw[off:off + codec.size])
        return Struct(self.names, **values)

    def encode(self, value):
        if isinstance(value, _BYTES):
            return self._check_bytes(value)
        if isinstance(value, dict):
            get = value.get
        elif isinstance(value, Struct) or self._has_fields(value):
            get = lambda k, d=None: getattr(value, k, d)  # noqa: E731 - attrs, namedtuples, namespaces
        else:
            kind = "union" if self.union else "struct"
            raise encode_error(f"expected a dict or Struct with the {kind}'s fields {list(self.names)} "
                               f"(or {self.size} bytes), got {_what(value)}")
        if self._fast is not None and not isinstance(value, dict):
            try:
                return self._fast.pack(*(get(n, 0) for n in self.names))
            except struct.error:
                pass  # fall through for a precise error message
        unknown = set(value) - set(self.names) if isinstance(value, dict) else set()
        if unknown:
            raise encode_error(f"unknown field(s) {sorted(unknown)}; the struct has {list(self.names)}")
        buf = bytearray(self.size)
        # Union members overlap: write the largest last, so a decoded union writes back unchanged.
        members = sorted(self.members, key=lambda m: m[1].size) if self.union else self.members
        for name, codec, bit_off, bf in members:
            v = get(name, None)
            if v is None:
                continue
            try:
                if bf:
                    whole = int.from_bytes(buf, "little")
                    mask = ((1 << bf) - 1) << bit_off
                    whole = (whole & ~mask) | (_bitfield(v, bf, codec) << bit_off)
                    buf[:] = whole.to_bytes(self.size, "little")
                else:
                    off = bit_off // 8
                    buf[off:off + codec.size] = codec.encode(v)
            except ValueEncodeError as e:
                raise in_field(e, name) from None
        return bytes(buf)

    def _has_fields(self, value):
        """An object that carries some of the fields as attributes (an attrs class, a
        namedtuple, a namespace); numbers, strings and sequences never do."""
        if isinstance(value, (int, float, complex, str, list, tuple, set)) and not hasattr(value, "_fields"):
            return False
        return any(hasattr(value, n) for n in self.names)


def _bitfield(value, bits, codec):
    """``value`` as the ``bits``-bit field it is stored in, or an error (never masked)."""
    if not isinstance(value, int):
        if not hasattr(value, "__index__"):
            raise encode_error(f"expected an integer, got {_what(value)}")
        value = value.__index__()
    signed = isinstance(codec, IntCodec) and codec.signed
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        raise encode_error(f"{value} does not fit {'a signed' if signed else 'an unsigned'} {bits}-bit bitfield "
                           f"({lo}..{hi})")
    return value & ((1 << bits) - 1)


def codec_for(btf, type_id, size=None, _depth=0):
    """A codec for BTF type ``type_id``; without BTF (``btf is None``) a raw one of ``size``."""
    if btf is None or not type_id:
        return _int_or_raw(size)
    if _depth > B.MAX_NESTING:
        raise BTFError(f"BTF type [{type_id}] nests deeper than {B.MAX_NESTING} levels (a cycle?)")
    type_id, t = btf.resolve(type_id)
    k = t.kind
    if k == B.KIND_INT:
        return IntCodec(t.size, bool(t.int_encoding & B.INT_SIGNED))
    if k in (B.KIND_ENUM, B.KIND_ENUM64):
        return IntCodec(t.size, t.kind_flag)
    if k == B.KIND_PTR:
        return IntCodec(8, False)
    if k == B.KIND_FLOAT:
        return FloatCodec(t.size)
    if k == B.KIND_ARRAY:
        elem_id, _, count = t.array
        _, et = btf.resolve(elem_id)
        if et.kind == B.KIND_INT and et.size == 1 and (
                et.name == "char" or et.int_encoding & B.INT_CHAR or not et.int_encoding & B.INT_SIGNED):
            return CharArrayCodec(count)
        return ArrayCodec(codec_for(btf, elem_id, _depth=_depth + 1), count)
    if k in (B.KIND_STRUCT, B.KIND_UNION):
        members = [(name or f"_anon{i}", codec_for(btf, mtype, _depth=_depth + 1), bit_off, bf)
                   for i, (name, mtype, bit_off, bf) in enumerate(t.members)]
        return StructCodec(t.size, members, union=(k == B.KIND_UNION))
    if k == B.KIND_VAR:
        return codec_for(btf, t.type, _depth=_depth + 1)
    if k == B.KIND_DATASEC:
        members = [(btf[v].name, codec_for(btf, btf[v].type, _depth=_depth + 1), off * 8, 0) for v, off, _s in t.members]
        return StructCodec(t.size, members)
    raise BTFError(f"cannot build a codec for BTF {t.kind_name} {t.name!r}")


def _int_or_raw(size):
    if size in (1, 2, 4, 8):
        return IntCodec(size, False)
    return RawCodec(size or 0)
