"""pping's RTTs against delays netem adds (10, 50, 100 ms), on veth inside the VM kernel.

Client namespace A pings server namespace B over a veth pair (xnf.testing.topology's
VethPair); netem delays A's egress by
D; pping on A's veth must report every RTT at or above D and at most ping's own largest
RTT (deterministic); their median within 1 ms of D is a measurement (emulated timers run
late on a loaded host).
"""
import re
import statistics
import subprocess

import pytest

import xnf
from xnf.plugins.pping.events import RttEvent
from xnf.testing.topology import VethPair
from xnf.testing.traffic import popen

from vm_offload import sh

PINGS = 30


PREQUEUE = "/proc/sys/net/core/netdev_tstamp_prequeue"


@pytest.fixture
def pair():
    """A veth pair, with receive timestamps taken where the stack takes the packet, not
    when the sender queues it (the guest is ours: the global sysctl is put back after)."""
    with open(PREQUEUE) as f:
        before = f.read().strip()
    with open(PREQUEUE, "w") as f:
        f.write("0")
    try:
        with VethPair(ip_a="10.77.0.1", ip_b="10.77.0.2", prefix="xnfvm") as pair:
            yield pair
    finally:
        with open(PREQUEUE, "w") as f:
            f.write(before)


def add_delay(netns, dev, ms):
    res = sh("tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", f"{ms}ms", netns=netns, check=False)
    if res.returncode:
        pytest.skip(f"needs sch_netem (the VM tier kernel): {res.stderr.strip()}")


def _pping_and_ping(pair, delay_ms):
    """pping's ICMP RTTs (ms) on A's veth and ping's own summary (min, avg, max ms) for PINGS
    echoes through a netem delay of ``delay_ms`` on A's egress."""
    a = pair.ns_a
    add_delay(a, pair.if_a, delay_ms)
    events = xnf.pping(pair.if_a, netns=a, icmp=True, rate_limit=0, timeout=PINGS * 0.1 + 3 + delay_ms / 1000)
    ping = popen(a, ["ping", "-q", "-c", str(PINGS), "-i", "0.1", pair.ip_b],
                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        rtts = [ev.rtt_ns / 1e6 for ev in events if isinstance(ev, RttEvent)]
    finally:
        events.close()
        out, _ = ping.communicate(timeout=60)
    assert ping.returncode == 0, out
    summary = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/", out)
    assert summary, out
    assert len(rtts) >= PINGS // 2, f"only {len(rtts)} RTT samples for {PINGS} pings"
    print(f"netem {delay_ms} ms: {len(rtts)} samples, min {min(rtts):.3f} ms, "
          f"median {statistics.median(rtts):.3f} ms, max {max(rtts):.3f} ms; ping {summary.group(0)}")
    return rtts, tuple(float(x) for x in summary.groups())


@pytest.mark.parametrize("delay_ms", [10, 50, 100])
def test_pping_rtt_lies_between_netem_delay_and_pings_rtt(pair, delay_ms):
    """Deterministic bounds, whatever the emulator's timer latency: netem never sends a
    packet before its delay, so no sample is below it; pping stamps the request at tc
    egress, after ping took its send time, and the reply at tc ingress, before the socket
    hands it to ping, so no sample exceeds ping's largest RTT. Slack: ping prints 3
    decimals (0.0005 ms), and the receive stamp ping reads (SO_TIMESTAMP, taken in
    __netif_receive_skb_core once netdev_tstamp_prequeue is 0, as the fixture sets it in
    the guest; at 1 it would be taken before the backlog queue, a wait with no bound) comes
    a few instructions before tc ingress, at most one hard interrupt under emulation:
    0.1 ms. The guest runs no NTP, so realtime and monotonic clocks do not drift apart."""
    rtts, (_, _, ping_max) = _pping_and_ping(pair, delay_ms)
    assert min(rtts) >= delay_ms, f"a sample below the {delay_ms} ms delay: {sorted(rtts)[:5]}"
    assert max(rtts) <= ping_max + 0.1, f"a sample above ping's largest RTT {ping_max} ms: {sorted(rtts)[-5:]}"


@pytest.mark.measurement
@pytest.mark.parametrize("delay_ms", [10, 50, 100])
def test_pping_rtt_median_matches_netem_delay(pair, delay_ms):
    """Accuracy against the delay itself: under TCG on a loaded host the guest's timers
    fire late (medians of 102-104 ms for 100 ms seen at load 8-9), so this is a
    measurement (run on a quiet machine: `tools/vm/run -- python3 -m pytest -m "vm and
    measurement" tests/vm`), not part of the default VM tier."""
    rtts, _ = _pping_and_ping(pair, delay_ms)
    assert min(rtts) >= delay_ms, f"a sample below the {delay_ms} ms delay: {sorted(rtts)[:5]}"
    median = statistics.median(rtts)
    assert abs(median - delay_ms) <= 1.0, f"median {median:.3f} ms for a {delay_ms} ms delay"
