"""The BPF qdisc's departure order is the simulator's, packet for packet.

A fixed trace (1,200 UDP frames of 4 flows, 64-1514 B, priorities 0-7) is sent through an
AF_PACKET socket into the BPF qdisc at the root of a veth while the qdisc holds every
packet (its hold switch: dequeue returns nothing and the watchdog polls). Then it is
released. The order the frames reach the peer veth (an AF_PACKET socket in the other
namespace) must equal the order the reference runtime gives the same trace, all packets
queued at t=0 then drained (sim/engine.py handles every arrival of an instant before the
link chooses). The flow is the frame's skb->mark (SO_MARK), the priority skb->priority
(SO_PRIORITY; for SRPT the bytes left in the flow); the payload carries (flow, per-flow
sequence number).
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
}


def make_trace(seed=11, n=PACKETS, remaining=False):
    """(flow, per-flow seq, size, priority) of each packet, in arrival order; with
    ``remaining`` the priority is the bytes left in the flow from that packet on (SRPT)."""
    rng = random.Random(seed)
    seqs = [0] * FLOWS
    out = []
    for _ in range(n):
        flow = rng.randrange(FLOWS)
        seqs[flow] += 1
        out.append((flow, seqs[flow], rng.randint(64, 1514), rng.randrange(8)))
    if remaining:
        left = [0] * FLOWS
        for i in range(n - 1, -1, -1):
            flow, seq, size, _ = out[i]
            left[flow] += size
            out[i] = (flow, seq, size, left[flow])
    return out


def simulated_order(name, params, trace):
    """(flow, seq) in the reference runtime's departure order, everything queued at t=0."""
    sched = registry.create(name, dict(params, capacity=len(trace)))
    srpt = name == "srpt"
    packets = [Packet(flow, size, 0, seq, priority=0 if srpt else prio, remaining=prio if srpt else None)
               for flow, seq, size, prio in trace]
    sim = Simulation(sched, trace=packets, link_rate="1gbit", duration=60, record_events=True)
    metrics = sim.run()
    assert not any(e[1].startswith("drop") for e in metrics.events)
    return [(e[2], e[3]) for e in metrics.events if e[1] == "deq"]


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


@pytest.mark.parametrize("name", list(CASES))
def test_departure_order_is_the_simulators(pair, name):
    trace = make_trace(remaining=name == "srpt")
    expected = simulated_order(name, CASES[name], trace)
    assert len(expected) == PACKETS
    qdisc = BpfQdisc(pair.if_a, name, dict(CASES[name], limit=PACKETS + 100), netns=pair.ns_a)
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
        stats = qdisc.stats()
    finally:
        qdisc.detach()
    arrival = {(flow, seq): i + 1 for i, (flow, seq, _s, _p) in enumerate(trace)}
    # the qdisc's own log of what it dequeued, then the wire
    assert [arrival[fs] for fs in expected] == departures
    assert stats["errors"] == 0
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    assert got == expected, f"first difference at departure {first} of {len(got)}"
