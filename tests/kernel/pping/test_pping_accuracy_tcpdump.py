"""pping against tcpdump + the reference: a measurement, not a default-suite test (issue 16).

The same traffic captured by tcpdump on mid1 and run through the reference. tcpdump
stamps at other points than pping: on egress the AF_PACKET tap stamps after the tc
programs (pping's own run is inside the difference: 4-5 us median), on ingress before
them (0.1-1.4 us for TCP). Host stalls inside those windows (vCPU preemption: 50-100 us
gaps, in clusters) make single differences large, and with ~1,000 samples a cluster
moves the p99. So this compares distributions; the exact per-sample check is the
bracket tap's (test_pping_accuracy.py).

Bounds, from those figures (measured over ~100 runs on the shared development VM):
median |pping - tcpdump| <= 10 us (4-5 us plus pping's run under load), p99 <= 100 us
(one stall cluster); samples pair one to one, by reply: the same flow and the nearest
reply time within 500 us (samples of one flow are >= 1 ms apart: one per TCP timestamp
tick, ping every 10 ms), never by order.
"""
import os
import tempfile
import time

import pytest

from pping_topology import Topology
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.datapath import Datapath
from xnf.plugins.pping.events import RttEvent
from xnf.plugins.pping.reference import run_pcap

pytestmark = [pytest.mark.root, pytest.mark.slow, pytest.mark.measurement]

PAIR_WINDOW_NS = 500_000


def pair_by_reply(kernel, ref):
    """(pairs, kernel samples left, reference samples left): same flow and identifier
    kind, nearest reply time within PAIR_WINDOW_NS, each sample used once."""
    by_key = {}
    for r in ref:
        by_key.setdefault((r.flow, r.identifier_kind), []).append(r)
    pairs, left = [], []
    for k in kernel:
        cands = by_key.get((k.flow, k.identifier_kind), [])
        best = min(cands, key=lambda r: abs(r.timestamp_ns - k.timestamp_ns), default=None)
        if best is None or abs(best.timestamp_ns - k.timestamp_ns) > PAIR_WINDOW_NS:
            left.append(k)
        else:
            cands.remove(best)
            pairs.append((k, best))
    return pairs, left, [r for rs in by_key.values() for r in rs]


def test_accuracy_against_tcpdump_and_reference():
    topo = Topology(net=72).create()
    pcap = tempfile.mktemp(suffix=".pcap")
    config = PpingConfig(tcp=True, icmp=True, rate_limit=0)
    try:
        topo.spawn(topo.srv, "iperf3", "-s", "-1", "-B", topo.srv_ip)
        topo.wait_port(topo.srv, 5201)
        dump = topo.spawn(topo.mid, "tcpdump", "-i", "mid1", "-w", pcap, "-B", "16384", "-s", "200",
                          "--time-stamp-precision=nano", "-n", "tcp or icmp")
        time.sleep(1.0)
        with Datapath("mid1", config, netns=topo.mid).attach() as dp:
            ping = topo.spawn(topo.cli, "ping", "-c", "100", "-i", "0.01", topo.srv_ip)
            topo.ns(topo.cli, "iperf3", "-c", topo.srv_ip, "-t", "2", "-b", "8M", "-l", "1400", timeout=30)
            ping.wait(10)
            time.sleep(0.3)
            events = dp.drain()
        time.sleep(0.5)
        dump.terminate()
        dump.wait(5)
        ref = [e for e in run_pcap(pcap, config) if isinstance(e, RttEvent)]
    finally:
        topo.destroy()
        if os.path.exists(pcap):
            os.unlink(pcap)
    kernel = [e for e in events if isinstance(e, RttEvent)]
    pairs, only_kernel, only_ref = pair_by_reply(kernel, ref)
    diffs = sorted(abs(k.rtt_ns - r.rtt_ns) for k, r in pairs)
    median, p99 = diffs[len(diffs) // 2], diffs[int(0.99 * (len(diffs) - 1))]
    print(f"tcpdump: {len(pairs)} paired, {len(only_kernel)} only pping, {len(only_ref)} only the capture; "
          f"|diff| median {median / 1e3:.2f} us, p99 {p99 / 1e3:.2f} us, max {diffs[-1] / 1e3:.2f} us")
    assert len(pairs) > 500 and not only_kernel and not only_ref
    assert median <= 10_000
    assert p99 <= 100_000
