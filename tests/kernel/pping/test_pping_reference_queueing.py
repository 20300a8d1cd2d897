"""The reference follows queueing delay as ping sees it (real traffic, a TBF bottleneck).

A server namespace sends a bulk cubic flow (iperf3 -R) to the client through a TBF
with a deep buffer on its veth, so the server-to-client queue fills. Meanwhile the
client pings the server and runs a small request/response TCP exchange; tcpdump
captures on the client's veth, up to a marker echo sent after the traffic (synchronised
by events: pping_capture). One capture serves both tests:

* default suite: every RTT the reference reports over the capture is the capture's own
  time difference between the reply and the first packet carrying what it echoes (the
  TSval its TSecr names, the echo request of its id and sequence), read from tcpdump's
  decoding of the same file; every echo reply in the capture gives exactly one ICMP
  sample. These hold whatever the queue did, so they are exact;
* `measurement`: from the client, every RTT crosses the full queue on the way back, so
  pping's TCP RTTs must rise with ping's (medians), and its ICMP RTTs must be ping's own.
"""

import re
import shutil
import statistics
import subprocess
import sys
import time

import pytest

from pping_capture import Capture
from xnf.core.kernel import netns
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import RttEvent
from xnf.plugins.pping.reference import run_pcap
from xnf.testing import traffic
from xnf.testing.topology import VethPair

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("tc", "tcpdump", "ping", "iperf3")),
                       reason="needs tc, tcpdump, ping and iperf3"),
]

ECHO_SERVER = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000)); s.listen(); print("ready", flush=True)
c, _ = s.accept()
while True:
    d = c.recv(4096)
    if not d:
        break
    c.sendall(d)
"""

ECHO_CLIENT = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], 7000))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    s.sendall(b"q" * 100)
    got = 0
    while got < 100:
        got += len(s.recv(4096))
    time.sleep(0.1)
s.close()
"""


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """(pcap path, ping's samples as (time s, RTT ns)) of one run through the filled queue."""
    pcap = tmp_path_factory.mktemp("queueing") / "q.pcap"
    with VethPair("10.202.0.1", "10.202.0.2") as pair:
        cns, sns, cdev, sdev = pair.ns_a, pair.ns_b, pair.if_a, pair.if_b
        # server -> client bottleneck: 20 Mbit/s with a 600 KB queue (about 240 ms)
        traffic.run(sns, ["tc", "qdisc", "add", "dev", sdev, "root", "tbf", "rate", "20mbit", "burst", "20kb",
                          "limit", "600kb"])
        # (the bulk sender uses cubic through iperf3 -C: BBR would keep the queue short)
        with Capture(cns, cdev, pcap, "-s", "128") as capture:
            capture.wait_listening()
            pings = _run_traffic(cns, sns)
            capture.mark(cns, "10.202.0.2")
            dropped_by_kernel = capture.stop()
    assert dropped_by_kernel == 0, f"tcpdump: {dropped_by_kernel} packets dropped by kernel (capture incomplete)"
    capture.cut_at_marker()  # the traffic only: the marker echo is not one of ping's samples
    ping_samples = [(float(t), float(ms) * 1e6) for t, ms in
                    re.findall(r"^\[(\d+\.\d+)\] .*icmp_seq=\d+ ttl=\d+ time=([\d.]+) ms", pings, re.M)]
    return pcap, ping_samples


def _run_traffic(cns, sns):
    procs = []

    def start(ns, *cmd, **kw):
        p = traffic.popen(ns, cmd, **kw)
        procs.append(p)
        return p

    try:
        start(sns, "iperf3", "-s", "-1", stdout=subprocess.DEVNULL)
        echo = start(sns, sys.executable, "-c", ECHO_SERVER,
                     stdout=subprocess.PIPE, text=True)
        assert echo.stdout.readline().strip() == "ready"
        ping = start(cns, "ping", "-i", "0.2", "-c", "45", "-D", "10.202.0.2",
                     stdout=subprocess.PIPE, text=True)
        client = start(cns, sys.executable, "-c", ECHO_CLIENT, "10.202.0.2", "9")
        time.sleep(1.5)
        traffic.wait_listening(sns, 5201)
        with netns.entered(cns):
            r = subprocess.run(["iperf3", "-c", "10.202.0.2", "-R", "-t", "5", "-C", "cubic"],
                               capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        client.wait(timeout=30)
        return ping.communicate(timeout=30)[0]
    finally:
        traffic.stop(procs)


CONFIG = dict(tcp=True, icmp=True, local_addresses="10.202.0.1")

# tcpdump -tt --time-stamp-precision=nano: "<s>.<ns> IP <src> > <dst>: ..."
PACKET = re.compile(r"^(\d+)\.(\d{9}) IP (\S+) > (\S+): (.*)$")
TS_OPTION = re.compile(r"TS val (\d+) ecr (\d+)")
ICMP_ECHO = re.compile(r"ICMP echo (request|reply), id (\d+), seq (\d+)")
TCP_FLAGS = re.compile(r"Flags \[([^\]]*)\]")
TCP_LENGTH = re.compile(r"length (\d+)$")


def _decoded(pcap):
    """The capture as tcpdump decodes it: (time ns, src, dst, text) per IPv4 packet, in order."""
    out = subprocess.run(["tcpdump", "-r", str(pcap), "-nn", "-tt", "--time-stamp-precision=nano"],
                         capture_output=True, text=True, check=True).stdout
    packets = []
    for line in out.splitlines():
        m = PACKET.match(line)
        if m:
            packets.append((int(m[1]) * 10**9 + int(m[2]), m[3], m[4].rstrip(":"), m[5]))
    return packets


def _endpoint(addr):
    """tcpdump's "10.202.0.2.7000" -> ("10.202.0.2", 7000); an ICMP address has no port."""
    parts = addr.split(".")
    return (".".join(parts[:4]), int(parts[4]) if len(parts) > 4 else 0)


def _carries_an_identifier(text):
    """pping (and its reference) timestamps a TSval only from a packet with payload or a
    SYN: a pure ACK may carry a TSval first and a data packet later (the TSval clock
    ticks once a millisecond), and the sample is then timed from the data packet."""
    flags, length = TCP_FLAGS.search(text), TCP_LENGTH.search(text)
    return bool(flags and "S" in flags[1]) or bool(length and int(length[1]) > 0)


def test_reference_rtts_are_the_capture_s_own_time_differences(capture):
    """Exact, whatever the queue did: rate limit 0, so every new TSval and every echo
    request is timestamped, and each sample can be found again in tcpdump's decoding."""
    pcap, _ = capture
    packets = _decoded(pcap)
    first_tsval, first_request, at = {}, {}, {}
    for t, src, dst, text in packets:
        at.setdefault(t, []).append((src, dst, text))
        ts = TS_OPTION.search(text)
        if ts and _carries_an_identifier(text):
            first_tsval.setdefault((src, dst, int(ts[1])), t)
        echo = ICMP_ECHO.search(text)
        if echo and echo[1] == "request":
            first_request.setdefault((src, dst, int(echo[2]), int(echo[3])), t)
    replies = sum(1 for *_, text in packets if (m := ICMP_ECHO.search(text)) and m[1] == "reply")

    events = [e for e in run_pcap(pcap, PpingConfig(**CONFIG, rate_limit=0, read=str(pcap)))
              if isinstance(e, RttEvent)]
    checked = {"TCP": 0, "ICMP": 0}
    for e in events:
        t = e.timestamp_ns
        candidates = []  # the packet the sample was taken at: its time, its endpoints
        for src, dst, text in at.get(t, []):
            if _endpoint(src) != (e.flow.src_ip, e.flow.src_port if e.flow.proto == "TCP" else 0):
                continue
            if e.flow.proto == "TCP" and (ts := TS_OPTION.search(text)):
                candidates.append(first_tsval.get((dst, src, int(ts[2]))))
            elif e.flow.proto == "ICMP" and (echo := ICMP_ECHO.search(text)) and echo[1] == "reply":
                candidates.append(first_request.get((dst, src, int(echo[2]), int(echo[3]))))
        sent = [c for c in candidates if c is not None and t - c == e.rtt_ns]
        assert sent, f"{e}: no packet of the capture at {t} ns echoes one sent {e.rtt_ns} ns before"
        checked[e.flow.proto] += 1
    # each echo reply is one sample (ping's 45 requests: those the queue dropped have none)
    assert checked["ICMP"] == replies > 0, (checked, replies)
    # the request/response client: 9 s of exchanges, each at most 0.1 s + the 240 ms queue
    # (+ a retransmission timeout): >= 20 exchanges, each sampled (78 seen; a floor, not a rate)
    assert checked["TCP"] >= 10, checked
    print(f"checked {checked} samples, {replies} echo replies")


@pytest.mark.measurement  # medians of real RTTs through a queue a cubic flow fills (ratio
# 0.7-1.3, >= 10 loaded samples): false-failure rate not measured below 1 in 1,000 (docs/testing.md)
def test_rtts_follow_the_queue_like_ping(capture):
    pcap, ping_samples = capture
    events = [e for e in run_pcap(pcap, PpingConfig(**CONFIG, read=str(pcap))) if isinstance(e, RttEvent)]
    tcp = [(e.timestamp_ns / 1e9, e.rtt_ns) for e in events if e.flow.proto == "TCP" and e.flow.src_port == 7000]
    icmp = [e.rtt_ns for e in events if e.flow.proto == "ICMP"]

    # ICMP: pping over the capture sees the echoes ping timed (a bit later out, earlier back)
    assert len(icmp) == len(ping_samples) >= 40
    for ours, (_, theirs) in zip(icmp, ping_samples):
        rounding = 20_000 if theirs < 10e6 else 60_000 if theirs < 100e6 else 600_000  # ping prints 3 digits
        assert ours <= theirs + rounding and theirs - ours < 2_000_000 + rounding

    # TCP through the queue: idle RTTs are well under a millisecond, loaded ones follow ping
    idle_ping = statistics.median(v for _, v in ping_samples[:5])
    loaded = [v for _, v in ping_samples if v > 20 * idle_ping + 10_000_000]
    assert len(loaded) >= 10, f"the queue never filled: {[round(v / 1e6, 1) for _, v in ping_samples]}"
    t_lo = min(t for t, v in ping_samples if v in loaded)
    t_hi = max(t for t, v in ping_samples if v in loaded)
    tcp_loaded = [v for t, v in tcp if t_lo <= t <= t_hi]
    assert len(tcp_loaded) >= 10
    ratio = statistics.median(tcp_loaded) / statistics.median(loaded)
    assert 0.7 < ratio < 1.3, f"TCP median {statistics.median(tcp_loaded) / 1e6:.1f} ms vs ping " \
                              f"{statistics.median(loaded) / 1e6:.1f} ms"
    assert statistics.median(v for t, v in tcp if t < ping_samples[0][0] + 1) < 5_000_000
