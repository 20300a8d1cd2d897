"""The reference matching rules, one crafted packet sequence per rule.

Times are given in milliseconds from an arbitrary epoch; every test checks the exact
events (RTT values, flows, counters, flow events) the rules must produce.
"""

import pytest

from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import AggregateReport, Flow, FlowEvent, RttEvent
from xnf.plugins.pping.reference import Reference, serial_newer, smoothed_rtt
from xnf.testing.frames import Endpoints, dns, quic_short

T0 = 1_700_000_000_000_000_000
MS = 1_000_000


def run(frames, ref=None, **cfg):
    """``frames``: ``(time_ms, frame[, direction])``; returns all events in order."""
    ref = ref or Reference(PpingConfig(**cfg))
    out = []
    for item in frames:
        t, frame = item[0], item[1]
        direction = item[2] if len(item) > 2 else None
        out += ref.feed(T0 + int(t * MS), frame, direction=direction)
    return out


def rtts(events):
    return [e for e in events if isinstance(e, RttEvent)]


def flow_events(events):
    return [e for e in events if isinstance(e, FlowEvent)]


E = Endpoints()
SERVER_FLOW = Flow("TCP", E.server, E.sport, E.client, E.cport)
CLIENT_FLOW = Flow("TCP", E.client, E.cport, E.server, E.sport)


def handshake_free_bulk():
    """A flow seen mid-stream: the first TSval is not timestamped, the next one is."""
    return [
        (0, E.c2s(ts=(100, 1), payload=b"a" * 100)),
        (1, E.s2c(ts=(500, 100))),                       # would match 100: must not
        (200, E.c2s(ts=(101, 500), payload=b"b" * 100)),  # TSval changed: timestamped
        (205, E.s2c(ts=(501, 101))),                      # match: 5 ms
    ]


# TCP timestamps ---------------------------------------------------------------------

def test_serial_arithmetic():
    assert serial_newer(1, 0) and not serial_newer(0, 0) and not serial_newer(0, 1)
    assert serial_newer(0x10, 0xFFFFFFF0)
    assert not serial_newer(0x80000000, 0) and serial_newer(0x7FFFFFFF, 0)


def test_mid_stream_flow_waits_for_tsval_change_then_matches():
    ev = run(handshake_free_bulk())
    [r] = rtts(ev)
    assert r.rtt_ns == 5 * MS and r.min_rtt_ns == 5 * MS
    assert r.flow == SERVER_FLOW  # the reply's tuple: RTT measured to the server
    assert r.identifier_kind == "tsval"
    assert r.timestamp_ns == T0 + 205 * MS
    # counters of the timestamped direction: 2 data packets sent, 2 replies received
    assert (r.sent_packets, r.sent_bytes, r.rec_packets, r.rec_bytes) == (2, 200, 2, 0)
    assert r.match_on_egress is False


def test_first_instance_only():
    ev = run([
        (0, E.c2s(ts=(100, 1), payload=b"a")),
        (200, E.c2s(ts=(101, 1), payload=b"a")),
        (210, E.c2s(ts=(101, 1), payload=b"a")),   # same TSval: not timestamped again
        (400, E.c2s(ts=(101, 1), payload=b"a")),   # past the rate limit, still the same TSval
        (405, E.s2c(ts=(9, 101))),
    ])
    assert [r.rtt_ns for r in rtts(ev)] == [205 * MS]


def test_older_tsval_is_not_timestamped():
    ev = run([
        (0, E.c2s(ts=(100, 1), payload=b"a")),
        (200, E.c2s(ts=(300, 1), payload=b"a")),
        (400, E.c2s(ts=(250, 1), payload=b"a")),   # older than 300: ignored
        (401, E.s2c(ts=(9, 250))),
        (402, E.s2c(ts=(9, 300))),
    ])
    assert [r.rtt_ns for r in rtts(ev)] == [202 * MS]


def test_tsval_wraparound_counts_as_newer():
    ev = run([
        (0, E.c2s(ts=(0xFFFFFFF0, 1), payload=b"a")),
        (200, E.c2s(ts=(0x10, 1), payload=b"a")),
        (203, E.s2c(ts=(9, 0x10))),
    ])
    assert [r.rtt_ns for r in rtts(ev)] == [3 * MS]


def test_pure_acks_are_not_timestamped():
    ev = run([
        (0, E.c2s(ts=(100, 1), payload=b"a")),
        (200, E.c2s(ts=(101, 1))),                 # no payload, new TSval
        (203, E.s2c(ts=(9, 101))),
    ])
    assert rtts(ev) == []


def test_reply_must_carry_ack():
    frames = handshake_free_bulk()
    frames[3] = (205, E.s2c(ts=(501, 101), flags="P", payload=b"x"))
    assert rtts(run(frames)) == []


def test_entry_is_deleted_on_match():
    frames = handshake_free_bulk() + [(206, E.s2c(ts=(502, 101)))]
    assert len(rtts(run(frames))) == 1


def test_both_directions_are_measured():
    ev = run([
        (0, E.c2s(ts=(100, 1), payload=b"a")),
        (1, E.s2c(ts=(500, 100), payload=b"b")),
        (200, E.c2s(ts=(101, 500), payload=b"a")),
        (203, E.s2c(ts=(501, 101), payload=b"b")),  # matches client's 101 (3 ms)
        (210, E.c2s(ts=(102, 501))),                # matches server's 501 (7 ms)
    ])
    got = [(r.flow, r.rtt_ns) for r in rtts(ev)]
    assert got == [(SERVER_FLOW, 3 * MS), (CLIENT_FLOW, 7 * MS)]


def test_syn_skipped_by_default_and_included_on_request():
    hs = [
        (0, E.c2s(flags="S", seq=1000, ts=(100, 0))),
        (4, E.s2c(flags="SA", seq=5000, ack=1001, ts=(700, 100))),
        (8, E.c2s(flags="A", seq=1001, ack=5001, ts=(101, 700))),
    ]
    ev = run(hs)
    assert ev == []
    ev = run(hs, include_syn=True)
    assert [(r.flow, r.rtt_ns) for r in rtts(ev)] == [(SERVER_FLOW, 4 * MS), (CLIENT_FLOW, 4 * MS)]
    opening = [(f.flow, f.reason, f.triggered_by) for f in flow_events(ev)]
    assert opening == [(CLIENT_FLOW, "SYN", "dest"), (SERVER_FLOW, "SYN-ACK", "dest")]
    # an opening carries the time of the direction's first packet
    assert [f.timestamp_ns for f in flow_events(ev)] == [T0, T0 + 4 * MS]


def test_rate_limit_per_flow():
    frames = []
    for i in range(100):                          # a new TSval every 10 ms for 1 s
        t = i * 10
        frames.append((t, E.c2s(ts=(1000 + i, 1), payload=b"a")))
        frames.append((t + 2, E.s2c(ts=(5, 1000 + i))))
    assert len(rtts(run(frames))) == 10           # default 100 ms: first one waits (mid-stream)
    assert len(rtts(run(frames, rate_limit=0))) == 99
    assert len(rtts(run(frames, rate_limit=50))) == 20


def test_rtt_rate_uses_min_or_smoothed_rtt():
    frames = []
    for i in range(200):                          # every 1 ms, reply after 20 ms
        frames.append((i, E.c2s(ts=(1000 + i, 1), payload=b"a")))
    for i in range(200):
        frames.append((i + 20, E.s2c(ts=(5, 1000 + i))))
    frames.sort(key=lambda f: f[0])
    got = [r.timestamp_ns for r in rtts(run(frames, rate_limit=0, rtt_rate=2.0))]
    # until the first reply (t=21 ms) no RTT is known: every new TSval is timestamped
    assert [b - a for a, b in zip(got, got[1:21])] == [MS] * 20
    # then one timestamp per 2 x 20 ms
    assert [b - a for a, b in zip(got[20:], got[21:])] == [40 * MS] * 4
    smoothed = rtts(run(frames, rate_limit=0, rtt_rate=2.0, rtt_type="smoothed"))
    assert len(smoothed) == len(got)


def test_smoothed_rtt_formula():
    assert smoothed_rtt(0, 800) == 800
    assert smoothed_rtt(800, 1600) == 800 - 100 + 200


def test_local_filtering_on_an_end_host():
    frames = [
        (0, E.c2s(ts=(100, 1), payload=b"a")),
        (1, E.s2c(ts=(500, 100), payload=b"b")),
        (200, E.c2s(ts=(101, 500), payload=b"a")),
        (203, E.s2c(ts=(501, 101), payload=b"b")),  # ingress to the local client: not timestamped
        (210, E.c2s(ts=(102, 501))),
    ]
    ev = run(frames, read="x.pcap", local_addresses=E.client)
    assert [(r.flow, r.match_on_egress) for r in rtts(ev)] == [(SERVER_FLOW, False)]
    ev = run(frames, read="x.pcap", local_addresses=E.client, include_local=True)
    assert [(r.flow, r.match_on_egress) for r in rtts(ev)] == [(SERVER_FLOW, False), (CLIENT_FLOW, True)]


def test_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="direction must be"):
        Reference().feed(T0, E.c2s(ts=(1, 1)), direction="out")


def test_explicit_direction_wins():
    frames = [(t, f, "egress") for t, f in
              [(x[0], x[1]) for x in handshake_free_bulk()]]
    [r] = rtts(run(frames))
    assert r.match_on_egress is True


# Flow events ------------------------------------------------------------------------

def test_fin_closes_one_direction_rst_both():
    base = handshake_free_bulk()
    ev = run(base + [(300, E.c2s(ts=(102, 501), flags="FA", payload=b"z"))])
    closing = [(f.flow, f.event, f.reason, f.triggered_by) for f in flow_events(ev) if f.event == "closing"]
    assert closing == [(SERVER_FLOW, "closing", "FIN", "dest")]
    opening = [(f.flow, f.reason, f.triggered_by) for f in flow_events(ev) if f.event == "opening"]
    assert opening == [(CLIENT_FLOW, "first observed packet", "dest")]

    ev = run(base + [(1, E.s2c(ts=(510, 100), payload=b"b")),  # server direction exists too
                     (300, E.c2s(ts=(102, 501), payload=b"z")),  # ...and is opened by this
                     (310, E.s2c(ts=(511, 102), flags="RA"))])
    closing = [(f.flow, f.reason, f.triggered_by) for f in flow_events(ev) if f.event == "closing"]
    assert closing == [(CLIENT_FLOW, "RST", "dest"), (SERVER_FLOW, "RST", "src")]


def test_flow_is_forgotten_after_both_directions_close():
    ref = Reference(PpingConfig())
    run(handshake_free_bulk() + [(300, E.c2s(ts=(102, 501), flags="RA"))], ref=ref)
    assert ref.flows == {}


def test_idle_flow_times_out():
    ref = Reference(PpingConfig(flow_lifetime=5))
    ev = run(handshake_free_bulk(), ref=ref)
    ev = run([(6000, Endpoints(cport=1).c2s(ts=(1, 1), payload=b"q"))], ref=ref)
    [timeout] = flow_events(ev)
    assert (timeout.flow, timeout.event, timeout.reason, timeout.triggered_by) == (
        SERVER_FLOW, "closing", "flow timeout", "garbage collection")
    assert (E.server, E.sport) not in [(k[1], k[2]) for k in ref.flows]
    assert ref.stats.flows_expired == 1


CLIENT_KEY = ("TCP", E.client, E.cport, E.server, E.sport)


def test_a_segment_repeating_the_last_tsval_does_not_refresh_last_seen():
    """Every packet of a direction refreshes its idle clock except a segment that can be
    timestamped and repeats the direction's last TSval (last_id before the packet):
    it was sent within one sender TS tick of the segment that first carried that TSval."""
    ref = Reference(PpingConfig(seq_ack=True, icmp=True))

    def seen_after(t, frame, key=CLIENT_KEY):
        run([(t, frame)], ref=ref)
        return (ref._dir_of(key).last_seen - T0) // MS

    assert seen_after(0, E.c2s(ts=(100, 1), payload=b"a")) == 0      # opens the direction (last_id 100)
    assert seen_after(1, E.c2s(ts=(100, 1), payload=b"b")) == 0      # repeats 100: no refresh
    assert seen_after(2, E.c2s(ts=(101, 1), payload=b"c")) == 2      # a new TSval refreshes
    assert seen_after(3, E.c2s(ts=(101, 1), payload=b"d")) == 2
    assert seen_after(4, E.c2s(ts=(101, 1))) == 4                    # a pure ACK is no identifier: refreshes
    assert seen_after(5, E.c2s(ts=(99, 1), payload=b"e")) == 5       # older than the last: refreshes
    assert ref._dir_of(CLIENT_KEY).last_id == 101                    # ... and is not timestamped
    assert seen_after(6, E.c2s(ts=(101, 1), payload=b"f")) == 5      # still the last TSval
    assert seen_after(7, E.c2s(seq=9, payload=b"g")) == 7            # no timestamp option (seq/ACK kind)
    ping = ("ICMP", E.client, 9, E.server, 9)
    assert seen_after(8, E.ping(True, 9, 1), ping) == 8
    assert seen_after(9, E.ping(True, 9, 1), ping) == 9              # a repeated echo sequence refreshes


def test_idle_time_counts_from_the_first_segment_of_a_repeated_tsval():
    """So a direction can expire up to one sender TS tick earlier than its last packet
    says (here, with a TSval held over seconds, which a real sender's clock never does)."""
    for later_tsval, expires in ((101, True), (102, False)):
        ref = Reference(PpingConfig(flow_lifetime=5))
        ev = run(handshake_free_bulk() + [(4500, E.c2s(ts=(later_tsval, 501), payload=b"c"))], ref=ref)
        ev = run([(7100, Endpoints(cport=1).c2s(ts=(1, 1), payload=b"q"))], ref=ref)  # pass at 7 s
        assert [(e.flow, e.reason) for e in flow_events(ev)] == ([(SERVER_FLOW, "flow timeout")] if expires else [])
        assert (ref._dir_of(CLIENT_KEY) is None) == expires


def test_unopened_flow_disappears_silently():
    ref = Reference(PpingConfig())
    run([(0, E.c2s(ts=(1, 1), payload=b"a"))], ref=ref)
    assert len(ref.flows) == 1
    ev = run([(31_000, Endpoints(cport=2).c2s(ts=(1, 1), payload=b"a"))], ref=ref)
    assert flow_events(ev) == [] and len(ref.flows) == 1  # only the new flow is left


def test_icmp_flows_time_out_after_30s():
    ref = Reference(PpingConfig(icmp=True))
    run([(0, E.ping(True, 9, 1)), (3, E.ping(False, 9, 1))], ref=ref)
    ev = run([(29_000, Endpoints(cport=3).c2s(ts=(1, 1), payload=b"a"))], ref=ref)
    assert flow_events(ev) == []
    ev = run([(31_000, Endpoints(cport=3).c2s(ts=(1, 1), payload=b"a"))], ref=ref)
    assert [f.reason for f in flow_events(ev)] == ["flow timeout"]


def test_unmatched_timestamp_expires():
    ref = Reference(PpingConfig())
    ev = run([(0, E.c2s(ts=(100, 1), payload=b"a")),
              (200, E.c2s(ts=(101, 1), payload=b"a")),
              (11_300, E.c2s(ts=(102, 1))),           # clean-up at 11 s: 101 is 10.8 s old
              (11_301, E.s2c(ts=(5, 101)))], ref=ref)
    assert rtts(ev) == []
    s = ref.stats
    assert (s.packets, s.parsed, s.timestamps_expired, s.cleanup_runs) == (4, 4, 1, 1)


def test_timestamp_expires_after_8_srtt():
    ev = run(handshake_free_bulk() + [
        (400, E.c2s(ts=(102, 1), payload=b"a")),      # srtt is 5 ms: expires after 40 ms
        (1500, E.c2s(ts=(103, 1))),
        (1501, E.s2c(ts=(5, 102)))])
    assert len(rtts(ev)) == 1


# ICMP ---------------------------------------------------------------------------------

@pytest.mark.parametrize("v6", [False, True])
def test_icmp_echo(v6):
    e = Endpoints("2001:db8::1", "2001:db8::2", v6=True) if v6 else E
    ev = run([(0, e.ping(True, 42, 1)), (7, e.ping(False, 42, 1)),
              (1000, e.ping(True, 42, 2)), (1004, e.ping(False, 42, 2))], icmp=True)
    proto = "ICMPv6" if v6 else "ICMP"
    assert [(r.flow, r.rtt_ns, r.identifier_kind) for r in rtts(ev)] == [
        (Flow(proto, e.server, 42, e.client, 42), 7 * MS, "icmp"),
        (Flow(proto, e.server, 42, e.client, 42), 4 * MS, "icmp")]
    assert rtts(run([(0, e.ping(True, 42, 1)), (7, e.ping(False, 42, 1))])) == []  # TCP only by default


# Beyond ePPing: seq/ACK ------------------------------------------------------------------

def test_seq_ack_without_timestamps():
    frames = [
        (0, E.c2s(seq=1000, ack=1, payload=b"a" * 100)),      # first seen: waits
        (1, E.s2c(seq=1, ack=1100)),
        (200, E.c2s(seq=1100, ack=1, payload=b"a" * 100)),    # sample: end 1200
        (201, E.c2s(seq=1200, ack=1, payload=b"a" * 100)),    # one outstanding at a time
        (206, E.s2c(seq=1, ack=1300)),                        # cumulative ACK covers 1200
    ]
    assert rtts(run(frames)) == []
    [r] = rtts(run(frames, seq_ack=True))
    assert (r.rtt_ns, r.identifier_kind, r.flow) == (6 * MS, "seq", SERVER_FLOW)


def test_seq_ack_dup_ack_does_not_match():
    ev = run([
        (0, E.c2s(seq=1000, payload=b"a" * 100)),
        (200, E.c2s(seq=1100, payload=b"a" * 100)),
        (203, E.s2c(ack=1100)),                               # below the sample: no match
        (206, E.s2c(ack=1200)),
    ], seq_ack=True)
    assert [r.rtt_ns for r in rtts(ev)] == [6 * MS]


def test_karn_no_sample_from_retransmission():
    ref = Reference(PpingConfig(seq_ack=True))
    ev = run([
        (0, E.c2s(seq=1000, payload=b"a" * 100)),
        (200, E.c2s(seq=1100, payload=b"a" * 100)),           # sample 1200
        (400, E.c2s(seq=1100, payload=b"a" * 100)),           # retransmission: sample dropped
        (600, E.c2s(seq=1200, payload=b"a" * 100)),           # in recovery: not sampled
        (605, E.s2c(ack=1300)),                               # recovery over (>= 1200)
        (800, E.c2s(seq=1300, payload=b"a" * 100)),           # sampled again
        (803, E.s2c(ack=1400)),
    ], ref=ref)
    assert [r.rtt_ns for r in rtts(ev)] == [3 * MS]
    assert ref.stats.karn_skipped == 1


def test_seq_ack_with_syn():
    ev = run([
        (0, E.c2s(flags="S", seq=99)),
        (5, E.s2c(flags="SA", seq=7, ack=100)),
    ], seq_ack=True, include_syn=True)
    assert [(r.rtt_ns, r.flow) for r in rtts(ev)] == [(5 * MS, SERVER_FLOW)]


# Beyond ePPing: DNS and QUIC -----------------------------------------------------------

def test_dns_query_response():
    d = Endpoints("10.0.0.1", "10.0.0.53", cport=5353, sport=53)
    ev = run([(0, d.udp_c2s(dns(0x1234, False))),
              (2, d.udp_s2c(dns(0x9999, True))),             # other id: no match
              (9, d.udp_s2c(dns(0x1234, True)))], dns=True)
    [r] = rtts(ev)
    assert (r.rtt_ns, r.identifier_kind, r.flow) == (9 * MS, "dns", Flow("UDP", "10.0.0.53", 53, "10.0.0.1", 5353))
    assert rtts(run([(0, d.udp_c2s(dns(1, False))), (9, d.udp_s2c(dns(1, True)))])) == []


def test_quic_spin_edges():
    q = Endpoints(cport=50000, sport=443)
    c = lambda spin: q.udp_c2s(quic_short(spin))      # noqa: E731
    s = lambda spin: q.udp_s2c(quic_short(spin))      # noqa: E731
    frames = [
        (0, c(0)), (1, s(0)),
        (100, c(1)),              # client edge
        (104, c(1)),
        (110, s(1)),              # server reflects: 10 ms to the server
        (111, s(1)),
        (250, c(0)),              # client inverts: 140 ms from the server edge
        (262, s(0)),
    ]
    ev = run(frames, quic=True, rate_limit=0)
    got = [(r.flow.src_ip, r.rtt_ns, r.identifier_kind) for r in rtts(ev)]
    assert got == [(q.server, 10 * MS, "spin"), (q.client, 140 * MS, "spin"), (q.server, 12 * MS, "spin")]


# Maps, counters, aggregation ------------------------------------------------------------

def test_timestamp_map_full_is_counted():
    ref = Reference(PpingConfig(timestamp_map_size=1, rate_limit=0))
    run([(0, E.c2s(ts=(100, 1), payload=b"a")),
         (1, E.c2s(ts=(101, 1), payload=b"a")),
         (2, E.c2s(ts=(102, 1), payload=b"a"))], ref=ref)
    assert ref.stats.timestamp_map_full == 1


def test_flow_map_full_is_counted():
    ref = Reference(PpingConfig(flow_map_size=1))
    run([(0, E.c2s(ts=(1, 1), payload=b"a")),
         (1, Endpoints(cport=7).c2s(ts=(1, 1), payload=b"a"))], ref=ref)
    assert ref.stats.flow_map_full == 1 and len(ref.flows) == 1


def test_aggregation_per_prefix():
    ref = Reference(PpingConfig(aggregate=1, rate_limit=0))
    frames = []
    for i in range(10):
        frames.append((i * 10, E.c2s(ts=(100 + i, 1), payload=b"a")))
        frames.append((i * 10 + 5, E.s2c(ts=(7, 100 + i))))
    ev = run(frames + [(1500, E.c2s(ts=(200, 1)))], ref=ref)
    assert rtts(ev) == [] and flow_events(ev) == []    # aggregation replaces events
    reports = {r.prefix: r for r in ev if isinstance(r, AggregateReport)}
    assert set(reports) == {"10.0.0.0/24", "10.0.1.0/24"}
    srv = reports["10.0.1.0/24"]                       # RTTs go to the reply's source prefix
    assert sum(srv.histogram) == 9 and srv.histogram[1] == 9 and srv.bin_width_ns == 4 * MS
    assert srv.min_rtt_ns == srv.max_rtt_ns == 5 * MS
    assert (srv.rx_packets, srv.tx_packets) == (10, 10)
    assert sum(reports["10.0.0.0/24"].histogram) == 0
    final = ref.finish()
    assert [r.prefix for r in final] == ["10.0.0.0/24", "10.0.1.0/24"]


def test_aggregation_reverse():
    ref = Reference(PpingConfig(aggregate=1, aggregate_reverse=True, rate_limit=0))
    run(handshake_free_bulk(), ref=ref)
    reports = {r.prefix: r for r in ref.finish()}
    assert sum(reports["10.0.0.0/24"].histogram) == 1


# Encapsulations through the whole state machine ----------------------------------------

@pytest.mark.parametrize("endpoints", [
    Endpoints(vlans=(5,)), Endpoints(vlans=(5, 6)),
    Endpoints("2001:db8::1", "2001:db8:1::2", v6=True),
])
def test_vlan_and_ipv6_flows(endpoints):
    e = endpoints
    ev = run([(0, e.c2s(ts=(100, 1), payload=b"a")),
              (200, e.c2s(ts=(101, 1), payload=b"a")),
              (203, e.s2c(ts=(1, 101)))])
    [r] = rtts(ev)
    assert r.rtt_ns == 3 * MS and r.flow.src_ip == e.server


# Comparing two sample streams (how the BPF path is held to the reference) ----------------

def test_agreement_pairs_samples_and_checks_tolerance():
    from xnf.plugins.pping.reference import agreement

    ref = rtts(run(handshake_free_bulk() + [(400, E.c2s(ts=(102, 501), payload=b"a")),
                                            (407, E.s2c(ts=(502, 102)))]))
    assert len(ref) == 2
    shifted = [RttEvent(e.timestamp_ns + 30_000, e.flow, e.rtt_ns + 20_000, e.min_rtt_ns, e.sent_packets,
                        e.sent_bytes, e.rec_packets, e.rec_bytes, e.match_on_egress, e.identifier_kind)
               for e in ref]
    a = agreement(shifted, ref)
    assert (a.pairs, a.only_first, a.only_second, a.within_tolerance, a.worst_ns) == (2, 0, 0, 2, 20_000)
    assert a.ok() and "2 samples paired" in str(a)
    a = agreement(shifted[:1], ref, tolerance_ns=10_000)
    assert (a.pairs, a.only_second, a.within_tolerance) == (1, 1, 0) and not a.ok()


def test_ipv6_extension_headers_and_raw_ip_capture(tmp_path):
    from xnf.plugins.pping.packet import LINKTYPE_RAW
    from xnf.plugins.pping.pcap import write_pcap
    from xnf.plugins.pping.reference import run_pcap
    from xnf.testing.frames import ipv6, tcp

    c, s = "2001:db8::1", "2001:db8:1::2"
    hop = [(0, b""), (60, b"\x01\x02")]
    frames = [(T0, ipv6(c, s, 6, tcp(4000, 443, ts=(100, 1), payload=b"a"), hop)),
              (T0 + 200 * MS, ipv6(c, s, 6, tcp(4000, 443, ts=(101, 1), payload=b"a"), hop)),
              (T0 + 211 * MS, ipv6(s, c, 6, tcp(443, 4000, ts=(9, 101)), [(60, b"")]))]
    path = tmp_path / "v6.pcap"
    write_pcap(path, frames, linktype=LINKTYPE_RAW)
    [r] = [e for e in run_pcap(path) if isinstance(e, RttEvent)]
    assert (r.rtt_ns, str(r.flow)) == (11 * MS, "2001:db8:1::2:443+2001:db8::1:4000")
