"""Trace input: packets from CSV files or classic pcap captures.

CSV needs a header with ``time`` (seconds) or ``time_ns``, ``flow`` and ``size``, and
may have ``cls``, ``priority``, ``rank``, ``slack_ns``, ``remaining``. A pcap (classic
format, microsecond or nanosecond, either byte order; Ethernet, raw IP or Linux
cooked link types) gives one flow per IP 5-tuple and the wire length as size; times
start at zero with the first packet.
"""
import csv
import ipaddress
import struct

from xnf.plugins.pifo_sched.errors import TraceError
from xnf.plugins.pifo_sched.packet import Packet
from xnf.plugins.pifo_sched.shaping import NS

PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
              b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}
LINK_ETHERNET, LINK_RAW, LINK_RAW_ALT, LINK_SLL, LINK_SLL2 = 1, 101, 12, 113, 276


def read_trace(path):
    """Packets of the trace at ``path``, sorted by arrival time."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise TraceError(f"cannot read trace {path!r}: {err.strerror}", "check the path") from None
    if head in PCAP_MAGIC:
        packets = read_pcap(path)
    elif head == b"\x0a\x0d\x0d\x0a":
        raise TraceError(f"{path!r} is pcapng, which is not supported",
                         "save it as classic pcap (editcap -F pcap in.pcapng out.pcap)")
    else:
        packets = read_csv(path)
    packets.sort(key=lambda p: p.arrival)
    return packets


def _int(row, key, line, path, default=None):
    value = row.get(key)
    if value in (None, ""):
        return default
    try:
        return int(float(value))
    except ValueError:
        raise TraceError(f"{path}:{line}: {key} {value!r} is not a number", "fix the trace") from None


def read_csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = set(reader.fieldnames or [])
        if not {"flow", "size"} <= fields or not fields & {"time", "time_ns"}:
            raise TraceError(f"{path}: CSV header must name time (or time_ns), flow and size, got {sorted(fields)}",
                             "first line e.g. time,flow,size")
        packets = []
        seqs = {}
        for line, row in enumerate(reader, start=2):
            if row.get("time_ns") not in (None, ""):
                arrival = _int(row, "time_ns", line, path)
            else:
                try:
                    arrival = int(float(row["time"]) * NS)
                except ValueError:
                    raise TraceError(f"{path}:{line}: time {row['time']!r} is not a number", "fix the trace") from None
            size = _int(row, "size", line, path)
            if size is None or size < 1 or arrival < 0:
                raise TraceError(f"{path}:{line}: size must be positive and time non-negative", "fix the trace")
            flow = row["flow"]
            flow = int(flow) if flow.lstrip("-").isdigit() else flow
            seqs[flow] = seqs.get(flow, 0) + 1
            packets.append(Packet(flow, size, arrival, seqs[flow], cls=row.get("cls") or None,
                                  priority=_int(row, "priority", line, path, 0),
                                  rank=_int(row, "rank", line, path), slack=_int(row, "slack_ns", line, path),
                                  remaining=_int(row, "remaining", line, path)))
        return packets


def _flow_of(frame, linktype):
    """``src:sport>dst:dport/proto`` of an IP frame, or None for anything else."""
    if linktype == LINK_ETHERNET:
        offset, ethertype = 14, frame[12:14]
        while ethertype in (b"\x81\x00", b"\x88\xa8") and len(frame) >= offset + 4:
            ethertype, offset = frame[offset + 2:offset + 4], offset + 4
    elif linktype == LINK_SLL:
        offset, ethertype = 16, frame[14:16]
    elif linktype == LINK_SLL2:
        offset, ethertype = 20, frame[0:2]
    elif linktype in (LINK_RAW, LINK_RAW_ALT):
        offset = 0
        ethertype = b"\x08\x00" if frame[:1] and frame[0] >> 4 == 4 else b"\x86\xdd"
    else:
        return None
    ip = frame[offset:]
    if ethertype == b"\x08\x00" and len(ip) >= 20:
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        l4 = ip[(ip[0] & 0x0F) * 4:]
    elif ethertype == b"\x86\xdd" and len(ip) >= 40:
        proto, src, dst, l4 = ip[6], ip[8:24], ip[24:40], ip[40:]
    else:
        return None
    ports = struct.unpack("!HH", l4[:4]) if proto in (6, 17, 132) and len(l4) >= 4 else (0, 0)
    return (f"{ipaddress.ip_address(src)}:{ports[0]}>{ipaddress.ip_address(dst)}:{ports[1]}/{proto}")


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise TraceError(f"{path}: truncated pcap header", "capture again")
    order, frac_ns = PCAP_MAGIC[data[:4]]
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    packets, seqs, offset, first = [], {}, 24, None
    while offset + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(order + "IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + incl]
        offset += 16 + incl
        if len(frame) < incl:
            break  # a capture cut short mid-record: keep what is complete
        flow = _flow_of(frame, linktype)
        if flow is None:
            continue
        stamp = sec * NS + frac * frac_ns
        first = stamp if first is None else first
        seqs[flow] = seqs.get(flow, 0) + 1
        packets.append(Packet(flow, orig, stamp - first, seqs[flow]))
    if not packets:
        raise TraceError(f"{path}: no IPv4/IPv6 packets found (link type {linktype})",
                         "capture on an Ethernet or raw IP interface")
    return packets
