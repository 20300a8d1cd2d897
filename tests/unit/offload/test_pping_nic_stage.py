"""pping's NIC stage (offload mode): it obeys the NFP rules, and on the host verifier
(PROG_TEST_RUN) it hands exactly the timestamp-echoing TCP packets to the host."""
import os
import socket
import struct

import pytest

import xnf
from xnf.offload.check import check_object
from xnf.offload.rules import target

OBJ = os.path.join(os.path.dirname(os.path.abspath(xnf.__file__)), "plugins", "pping", "pping_nic.bpf.o")
XDP_PASS = 2


@pytest.mark.parametrize("t", ["nfp", "netdevsim"])
def test_stage_passes_offload_rules(t):
    assert check_object(xnf.open_object(OBJ), target(t)) is None


def tcp(sport=5201, dport=40000, flags=0x10, options=b"\x01\x01\x08\x0a" + struct.pack(">II", 7, 9)):
    doff = (20 + len(options)) // 4
    return struct.pack(">HHIIBBHHH", sport, dport, 1, 1, doff << 4, flags, 65535, 0, 0) + options


def ipv4(payload, proto=6):
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                       socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2")) + payload


def ipv6(payload):
    return struct.pack(">IHBB16s16s", 6 << 28, len(payload), 6, 64, socket.inet_pton(socket.AF_INET6, "fd00::1"),
                       socket.inet_pton(socket.AF_INET6, "fd00::2")) + payload


def eth(payload, ethertype=0x0800):
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack(">H", ethertype) + payload


CASES = [
    ("ack with NOP NOP TS", eth(ipv4(tcp())), 1),
    ("ack with TS first", eth(ipv4(tcp(options=b"\x08\x0a" + struct.pack(">II", 7, 9) + b"\x01\x01"))), 1),
    ("IPv6 ack with TS", eth(ipv6(tcp()), 0x86DD), 1),
    ("TSecr zero (SYN side)", eth(ipv4(tcp(options=b"\x01\x01\x08\x0a" + struct.pack(">II", 7, 0)))), 0),
    ("no ACK flag", eth(ipv4(tcp(flags=0x02))), 0),
    ("no options", eth(ipv4(tcp(options=b""))), 0),
    ("UDP", eth(ipv4(b"\x00" * 28, proto=17)), 0),
    ("ARP", eth(b"\x00" * 28, 0x0806), 0),
    ("truncated", eth(ipv4(tcp()))[:40], 0),
]


@pytest.mark.root
@pytest.mark.parametrize("name,packet,events", CASES, ids=[c[0] for c in CASES])
def test_which_packets_reach_the_host(name, packet, events):
    with xnf.load(OBJ) as coll:
        result = coll.programs["pping_nic"].test_run(packet)
        assert result.retval == XDP_PASS
        assert result.data == packet  # nothing is changed
        stats = coll.maps["pping_nic_stats"]
        assert (stats[0], stats[1]) == (1, events)


@pytest.mark.root
def test_port_filter_from_the_config_map():
    with xnf.load(OBJ) as coll:
        prog, stats = coll.programs["pping_nic"], coll.maps["pping_nic_stats"]
        coll.maps["pping_nic_cfg"][0] = 80
        prog.test_run(eth(ipv4(tcp())))
        assert stats[1] == 0
        coll.maps["pping_nic_cfg"][0] = 40000
        prog.test_run(eth(ipv4(tcp())))
        assert stats[1] == 1
