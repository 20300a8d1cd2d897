"""Capture files in pure Python: classic pcap and pcapng, read; small writers for tests.

pping's offline mode (``--read FILE``) needs packets with nanosecond timestamps, their
link type and, when the capture recorded it, their direction. Nothing else is read,
so this stays small and needs no libpcap.
"""

from __future__ import annotations

import os
import stat
import struct
import sys

from xnf.core.errors import XnfError
from xnf.plugins.pping.packet import EGRESS, INGRESS, LINKTYPE_ETHERNET

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 0x00000001
PCAPNG_OPB = 0x00000002
PCAPNG_SPB = 0x00000003
PCAPNG_EPB = 0x00000006

_OPT_IF_TSRESOL = 9
_OPT_IF_TSOFFSET = 14
_OPT_EPB_FLAGS = 2


#: Largest captured length (classic pcap) or block length (pcapng) accepted, whatever
#: the file holds: real captures stay far below it (snap lengths are at most 256 KiB),
#: and it bounds what one record can cost when reading a stream.
MAX_RECORD_BYTES = 64 << 20
#: Standard input (no size to check a length against) is read in chunks of this size,
#: so a length it claims is never allocated before the bytes are there.
_CHUNK = 64 << 10
#: Timestamps are kept as non-negative signed 64-bit nanoseconds (up to the year 2262),
#: which every consumer (json, BPF's u64 clock, formatting) can represent.
MAX_TIMESTAMP_NS = (1 << 63) - 1

_MIN_BODY = {PCAPNG_IDB: 8, PCAPNG_EPB: 20, PCAPNG_OPB: 20, PCAPNG_SPB: 4}


class PcapError(XnfError, ValueError):
    """A capture file that cannot be read; the message names the file, the problem and,
    for damage inside the file, the byte offset (``offset``, else ``None``)."""

    def __init__(self, message, hint=None, path=None, offset=None):
        super().__init__(message, hint)
        self.path = path
        self.offset = offset


class Record:
    """One captured frame.

    ``timestamp_ns`` is epoch nanoseconds (``None`` for pcapng simple packet blocks,
    which carry no time); ``direction`` is ``"ingress"``/``"egress"`` when the capture
    recorded it (pcapng ``epb_flags``), else ``None``.
    """

    __slots__ = ("timestamp_ns", "linktype", "data", "wire_len", "direction")

    def __init__(self, timestamp_ns, linktype, data, wire_len, direction=None):
        self.timestamp_ns = timestamp_ns
        self.linktype = linktype
        self.data = data
        self.wire_len = wire_len
        self.direction = direction


def read(path):
    """Yield the :class:`Record` objects of a pcap or pcapng file.

    ``path`` ``"-"`` reads standard input, so a capture can be streamed
    (``tcpdump -w - | xnf pping read -``): records are read one after the other.
    Raises :class:`PcapError` for a missing, empty, non-capture, corrupt or truncated
    file (records before the damage have been yielded by then). Every length the file
    declares is checked against what is left of it before anything is read, so memory
    stays proportional to the file, not to what it claims.
    """
    if str(path) == "-":

        f = open(sys.stdin.fileno(), "rb", closefd=False)
        path = "<stdin>"
    else:
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise PcapError(f"{path}: cannot open capture file: {exc.strerror}", path=path) from None
    with f:
        src = _Source(path, f)
        head = src.read_upto(4)
        if len(head) < 4:
            raise src.error(f"not a capture file: {'empty' if not head else 'only %d bytes' % len(head)}")
        for endian in "<>":
            magic, = struct.unpack(endian + "I", head)
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                yield from _read_pcap(src, endian, magic == PCAP_MAGIC_NS)
                return
        if struct.unpack("<I", head)[0] == PCAPNG_SHB:
            yield from _read_pcapng(src, head)
            return
        raise src.error(f"not a pcap or pcapng file (magic bytes {head.hex()})",
                        "write captures with tcpdump -w or dumpcap")


class _Source:
    """A capture being read: the position (for error messages; standard input cannot
    tell it) and, for a regular file, how many bytes are left."""

    def __init__(self, path, f):
        self.path = path
        self.f = f
        self.pos = 0
        try:
            st = os.fstat(f.fileno())
            self.size = st.st_size if stat.S_ISREG(st.st_mode) else None
        except OSError:
            self.size = None

    def error(self, problem, hint=None, at=None):
        where = "" if at is None else f" at byte {at}"
        return PcapError(f"{self.path}: {problem}{where}", hint, path=self.path, offset=at)

    def read_upto(self, n):
        """Up to ``n`` bytes (fewer only at the end of the file); ``n`` is a header size."""
        buf = self.f.read(n)
        self.pos += len(buf)
        return buf

    def need(self, n, what, start=None):
        """Exactly ``n`` bytes of ``what`` (which began at byte ``start``), or a PcapError."""
        at = self.pos if start is None else start
        left = None if self.size is None else self.size - self.pos
        if left is not None and n > left:
            raise self.error(f"truncated {what}: needs {n} more bytes, the file has {max(left, 0)}", at=at)
        if left is not None or n <= _CHUNK:
            buf = self.f.read(n)
        else:
            parts, got = [], 0
            while got < n:
                part = self.f.read(min(_CHUNK, n - got))
                if not part:
                    break
                parts.append(part)
                got += len(part)
            buf = b"".join(parts)
        self.pos += len(buf)
        if len(buf) < n:
            raise self.error(f"truncated {what}: needs {n} bytes, the file has {len(buf)}", at=at)
        return buf


def _check_length(src, length, what, at):
    if length > MAX_RECORD_BYTES:
        raise src.error(f"corrupt {what}: length {length} is implausible (over {MAX_RECORD_BYTES} bytes)", at=at)


def _timestamp(src, ts_ns, at):
    if not 0 <= ts_ns <= MAX_TIMESTAMP_NS:
        raise src.error(f"corrupt packet timestamp ({ts_ns} ns since 1970 is outside 1970..2262)", at=at)
    return ts_ns


def _read_pcap(src, endian, nanosecond):
    hdr = src.need(20, "pcap file header")
    _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(endian + "HHiIII", hdr)
    linktype = network & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII")
    scale = 1 if nanosecond else 1000
    while True:
        at = src.pos
        raw = src.read_upto(16)
        if not raw:
            return
        if len(raw) < 16:
            raise src.error(f"truncated record header: needs 16 bytes, the file has {len(raw)}", at=at)
        sec, frac, incl, orig = rec.unpack(raw)
        _check_length(src, incl, "record (captured length)", at)
        data = src.need(incl, "packet data", at)
        yield Record(_timestamp(src, sec * 1_000_000_000 + frac * scale, at), linktype, data, orig)


def _read_pcapng(src, head):
    endian = "<"
    interfaces = []  # (linktype, units_per_second, offset_seconds)
    raw = head + src.need(4, "block header", 0)
    while True:
        at = src.pos - 8
        btype = struct.unpack(endian + "I", raw[:4])[0]
        if btype == PCAPNG_SHB:
            bom = src.need(4, "section header", at)
            if bom == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
                endian = "<"
            elif bom == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
                endian = ">"
            else:
                raise src.error(f"corrupt pcapng section header (byte-order magic {bom.hex()})", at=at)
            total, = struct.unpack(endian + "I", raw[4:8])
            if total < 28 or total % 4:
                raise src.error(f"corrupt pcapng section header (block length {total})", at=at)
            _check_length(src, total, "pcapng section header", at)
            body = src.need(total - 12, "section header", at)
            _check_trailer(src, endian, total, body[-4:], at)
            interfaces = []
        else:
            total, = struct.unpack(endian + "I", raw[4:8])
            if total < 12 or total % 4:
                raise src.error(f"corrupt pcapng block (block length {total})", at=at)
            _check_length(src, total, "pcapng block", at)
            body = src.need(total - 8, "pcapng block", at)
            body, trailer = body[:-4], body[-4:]
            _check_trailer(src, endian, total, trailer, at)
            if len(body) < _MIN_BODY.get(btype, 0):
                raise src.error(f"corrupt pcapng block (type {btype}, block length {total} is too short)", at=at)
            if btype == PCAPNG_IDB:
                interfaces.append(_interface(endian, body))
            elif btype in (PCAPNG_EPB, PCAPNG_OPB):
                yield _packet_block(src, endian, btype, body, interfaces, at)
            elif btype == PCAPNG_SPB:
                if not interfaces:
                    raise src.error("packet block before any interface description block", at=at)
                orig, = struct.unpack_from(endian + "I", body, 0)
                yield Record(None, interfaces[0][0], body[4:4 + orig], orig)
        at = src.pos
        raw = src.read_upto(8)
        if not raw:
            return
        if len(raw) < 8:
            raise src.error(f"truncated block header: needs 8 bytes, the file has {len(raw)}", at=at)


def _check_trailer(src, endian, total, trailer, at):
    again, = struct.unpack(endian + "I", trailer)
    if again != total:
        raise src.error(f"corrupt pcapng block (length {total} at the start, {again} at the end)", at=at)


def _options(endian, body, pos):
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(endian + "HH", body, pos)
        if code == 0:
            return
        yield code, body[pos + 4:pos + 4 + length]
        pos += 4 + ((length + 3) & ~3)


def _interface(endian, body):
    linktype, = struct.unpack_from(endian + "H", body, 0)
    units, offset = 1_000_000, 0
    for code, value in _options(endian, body, 8):
        if code == _OPT_IF_TSRESOL and value:
            v = value[0]
            units = 2 ** (v & 0x7F) if v & 0x80 else 10 ** v
        elif code == _OPT_IF_TSOFFSET and len(value) == 8:
            offset, = struct.unpack(endian + "q", value)
    return linktype, units, offset


def _packet_block(src, endian, btype, body, interfaces, at):
    if btype == PCAPNG_EPB:
        iface, ts_hi, ts_lo, cap, orig = struct.unpack_from(endian + "IIIII", body, 0)
    else:
        iface, _drops, ts_hi, ts_lo, cap, orig = struct.unpack_from(endian + "HHIIII", body, 0)
    if iface >= len(interfaces):
        raise src.error(f"packet block names interface {iface}, "
                        f"but only {len(interfaces)} interface(s) are described", at=at)
    if 20 + cap > len(body):
        raise src.error(f"corrupt packet block: captured length {cap} exceeds the block", at=at)
    linktype, units, offset = interfaces[iface]
    ticks = (ts_hi << 32) | ts_lo
    ts_ns = _timestamp(src, offset * 1_000_000_000 + ticks * 1_000_000_000 // units, at)
    direction = None
    if btype == PCAPNG_EPB:
        for code, value in _options(endian, body, 20 + ((cap + 3) & ~3)):
            if code == _OPT_EPB_FLAGS and len(value) == 4:
                flags, = struct.unpack(endian + "I", value)
                direction = {1: INGRESS, 2: EGRESS}.get(flags & 3)
    return Record(ts_ns, linktype, body[20:20 + cap], orig, direction)


def write_pcap(path, packets, linktype=LINKTYPE_ETHERNET, nanosecond=True):
    """Write ``(timestamp_ns, frame_bytes)`` pairs as a classic little-endian pcap."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US,
                            2, 4, 0, 0, 262144, linktype))
        for ts_ns, data in packets:
            sec, ns = divmod(ts_ns, 1_000_000_000)
            frac = ns if nanosecond else ns // 1000
            f.write(struct.pack("<IIII", sec, frac, len(data), len(data)))
            f.write(data)


def write_pcapng(path, packets, linktype=LINKTYPE_ETHERNET):
    """Write ``(timestamp_ns, frame_bytes, direction_or_None)`` as a nanosecond pcapng."""
    def block(btype, body):
        body += b"\0" * (-len(body) % 4)
        total = len(body) + 12
        return struct.pack("<II", btype, total) + body + struct.pack("<I", total)

    with open(path, "wb") as f:
        f.write(block(PCAPNG_SHB, struct.pack("<IHHq", PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1)))
        tsresol = struct.pack("<HHB3x", _OPT_IF_TSRESOL, 1, 9) + struct.pack("<HH", 0, 0)
        f.write(block(PCAPNG_IDB, struct.pack("<HHI", linktype, 0, 262144) + tsresol))
        for ts_ns, data, direction in packets:
            body = struct.pack("<IIIII", 0, ts_ns >> 32, ts_ns & 0xFFFFFFFF, len(data), len(data))
            body += data + b"\0" * (-len(data) % 4)
            if direction is not None:
                flags = 1 if direction == INGRESS else 2
                body += struct.pack("<HHI", _OPT_EPB_FLAGS, 4, flags) + struct.pack("<HH", 0, 0)
            f.write(block(PCAPNG_EPB, body))
