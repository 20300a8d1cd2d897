"""`--weights PORT=W` on the BPF qdisc: the tc egress classifier writes the port's flow
number into skb->mark (the qdisc's flow), checked with BPF_PROG_TEST_RUN; the flow
numbering and the weights the qdisc gets. The qdisc itself runs in the VM tier."""
import struct

import pytest

import xnf
from xnf.core.errors import ConfigError
from xnf.plugins.pifo_sched.port_flows import MAP, OBJECT, PROGRAM, flow_numbers, flow_weights
from xnf.testing.frames import ether, ipv6, tcp, v4_tcp

pytestmark = pytest.mark.root
SK_BUFF_SIZE = 192  # struct __sk_buff; `mark` at offset 8
MARK = 8


def mark_after(program, frame, mark=0):
    ctx = bytearray(SK_BUFF_SIZE)
    struct.pack_into("<I", ctx, MARK, mark)
    result = program.test_run(frame, ctx=bytes(ctx))
    assert result.retval == 0  # TC_ACT_OK: the classifier never drops
    return struct.unpack_from("<I", result.ctx, MARK)[0]


def test_ports_get_flows_in_the_order_given_and_others_keep_their_mark():
    ports = {5203: 3.0, 5201: 1.0, 5202: 2.0}
    assert flow_numbers(ports) == {5203: 1, 5201: 2, 5202: 3}
    assert flow_weights(ports, 0.5) == {0: 0.5, 1: 3.0, 2: 1.0, 3: 2.0}
    with xnf.load(OBJECT) as coll:
        for port, flow in flow_numbers(ports).items():
            coll.maps[MAP][struct.pack("<H", port)] = struct.pack("<I", flow)
        prog = coll.programs[PROGRAM]
        assert mark_after(prog, v4_tcp("10.0.0.1", "10.0.0.2", 40000, 5201, payload=b"x")) == 2  # data
        assert mark_after(prog, v4_tcp("10.0.0.2", "10.0.0.1", 5203, 40000)) == 1  # the reverse (ACKs)
        assert mark_after(prog, v4_tcp("10.0.0.1", "10.0.0.2", 40000, 80), mark=7) == 7  # not ours: untouched
        v6 = ether(ipv6("fd00::1", "fd00::2", 6, tcp(40000, 5202)), ethertype=0x86DD)
        assert mark_after(prog, v6) == 3
        assert mark_after(prog, ether(b"\x00" * 40, ethertype=0x0806), mark=5) == 5  # ARP


def test_more_ports_than_the_qdisc_has_flows_are_refused():
    with pytest.raises(ConfigError, match="at most 63"):
        flow_numbers({port: 1.0 for port in range(1000, 1064)})
