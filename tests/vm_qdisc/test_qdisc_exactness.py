"""The BPF qdisc's departure order is the simulator's, packet for packet.

A fixed trace (1,200 UDP frames of 4 flows, 64-1514 B, priorities 0-7) is sent through an
AF_PACKET socket into the BPF qdisc at the root of a veth while the qdisc holds every
packet (its hold switch: dequeue returns nothing and the watchdog polls). Then it is
released. The order the frames reach the peer veth (an AF_PACKET socket in the other
namespace) must equal the order the reference runtime gives the same trace, all packets
queued at t=0 then drained (sim/engine.py handles every arrival of an instant before the
link chooses). The flow is the frame's skb->mark (SO_MARK), the priority skb->priority
(SO_PRIORITY; for SRPT the bytes left in the flow, for LSTF the packet's slack in ns);
the payload carries (flow, per-flow sequence number).

LSTF's deadlines are arrival + slack, so the simulator is given the arrival times the
qdisc saw (its log of bpf_ktime_get_ns() at enqueue, the same clock and units as the
runtime's integer nanoseconds) and its dequeue hook stays shut until the last arrival,
as the qdisc's hold switch kept it: the ranks are computed on both sides from the same
numbers, not copied from the kernel.
"""
import random
import select
import socket
import struct
import time

import pytest

from xnf.core.kernel import netns
from xnf.plugins.pifo_sched import registry
from xnf.plugins.pifo_sched.packet import Packet
from xnf.plugins.pifo_sched.qdisc.bpf_qdisc import BpfQdisc
from xnf.plugins.pifo_sched.sim.engine import Simulation
from xnf.testing import frames
from xnf.testing.topology import VethPair

ETH_P_ALL = 0x0003
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
MAGIC = b"XNFQ"
HEADERS = 14 + 20 + 8  # Ethernet, IPv4, UDP
PACKETS = 1200
FLOWS = 4
HPFQ_TREE = {"children": [
    {"name": "A", "weight": 70, "children": [{"flow": 0, "weight": 1}, {"flow": 1, "weight": 1}]},
    {"name": "B", "weight": 30, "children": [{"flow": 2, "weight": 1}, {"flow": 3, "weight": 9}]}]}
CASES = {
    "fifo": {},
    "strict_priority": {},
    "stfq": {"weights": [1, 2, 3, 4]},
    "wfq": {"weights": [1, 2, 3, 4]},
    "wf2q": {"weights": [1, 2, 3, 4]},
    "hpfq": {"tree": HPFQ_TREE},
    "srpt": {},
    "drr": {"quantum": 1000, "weights": [1, 2, 3, 4]},
    # flows 0-2 carry their slack (1 ns - 5 ms) in skb->priority, flow 3 none: its slack_ns
    "lstf": {"slack_ns": [0, 0, 0, 2_000_000]},
    "sp_pifo": {"weights": [1, 2, 3, 4]},
    "sp_pifo:4 bands": {"weights": [1, 1, 2, 5], "bands": 4},  # scheduler:what differs
}
VALUES = {"srpt": "remaining", "lstf": "slack"}  # what skb->priority carries, when not a band
MAX_SLACK_NS = 5_000_000
SLACK_FLOWS = 3  # flows 0..2 carry a slack; flow 3's comes from slack_ns


def make_trace(seed=11, n=PACKETS, value="priority"):
    """(flow, per-flow seq, size, priority) of each packet, in arrival order; with ``value``
    "remaining" the priority is the bytes left in the flow from that packet on (SRPT), with
    "slack" the packet's slack in ns (LSTF; 0 in flow 3: none)."""
    rng = random.Random(seed)
    seqs = [0] * FLOWS
    out = []
    for _ in range(n):
        flow = rng.randrange(FLOWS)
        seqs[flow] += 1
        out.append((flow, seqs[flow], rng.randint(64, 1514), rng.randrange(8)))
    if value == "slack":
        slack = random.Random(seed + 1)
        out = [(flow, seq, size, slack.randint(1, MAX_SLACK_NS) if flow < SLACK_FLOWS else 0)
               for flow, seq, size, _ in out]
    if value == "remaining":
        left = [0] * FLOWS
        for i in range(n - 1, -1, -1):
            flow, seq, size, _ = out[i]
            left[flow] += size
            out[i] = (flow, seq, size, left[flow])
    return out


def simulated_order(name, params, trace, arrivals=None):
    """(flow, seq) in the reference runtime's departure order, everything queued at t=0, or
    (``arrivals``, ns) at those times with the dequeue hook held until the last of them."""
    sched = registry.create(name, dict(params, capacity=len(trace)))
    value = VALUES.get(name)
    arrivals = arrivals or [0] * len(trace)
    packets = [Packet(flow, size, at, seq, priority=0 if value else prio,
                      remaining=prio if value == "remaining" else None,
                      slack=(prio or None) if value == "slack" else None)
               for (flow, seq, size, prio), at in zip(trace, arrivals)]
    hold_until(sched, arrivals[-1])
    sim = Simulation(sched, trace=packets, link_rate="1gbit", duration=arrivals[-1] / 1e9 + 60,
                     record_events=True)
    metrics = sim.run()
    assert not any(e[1].startswith("drop") for e in metrics.events)
    return [(e[2], e[3]) for e in metrics.events if e[1] == "deq"]


def hold_until(sched, release):
    """The qdisc's hold switch in the runtime: ``sched`` sends nothing before ``release`` (ns)."""
    dequeue, held = sched.dequeue, [True]

    def held_dequeue(now):
        held[0] = now < release
        return None if held[0] else dequeue(now)

    sched.dequeue = held_dequeue
    sched.next_timer = lambda: release if held[0] else None


def frame(flow, seq, size):
    payload = MAGIC + struct.pack("!HI", flow, seq)
    payload += b"\0" * (size - HEADERS - len(payload))
    out = frames.ether(frames.ipv4("10.201.0.1", "10.201.0.2", 17, frames.udp(40000 + flow, 9, payload)))
    assert len(out) == size
    return out


def capture_socket(ns, ifname):
    with netns.entered(ns):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 256 << 20)
        s.bind((ifname, ETH_P_ALL))
    return s


def read_order(sock, want, timeout):
    """(flow, seq) of our frames in the order the socket got them, until ``want`` or timeout."""
    order, deadline = [], time.monotonic() + timeout
    while len(order) < want and time.monotonic() < deadline:
        if not select.select([sock], [], [], 0.5)[0]:
            continue
        data, addr = sock.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING:  # the peer's own replies
            continue
        if data[HEADERS:HEADERS + 4] == MAGIC:
            order.append(struct.unpack_from("!HI", data, HEADERS + 4))
    return order


@pytest.fixture
def pair():
    with VethPair(prefix="xq") as topo:
        yield topo


@pytest.mark.parametrize("case", list(CASES))
def test_departure_order_is_the_simulators(pair, case):
    name = case.split(":")[0]
    trace = make_trace(value=VALUES.get(name, "priority"))
    qdisc = BpfQdisc(pair.if_a, name, dict(CASES[case], limit=PACKETS + 100), netns=pair.ns_a)
    qdisc.attach()
    try:
        qdisc.hold(True)
        peer = capture_socket(pair.ns_b, pair.if_b)
        with netns.entered(pair.ns_a):
            tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            # held packets stay charged to the sender until they leave: room for all of them
            tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 256 << 20)
            tx.setblocking(False)  # a full buffer fails the test instead of hanging it
            tx.bind((pair.if_a, 0))
        try:
            for flow, seq, size, prio in trace:
                tx.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, flow)
                tx.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, prio)
                tx.send(frame(flow, seq, size))
            stats = qdisc.stats()
            assert (stats["enqueued_packets"], stats["backlog_packets"], stats["drops"]) == (PACKETS, PACKETS, 0)
            assert read_order(peer, 1, 0.5) == []  # held: nothing left
            qdisc.hold(False)
            got = read_order(peer, PACKETS, 120)
        finally:
            tx.close()
            peer.close()
        departures = qdisc.departures()
        arrivals = qdisc.arrivals()
        stats = qdisc.stats()
    finally:
        qdisc.detach()
    expected = simulated_order(name, CASES[case], trace, arrivals if name == "lstf" else None)
    assert len(expected) == PACKETS
    arrival = {(flow, seq): i + 1 for i, (flow, seq, _s, _p) in enumerate(trace)}
    # the qdisc's own log of what it dequeued, then the wire
    assert [arrival[fs] for fs in expected] == departures
    assert stats["errors"] == 0
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    assert got == expected, f"first difference at departure {first} of {len(got)}"
