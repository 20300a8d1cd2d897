"""FQ-CoDel in the BPF qdisc (qdisc/fq_codel_qdisc.bpf.c) against the simulator's FqCodel.

* Held traces (as test_qdisc_exactness.py: AF_PACKET frames marked with their flow, queued
  while the qdisc holds, then released): the departure order is the simulator's, packet for
  packet, for the DRR of the new and old lists with buckets of their own and with
  colliding buckets (``flows`` 4), a quantum below the packet sizes, and overflow (the head
  of the fattest bucket dropped at enqueue). CoDel's target is set beyond any sojourn time
  there, so the order does not depend on time. A second held burst after the first has
  left finds its flows new again, as in the simulator.
* CoDel: 200 frames of 1000 B held, then released through the qdisc's shaper at 1 Mbit/s
  (8 ms a frame, 1.6 s to drain): every frame has waited longer than the 5 ms target once
  it leaves, the queue stays above it for far longer than the 100 ms interval, so CoDel
  drops. Late timers under TCG only lengthen the sojourn times, so the drops do not depend
  on timing; how many there are does, and is not checked here. The drops are counted
  alike by the qdisc's state, `xnf status` and `tc -s qdisc show`.
* `xnf attach pifo_sched IFACE --qdisc bpf --scheduler fq_codel`: the qdisc at the root,
  its counters in `tc -s qdisc show` and `xnf status`, and `xnf detach` puts back what was.
* A sparse flow: while a bulk flow's backlog drains at 1 Mbit/s, single packets of another
  flow each go out next (a new flow is served before the old list), ahead of every bulk
  packet still queued when they were sent.
Runs in the VM tier (bpf-qdisc kernel).
"""
import json
import socket
import subprocess
import sys
import time

import pytest

from xnf.core.kernel import netns
from xnf.plugins.pifo_sched import registry
from xnf.plugins.pifo_sched.packet import Packet
from xnf.plugins.pifo_sched.qdisc.bpf_qdisc import BpfQdisc
from xnf.plugins.pifo_sched.sim.engine import Simulation
from xnf.testing.topology import VethPair

from test_qdisc_exactness import PACKETS, SO_SNDBUFFORCE, capture_socket, frame, make_trace, read_order
from test_qdisc_nf_cli import entry, snapshot, xnf

# CoDel out of the way for the order tests: no sojourn time in a test reaches an hour
NO_CODEL = {"target_ns": 3_600_000_000_000, "interval_ns": 1_000_000_000, "hash": False}
CASES = {
    "buckets of their own": {},
    "colliding buckets, quantum 300": {"flows": 4, "quantum": 300},
    "overflow at 800 packets": {"capacity": 800, "quantum": 1000},
}


def simulate(params, trace, bursts=((0, None),)):
    """(departures, drops) as (flow, seq) in the reference runtime: every packet of a burst
    (its part of ``trace`` from an index on) queued at the burst's time, by default all at t=0."""
    options = {k: v for k, v in params.items() if k != "hash"}
    options.setdefault("capacity", len(trace))
    sched = registry.create("fq_codel", dict(options, ecn=False))
    starts = [(first or 0, at) for at, first in bursts]
    packets = [Packet(flow, size, max(at for first, at in starts if first <= i), seq)
               for i, (flow, seq, size, _prio) in enumerate(trace)]
    metrics = Simulation(sched, trace=packets, link_rate="1gbit", duration=60, record_events=True).run()
    departures = [(e[2], e[3]) for e in metrics.events if e[1] == "deq"]
    drops = [(e[2], e[3]) for e in metrics.events if e[1].startswith("drop")]
    return departures, drops


@pytest.fixture
def pair():
    with VethPair(prefix="xc") as topo:
        yield topo


def sender(pair):
    with netns.entered(pair.ns_a):
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 256 << 20)  # held packets stay charged to it
        tx.setblocking(False)  # a full buffer fails the test instead of hanging it
        tx.bind((pair.if_a, 0))
    return tx


def send(tx, flow, seq, size):
    tx.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, flow)
    tx.send(frame(flow, seq, size))


@pytest.mark.parametrize("case", list(CASES))
def test_held_trace_leaves_in_the_simulators_order(pair, case):
    params = dict(NO_CODEL, **CASES[case])
    trace = make_trace()
    expected, dropped = simulate(params, trace)
    assert len(expected) + len(dropped) == PACKETS
    qdisc = BpfQdisc(pair.if_a, "fq_codel", params, netns=pair.ns_a)
    qdisc.attach()
    try:
        qdisc.hold(True)
        peer = capture_socket(pair.ns_b, pair.if_b)
        tx = sender(pair)
        try:
            for flow, seq, size, _prio in trace:
                send(tx, flow, seq, size)
            stats = qdisc.stats()
            assert (stats["enqueued_packets"], stats["drops"]) == (PACKETS, len(dropped))
            assert stats["backlog_packets"] == len(expected)
            qdisc.hold(False)
            got = read_order(peer, len(expected), 120)
        finally:
            tx.close()
            peer.close()
        departures = qdisc.departures()
        stats = qdisc.stats()
    finally:
        qdisc.detach()
    arrival = {(flow, seq): i + 1 for i, (flow, seq, _s, _p) in enumerate(trace)}
    assert [arrival[fs] for fs in expected] == departures  # the qdisc's own log, then the wire
    assert (stats["errors"], stats["drops_overflow"], stats["drops_codel"]) == (0, len(dropped), 0)
    for flow in range(4):
        assert stats["flows"][str(flow)]["drops"] == sum(1 for f, _ in dropped if f == flow)
    first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    assert got == expected, f"first difference at departure {first} of {len(got)}"


def test_a_burst_after_the_queue_ran_empty_finds_its_flows_new_again(pair):
    """Two held bursts of 300 packets, the second sent once the first has left: the
    simulator's dequeue empties the lists when it finds no packet, so every flow of the
    second burst starts in the new list with a fresh quantum; the order is its, packet for
    packet (1 s apart there; the first burst drains in under 3 ms at 1 Gbit/s)."""
    params = dict(NO_CODEL, quantum=1000)
    first = make_trace(seed=11, n=300)
    second = [(flow, seq + 10000, size, prio) for flow, seq, size, prio in make_trace(seed=12, n=300)]
    expected, dropped = simulate(params, first + second, bursts=((0, 0), (1_000_000_000, len(first))))
    assert len(expected) == 600 and not dropped
    qdisc = BpfQdisc(pair.if_a, "fq_codel", params, netns=pair.ns_a)
    qdisc.attach()
    try:
        peer = capture_socket(pair.ns_b, pair.if_b)
        tx = sender(pair)
        try:
            for burst in (first, second):
                qdisc.hold(True)
                for flow, seq, size, _prio in burst:
                    send(tx, flow, seq, size)
                qdisc.hold(False)
                deadline = time.monotonic() + 60
                while qdisc.stats()["backlog_packets"] and time.monotonic() < deadline:
                    time.sleep(0.1)
            got = read_order(peer, 600, 60)
        finally:
            tx.close()
            peer.close()
        stats = qdisc.stats()
    finally:
        qdisc.detach()
    assert (stats["sent_packets"], stats["drops"], stats["errors"]) == (600, 0, 0)
    first_diff = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), None)
    assert got == expected, f"first difference at departure {first_diff} of {len(got)}"


def in_ns(ns, *argv):
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True).stdout


def test_codel_drops_a_standing_queue_counted_in_stats_status_and_tc(pair):
    from xnf.plugins.pifo_sched.nf import PifoSched, PifoSchedConfig

    nf = PifoSched(pair.if_a, PifoSchedConfig(qdisc="bpf", scheduler="fq_codel", rate="1mbit"), netns=pair.ns_a)
    nf.attach()
    try:
        qdisc = nf._path.qdisc
        assert pair.ping(1, to="b") == 1  # ARP resolved before the hold
        qdisc.hold(True)
        tx = sender(pair)
        try:
            for seq in range(1, 201):
                send(tx, 0, seq, 1000)
        finally:
            tx.close()
        qdisc.hold(False)
        deadline = time.monotonic() + 60
        while qdisc.stats()["backlog_packets"] and time.monotonic() < deadline:
            time.sleep(0.2)
        stats = qdisc.stats()
        shown = in_ns(pair.ns_a, "tc", "-s", "qdisc", "show", "dev", pair.if_a)
        r = subprocess.run([sys.executable, "-m", "xnf.cli.main", "status", "--json"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        status = next(e for e in json.loads(r.stdout) if e.get("name") == "pifo_sched" and e.get("netns") == pair.ns_a)
    finally:
        nf.detach()
    print(f"codel: {stats['drops_codel']} of 200 held frames dropped at 1 Mbit/s; {shown.strip()}")
    assert stats["backlog_packets"] == 0 and stats["errors"] == 0
    assert stats["drops_codel"] > 0 and stats["drops"] == stats["drops_codel"]  # no overflow
    assert stats["enqueued_packets"] == stats["sent_packets"] + stats["drops"]
    assert stats["flows"]["0"]["drops"] == stats["drops_codel"]
    # tc: "Sent B bytes P pkt (dropped D, ..."
    sent = shown.split("Sent ", 1)[1].split()
    assert (int(sent[0]), int(sent[2]), int(sent[5].rstrip(","))) == (
        stats["sent_bytes"], stats["sent_packets"], stats["drops_codel"]), shown
    assert (status["drops"], status["drops_codel"]) == (stats["drops"], stats["drops_codel"])


def test_a_sparse_flows_packets_overtake_a_bulk_backlog(pair):
    """Flow 0 (bulk): 400 frames of 1000 B held, then released at 1 Mbit/s (3.2 s); flow 1
    (sparse): a frame every 0.2 s. Each sparse frame leaves ahead of every bulk frame that
    was still queued just after it was sent (read from the qdisc's own counters), since
    the next dequeue after its arrival serves the new list."""
    qdisc = BpfQdisc(pair.if_a, "fq_codel", dict(NO_CODEL, rate="1mbit"), netns=pair.ns_a)
    qdisc.attach()
    try:
        qdisc.hold(True)
        peer = capture_socket(pair.ns_b, pair.if_b)
        tx = sender(pair)
        queued_after = []
        try:
            for seq in range(1, 401):
                send(tx, 0, seq, 1000)
            qdisc.hold(False)
            for seq in range(1, 6):
                time.sleep(0.2)
                send(tx, 1, seq, 200)
                queued_after.append(qdisc.stats()["flows"]["0"]["backlog"])
            got = read_order(peer, 405, 60)
        finally:
            tx.close()
            peer.close()
        stats = qdisc.stats()
    finally:
        qdisc.detach()
    print(f"sparse: bulk frames queued just after each sparse frame was sent: {queued_after}")
    assert len(got) == 405 and stats["drops"] == 0 and stats["errors"] == 0
    assert queued_after[0] > 0  # the drain takes 3.2 s; the first sparse frame comes after 0.2
    for seq, queued in enumerate(queued_after, 1):
        at = got.index((1, seq))
        bulk_after = sum(1 for flow, _ in got[at + 1:] if flow == 0)
        assert bulk_after >= queued, (seq, queued, bulk_after)


def test_the_cli_attaches_fq_codel_and_detach_restores(pair):
    before = snapshot(pair)
    r = xnf("attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--qdisc", "bpf", "--scheduler", "fq_codel")
    assert r.returncode == 0, r.stderr
    try:
        assert pair.ping(5, to="b") == 5
        shown = in_ns(pair.ns_a, "tc", "-s", "qdisc", "show", "dev", pair.if_a)
        assert shown.startswith("qdisc xnfq") and " root " in shown.splitlines()[0], shown
        assert int(shown.split("Sent ", 1)[1].split()[2]) >= 5, shown
        status = entry(pair)
        assert (status["qdisc"], status["scheduler"]) == ("bpf", "fq_codel")
        assert (status["backlog_packets"], status["drops"], status["drops_codel"], status["errors"]) == (0, 0, 0, 0)
        assert status["flows"]["flow 0"]["packets"] >= 5  # unmarked: flow 0 (buckets by the skb's hash)
    finally:
        r = xnf("detach", "pifo_sched", pair.if_a, "--netns", pair.ns_a)
    assert r.returncode == 0, r.stderr
    assert snapshot(pair) == before
