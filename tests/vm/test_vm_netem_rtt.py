"""pping's RTTs against delays netem adds (10, 50, 100 ms), on veth inside the VM kernel.

Client namespace A pings server namespace B over a veth pair (xnf.testing.topology's
VethPair); netem delays A's egress by
D; pping on A's veth must report every RTT at or above D and their median within 1 ms
of D.
"""
import statistics
import subprocess

import pytest

import xnf
from xnf.plugins.pping.events import RttEvent
from xnf.testing.topology import VethPair
from xnf.testing.traffic import popen

from vm_offload import sh

PINGS = 30


@pytest.fixture
def pair():
    with VethPair(ip_a="10.77.0.1", ip_b="10.77.0.2", prefix="xnfvm") as pair:
        yield pair


def add_delay(netns, dev, ms):
    res = sh("tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", f"{ms}ms", netns=netns, check=False)
    if res.returncode:
        pytest.skip(f"needs sch_netem (the VM tier kernel): {res.stderr.strip()}")


@pytest.mark.parametrize("delay_ms", [10, 50, 100])
def test_pping_rtt_matches_netem_delay(pair, delay_ms):
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
    assert len(rtts) >= PINGS // 2, f"only {len(rtts)} RTT samples for {PINGS} pings"
    assert min(rtts) >= delay_ms, f"a sample below the {delay_ms} ms delay: {sorted(rtts)[:5]}"
    median = statistics.median(rtts)
    print(f"netem {delay_ms} ms: {len(rtts)} samples, min {min(rtts):.3f} ms, median {median:.3f} ms, "
          f"max {max(rtts):.3f} ms")
    assert abs(median - delay_ms) <= 1.0, f"median {median:.3f} ms for a {delay_ms} ms delay"
