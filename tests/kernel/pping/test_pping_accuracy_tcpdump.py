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

Both sides must have seen the same packets, so the capture is synchronised by events, not
by sleeps (pping_capture; a fixed 1 s for tcpdump to start, and a stop 0.8 s after the traffic while
tcpdump's default buffering holds up to 1 s of packets, left ~800 samples unpaired on a
loaded machine): traffic starts once tcpdump says it is listening; the capture stops once
the traffic has ended, the marker echo sent after it is in the file and pping's ring is
drained. Lost packets or samples fail the test by name (tcpdump's "dropped by kernel",
pping's counters), not as unpaired samples.

The reference runs its expiry passes when the data path's timer ran them (read from
``pping_gc``, as the bracket oracle does): on its own schedule it expired, or kept, a
timestamp the kernel had not, whenever a host stall held an ACK past 8 smoothed RTTs
across a pass of one side only (one sample unpaired: 2 runs in 30 at load 2.5-5; with
the data path's times, 30 of 30 passed at load 3.1-6.9). A pping sample whose reply came
while a pass walked the maps (the reference's module doc) is told apart as raced, as in
the bracket oracle.
"""
import pytest

from pping_capture import Capture
from pping_topology import Topology
from support import bracket
from xnf.plugins.pping import pcap
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.datapath import Datapath
from xnf.plugins.pping.events import RttEvent
from xnf.plugins.pping.reference import Reference

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


def reference_samples(path, config, cleanup_times):
    """The reference's RTT samples over the capture, its expiry passes at ``cleanup_times``
    (ns, the capture's clock)."""
    ref, out = Reference(config, cleanup_times=cleanup_times), []
    for rec in pcap.read(path):
        out += ref.feed(rec.timestamp_ns, rec.data, rec.linktype, rec.direction, rec.wire_len)
    out += ref.finish()
    return [e for e in out if isinstance(e, RttEvent)]


def raced(sample, walks):
    """Whether ``sample``'s reply came while an expiry pass walked the maps ((start, end), wall clock)."""
    return any(start <= sample.timestamp_ns <= end for start, end in walks)


def test_accuracy_against_tcpdump_and_reference(tmp_path):
    """Both sides see the same packets: tcpdump listens before pping attaches and the
    traffic starts; the traffic ends (ping, the iperf3 client and the one-off server exit),
    then the marker echo, which is in the capture file before pping's ring is drained and
    tcpdump is stopped. Neither side may have lost anything: tcpdump's own count of packets
    dropped by the kernel and pping's dropped-event and full-map counters must be 0."""
    topo = Topology(net=72).create()
    path = str(tmp_path / "mid1.pcap")
    config = PpingConfig(tcp=True, icmp=True, rate_limit=0)
    try:
        server = topo.spawn(topo.srv, "iperf3", "-s", "-1", "-B", topo.srv_ip)
        topo.wait_port(topo.srv, 5201)
        with Capture(topo.mid, "mid1", path, "-s", "200", "tcp or icmp") as capture:
            capture.wait_listening()
            with Datapath("mid1", config, netns=topo.mid).attach() as dp:
                ping = topo.spawn(topo.cli, "ping", "-c", "100", "-i", "0.01", topo.srv_ip)
                topo.ns(topo.cli, "iperf3", "-c", topo.srv_ip, "-t", "2", "-b", "8M", "-l", "1400", timeout=30)
                ping.wait(30)
                server.wait(30)
                capture.mark(topo.cli, topo.srv_ip)  # pping sees the marker echo too: one more pair
                events = dp.drain()
                lost = {name: n for name, n in dp.counters().items()
                        if name in ("dropped_events", "timestamp_map_full", "flow_map_full") and n}
                walks = [(start + dp.clock_offset_ns, end + dp.clock_offset_ns)
                         for start, end in bracket.cleanup_passes(dp)]
            dropped_by_kernel = capture.stop()
        ref = reference_samples(path, config, [start for start, _ in walks])
    finally:
        topo.destroy()
    assert dropped_by_kernel == 0, f"tcpdump: {dropped_by_kernel} packets dropped by kernel (capture incomplete)"
    assert not lost, f"pping lost samples: {lost}"
    kernel = [e for e in events if isinstance(e, RttEvent)]
    pairs, only_kernel, only_ref = pair_by_reply(kernel, ref)
    told_apart = [e for e in only_kernel if raced(e, walks)]
    only_kernel = [e for e in only_kernel if e not in told_apart]
    diffs = sorted(abs(k.rtt_ns - r.rtt_ns) for k, r in pairs)
    median, p99 = diffs[len(diffs) // 2], diffs[int(0.99 * (len(diffs) - 1))]
    print(f"tcpdump: {len(pairs)} paired, {len(only_kernel)} only pping, {len(only_ref)} only the capture, "
          f"{len(told_apart)} raced with an expiry pass; "
          f"|diff| median {median / 1e3:.2f} us, p99 {p99 / 1e3:.2f} us, max {diffs[-1] / 1e3:.2f} us")
    assert len(pairs) > 500 and not only_kernel and not only_ref, (only_kernel, only_ref)
    assert median <= 10_000
    assert p99 <= 100_000
