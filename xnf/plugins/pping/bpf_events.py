"""Decoding what the BPF data path leaves behind into :mod:`~xnf.plugins.pping.events` objects.

Ring-buffer records (``struct pp_rtt_record`` / ``struct pp_flow_record`` in
``pping.h``) become :class:`RttEvent` and :class:`FlowEvent`; per-prefix histogram
entries become :class:`AggregateReport`; the per-CPU counters become :class:`Stats`.
Records are decoded with precompiled :mod:`struct` layouts rather than through BTF:
this is the hot path of the user side (every event goes through it).

Kernel times are ``bpf_ktime_get_ns()`` (CLOCK_MONOTONIC); :func:`wall_clock_offset`
gives the offset that turns them into nanoseconds since the Unix epoch.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time

from xnf.core.errors import XnfError
from xnf.plugins.pping.events import (
    CLOSING, OPENING, REASON_FIN, REASON_FIRST_PACKET, REASON_RST, REASON_SYN, REASON_SYN_ACK,
    REASON_TIMEOUT, AggregateReport, Flow, FlowEvent, RttEvent, Stats,
)

# --- constants of pping.h ------------------------------------------------------------

REC_RTT, REC_FLOW = 1, 2
KINDS = ("tsval", "seq", "icmp", "dns", "spin")
_EVENTS = {1: OPENING, 2: CLOSING}
_REASONS = {1: REASON_SYN, 2: REASON_SYN_ACK, 3: REASON_FIRST_PACKET, 4: REASON_FIN,
            5: REASON_RST, 6: REASON_TIMEOUT}
_BY = ("src", "dest", "garbage collection")
APP_QUIC = 1
AGG_BINS = 250
AGG_BACKUP = 2

#: Names of the per-CPU counters, in the order of PP_CNT_* in pping.h.
COUNTERS = ("dropped_events", "timestamp_map_full", "flow_map_full", "aggregate_map_full",
            "rtt_events", "flow_events", "packets", "parsed", "timestamps_expired",
            "flows_expired", "karn_skipped", "cleanup_runs")

# struct pp_flow: saddr[16] daddr[16] sport dport (network order) proto ipv app pad
_FLOW = "16s16sHHBBBx"
_RTT = struct.Struct("<BBB5xQ" + _FLOW + "QQQQQQ")
_FLOWREC = struct.Struct("<BBBB4xQ" + _FLOW)
RTT_RECORD_SIZE = _RTT.size      # 104
FLOW_RECORD_SIZE = _FLOWREC.size  # 56
_AGG = struct.Struct("<7Q%dI8x" % AGG_BINS)  # struct pp_agg_stats, 1064 bytes

_PROTO_NAMES = {6: "TCP", 1: "ICMP", 58: "ICMPv6", 17: "UDP"}


class DecodeError(XnfError, ValueError):
    """A ring-buffer record that is not one pping.bpf.c writes (version skew). An XnfError,
    so the CLI prints it as one line; still a ValueError for callers that caught that."""


def wall_clock_offset() -> int:
    """Nanoseconds to add to a ``bpf_ktime_get_ns()`` value to get Unix time.

    Read as close together as possible, the smaller of a few tries (least preempted).
    """
    best = None
    for _ in range(5):
        a = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        wall = time.time_ns()
        b = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if best is None or b - a < best[0]:
            best = (b - a, wall - (a + b) // 2)
    return best[1]


def _swap16(v):
    return ((v >> 8) | (v << 8)) & 0xFFFF


class Decoder:
    """Turns records into event objects; caches address strings and flows (flows repeat)."""

    def __init__(self, clock_offset_ns: "int | None" = None):
        self.clock_offset_ns = wall_clock_offset() if clock_offset_ns is None else clock_offset_ns
        self._flows = {}

    def flow(self, saddr, daddr, sport, dport, proto, ipv, app):
        key = (saddr, daddr, sport, dport, proto, app)
        f = self._flows.get(key)
        if f is None:
            if len(self._flows) > 65536:
                self._flows.clear()
            f = self._flows[key] = Flow(flow_protocol(proto, app, ipv), address(saddr, ipv),
                                        _swap16(sport), address(daddr, ipv), _swap16(dport))
        return f

    def decode(self, data) -> "RttEvent | FlowEvent":
        rtype = data[0]
        if rtype == REC_RTT and len(data) >= RTT_RECORD_SIZE:
            (_, kind, egress, ts, sa, da, sp, dp, proto, ipv, app,
             rtt, min_rtt, sp_, sb, rp, rb) = _RTT.unpack_from(data)
            return RttEvent(ts + self.clock_offset_ns, self.flow(sa, da, sp, dp, proto, ipv, app),
                            rtt, min_rtt, sp_, sb, rp, rb, bool(egress), KINDS[kind])
        if rtype == REC_FLOW and len(data) >= FLOW_RECORD_SIZE:
            _, event, reason, by, ts, sa, da, sp, dp, proto, ipv, app = _FLOWREC.unpack_from(data)
            try:
                return FlowEvent(ts + self.clock_offset_ns, self.flow(sa, da, sp, dp, proto, ipv, app),
                                 _EVENTS[event], _REASONS[reason], _BY[by])
            except (KeyError, IndexError):
                pass
        raise DecodeError(f"unknown pping record (type {rtype}, {len(data)} bytes); "
                          "the BPF object and bpf_events.py disagree, rebuild with tools/build-bpf")


_ADDR_CACHE = {}


def address(raw: bytes, ipv: int) -> str:
    """Text of a 16-byte address (IPv4 mapped as ::ffff:a.b.c.d when ``ipv`` is 4)."""
    s = _ADDR_CACHE.get(raw)
    if s is None:
        if len(_ADDR_CACHE) > 65536:
            _ADDR_CACHE.clear()
        s = _ADDR_CACHE[raw] = (socket.inet_ntop(socket.AF_INET, raw[12:]) if ipv == 4
                                else socket.inet_ntop(socket.AF_INET6, raw))
    return s


def flow_protocol(proto: int, app: int, ipv: int) -> str:
    if proto == 17 and app == APP_QUIC:
        return "QUIC"
    return _PROTO_NAMES.get(proto, str(proto))


# --- counters -------------------------------------------------------------------------

def counters(values) -> dict:
    """``{name: total}`` from the per-CPU counter array (index -> list of per-CPU values)."""
    return {name: sum(values[i]) for i, name in enumerate(COUNTERS)}


def stats(totals: dict, user_dropped: int = 0) -> Stats:
    """:class:`Stats` from counter totals; ``user_dropped`` adds events user space lost."""
    return Stats(dropped_events=totals["dropped_events"] + user_dropped,
                 timestamp_map_full=totals["timestamp_map_full"], flow_map_full=totals["flow_map_full"],
                 aggregate_map_full=totals["aggregate_map_full"], rtt_events=totals["rtt_events"],
                 flow_events=totals["flow_events"])


# --- aggregation ----------------------------------------------------------------------

def decode_agg_key(raw: bytes, ipv: int, prefix_len: int):
    """(generation, prefix text or None for the catch-all) of an aggregation map key."""
    if ipv == 4:
        prefix, gen = struct.unpack_from("<4sI", raw)
        net = ipaddress.IPv4Network((prefix, prefix_len))
        catch_all = "0.0.0.0/0"
    else:
        prefix, gen = struct.unpack_from("<8sI", raw)
        net = ipaddress.IPv6Network((prefix + bytes(8), prefix_len))
        catch_all = "::/0"
    return gen & 1, catch_all if gen & AGG_BACKUP else str(net)


def merge_percpu_agg(values) -> tuple:
    """Sum one prefix's per-CPU ``struct pp_agg_stats`` (bytes each) into one tuple:
    (rx_pkts, rx_bytes, tx_pkts, tx_bytes, last_updated, min, max, bins)."""
    rx_p = rx_b = tx_p = tx_b = last = 0
    lo = hi = 0
    bins = [0] * AGG_BINS
    for raw in values:
        f = _AGG.unpack_from(raw)
        rx_p += f[0]
        rx_b += f[1]
        tx_p += f[2]
        tx_b += f[3]
        last = max(last, f[4])
        if f[5] and (not lo or f[5] < lo):
            lo = f[5]
        hi = max(hi, f[6])
        if f[5]:
            for i, c in enumerate(f[7:]):
                if c:
                    bins[i] += c
    return rx_p, rx_b, tx_p, tx_b, last, lo, hi, bins


def aggregate_report(timestamp_ns, prefix, merged, bin_width_ns) -> AggregateReport:
    rx_p, rx_b, tx_p, tx_b, _last, lo, hi, bins = merged
    return AggregateReport(timestamp_ns, prefix, rx_p, rx_b, tx_p, tx_b, bins, bin_width_ns,
                           lo or None, hi or None)
