"""Random packet sequences through the kernel and the reference: same events.

Hypothesis draws TCP conversations (flags, TSval steps, echoed or stale TSecrs,
payload or none, SYN/FIN/RST anywhere; or no timestamp option, for seq/ACK with
retransmissions and partial ACKs), echo exchanges and DNS queries/responses, on IPv4
or IPv6, through tc egress, tc ingress or XDP; TSvals that repeat (step 0) keep a
direction's idle clock where it was, so each example also compares every direction's
last_seen (which packet set it). One object is loaded for the whole module; every example
uses addresses of its own, so state never carries over, and a fresh reference.
"""
import itertools

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pping_harness import Runner, assert_same, assert_same_last_seen
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.reference import Reference
from xnf.testing.frames import (TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, dns, ether, icmp_echo, ipv4, ipv6, udp,
                                v4_tcp, v6_tcp)

pytestmark = pytest.mark.root

FLAGS = [TCP_ACK, TCP_ACK, TCP_ACK | TCP_PSH, 0, TCP_SYN, TCP_SYN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST | TCP_ACK,
         TCP_RST]
_serial = itertools.count(1)
# what the examples produced: reset by the guard before it runs them
COUNTS = {"examples": 0, "events": 0}

step = st.tuples(
    st.booleans(),                      # direction: A->B (egress) or B->A (ingress)
    st.sampled_from(FLAGS),
    st.sampled_from([0, 1, 1, 2, 0x80000001]),   # TSval step (the last one wraps backwards)
    st.sampled_from(["echo", "echo", "stale", "zero"]),
    st.sampled_from([0, 0, 50]),        # payload
    st.sampled_from(["ingress", "xdp"]),
    st.sampled_from(["tcp", "tcp", "tcp", "seq", "seq", "icmp", "dns"]),
    st.sampled_from([1, 1, 1, 0, -1]),  # seq/ACK: new data, repeat, or go back (retransmission)
)


@pytest.fixture(scope="module")
def runner():
    r = Runner(PpingConfig(tcp=True, seq_ack=True, icmp=True, dns=True, rate_limit=0, include_local=True,
                           include_syn=True))
    try:
        yield r
    finally:
        r.close()


def run_example(runner, steps, v6, stats):
    """One drawn sequence through the kernel and a fresh reference, on addresses of its own;
    the events it produced are counted in ``stats``."""
    n = next(_serial)
    a, b = (f"2001:db8:{n:x}::1", f"2001:db8:{n:x}::2") if v6 else (f"10.{n // 250}.{n % 250}.1",
                                                                       f"10.{n // 250}.{n % 250}.2")
    runner.ref = Reference(runner.config)
    runner._ref_events = []
    runner.bpf_events()
    runner._records.clear()
    runner.max_window_ns = 0
    tsval = {True: 1000, False: 50000}
    seen = {True: [0], False: [0]}
    nxt = {True: 0xFFFFFF00, False: 7000}   # next sequence number of each side (the first wraps)
    got_to = {True: [0xFFFFFF00], False: [7000]}  # sequence ends each side has sent
    build = v6_tcp if v6 else v4_tcp
    for i, (fwd, flags, dts, ecr, payload, hook_in, proto, seq_move) in enumerate(steps):
        src, dst = (a, b) if fwd else (b, a)
        sport, dport = (1111, 80) if fwd else (80, 1111)
        hook = "egress" if fwd else hook_in
        if proto == "icmp":
            body = icmp_echo(fwd, 99, i % 4, v6=v6)
            frame = ether(ipv6(src, dst, 58, body), 0x86DD) if v6 else ether(ipv4(src, dst, 1, body), 0x0800)
        elif proto == "dns":
            body = udp(5353, 53, dns(i % 3, False)) if fwd else udp(53, 5353, dns(i % 3, True))
            frame = ether(ipv6(src, dst, 17, body), 0x86DD) if v6 else ether(ipv4(src, dst, 17, body), 0x0800)
        elif proto == "seq":
            if seq_move < 0 and len(got_to[fwd]) > 1:
                seq = got_to[fwd][-2]                      # resend the previous segment
            else:
                seq = nxt[fwd]
            other = got_to[not fwd]
            ack = {"echo": other[-1], "stale": other[0], "zero": other[len(other) // 2]}[ecr]
            frame = build(src, dst, sport + 1, dport + 1, seq=seq, ack=ack, flags=flags, payload=b"s" * payload)
            if seq == nxt[fwd] and seq_move:
                nxt[fwd] = (seq + payload + (1 if flags & TCP_SYN else 0)) & 0xFFFFFFFF
                got_to[fwd].append(nxt[fwd])
        else:
            tsval[fwd] = (tsval[fwd] + dts) & 0xFFFFFFFF
            other = seen[not fwd]
            tsecr = {"echo": other[-1], "stale": other[0], "zero": 0}[ecr]
            frame = build(src, dst, sport, dport, flags=flags, ts=(tsval[fwd], tsecr), payload=b"p" * payload)
            seen[fwd].append(tsval[fwd])
        runner.send(frame, hook)
    got = assert_same(runner)
    assert_same_last_seen(runner, {a, b})
    stats["examples"] += 1
    stats["events"] += len(got)
    for e in got:
        kind = getattr(e, "identifier_kind", None)
        if kind:
            stats[kind] = stats.get(kind, 0) + 1


# derandomize: the same sequences on every run (they change when the strategy does), so
# the guard below is deterministic. Drawn afresh, the event count varied from run to run
# (361 events for 400 examples in one run against a bound of 200) and failed once under
# load. (For fresh draws, run it with derandomize=False.)
@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=4, max_size=30), v6=st.booleans())
def test_random_sequences_match_the_reference(runner, steps, v6):
    run_example(runner, steps, v6, COUNTS)


def test_the_random_examples_produced_events(runner):
    """Guard against a generator that never exercises anything: runs the search above
    itself (the same derandomized examples: the seed comes from that test function), on
    counts it reset, so it holds whatever ran before it, or did not."""
    COUNTS.clear()
    COUNTS.update(examples=0, events=0)
    test_random_sequences_match_the_reference(runner)
    assert COUNTS["examples"] >= 200, COUNTS
    assert COUNTS["events"] > COUNTS["examples"] // 2, COUNTS
    assert {"tsval", "seq", "icmp", "dns"} <= set(COUNTS), COUNTS
