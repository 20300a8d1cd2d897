"""pping --mode offload without offload hardware: refused on veth with the reason and
nothing left behind; and the host reader matching the NIC stage's real records (the
stage runs on the host verifier with PROG_TEST_RUN, the same object the NIC gets)."""
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

import xnf
from xnf.core.attach.pinroot import PinRoot
from xnf.plugins.pping import offload
from xnf.plugins.pping.config import ConfigError, PpingConfig
from xnf.plugins.pping.datapath import load
from xnf.plugins.pping.events import Flow
from xnf.testing.frames import IPPROTO_TCP, ether, ipv4, tcp
from xnf.testing.topology import Topology

pytestmark = pytest.mark.root

XNF = [sys.executable, "-m", "xnf.cli.main"]


def sh(*args, netns=None, check=True):
    cmd = (["ip", "netns", "exec", netns] if netns else []) + list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


@pytest.fixture
def veth():
    """A namespace with an up veth pair po0 <-> po1 (xnf.testing; removed at the end)."""
    with Topology(prefix="xnfoff") as topo:
        ns = topo.namespace("n")
        topo.veth(ns, "po0", ns, "po1")
        topo.address(ns, "po0")
        try:
            yield ns
        finally:
            subprocess.run(XNF + ["detach", "pping", "po0", "--netns", ns], capture_output=True)


def test_cli_refuses_offload_on_veth_and_leaves_nothing(veth):
    r = subprocess.run(XNF + ["attach", "pping", "po0", "--netns", veth, "--mode", "offload"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "po0 cannot offload" in r.stderr
    assert "xdp" not in sh("ip", "-d", "link", "show", "po0", netns=veth).stdout
    assert sh("tc", "filter", "show", "dev", "po0", "egress", netns=veth).stdout.strip() == ""
    assert not os.path.exists(PinRoot("po0", "pping", netns=veth).path)
    # nothing attached through a link either (tcx, XDP links); a program that is neither
    # attached nor pinned died with the CLI's process. (No machine-wide count of pping
    # programs: other tests load pping at the same time, which made that check flaky.)
    assert "pping" not in sh("bpftool", "net", "show", "dev", "po0", netns=veth).stdout


def test_options_the_nic_cannot_do_are_refused_before_the_device_is_asked(veth):
    dp = offload.OffloadDatapath("po0", PpingConfig(icmp=True), veth)
    with pytest.raises(ConfigError, match="--icmp"):
        dp.attach()
    assert dp.collection is None and dp.nic is None


def tcp_ack(tsval, tsecr, sport=5201, dport=40000):
    return ether(ipv4("10.0.0.2", "10.0.0.1", IPPROTO_TCP, tcp(sport, dport, seq=1, ack=1, ts=(tsval, tsecr))),
                 src=b"\x04" * 6, dst=b"\x02" * 6)


def egress_key(tsval):
    """The pping_ts key of 10.0.0.1:40000 -> 10.0.0.2:5201 sending TSval ``tsval``."""
    mapped = bytes(10) + b"\xff\xff"
    return struct.pack("=16s16sHHBBBxIB3x", mapped + socket.inet_aton("10.0.0.1"),
                       mapped + socket.inet_aton("10.0.0.2"), socket.htons(40000), socket.htons(5201),
                       6, 4, 0, tsval, 0)


def test_reader_matches_nic_records_against_egress_timestamps():
    with load(PpingConfig()) as host, xnf.load(offload.NIC_OBJECT) as nic:
        events = []
        reader = offload.NicEventReader(nic.maps["pping_nic_events"], host.maps["pping_ts"], events.append)
        try:
            sent = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            host.maps["pping_ts"][egress_key(1000)] = sent
            nic.programs["pping_nic"].test_run(tcp_ack(tsval=555, tsecr=1000))
            nic.programs["pping_nic"].test_run(tcp_ack(tsval=556, tsecr=4242))  # never sent
            reader.poll(1000)
            reader.consume()
        finally:
            reader.close()
        assert reader.records == 2 and reader.unmatched == 1
        assert len(events) == 1
        ev = events[0]
        assert ev.flow == Flow("TCP", "10.0.0.2", 5201, "10.0.0.1", 40000)
        assert 0 < ev.rtt_ns < 5 * 10**9 and ev.min_rtt_ns == ev.rtt_ns
        assert ev.identifier_kind == "tsval" and (ev.rec_packets, ev.rec_bytes) == (1, 66)
        assert egress_key(1000) not in host.maps["pping_ts"]  # consumed, as the kernel side does


def test_ident_key_is_the_egress_key():
    rec = struct.pack("=16s16s2s2sB3x4s4sI", socket.inet_aton("10.0.0.2") + bytes(12),
                      socket.inet_aton("10.0.0.1") + bytes(12), struct.pack(">H", 5201),
                      struct.pack(">H", 40000), 4, struct.pack(">I", 555), struct.pack(">I", 1000), 66)
    assert offload.ident_key(rec) == egress_key(1000)
