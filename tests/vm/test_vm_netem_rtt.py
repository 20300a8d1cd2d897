"""pping's RTTs against delays netem adds (10, 50, 100 ms), on veth inside the VM kernel.

Client namespace A pings server namespace B over a veth pair; netem delays A's egress by
D; pping on A's veth must report every RTT at or above D and their median within 1 ms
of D.
"""
import statistics
import subprocess
import uuid

import pytest

import xnf
from xnf.plugins.pping.events import RttEvent

from vm_offload import sh

PINGS = 30


@pytest.fixture
def pair():
    tag = uuid.uuid4().hex[:6]
    a, b = f"xnfa-{tag}", f"xnfb-{tag}"
    sh("ip", "netns", "add", a)
    try:
        sh("ip", "netns", "add", b)
        try:
            sh("ip", "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b, netns=a)
            sh("ip", "addr", "add", "10.77.0.1/24", "dev", "va", netns=a)
            sh("ip", "addr", "add", "10.77.0.2/24", "dev", "vb", netns=b)
            for ns, dev in ((a, "va"), (b, "vb"), (a, "lo"), (b, "lo")):
                sh("ip", "link", "set", dev, "up", netns=ns)
            yield a, b
        finally:
            sh("ip", "netns", "del", b, check=False)
    finally:
        sh("ip", "netns", "del", a, check=False)


def add_delay(netns, dev, ms):
    res = sh("tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", f"{ms}ms", netns=netns, check=False)
    if res.returncode:
        pytest.skip(f"needs sch_netem (the VM tier kernel): {res.stderr.strip()}")


@pytest.mark.parametrize("delay_ms", [10, 50, 100])
def test_pping_rtt_matches_netem_delay(pair, delay_ms):
    a, _b = pair
    add_delay(a, "va", delay_ms)
    events = xnf.pping("va", netns=a, icmp=True, rate_limit=0, timeout=PINGS * 0.1 + 3 + delay_ms / 1000)
    ping = subprocess.Popen(["ip", "netns", "exec", a, "ping", "-q", "-c", str(PINGS), "-i", "0.1",
                             "10.77.0.2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
