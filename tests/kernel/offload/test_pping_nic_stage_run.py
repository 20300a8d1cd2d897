"""pping's NIC stage on the host verifier (PROG_TEST_RUN): it hands exactly the
timestamp-echoing TCP packets to the host."""
import os
import struct

import pytest

import xnf
from xnf.testing.frames import ETH_P_ARP, ETH_P_IPV6, IPPROTO_UDP, ether, ipv4, ipv6, tcp

pytestmark = pytest.mark.root

OBJ = os.path.join(os.path.dirname(os.path.abspath(xnf.__file__)), "plugins", "pping", "pping_nic.bpf.o")
XDP_PASS = 2
TS_7_9 = struct.pack(">BBII", 8, 10, 7, 9)


def ack(options=b"\x01\x01" + TS_7_9, flags="A"):
    return tcp(5201, 40000, seq=1, ack=1, flags=flags, options=options)


def v4(l4, proto=6):
    return ether(ipv4("10.0.0.1", "10.0.0.2", proto, l4))


CASES = [
    ("ack with NOP NOP TS", v4(ack()), 1),
    ("ack with TS first", v4(ack(options=TS_7_9 + b"\x01\x01")), 1),
    ("IPv6 ack with TS", ether(ipv6("fd00::1", "fd00::2", 6, ack()), ETH_P_IPV6), 1),
    ("TSecr zero (SYN side)", v4(ack(options=b"\x01\x01" + struct.pack(">BBII", 8, 10, 7, 0))), 0),
    ("no ACK flag", v4(ack(flags="S")), 0),
    ("no options", v4(ack(options=b"")), 0),
    ("UDP", v4(bytes(28), proto=IPPROTO_UDP), 0),
    ("ARP", ether(bytes(28), ETH_P_ARP), 0),
    ("truncated", v4(ack())[:40], 0),
]


@pytest.mark.parametrize("name,packet,events", CASES, ids=[c[0] for c in CASES])
def test_which_packets_reach_the_host(name, packet, events):
    with xnf.load(OBJ) as coll:
        result = coll.programs["pping_nic"].test_run(packet)
        assert result.retval == XDP_PASS
        assert result.data == packet  # nothing is changed
        stats = coll.maps["pping_nic_stats"]
        assert (stats[0], stats[1]) == (1, events)


def test_port_filter_from_the_config_map():
    with xnf.load(OBJ) as coll:
        prog, stats = coll.programs["pping_nic"], coll.maps["pping_nic_stats"]
        coll.maps["pping_nic_cfg"][0] = 80
        prog.test_run(v4(ack()))
        assert stats[1] == 0
        coll.maps["pping_nic_cfg"][0] = 40000
        prog.test_run(v4(ack()))
        assert stats[1] == 1
