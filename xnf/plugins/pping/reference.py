"""pping's matching rules as a pure-Python state machine: offline mode and test oracle.

This is the specification the BPF data path is held to, written so a reader can follow
one packet through it. Per packet, in this order (ePPing's order):

1. parse; a packet without a usable identifier changes nothing (aggregation counters
   aside);
2. find the flow state, keyed on the canonical (direction-independent) tuple, and
   create it only for a packet that could be timestamped and does not close the flow;
3. forward direction: start it if empty, count the packet, try to timestamp it
   (local filter, first instance of the identifier, rate limit, map room);
4. reverse direction: the first packet back opens it (flow event), count the packet,
   try to match the reply identifier against the reverse direction's timestamps;
5. FIN closes the packet's direction, RST both; the entry goes once neither is active.

Identifiers and replies, per protocol:

* TCP with the timestamp option: TSval on packets with payload or SYN; TSecr on
  packets with ACK. A TSval is stored only if it is newer than the direction's last
  one (0 < delta < 2^31); a direction first seen mid-stream (not on a SYN) waits for
  the TSval to change first. The entry is deleted when matched.
* TCP without timestamps (``seq_ack``): the identifier of a segment is its end
  sequence number (seq + payload, +1 for SYN). One sample per direction is
  outstanding at a time, kept in the flow state; the first ACK at or beyond it
  (serial arithmetic) matches. Karn's rule: a segment whose end is not beyond the
  highest end seen in its direction is a retransmission; it discards the
  outstanding sample and starts a recovery during which nothing is sampled, until an
  ACK reaches the highest end sent when the retransmission was seen. So no RTT is
  ever taken from a retransmitted segment or from an ACK held back by one.
* ICMP/ICMPv6 echo: the echo identifier is both ports, the sequence number the
  identifier; requests are timestamped, replies matched.
* DNS over UDP port 53: the query id on queries (QR=0) is the identifier, responses
  (QR=1) are matched on it.
* QUIC short headers on UDP port 443: a spin-bit edge (the value differs from the
  previous packet of the same direction) is timestamped; the next edge seen in the
  other direction matches it, whatever its value (the server reflects the bit, the
  client inverts it). One edge per direction is outstanding, a newer edge replaces
  an unmatched one.

Directions offline: a capture has no hooks, so each packet's direction is taken from
``feed(direction=...)``, else from the capture (pcapng ``epb_flags``, Linux cooked
packet type), else from ``local_addresses`` (source local = egress), else it is
ingress. Direction matters only for local filtering (ingress packets addressed to a
local address are not timestamped) and for ``match_on_egress``: the state is keyed on
the canonical flow, so a middlebox capture holding both directions is matched the same
whatever the directions are called.

Lifetimes: an unmatched timestamp expires after ``timestamp_lifetime`` (10 s) or
``timestamp_rtt_lifetime`` (8) smoothed RTTs of its direction; a direction is idle
from the last packet it sent (ePPing measures from its last timestamp, which rate
limiting makes coarse), except a TCP segment that can be timestamped and repeats the
direction's last TSval (``last_id`` before the packet): it was sent within one tick of
the sender's TS clock (1 ms on Linux, at most 1 s by RFC 7323) of the segment that
first carried that TSval, which did refresh it. A direction so expires up to one such
tick earlier than its last packet says, never later, and the data path reads no clock
for most segments of a bulk sender. Past ``unopened_flow_lifetime`` (30 s) if no reply ever came,
``icmp_flow_lifetime`` (30 s) for ICMP, ICMPv6 and DNS, ``flow_lifetime`` (300 s)
otherwise. A flow entry goes when both directions are closed or idle; each direction
that was open reports ``flow timeout``.

Time is the capture's: expiry passes run at multiples of ``cleanup_interval`` from
the first packet (over a gap in the capture, once, at the latest boundary passed),
aggregation reports at multiples of ``aggregate`` (at the first boundary after the
data they hold), both before the first packet at or after the boundary.

Held against the data path, whose passes run from a BPF timer armed at attach (each
one ``cleanup_interval`` after the previous one ended), that schedule would expire a
timestamp the kernel still has, or the reverse, whenever a pass of one side falls
inside a wait the other side's passes miss (a delayed ACK outliving 8 smoothed RTTs).
``cleanup_times`` removes the difference: the passes run at exactly those times
(the data path records when its passes ran), each before the first packet at or
after it, so both sides expire the same entries at the same moments. One window is
left: a kernel pass judges at its start but walks the maps for a while (~3 ms with
131072-entry maps), so a reply during the walk may still match a timestamp it is
about to delete, where this pass, an instant, has already deleted it.
"""

from __future__ import annotations

import collections

import attrs

import xnf.plugins.pping.packet as P
from xnf.plugins.pping.config import NS_PER_S, PpingConfig
from xnf.plugins.pping.events import (
    CLOSING, OPENING, REASON_FIN, REASON_FIRST_PACKET, REASON_RST, REASON_SYN,
    REASON_SYN_ACK, REASON_TIMEOUT, AggregateReport, Flow, FlowEvent, RttEvent, Stats,
)

EMPTY, WAITOPEN, OPEN, CLOSED = range(4)
_NONE, _OPENING, _CLOSING, _CLOSING_BOTH = range(4)

#: Histogram shape of the per-prefix aggregation (ePPing's: 250 bins of 4 ms).
AGG_BINS = 250
AGG_BIN_WIDTH_NS = 4_000_000

_SERIAL_HALF = 1 << 31
_U32 = 0xFFFFFFFF


def serial_newer(new: int, old: int) -> bool:
    """RFC 7323 / 1982: ``new`` is after ``old`` in 32-bit serial arithmetic."""
    return 0 < ((new - old) & _U32) < _SERIAL_HALF


def serial_at_or_after(new: int, old: int) -> bool:
    """``new`` equals ``old`` or is after it in 32-bit serial arithmetic."""
    return ((new - old) & _U32) < _SERIAL_HALF


def smoothed_rtt(prev: int, rtt: int) -> int:
    """srtt = 7/8 srtt + 1/8 rtt, in the kernel's integer form."""
    if not prev:
        return rtt
    return prev - (prev >> 3) + (rtt >> 3)


class _Dir:
    """State of one direction of a flow (ePPing's ``struct flow_state``)."""

    __slots__ = ("conn", "last_timestamp", "last_seen", "last_id", "opening_reason",
                 "timestamped", "sent_pkts", "sent_bytes", "rec_pkts", "rec_bytes", "min_rtt",
                 "srtt", "outstanding", "seq_highest", "seq_sample", "karn_mark", "spin_seen",
                 "spin_sample")

    def __init__(self):
        self.conn = EMPTY
        self.last_timestamp = 0   # last identifier timestamped (rate limit)
        self.last_seen = 0        # last packet sent in this direction (idle timeout)
        self.last_id = 0
        self.opening_reason = REASON_FIRST_PACKET
        self.timestamped = False
        self.sent_pkts = self.sent_bytes = self.rec_pkts = self.rec_bytes = 0
        self.min_rtt = self.srtt = 0
        self.outstanding = 0
        self.seq_highest = None   # highest end sequence seen (seq_ack)
        self.seq_sample = None    # (end_seq, time) outstanding (seq_ack)
        self.karn_mark = None     # in recovery until an ACK reaches this (seq_ack)
        self.spin_seen = None     # last spin value seen (QUIC)
        self.spin_sample = None   # time of the outstanding spin edge (QUIC)

    @property
    def active(self):
        return self.conn in (WAITOPEN, OPEN)


class _Info:
    """What the protocol parser found in one packet (ePPing's ``protocol_info``)."""

    __slots__ = ("proto", "flow", "kind", "pid", "pid_valid", "reply_pid", "reply_valid",
                 "event", "reason", "wait_first_edge", "seq_end", "spin")

    def __init__(self, proto, flow, kind):
        self.proto = proto
        self.flow = flow
        self.kind = kind
        self.pid = 0
        self.pid_valid = False
        self.reply_pid = 0
        self.reply_valid = False
        self.event = _NONE
        self.reason = None
        self.wait_first_edge = False
        self.seq_end = None
        self.spin = None


def _reverse(flow):
    proto, s, sp, d, dp = flow
    return (proto, d, dp, s, sp)


def _flow_obj(flow):
    return Flow(*flow)


class _PrefixStats:
    __slots__ = ("rx_pkts", "rx_bytes", "tx_pkts", "tx_bytes", "bins", "rtt_min", "rtt_max",
                 "last_updated")

    def __init__(self):
        self.rx_pkts = self.rx_bytes = self.tx_pkts = self.tx_bytes = 0
        self.bins = [0] * AGG_BINS
        self.rtt_min = self.rtt_max = 0
        self.last_updated = 0

    def clear(self):
        last = self.last_updated
        self.__init__()
        self.last_updated = last

    @property
    def empty(self):
        return not (self.rx_pkts or self.tx_pkts)


class Reference:
    """Feed packets in capture order; get back the events pping reports for them."""

    def __init__(self, config: "PpingConfig | None" = None, local_addresses=None, cleanup_times=None):
        """``cleanup_times``: run the expiry passes at these times (ns, the packets'
        clock) instead of every ``cleanup_interval`` from the first packet; to mirror
        the data path's timer (see the module docstring)."""
        self.config = config or PpingConfig()
        c = self.config
        addrs = c.local_addresses if local_addresses is None else local_addresses
        self.local_addresses = frozenset(str(a) for a in addrs)
        self._track_tcp = c.track_tcp
        self._rate_limit = c.rate_limit_ns
        self._rtt_rate = c.rtt_rate_fixed
        self._ts_lifetime = int(c.timestamp_lifetime * NS_PER_S)
        self._flow_lifetime = int(c.flow_lifetime * NS_PER_S)
        self._short_lifetime = int(c.icmp_flow_lifetime * NS_PER_S)
        self._unopened_lifetime = int(c.unopened_flow_lifetime * NS_PER_S)
        self._cleanup_ns = int(c.cleanup_interval * NS_PER_S)
        self._agg_ns = int(c.aggregate * NS_PER_S)
        self._individual = not c.aggregate
        self.flows = {}        # canonical tuple -> (dir of canonical tuple, dir of reverse)
        self.timestamps = {}   # (directed tuple, kind, identifier) -> time
        self._agg = ({}, {})   # per family: prefix -> _PrefixStats
        self._next_cleanup = None
        self._cleanup_times = None if cleanup_times is None else collections.deque(sorted(cleanup_times))
        self._next_report = None
        self._last_time = None
        self._stats = {f.name: 0 for f in attrs.fields(Stats)}

    @property
    def stats(self) -> Stats:
        return Stats(**self._stats)

    # Entry points ---------------------------------------------------------------------

    def feed(self, timestamp_ns: int, data: bytes, linktype: int = P.LINKTYPE_ETHERNET,
             direction: "str | None" = None, wire_len: "int | None" = None) -> list:
        """Process one captured frame; return the events it (and the clock) caused."""
        pkt = P.parse(data, linktype, wire_len)
        return self.feed_packet(timestamp_ns, pkt, direction)

    def feed_packet(self, now: int, pkt, direction=None) -> list:
        """Like :meth:`feed` for an already parsed :class:`~xnf.plugins.pping.packet.Packet`."""
        out = []
        self._advance_clock(now, out)
        self._stats["packets"] += 1
        if pkt is None:
            return out
        if direction not in (None, P.INGRESS, P.EGRESS):
            raise ValueError(f"direction must be {P.INGRESS!r}, {P.EGRESS!r} or None, not {direction!r}")
        if direction is None:
            direction = pkt.direction
        if direction is None:
            direction = P.EGRESS if pkt.src_ip in self.local_addresses else P.INGRESS
        info = self._identify(pkt)
        if self._agg_ns:
            src_stats, dst_stats = self._aggregate_packet(now, pkt, info is not None)
        else:
            src_stats = dst_stats = None
        if info is not None:
            self._stats["parsed"] += 1
            self._track(now, pkt, info, direction == P.INGRESS,
                        dst_stats if self.config.aggregate_reverse else src_stats, out)
        return out

    def finish(self, now: "int | None" = None) -> list:
        """End of input: report what aggregation holds (flows are not timed out)."""
        out = []
        now = self._last_time if now is None else now
        if self._agg_ns and now is not None:
            self._report_aggregates(now, out)
        return out

    # Clock-driven work ----------------------------------------------------------------

    def _advance_clock(self, now, out):
        if self._last_time is None:
            if self._cleanup_ns:
                self._next_cleanup = now + self._cleanup_ns
            if self._agg_ns:
                self._next_report = now + self._agg_ns
        self._last_time = now
        if self._cleanup_times is not None:
            while self._cleanup_times and self._cleanup_times[0] <= now:
                self._cleanup(self._cleanup_times.popleft(), out)
        elif self._cleanup_ns and now >= self._next_cleanup:
            # one pass at the latest boundary: those skipped over a gap would find less
            latest = self._next_cleanup + (now - self._next_cleanup) // self._cleanup_ns * self._cleanup_ns
            self._cleanup(latest, out)
            self._next_cleanup = latest + self._cleanup_ns
        if self._agg_ns and now >= self._next_report:
            self._report_aggregates(self._next_report, out)
            self._next_report += ((now - self._next_report) // self._agg_ns + 1) * self._agg_ns

    def _expired(self, age, srtt):
        return (srtt and age > srtt * self.config.timestamp_rtt_lifetime) or age > self._ts_lifetime

    def _cleanup(self, now, out):
        """Expire timestamps and flows (ePPing's two map-iterator programs, in order)."""
        self._stats["cleanup_runs"] += 1
        for key, ts in list(self.timestamps.items()):
            if now <= ts:
                continue
            d = self._dir_of(key[0])
            if self._expired(now - ts, d.srtt if d else 0):
                del self.timestamps[key]
                self._stats["timestamps_expired"] += 1
                if d is not None:
                    d.outstanding -= 1
        for key, pair in list(self.flows.items()):
            for d in pair:
                if d.seq_sample and now > d.seq_sample[1] and self._expired(now - d.seq_sample[1], d.srtt):
                    d.seq_sample = None
                if d.spin_sample is not None and now > d.spin_sample and self._expired(now - d.spin_sample, d.srtt):
                    d.spin_sample = None
            fwd, rev = pair
            t1 = self._flow_old(key, fwd, now)
            t2 = self._flow_old(key, rev, now)
            if (not fwd.active or t1) and (not rev.active or t2):
                del self.flows[key]
                self._stats["flows_expired"] += 1
                for d, timed_out, flow in ((fwd, t1, key), (rev, t2, _reverse(key))):
                    if timed_out and d.conn == OPEN:
                        self._flow_event(out, now, _reverse(flow), CLOSING, REASON_TIMEOUT, "garbage collection")

    def _flow_old(self, key, d, now):
        if not d.active or d.last_seen > now:
            return False
        age = now - d.last_seen
        return ((d.conn == WAITOPEN and age > self._unopened_lifetime)
                or (key[0] in ("ICMP", "ICMPv6", "UDP") and age > self._short_lifetime)
                or age > self._flow_lifetime)

    # Protocol identification ----------------------------------------------------------

    def _identify(self, pkt):
        c = self.config
        if pkt.tcp is not None and self._track_tcp:
            return self._identify_tcp(pkt)
        if pkt.echo is not None and c.icmp:
            e = pkt.echo
            proto = "ICMP" if pkt.ip_version == 4 else "ICMPv6"
            info = _Info(proto, (proto, pkt.src_ip, e.ident, pkt.dst_ip, e.ident), "icmp")
            if e.is_request:
                info.pid, info.pid_valid = e.seq, True
            else:
                info.reply_pid, info.reply_valid = e.seq, True
            return info
        u = pkt.udp
        if u is not None:
            flow = None
            if c.dns and u.dns_id is not None:
                flow = ("UDP", pkt.src_ip, u.sport, pkt.dst_ip, u.dport)
                info = _Info("UDP", flow, "dns")
                if u.dns_is_response:
                    if u.sport == P.DNS_PORT:
                        info.reply_pid, info.reply_valid = u.dns_id, True
                elif u.dport == P.DNS_PORT:
                    info.pid, info.pid_valid = u.dns_id, True
                return info
            if c.quic and u.quic_spin is not None:
                flow = ("QUIC", pkt.src_ip, u.sport, pkt.dst_ip, u.dport)
                info = _Info("QUIC", flow, "spin")
                info.spin = u.quic_spin
                info.pid_valid = True  # lets the flow exist; only edges are timestamped
                return info
        return None

    def _identify_tcp(self, pkt):
        t = pkt.tcp
        syn = t.flags & P.TCP_SYN
        if syn and self.config.skip_syn:
            return None
        flow = ("TCP", pkt.src_ip, t.sport, pkt.dst_ip, t.dport)
        if t.tsval is not None:
            info = _Info("TCP", flow, "tsval")
            info.pid, info.reply_pid = t.tsval, t.tsecr
        elif self.config.seq_ack:
            info = _Info("TCP", flow, "seq")
            info.seq_end = (t.seq + pkt.payload_len + (1 if syn else 0)) & _U32
            info.pid, info.reply_pid = info.seq_end, t.ack
        else:
            return None
        info.pid_valid = bool(pkt.payload_len > 0 or syn)
        info.reply_valid = bool(t.flags & P.TCP_ACK)
        if t.flags & P.TCP_RST:
            info.event, info.reason = _CLOSING_BOTH, REASON_RST
        elif t.flags & P.TCP_FIN:
            info.event, info.reason = _CLOSING, REASON_FIN
        elif syn:
            info.event = _OPENING
            info.reason = REASON_SYN_ACK if t.flags & P.TCP_ACK else REASON_SYN
        else:
            info.wait_first_edge = True
        return info

    # The per-packet logic -------------------------------------------------------------

    def _canonical(self, flow):
        rev = _reverse(flow)
        return (flow, True) if (flow[1], flow[2]) <= (rev[1], rev[2]) else (rev, False)

    def _dir_of(self, flow):
        key, is_key = self._canonical(flow)
        pair = self.flows.get(key)
        if pair is None:
            return None
        return pair[0] if is_key else pair[1]

    def _track(self, now, pkt, info, is_ingress, agg_stats, out):
        key, is_key = self._canonical(info.flow)
        pair = self.flows.get(key)
        if pair is None:
            if not info.pid_valid or info.event in (_CLOSING, _CLOSING_BOTH):
                return
            if len(self.flows) >= self.config.flow_map_size:
                self._stats["flow_map_full"] += 1
                return
            pair = (_Dir(), _Dir())
            self.flows[key] = pair
        fwd, rev = (pair[0], pair[1]) if is_key else (pair[1], pair[0])

        if fwd.conn == EMPTY and info.pid_valid:
            fwd.conn = WAITOPEN
            fwd.last_timestamp = now
            fwd.last_seen = now
            fwd.last_id = info.pid
            fwd.opening_reason = info.reason if info.event == _OPENING else REASON_FIRST_PACKET
            fwd.timestamped = False
        if fwd.active:
            if not self._repeats_last_tsval(info, fwd):
                fwd.last_seen = now
            fwd.sent_pkts += 1
            fwd.sent_bytes += pkt.payload_len

        if info.kind == "spin":
            edge = fwd.spin_seen is not None and fwd.spin_seen != info.spin
            fwd.spin_seen = info.spin
            info.pid_valid = info.reply_valid = edge
        self._timestamp(now, pkt, info, fwd, is_ingress)

        if rev.active:
            if rev.conn == WAITOPEN and info.event != _CLOSING_BOTH:
                rev.conn = OPEN
                self._flow_event(out, rev.last_timestamp, _reverse(info.flow), OPENING,
                                 rev.opening_reason, "dest")
            rev.rec_pkts += 1
            rev.rec_bytes += pkt.payload_len
        self._match(now, info, rev, is_ingress, agg_stats, out)

        if info.event in (_CLOSING, _CLOSING_BOTH):
            if fwd.conn == OPEN:
                self._flow_event(out, now, _reverse(info.flow), CLOSING, info.reason, "dest")
            fwd.conn = CLOSED
        if info.event == _CLOSING_BOTH:
            if rev.conn == OPEN:
                self._flow_event(out, now, info.flow, CLOSING, info.reason, "src")
            rev.conn = CLOSED
        if not fwd.active and not rev.active:
            self.flows.pop(key, None)

    def _rate_limited(self, now, d):
        if now < d.last_timestamp:
            return True
        rtt = d.srtt if self.config.use_srtt else d.min_rtt
        if self._rtt_rate and rtt:
            return now - d.last_timestamp < (self._rtt_rate * rtt) >> 16
        return now - d.last_timestamp < self._rate_limit

    def _timestamp(self, now, pkt, info, d, is_ingress):
        if not d.active or not info.pid_valid:
            return
        if self.config.localfilt and is_ingress and pkt.dst_ip in self.local_addresses:
            return
        if info.kind == "seq":
            end = info.seq_end
            first = d.seq_highest is None
            if not first and not serial_newer(end, d.seq_highest):
                # Karn: a retransmission; no sample until everything sent so far is ACKed
                if d.seq_sample is not None:
                    self._stats["karn_skipped"] += 1
                d.seq_sample = None
                d.karn_mark = d.seq_highest
                return
            d.seq_highest = end
            if (first and info.wait_first_edge) or d.seq_sample is not None or d.karn_mark is not None:
                return
        elif info.kind == "spin":
            d.spin_sample = None  # an older unmatched edge is stale once a new one is seen
        else:
            if (d.timestamped or info.wait_first_edge) and not self._new_identifier(info, d):
                return
            d.last_id = info.pid
        if d.timestamped and self._rate_limited(now, d):
            return
        d.timestamped = True
        d.last_timestamp = now
        if info.kind == "seq":
            d.seq_sample = (info.seq_end, now)
        elif info.kind == "spin":
            d.spin_sample = now
        else:
            key = (info.flow, info.kind, info.pid)
            if key in self.timestamps:
                return
            if len(self.timestamps) >= self.config.timestamp_map_size:
                self._stats["timestamp_map_full"] += 1
                return
            self.timestamps[key] = now
            d.outstanding += 1

    @staticmethod
    def _repeats_last_tsval(info, d):
        """A segment repeating its direction's last TSval (state before this packet) was
        sent within one sender TS-clock tick of the one that first carried it, which set
        ``last_seen``; the data path saves a clock read on it (see the module docstring)."""
        return info.kind == "tsval" and info.pid_valid and info.pid == d.last_id

    @staticmethod
    def _new_identifier(info, d):
        if info.kind == "tsval":
            return serial_newer(info.pid, d.last_id)
        return info.pid != d.last_id

    def _match(self, now, info, d, is_ingress, agg_stats, out):
        if not d.active or not info.reply_valid:
            return
        if info.kind == "seq":
            if d.karn_mark is not None and serial_at_or_after(info.reply_pid, d.karn_mark):
                d.karn_mark = None
            sample = d.seq_sample
            if (sample is None or now < sample[1]
                    or not serial_at_or_after(info.reply_pid, sample[0])):
                return
            d.seq_sample = None
            sent = sample[1]
        elif info.kind == "spin":
            sent = d.spin_sample
            if sent is None or now < sent:
                return
            d.spin_sample = None
        else:
            if d.outstanding == 0:
                return
            key = (_reverse(info.flow), info.kind, info.reply_pid)
            sent = self.timestamps.get(key)
            if sent is None or now < sent:
                return
            del self.timestamps[key]
            d.outstanding -= 1
        rtt = now - sent
        if d.min_rtt == 0 or rtt < d.min_rtt:
            d.min_rtt = rtt
        d.srtt = smoothed_rtt(d.srtt, rtt)
        if agg_stats is not None:
            if not agg_stats.rtt_min or rtt < agg_stats.rtt_min:
                agg_stats.rtt_min = rtt
            if rtt > agg_stats.rtt_max:
                agg_stats.rtt_max = rtt
            agg_stats.bins[min(rtt // AGG_BIN_WIDTH_NS, AGG_BINS - 1)] += 1
        if self._individual:
            self._stats["rtt_events"] += 1
            out.append(RttEvent(now, _flow_obj(info.flow), rtt, d.min_rtt, d.sent_pkts, d.sent_bytes,
                                d.rec_pkts, d.rec_bytes, not is_ingress, info.kind))

    def _flow_event(self, out, when, flow, event, reason, by):
        if self._individual:
            self._stats["flow_events"] += 1
            out.append(FlowEvent(when, _flow_obj(flow), event, reason, by))

    # Aggregation ----------------------------------------------------------------------

    def _prefix_stats(self, ip, version, create):
        c = self.config
        table = self._agg[0 if version == 4 else 1]
        prefix = P.prefix_of(ip, c.aggregate_subnets_v4, c.aggregate_subnets_v6)
        stats = table.get(prefix)
        if stats is not None:
            return stats
        if create and len(table) < c.aggregate_map_size:
            stats = table[prefix] = _PrefixStats()
            return stats
        if create:
            self._stats["aggregate_map_full"] += 1
        backup = "0.0.0.0/0" if version == 4 else "::/0"
        return table.setdefault(backup, _PrefixStats())

    def _aggregate_packet(self, now, pkt, trackable):
        src = self._prefix_stats(pkt.src_ip, pkt.ip_version, trackable)
        src.rx_pkts += 1
        src.rx_bytes += pkt.wire_len
        src.last_updated = now
        dst = self._prefix_stats(pkt.dst_ip, pkt.ip_version, trackable)
        dst.tx_pkts += 1
        dst.tx_bytes += pkt.wire_len
        dst.last_updated = now
        return src, dst

    def _report_aggregates(self, now, out):
        timeout = self.config.aggregate_timeout * NS_PER_S
        for table in self._agg:
            for prefix, s in list(table.items()):
                expired = (not prefix.endswith("/0") and timeout and s.last_updated < now
                           and now - s.last_updated > timeout)
                if not s.empty:
                    out.append(AggregateReport(
                        now, prefix, s.rx_pkts, s.rx_bytes, s.tx_pkts, s.tx_bytes, s.bins,
                        AGG_BIN_WIDTH_NS, s.rtt_min or None, s.rtt_max or None))
                    s.clear()
                if expired:
                    del table[prefix]


@attrs.frozen
class Agreement:
    """How two RTT sample streams of the same traffic compare (see :func:`agreement`)."""

    pairs: int
    only_first: int
    only_second: int
    within_tolerance: int
    tolerance_ns: int
    worst_ns: int

    @property
    def fraction_within(self) -> float:
        return self.within_tolerance / self.pairs if self.pairs else 1.0

    def ok(self, fraction: float = 0.99) -> bool:
        """Same samples on both sides, and ``fraction`` of them within the tolerance."""
        return not self.only_first and not self.only_second and self.fraction_within >= fraction

    def __str__(self):
        return (f"{self.pairs} samples paired, {self.only_first} only in the first stream, "
                f"{self.only_second} only in the second; {self.fraction_within:.2%} within "
                f"{self.tolerance_ns / 1000:g} us (worst {self.worst_ns / 1000:g} us)")


def agreement(first, second, tolerance_ns: int = 50_000, window_ns: int = 2_000_000) -> Agreement:
    """Pair the RTT samples of two sources seeing the same traffic, and compare them.

    This is how the BPF data path is held to the reference: ``first`` from the kernel,
    ``second`` from :func:`run_pcap` over a capture of the same interface. Samples pair
    when they have the same flow and identifier kind and their reply times differ by at
    most ``window_ns`` (the two clocks see a packet at slightly different moments);
    paired RTTs must differ by at most ``tolerance_ns``. Other events are ignored.
    """
    def by_flow(events):
        out = {}
        for e in events:
            if isinstance(e, RttEvent):
                out.setdefault((e.flow, e.identifier_kind), []).append(e)
        for samples in out.values():
            samples.sort(key=lambda e: e.timestamp_ns)
        return out

    a, b = by_flow(first), by_flow(second)
    pairs = only_a = only_b = within = worst = 0
    for key in set(a) | set(b):
        xs, ys = a.get(key, []), b.get(key, [])
        i = j = 0
        while i < len(xs) and j < len(ys):
            dt = xs[i].timestamp_ns - ys[j].timestamp_ns
            if abs(dt) <= window_ns:
                diff = abs(xs[i].rtt_ns - ys[j].rtt_ns)
                pairs += 1
                within += diff <= tolerance_ns
                worst = max(worst, diff)
                i += 1
                j += 1
            elif dt < 0:
                only_a += 1
                i += 1
            else:
                only_b += 1
                j += 1
        only_a += len(xs) - i
        only_b += len(ys) - j
    return Agreement(pairs, only_a, only_b, within, tolerance_ns, worst)


def run_pcap(path, config: "PpingConfig | None" = None, local_addresses=None):
    """Run a capture file through :class:`Reference`; yield its events in order.

    Raises :class:`~xnf.plugins.pping.pcap.PcapError` for unreadable captures.
    Packets without a timestamp (pcapng simple packet blocks) are skipped.
    """
    from xnf.plugins.pping.pcap import read  # `xnf --help` imports this module; loaded only when this command runs

    ref = Reference(config, local_addresses)
    for rec in read(path):
        if rec.timestamp_ns is None:
            continue
        yield from ref.feed(rec.timestamp_ns, rec.data, rec.linktype, rec.direction, rec.wire_len)
    yield from ref.finish()
