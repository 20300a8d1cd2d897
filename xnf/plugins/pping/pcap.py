"""Capture files in pure Python: classic pcap and pcapng, read; small writers for tests.

pping's offline mode (``--read FILE``) needs packets with nanosecond timestamps, their
link type and, when the capture recorded it, their direction. Nothing else is read,
so this stays small and needs no libpcap.
"""

from __future__ import annotations

import struct

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


class PcapError(XnfError, ValueError):
    """A capture file that cannot be read; the message names the file and the problem."""


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
    Raises :class:`PcapError` for a missing, empty, non-capture or truncated file
    (records before the damage have been yielded by then).
    """
    if str(path) == "-":
        import sys

        f = open(sys.stdin.fileno(), "rb", closefd=False)
        path = "<stdin>"
    else:
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise PcapError(f"{path}: cannot open capture file: {exc.strerror}") from None
    with f:
        head = f.read(4)
        if len(head) < 4:
            raise PcapError(f"{path}: not a capture file: {'empty' if not head else 'only %d bytes' % len(head)}")
        for endian in "<>":
            magic, = struct.unpack(endian + "I", head)
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                yield from _read_pcap(path, f, endian, magic == PCAP_MAGIC_NS)
                return
        if struct.unpack("<I", head)[0] == PCAPNG_SHB:
            yield from _read_pcapng(path, f, head)
            return
        raise PcapError(f"{path}: not a pcap or pcapng file (magic bytes {head.hex()}); "
                        "write captures with tcpdump -w or dumpcap")


def _need(path, f, n, what):
    buf = f.read(n)
    if len(buf) < n:
        raise PcapError(f"{path}: truncated {what} at byte {f.tell() - len(buf)}: "
                        f"needs {n} bytes, file has {len(buf)}")
    return buf


def _read_pcap(path, f, endian, nanosecond):
    hdr = _need(path, f, 20, "pcap file header")
    _vmaj, _vmin, _zone, _sigfigs, _snaplen, network = struct.unpack(endian + "HHiIII", hdr)
    linktype = network & 0x0FFFFFFF
    rec = struct.Struct(endian + "IIII")
    scale = 1 if nanosecond else 1000
    while True:
        raw = f.read(16)
        if not raw:
            return
        if len(raw) < 16:
            raise PcapError(f"{path}: truncated record header at byte {f.tell() - len(raw)}: "
                            f"needs 16 bytes, file has {len(raw)}")
        sec, frac, incl, orig = rec.unpack(raw)
        if incl > 0x4000000:
            raise PcapError(f"{path}: corrupt record at byte {f.tell() - 16}: "
                            f"captured length {incl} is implausible")
        data = _need(path, f, incl, "packet data")
        yield Record(sec * 1_000_000_000 + frac * scale, linktype, data, orig)


def _read_pcapng(path, f, head):
    endian = "<"
    interfaces = []  # (linktype, units_per_second, offset_seconds)
    first = True
    while True:
        if first:
            raw = head + _need(path, f, 4, "block header")
            first = False
        else:
            raw = f.read(8)
            if not raw:
                return
            if len(raw) < 8:
                raise PcapError(f"{path}: truncated block header at byte {f.tell() - len(raw)}: "
                                f"needs 8 bytes, file has {len(raw)}")
        btype = struct.unpack(endian + "I", raw[:4])[0]
        if btype == PCAPNG_SHB:
            bom = _need(path, f, 4, "section header")
            if bom == struct.pack("<I", PCAPNG_BYTE_ORDER_MAGIC):
                endian = "<"
            elif bom == struct.pack(">I", PCAPNG_BYTE_ORDER_MAGIC):
                endian = ">"
            else:
                raise PcapError(f"{path}: corrupt pcapng section header (byte-order magic {bom.hex()})")
            total, = struct.unpack(endian + "I", raw[4:8])
            if total < 28 or total % 4:
                raise PcapError(f"{path}: corrupt pcapng section header (block length {total})")
            _need(path, f, total - 12, "section header")
            interfaces = []
            continue
        total, = struct.unpack(endian + "I", raw[4:8])
        if total < 12 or total % 4:
            raise PcapError(f"{path}: corrupt pcapng block at byte {f.tell() - 8} (block length {total})")
        body = _need(path, f, total - 12, "pcapng block")
        _need(path, f, 4, "pcapng block trailer")
        if btype == PCAPNG_IDB:
            interfaces.append(_interface(endian, body))
        elif btype in (PCAPNG_EPB, PCAPNG_OPB):
            yield _packet_block(path, endian, btype, body, interfaces)
        elif btype == PCAPNG_SPB:
            if not interfaces:
                raise PcapError(f"{path}: packet block before any interface description block")
            orig, = struct.unpack_from(endian + "I", body, 0)
            data = body[4:4 + orig]
            yield Record(None, interfaces[0][0], data, orig)


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


def _packet_block(path, endian, btype, body, interfaces):
    if btype == PCAPNG_EPB:
        iface, ts_hi, ts_lo, cap, orig = struct.unpack_from(endian + "IIIII", body, 0)
    else:
        iface, _drops, ts_hi, ts_lo, cap, orig = struct.unpack_from(endian + "HHIIII", body, 0)
    if iface >= len(interfaces):
        raise PcapError(f"{path}: packet block names interface {iface}, "
                        f"but only {len(interfaces)} interface(s) are described")
    if 20 + cap > len(body):
        raise PcapError(f"{path}: corrupt packet block: captured length {cap} exceeds the block")
    linktype, units, offset = interfaces[iface]
    ticks = (ts_hi << 32) | ts_lo
    ts_ns = offset * 1_000_000_000 + ticks * 1_000_000_000 // units
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
