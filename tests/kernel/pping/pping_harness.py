"""Crafted frames, and a runner that feeds the same frames to the BPF programs
(PROG_TEST_RUN) and to the reference implementation, for side-by-side comparison.

Times: the kernel stamps packets with bpf_ktime_get_ns() (CLOCK_MONOTONIC); the
reference gets the CLOCK_MONOTONIC time read just before each run. The kernel's stamp
lies between that read and the read just after the run (the *window*), so an RTT or an
event time differs between the two by at most the largest window of the runs involved:
:func:`assert_same` allows exactly that, nothing more. Every decision that depends on
time (rate limits, lifetimes) is the same as long as the test spaces its packets far
from the thresholds.
"""
import socket
import struct
import time

import attrs

from xnf.plugins.pping import datapath
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import FlowEvent, RttEvent
from xnf.plugins.pping.packet import LINKTYPE_ETHERNET, LINKTYPE_RAW
from xnf.plugins.pping.reference import Reference

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10


# --- frame builders ---------------------------------------------------------------------

def eth(payload, ethertype, vlans=()):
    """Ethernet header, with 802.1Q / 802.1ad tags (outermost first): (tpid, vid) pairs."""
    tags = b""
    types = [tpid for tpid, _ in vlans] + [ethertype]
    for i, (_, vid) in enumerate(vlans):
        tags += struct.pack("!HH", vid & 0xFFF, types[i + 1])
    return MAC_B + MAC_A + struct.pack("!H", types[0]) + tags + payload


def ipv4(src, dst, proto, l4, tos=0, frag=0, options=b""):
    ihl = 5 + len(options) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, 20 + len(options) + len(l4), 1, frag, 64, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst)) + options
    return hdr + l4


def ipv6(src, dst, nexthdr, l4, ext=()):
    """``ext``: (type, body) pairs; body is padded to the header's length rules."""
    chain = b""
    types = [t for t, _ in ext] + [nexthdr]
    for i, (t, body) in enumerate(ext):
        nxt = types[i + 1]
        if t == 44:  # fragment: fixed 8 bytes, body = 16-bit offset/flags word
            chain += struct.pack("!BBHI", nxt, 0, body, 0x1234)
        elif t == 51:  # AH: length in 4-byte units minus 2
            raw = body + bytes(-(len(body) + 2) % 4)
            chain += struct.pack("!BB", nxt, (len(raw) + 2) // 4 - 2) + raw
        else:
            raw = body + bytes(-(len(body) + 2) % 8)
            chain += struct.pack("!BB", nxt, (len(raw) + 2) // 8 - 1) + raw
    payload = chain + l4
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), types[0], 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + payload


def tcp(sport, dport, seq=1000, ack=0, flags=TCP_ACK, tsval=None, tsecr=0, payload=b"", extra_opts=b""):
    opts = extra_opts
    if tsval is not None:
        opts += b"\x01\x01" + struct.pack("!BBII", 8, 10, tsval, tsecr)
    opts += bytes(-len(opts) % 4)
    doff = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, doff << 4, flags,
                       65535, 0, 0) + opts + payload


def echo(v6, request, ident, seq, payload=b"x" * 16, code=0):
    t = (128 if request else 129) if v6 else (8 if request else 0)
    return struct.pack("!BBHHH", t, code, 0, ident, seq) + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def dns(qid, response):
    flags = 0x8180 if response else 0x0100
    return struct.pack("!HHHHHH", qid, flags, 1, 1 if response else 0, 0, 0) + b"\x01a\x00\x00\x01\x00\x01"


def quic_short(spin, payload=b"q" * 20):
    return bytes([0x40 | (0x20 if spin else 0) | 0x01]) + bytes(8) + payload


def v4_tcp(src, dst, sport, dport, vlans=(), **kw):
    return eth(ipv4(src, dst, 6, tcp(sport, dport, **kw)), 0x0800, vlans)


def v6_tcp(src, dst, sport, dport, ext=(), vlans=(), **kw):
    return eth(ipv6(src, dst, 6, tcp(sport, dport, **kw), ext), 0x86DD, vlans)


# --- the runner ----------------------------------------------------------------------------

@attrs.define
class Sent:
    hook: str
    frame: bytes
    time_ns: int


class Runner:
    """Loads pping.bpf.o for ``config`` (nothing attached) and runs frames through it.

    ``send(frame, hook)`` with hook ``egress``/``ingress`` (tc) or ``xdp``; the events
    the kernel reported are in :meth:`bpf_events`, the reference's in :meth:`ref_events`.
    """

    def __init__(self, config=None, l3=False, local_addresses=(), ring_bytes=None):
        self.config = config or PpingConfig()
        self.l3 = l3
        self.coll = datapath.load(self.config, l3, ring_bytes)
        self.sent = []
        self.max_window_ns = 0
        self.ref = Reference(self.config, local_addresses=local_addresses)
        self._ref_events = []
        self._records = []
        from xnf.core.kernel.ringbuf import RingBuffer

        self._rb = RingBuffer(self.coll.maps["pping_events"], self._records.append)
        self._decoder = datapath.bpf_events.Decoder(clock_offset_ns=0)

    def close(self):
        self._rb.close()
        self.coll.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, frame, hook="egress", ingress_ifindex=None):
        """Run one frame; ``ingress_ifindex`` (XDP only) names the arrival device, which
        local filtering's route lookup needs."""
        prog = {"egress": "pping_tc_egress", "ingress": "pping_tc_ingress", "xdp": "pping_xdp_ingress"}[hook]
        ctx = None
        if ingress_ifindex is not None:
            ctx = struct.pack("<6I", 0, len(frame), 0, ingress_ifindex, 0, 0)  # struct xdp_md
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        res = self.coll.programs[prog].test_run(frame, ctx=ctx)
        # the kernel stamped the packet somewhere in this window (a loaded machine can
        # preempt us between the clock read and the run)
        self.max_window_ns = max(self.max_window_ns, time.clock_gettime_ns(time.CLOCK_MONOTONIC) - now)
        expected = 2 if hook == "xdp" else -1  # XDP_PASS, TC_ACT_UNSPEC
        assert res.retval in (expected, expected & 0xFFFFFFFF), f"{prog} returned {res.retval}"
        self.sent.append(Sent(hook, frame, now))
        linktype = LINKTYPE_RAW if self.l3 else LINKTYPE_ETHERNET
        direction = "egress" if hook == "egress" else "ingress"
        self._ref_events += self.ref.feed(now, frame, linktype, direction=direction)
        return res

    def cleanup(self):
        """One kernel clean-up pass, and the reference's at the same time."""
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self.coll.programs["pping_gc_now"].test_run(bytes(64))
        self.max_window_ns = max(self.max_window_ns, time.clock_gettime_ns(time.CLOCK_MONOTONIC) - now)
        self.ref._cleanup(now, self._ref_events)

    def bpf_events(self):
        self._rb.consume()  # drains without waiting for the epoll wake-up (irq_work)
        return [self._decoder.decode(r) for r in self._records]

    def ref_events(self):
        return list(self._ref_events)

    def counters(self):
        m = self.coll.maps["pping_counters"]
        return datapath.bpf_events.counters([m[i] for i in range(len(datapath.bpf_events.COUNTERS))])


def shape(ev):
    """An event without its times: what must be identical between kernel and reference."""
    if isinstance(ev, RttEvent):
        return ("rtt", ev.flow, ev.sent_packets, ev.sent_bytes, ev.rec_packets, ev.rec_bytes,
                ev.match_on_egress, ev.identifier_kind)
    if isinstance(ev, FlowEvent):
        return ("flow", ev.flow, ev.event, ev.reason, ev.triggered_by)
    return ("other", ev)


def assert_same(runner):
    """Kernel and reference reported the same events in the same order, with times that
    differ by no more than the largest window between a run's two clock reads.

    The kernel's stamp of a run lies in [before, after] of that run and the reference
    uses ``before``; an RTT is a difference of two stamps, so it differs by at most one
    window (the later run's stamp can be late by up to its window, the earlier run's by up
    to its own, in the opposite direction); an event time or a minimum by at most one.
    """
    got, want = runner.bpf_events(), runner.ref_events()
    assert [shape(e) for e in got] == [shape(e) for e in want], f"kernel: {got}\nreference: {want}"
    bound = runner.max_window_ns
    for g, w in zip(got, want):
        assert abs(g.timestamp_ns - w.timestamp_ns) <= bound, (g, w, bound)
        if isinstance(g, RttEvent):
            assert abs(g.rtt_ns - w.rtt_ns) <= bound, (g, w, bound)
            assert abs(g.min_rtt_ns - w.min_rtt_ns) <= bound, (g, w, bound)
    return got
