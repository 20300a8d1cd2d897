"""The BPF programs on crafted frames (PROG_TEST_RUN), held to the reference implementation.

Every test sends the same frames through the kernel and through
:class:`~xnf.plugins.pping.reference.Reference` and requires the same events in the
same order (flows, counters, kinds, directions; times within the clock window of
the runs, see pping_harness.assert_same), plus what the rule itself says should happen.
"""
import time

import attrs
import pytest

from pping_harness import Runner, assert_same, assert_same_last_seen
from xnf.core.kernel import netns
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import Flow, FlowEvent, RttEvent
from xnf.testing.frames import (TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, dns, ether, icmp_echo, ipv4, ipv6,
                                quic_short, tcp, udp, v4_tcp, v6_tcp)

pytestmark = pytest.mark.root

A, B = "10.10.0.1", "10.20.0.2"
A6, B6 = "2001:db8:1::1", "2001:db8:2::2"
DATA = b"d" * 100


def cfg(**kw):
    kw.setdefault("rate_limit", 0)
    kw.setdefault("include_local", True)
    return PpingConfig(**kw)


def rtts(events):
    return [e for e in events if isinstance(e, RttEvent)]


def flows(events):
    return [e for e in events if isinstance(e, FlowEvent)]


def conversation(r, a=A, b=B, build=v4_tcp, n=3, hook_in="ingress", **kw):
    """a (local) sends data, b answers with data; n rounds; TSvals tick every packet."""
    for i in range(n):
        r.send(build(a, b, 40000, 80, ts=(100 + i, 900 + i - 1 if i else 0), payload=DATA, **kw), "egress")
        r.send(build(b, a, 80, 40000, ts=(900 + i, 100 + i), payload=DATA, **kw), hook_in)


def test_tsval_tsecr_both_directions():
    with Runner(cfg()) as r:
        conversation(r)
        got = assert_same(r)
        samples = rtts(got)
        # first TSval of each direction waits for a change (mid-stream), then every round matches
        assert [e.match_on_egress for e in samples] == [False, True, False]
        assert samples[0].flow.src_ip == B and samples[1].flow.src_ip == A
        assert [e.reason for e in flows(got)] == ["first observed packet"] * 2


def test_assert_same_catches_an_rtt_error_just_beyond_the_clock_window():
    """A test of the harness: an RTT off by 50 us more than the window between the clock
    reads around each run must fail the comparison (the crafted RTTs are tens of us, so
    a looser bound would check only the shape of the events)."""
    with Runner(cfg()) as r:
        conversation(r)
        assert_same(r)
        skew = r.max_window_ns + 50_000
        r._ref_events = [attrs.evolve(e, rtt_ns=e.rtt_ns + skew) if isinstance(e, RttEvent) else e
                         for e in r._ref_events]
        with pytest.raises(AssertionError):
            assert_same(r)


def test_first_instance_only_with_serial_wraparound():
    with Runner(cfg()) as r:
        r.send(v4_tcp(A, B, 1, 2, ts=(0xFFFFFFF0, 0), payload=DATA))
        r.send(v4_tcp(A, B, 1, 2, ts=(0xFFFFFFF8, 0), payload=DATA))   # newer: stored
        r.send(v4_tcp(A, B, 1, 2, ts=(0xFFFFFFF8, 0), payload=DATA))   # same: not again
        r.send(v4_tcp(A, B, 1, 2, ts=(0xFFFFFFF4, 0), payload=DATA))   # older: never
        r.send(v4_tcp(A, B, 1, 2, ts=(5, 0), payload=DATA))            # wrapped, newer: stored
        assert r.coll.maps["pping_ts"].__len__() == 2
        r.send(v4_tcp(B, A, 2, 1, ts=(7, 0xFFFFFFF4)), "ingress")  # never stored
        r.send(v4_tcp(B, A, 2, 1, ts=(7, 0xFFFFFFF8)), "ingress")
        r.send(v4_tcp(B, A, 2, 1, ts=(7, 0xFFFFFFF8)), "ingress")  # deleted on match
        r.send(v4_tcp(B, A, 2, 1, ts=(7, 5)), "ingress")
        assert len(rtts(assert_same(r))) == 2


def test_pure_ack_not_timestamped_and_reply_needs_ack():
    with Runner(cfg()) as r:
        r.send(v4_tcp(A, B, 1, 2, ts=(10, 0), payload=DATA))
        r.send(v4_tcp(A, B, 1, 2, ts=(11, 0)))                     # pure ACK: not stored
        r.send(v4_tcp(A, B, 1, 2, ts=(12, 0), payload=DATA))
        r.send(v4_tcp(B, A, 2, 1, ts=(50, 11), payload=DATA), "ingress")
        r.send(v4_tcp(B, A, 2, 1, ts=(51, 12), flags=TCP_PSH, payload=DATA), "ingress")  # no ACK
        r.send(v4_tcp(B, A, 2, 1, ts=(52, 12), payload=DATA), "ingress")
        got = rtts(assert_same(r))
        assert len(got) == 1 and got[0].rtt_ns > 0


def test_syn_skipped_by_default_and_included_on_request():
    def handshake(r):
        r.send(v4_tcp(A, B, 1, 2, flags=TCP_SYN, seq=1, ts=(10, 0)))
        r.send(v4_tcp(B, A, 2, 1, flags=TCP_SYN | TCP_ACK, ack=2, ts=(70, 10)), "ingress")
        r.send(v4_tcp(A, B, 1, 2, ack=1, ts=(11, 70)))
    with Runner(cfg()) as r:
        handshake(r)
        assert assert_same(r) == []
        assert r.counters()["parsed"] == 1
    with Runner(cfg(include_syn=True)) as r:
        handshake(r)
        got = assert_same(r)
        assert [type(e).__name__ for e in got] == ["FlowEvent", "RttEvent", "FlowEvent", "RttEvent"]
        assert flows(got)[0].reason == "SYN" and flows(got)[1].reason == "SYN-ACK"


def test_mid_stream_flow_waits_for_tsval_change():
    with Runner(cfg()) as r:
        r.send(v4_tcp(A, B, 1, 2, ts=(10, 0), payload=DATA))   # first seen: not stored
        r.send(v4_tcp(A, B, 1, 2, ts=(10, 0), payload=DATA))   # same value: not stored
        r.send(v4_tcp(B, A, 2, 1, ts=(80, 10)), "ingress")
        r.send(v4_tcp(A, B, 1, 2, ts=(11, 0), payload=DATA))   # the edge: stored
        r.send(v4_tcp(B, A, 2, 1, ts=(80, 11)), "ingress")
        got = rtts(assert_same(r))
        assert len(got) == 1


def test_fin_and_rst_close_flows():
    with Runner(cfg()) as r:
        conversation(r, n=2)
        r.send(v4_tcp(A, B, 40000, 80, flags=TCP_FIN | TCP_ACK, ts=(110, 901)))
        r.send(v4_tcp(B, A, 80, 40000, flags=TCP_FIN | TCP_ACK, ts=(910, 110)), "ingress")
        got = flows(assert_same(r))
        assert [(e.event, e.reason) for e in got][-2:] == [("closing", "FIN"), ("closing", "FIN")]
        assert len(r.coll.maps["pping_flows"]) == 0
    with Runner(cfg()) as r:
        conversation(r, n=2)
        r.send(v4_tcp(B, A, 80, 40000, flags=TCP_RST | TCP_ACK, ts=(920, 101)), "ingress")
        got = flows(assert_same(r))
        assert [(e.reason, e.triggered_by) for e in got][-2:] == [("RST", "dest"), ("RST", "src")]
        assert len(r.coll.maps["pping_flows"]) == 0


@pytest.mark.parametrize("v6", [False, True])
def test_icmp_echo(v6):
    a, b = (A6, B6) if v6 else (A, B)
    with Runner(cfg(icmp=True)) as r:
        for seq in range(3):
            if v6:
                r.send(ether(ipv6(a, b, 58, icmp_echo(True, 77, seq, v6=True)), 0x86DD))
                r.send(ether(ipv6(b, a, 58, icmp_echo(False, 77, seq, v6=True)), 0x86DD), "ingress")
            else:
                r.send(ether(ipv4(a, b, 1, icmp_echo(True, 77, seq)), 0x0800))
                r.send(ether(ipv4(b, a, 1, icmp_echo(False, 77, seq)), 0x0800), "ingress")
        if not v6:
            r.send(ether(ipv4(b, a, 1, icmp_echo(False, 77, 9, code=1)), 0x0800), "ingress")
        got = rtts(assert_same(r))
        assert len(got) == 3
        assert got[0].flow.proto == ("ICMPv6" if v6 else "ICMP") and got[0].flow.src_port == 77


@pytest.mark.parametrize("vlans", [[(0x8100, 10)], [(0x88A8, 100), (0x8100, 10)]])
def test_vlan_tags(vlans):
    with Runner(cfg()) as r:
        conversation(r, vlans=vlans)
        assert len(rtts(assert_same(r))) == 3


def test_three_vlan_tags_are_not_parsed():
    with Runner(cfg()) as r:
        conversation(r, vlans=[(0x88A8, 1), (0x8100, 2), (0x8100, 3)])
        assert assert_same(r) == [] and r.counters()["parsed"] == 0


@pytest.mark.parametrize("ext", [
    [],
    [(0, b"")],                                       # hop-by-hop
    [(0, b""), (43, bytes(6)), (60, bytes(14))],      # hop-by-hop, routing, destination options
    [(44, (0, False))],                                 # first fragment
    [(51, bytes(10))],                                # authentication header
])
def test_ipv6_extension_headers(ext):
    with Runner(cfg()) as r:
        conversation(r, a=A6, b=B6, build=v6_tcp, ext=ext)
        assert len(rtts(assert_same(r))) == 3


def test_ipv6_four_extension_headers_and_later_fragments_are_skipped():
    with Runner(cfg()) as r:
        conversation(r, a=A6, b=B6, build=v6_tcp, ext=[(0, b""), (60, b""), (60, b""), (60, b"")])
        conversation(r, a=A6, b=B6, build=v6_tcp, ext=[(44, (64, False))])
        assert assert_same(r) == [] and r.counters()["parsed"] == 0


def test_l3_interface_frames_start_at_ip():
    with Runner(cfg(tcp=True, icmp=True), l3=True) as r:
        for i in range(3):
            r.send(ipv4(A, B, 6, tcp(1, 2, ts=(10 + i, 50 + i), payload=DATA)), "xdp")
            r.send(ipv6(B6, A6, 58, icmp_echo(True, 5, i, v6=True)), "xdp")
            r.send(ipv4(B, A, 6, tcp(2, 1, ts=(51 + i, 10 + i), payload=DATA)), "xdp")
        assert len(rtts(assert_same(r))) == 3


def test_xdp_ingress_same_as_tc_ingress():
    with Runner(cfg()) as r:
        conversation(r, hook_in="xdp")
        got = rtts(assert_same(r))
        assert [e.match_on_egress for e in got] == [False, True, False]


def test_seq_ack_with_karns_rule():
    def seg(seq, n=100, **kw):
        return v4_tcp(A, B, 5, 6, seq=seq, ack=1, payload=b"s" * n, **kw)

    def ack(n):
        return v4_tcp(B, A, 6, 5, seq=1, ack=n)

    with Runner(cfg(seq_ack=True)) as r:
        r.send(seg(1000))                      # first, mid-stream: not sampled
        r.send(seg(1100))                      # sampled, end 1200
        r.send(seg(1200))                      # one sample outstanding: not sampled
        r.send(ack(1300), "ingress")           # covers 1200: one RTT
        r.send(seg(1300))                      # sampled, end 1400
        r.send(seg(1300))                      # retransmission: sample discarded, recovery to 1400
        r.send(ack(1400), "ingress")           # no RTT (Karn); recovery ends
        r.send(seg(1400))                      # sampled again
        r.send(ack(1500), "ingress")           # RTT
        got = rtts(assert_same(r))
        assert [e.identifier_kind for e in got] == ["seq", "seq"]
        assert r.counters()["karn_skipped"] == 1


def test_seq_ack_off_by_default_ignores_tcp_without_timestamps():
    with Runner(cfg()) as r:
        r.send(v4_tcp(A, B, 5, 6, seq=1, payload=DATA))
        assert r.counters()["parsed"] == 0


def test_dns_query_and_response():
    with Runner(cfg(dns=True)) as r:
        for qid in (0x1111, 0x2222):
            r.send(ether(ipv4(A, B, 17, udp(5353, 53, dns(qid, False))), 0x0800))
        r.send(ether(ipv4(B, A, 17, udp(53, 5353, dns(0x2222, True))), 0x0800), "ingress")
        r.send(ether(ipv4(B, A, 17, udp(53, 5353, dns(0x1111, True))), 0x0800), "ingress")
        r.send(ether(ipv4(B, A, 17, udp(53, 5353, dns(0x1111, True))), 0x0800), "ingress")  # duplicate
        got = rtts(assert_same(r))
        assert [e.identifier_kind for e in got] == ["dns", "dns"] and got[0].flow.proto == "UDP"


def test_quic_spin_edges():
    with Runner(cfg(quic=True)) as r:
        spins = [0, 0, 1, 1, 0, 1]
        for s in spins:
            r.send(ether(ipv4(A, B, 17, udp(50000, 443, quic_short(s))), 0x0800))
            r.send(ether(ipv4(B, A, 17, udp(443, 50000, quic_short(s))), 0x0800), "ingress")
        got = rtts(assert_same(r))
        assert got and all(e.flow.proto == "QUIC" and e.identifier_kind == "spin" for e in got)


def test_rate_limit_sampling_counts():
    with Runner(cfg(rate_limit=25)) as r:
        for i in range(12):
            r.send(v4_tcp(A, B, 1, 2, ts=(10 + i, 500 + i), payload=DATA))
            r.send(v4_tcp(B, A, 2, 1, ts=(500 + i + 1, 10 + i), payload=DATA), "ingress")
            time.sleep(0.010)
        got = rtts(assert_same(r))
        # one sample per direction about every 30 ms over 120 ms
        assert 4 <= len(got) <= 12


@pytest.mark.parametrize("rtt_type", ["min", "smoothed"])
def test_rtt_rate_sampling(rtt_type):
    """--rtt-rate X: the gap between timestamps is X times the flow's (min) RTT. Here
    X = 2000 and RTTs are tens of microseconds, so back-to-back rounds (far below the
    gap) give few samples; the kernel and the reference take their RTTs a few
    microseconds apart, so only the count is compared, within one."""
    with Runner(cfg(rtt_rate=2000.0, rtt_type=rtt_type)) as r:
        for i in range(30):
            r.send(v4_tcp(A, B, 1, 2, ts=(10 + i, 0), payload=DATA))
            r.send(v4_tcp(B, A, 2, 1, ts=(500 + i, 10 + i)), "ingress")
        got, want = rtts(r.bpf_events()), rtts(r.ref_events())
        assert 1 <= len(got) < 10 and abs(len(got) - len(want)) <= 1


def test_full_maps_are_counted():
    with Runner(cfg(timestamp_map_size=2, flow_map_size=1)) as r:
        for i in range(5):
            r.send(v4_tcp(A, B, 1, 2, ts=(10 + i, 0), payload=DATA))
        r.send(v4_tcp(A, B, 7, 8, ts=(10, 0), payload=DATA))
        c = r.counters()
        assert c["timestamp_map_full"] == r.ref.stats.timestamp_map_full == 2
        assert c["flow_map_full"] == r.ref.stats.flow_map_full == 1


def test_ring_buffer_overflow_is_counted():
    with Runner(cfg(icmp=True), ring_bytes=4096) as r:
        for seq in range(200):
            r.send(ether(ipv4(A, B, 1, icmp_echo(True, 3, seq)), 0x0800))
            r.send(ether(ipv4(B, A, 1, icmp_echo(False, 3, seq)), 0x0800), "ingress")
        c = r.counters()
        delivered = len(r.bpf_events())
        assert c["dropped_events"] > 0
        assert delivered + c["dropped_events"] == c["rtt_events"] + c["flow_events"] == len(r.ref_events())


def test_expiry_of_timestamps_and_flows():
    short = dict(timestamp_lifetime=0.05, flow_lifetime=0.2, icmp_flow_lifetime=0.1,
                 unopened_flow_lifetime=0.1)
    with Runner(cfg(tcp=True, icmp=True, **short)) as r:
        conversation(r, n=2)
        r.send(v4_tcp(A, B, 40000, 80, ts=(200, 0), payload=DATA))          # never answered
        r.send(ether(ipv4(A, B, 1, icmp_echo(True, 9, 1)), 0x0800))      # ICMP, never answered
        time.sleep(0.12)
        r.cleanup()
        assert len(r.coll.maps["pping_ts"]) == 0
        time.sleep(0.12)
        r.cleanup()
        got = flows(assert_same(r))
        timeouts = [e for e in got if e.reason == "flow timeout"]
        assert len(timeouts) == 2 and all(e.triggered_by == "garbage collection" for e in timeouts)
        assert len(r.coll.maps["pping_flows"]) == 0
        assert r.counters()["timestamps_expired"] == 3  # B's last TSval, A's unanswered one, the echo


def test_a_segment_repeating_the_last_tsval_does_not_move_last_seen():
    """The idle clock (last_seen) moves with every packet of a direction except a segment
    that can be timestamped and repeats the direction's last TSval (one clock read less
    per segment of a bulk sender); kernel and reference take it from the same packet."""
    a_flow, ping = Flow("TCP", A, 40000, B, 80), Flow("ICMP", A, 9, B, 9)
    with Runner(cfg(seq_ack=True, icmp=True)) as r:
        def source(frame, flow=a_flow):
            """Send frame; the index of the packet the direction's last_seen is from."""
            r.send(frame)
            return assert_same_last_seen(r)[flow]

        def seg(tsval, payload=DATA):
            return v4_tcp(A, B, 40000, 80, ts=(tsval, 0), payload=payload)

        assert source(seg(100)) == 0          # opens the direction (last_id 100)
        assert source(seg(100)) == 0          # repeats the last TSval: no refresh
        assert source(seg(101)) == 2          # a new TSval refreshes
        assert source(seg(101)) == 2
        assert source(seg(101, b"")) == 4     # a pure ACK is no identifier: refreshes
        assert source(seg(99)) == 5           # an older TSval is not the last one: refreshes
        assert source(seg(101)) == 5          # the last TSval is still 101
        assert source(v4_tcp(A, B, 40000, 80, seq=7, payload=DATA)) == 7   # no timestamp option
        assert source(ether(ipv4(A, B, 1, icmp_echo(True, 9, 1)), 0x0800), ping) == 8
        assert source(ether(ipv4(A, B, 1, icmp_echo(True, 9, 1)), 0x0800), ping) == 9  # echo seq repeated
        assert_same(r)


def test_repeated_tsvals_across_idle_gaps_expire_alike():
    """Three opened flows go idle; after the gap one repeats its last TSval, one sends a
    new TSval, one a pure ACK. The clean-up pass expires the first only (its idle time
    counts from before the gap), in the kernel as in the reference. Margins: 50 ms (which
    delays only widen) and 200 ms from the 0.4 s lifetime."""
    with Runner(cfg(flow_lifetime=0.4, unopened_flow_lifetime=0.4)) as r:
        for port in (1, 2, 3):
            r.send(v4_tcp(A, B, port, 80, ts=(100, 0), payload=DATA))
            r.send(v4_tcp(B, A, 80, port, ts=(500, 100)), "ingress")
            r.send(v4_tcp(A, B, port, 80, ts=(101, 500), payload=DATA))
            r.send(v4_tcp(B, A, 80, port, ts=(501, 101)), "ingress")
        time.sleep(0.25)
        r.send(v4_tcp(A, B, 1, 80, ts=(101, 501), payload=DATA))
        r.send(v4_tcp(A, B, 2, 80, ts=(102, 501), payload=DATA))
        r.send(v4_tcp(A, B, 3, 80, ts=(101, 501)))
        assert_same_last_seen(r)
        time.sleep(0.2)
        r.cleanup()
        assert_same_last_seen(r)
        timeouts = [e.flow for e in flows(assert_same(r)) if e.reason == "flow timeout"]
        assert timeouts == [Flow("TCP", B, 80, A, 1)]
        assert len(r.coll.maps["pping_flows"]) == 2


def test_local_filtering_on_ingress():
    """Packets arriving for a local address (bpf_fib_lookup) are not timestamped; those
    leaving are. In a namespace of its own, A is made local on lo."""
    from pyroute2 import IPRoute

    with netns.private():
        with IPRoute() as ipr:
            ipr.link("set", index=1, state="up")
            ipr.addr("add", index=1, address=A, prefixlen=32)
        with Runner(PpingConfig(rate_limit=0), local_addresses=(A,)) as r:
            for i in range(3):
                r.send(v4_tcp(A, B, 1, 2, ts=(10 + i, 70 + i), payload=DATA), "egress")
                r.send(v4_tcp(B, A, 2, 1, ts=(71 + i, 10 + i), payload=DATA), "xdp", ingress_ifindex=1)
            got = rtts(assert_same(r))
            # A's packets are timestamped (egress) and matched; B's arrive for A: never stored
            assert len(got) == 2 and all(not e.match_on_egress for e in got)
            assert len(r.coll.maps["pping_ts"]) == 0


def test_aggregation_per_prefix():
    from xnf.plugins.pping import datapath

    c = PpingConfig(rate_limit=0, include_local=True, aggregate=1)
    with Runner(c) as r:
        conversation(r, n=4)
        conversation(r, a=A6, b=B6, build=v6_tcp, n=4)
        r.send(ether(ipv4(A, "10.30.0.3", 17, udp(1, 2, b"x")), 0x0800))   # untracked: catch-all
        kernel = {rep.prefix: rep for rep in datapath.collect_aggregates(r.coll.maps, c)}
        ref = {rep.prefix: rep for rep in r.ref.finish(r.sent[-1].time_ns)}
        assert set(kernel) == set(ref)
        for prefix, want in ref.items():
            got = kernel[prefix]
            assert (got.rx_packets, got.rx_bytes, got.tx_packets, got.tx_bytes) == \
                (want.rx_packets, want.rx_bytes, want.tx_packets, want.tx_bytes)
            assert sum(got.histogram) == sum(want.histogram)
        assert sum(sum(rep.histogram) for rep in kernel.values()) == 10  # 5 per conversation
        assert r.bpf_events() == []
        # the next interval starts empty
        assert datapath.collect_aggregates(r.coll.maps, c) == []
