"""The reference on real traffic: a capture taken by tcpdump between two namespaces.

ping, a TCP request/response exchange and DNS queries (answered by a tiny responder)
run between a client and a server namespace while tcpdump captures the client's
veth (synchronised by events: pping_capture), up to a marker echo sent after the
traffic; the capture then goes through ``run_pcap``. ping's own RTTs are the independent
oracle for ICMP (the capture sees the packets a little after they leave and before
they are delivered, so its RTTs are at most ping's).
"""

import re
import shutil
import subprocess
import sys

import pytest

from pping_capture import Capture
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import FlowEvent, RttEvent
from xnf.plugins.pping.reference import run_pcap
from xnf.testing import traffic
from xnf.testing.topology import VethPair

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("tcpdump", "ping")),
                       reason="needs tcpdump and ping (independent tools)"),
]

SERVER = r"""
import socket, sys, threading
tcp = socket.socket(); tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", 5201)); tcp.listen()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("0.0.0.0", 53))
def dns():
    while True:
        q, peer = udp.recvfrom(512)
        udp.sendto(q[:2] + bytes([q[2] | 0x80, 0x80]) + q[4:], peer)   # QR=1, echo the rest
threading.Thread(target=dns, daemon=True).start()
print("ready", flush=True)
c, _ = tcp.accept()
while True:
    d = c.recv(65536)
    if not d:
        break
    c.sendall(d)
c.close()
threading.Event().wait()          # keep answering DNS until the test stops us
"""

CLIENT = r"""
import socket, struct, sys, time
s = socket.create_connection((sys.argv[1], 5201))
for i in range(12):
    s.sendall(b"x" * 1000)
    got = 0
    while got < 1000:
        got += len(s.recv(65536))
    time.sleep(0.12)
s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
for qid in (0x1111, 0x2222, 0x3333):
    u.sendto(struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + b"\x04test\x00\x00\x01\x00\x01", (sys.argv[1], 53))
    u.recvfrom(512)
    time.sleep(0.15)              # one flow (one socket): past the 100 ms rate limit
"""


@pytest.fixture
def two_hosts():
    with VethPair("10.201.0.1", "10.201.0.2") as pair:
        yield pair.ns_a, pair.ns_b, pair.if_a


def test_reference_on_a_real_capture(two_hosts, tmp_path):
    cns, sns, cdev = two_hosts
    pcap = tmp_path / "c.pcap"
    procs = []
    try:
        server = traffic.popen(sns, [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
        procs.append(server)
        assert server.stdout.readline().strip() == "ready"
        with Capture(cns, cdev, pcap) as capture:
            capture.wait_listening()
            pings = traffic.run(cns, ["ping", "-c", "6", "-i", "0.2", "10.201.0.2"])
            traffic.run(cns, [sys.executable, "-c", CLIENT, "10.201.0.2"], timeout=60)
            capture.mark(cns, "10.201.0.2")
            dropped_by_kernel = capture.stop()
    finally:
        traffic.stop(procs)
    assert dropped_by_kernel == 0, f"tcpdump: {dropped_by_kernel} packets dropped by kernel (capture incomplete)"
    capture.cut_at_marker()  # the traffic only: the marker echo would be a seventh ICMP sample
    ping_rtts = {int(m.group(1)): float(m.group(2)) * 1e6
                 for m in re.finditer(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms", pings)}
    assert len(ping_rtts) == 6

    cfg = PpingConfig(tcp=True, icmp=True, dns=True, read=str(pcap), local_addresses="10.201.0.1")
    events = list(run_pcap(pcap, cfg))
    rtt = [e for e in events if isinstance(e, RttEvent)]

    icmp = [e for e in rtt if e.flow.proto == "ICMP"]
    assert len(icmp) == 6                                  # every echo matched, once
    for e, (seq, ping_ns) in zip(icmp, sorted(ping_rtts.items())):
        assert e.flow.src_ip == "10.201.0.2" and e.match_on_egress is False
        assert 0 < e.rtt_ns <= ping_ns + 20_000            # ping's times are rounded to µs

    tcp = [e for e in rtt if e.flow.proto == "TCP"]
    print(f"MARGIN capture_tcp_samples {len(tcp)}")
    # False failures (docs/testing.md): the upper bound holds by construction; 20 runs under
    # load gave 11 every time (the first exchange waits for a TSval change).
    # 12 request/responses 120 ms apart (> the 100 ms rate limit): the first waits for
    # a TSval change (mid-stream rule does not apply: SYNs are skipped, so it does)
    assert 10 <= len(tcp) <= 12
    assert all(e.flow.src_ip == "10.201.0.2" and e.flow.src_port == 5201 for e in tcp)  # local filter
    assert all(0 < e.rtt_ns < 50_000_000 and e.identifier_kind == "tsval" for e in tcp)
    assert tcp[-1].sent_packets >= 10 and tcp[-1].sent_bytes >= 10_000

    dns = [e for e in rtt if e.flow.proto == "UDP"]
    assert len(dns) == 3 and all(e.flow.src_port == 53 and e.identifier_kind == "dns" for e in dns)

    flows = [(e.flow.proto, e.event, e.reason) for e in events if isinstance(e, FlowEvent)]
    assert ("TCP", "opening", "first observed packet") in flows
    assert ("TCP", "closing", "FIN") in flows

    # with local filtering off, the server's data is timestamped too (RTT to the client)
    both = [e for e in run_pcap(pcap, PpingConfig(read=str(pcap), local_addresses="10.201.0.1",
                                                   include_local=True))
            if isinstance(e, RttEvent)]
    assert any(e.flow.src_ip == "10.201.0.1" and e.match_on_egress for e in both)
