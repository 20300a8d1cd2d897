"""Header parsing: every encapsulation and transport pping reads, and what it refuses."""

import struct

import pytest

from xnf.plugins.pping import packet as P
from xnf.testing.frames import (Endpoints, dns, ether, icmp_echo, ipv4, ipv6, ppp, quic_short, tcp,
                           udp)


def test_ipv4_tcp_with_timestamps():
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1234, 80, seq=5, ack=7, flags="PA",
                                                      ts=(1000, 2000), payload=b"abc")))
    p = P.parse(frame)
    assert (p.ip_version, p.src_ip, p.dst_ip, p.proto) == (4, "10.0.0.1", "10.0.0.2", 6)
    t = p.tcp
    assert (t.sport, t.dport, t.seq, t.ack, t.tsval, t.tsecr) == (1234, 80, 5, 7, 1000, 2000)
    assert t.flags & P.TCP_ACK and t.flags & P.TCP_PSH
    assert p.payload_len == 3
    assert p.wire_len == len(frame)


def test_tcp_options_walk_past_other_options():
    opts = (b"\x02\x04\x05\xb4" + b"\x04\x02" + b"\x01" + b"\x03\x03\x07"
            + struct.pack("!BBII", 8, 10, 77, 88))
    p = P.parse(ether(ipv4("1.1.1.1", "2.2.2.2", 6, tcp(1, 2, flags="S", options=opts))))
    assert (p.tcp.tsval, p.tcp.tsecr) == (77, 88)


@pytest.mark.parametrize("opts", [
    b"\x00" + struct.pack("!BBII", 8, 10, 1, 2),          # end of options before TS
    b"\x02\x01" + struct.pack("!BBII", 8, 10, 1, 2),      # invalid option length
    struct.pack("!BBII", 8, 9, 1, 2),                      # TS with the wrong length
])
def test_tcp_timestamp_not_found(opts):
    p = P.parse(ether(ipv4("1.1.1.1", "2.2.2.2", 6, tcp(1, 2, options=opts))))
    assert p.tcp.tsval is None


def test_payload_from_ip_length_ignores_ethernet_padding():
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, ts=(1, 2)))) + b"\0" * 6
    assert P.parse(frame).payload_len == 0


@pytest.mark.parametrize("vlans,tpid", [((10,), 0x8100), ((10, 20), 0x8100), ((10, 20), 0x88A8)])
def test_vlan_tags(vlans, tpid):
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, ts=(3, 4))), vlans=[(tpid, v) for v in vlans])
    assert P.parse(frame).tcp.tsval == 3


def test_three_vlan_tags_are_refused():
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, ts=(3, 4))), vlans=(1, 2, 3))
    assert P.parse(frame) is None


def test_ipv6_extension_headers_up_to_three():
    ext = [(0, b""), (60, b"\x01\x02"), (43, b"\0" * 6)]
    frame = ether(ipv6("2001:db8::1", "2001:db8::2", 6, tcp(1, 2, ts=(9, 8), payload=b"xy"), ext), 0x86DD)
    p = P.parse(frame)
    assert p.ip_version == 6 and p.src_ip == "2001:db8::1"
    assert p.tcp.tsval == 9 and p.payload_len == 2


def test_ipv6_fourth_extension_header_gives_no_transport():
    ext = [(0, b""), (60, b""), (60, b""), (60, b"")]
    p = P.parse(ether(ipv6("2001:db8::1", "2001:db8::2", 6, tcp(1, 2, ts=(9, 8)), ext), 0x86DD))
    assert p is not None and p.tcp is None


def test_ipv6_fragments():
    first = P.parse(ether(ipv6("::1", "::2", 6, tcp(1, 2, ts=(1, 1)), [(44, (0, True))]), 0x86DD))
    assert first.tcp is not None
    later = P.parse(ether(ipv6("::1", "::2", 6, b"\0" * 24, [(44, (8, False))]), 0x86DD))
    assert later.tcp is None


def test_ipv4_non_first_fragment_has_no_transport():
    p = P.parse(ether(ipv4("10.0.0.1", "10.0.0.2", 6, b"\0" * 40, frag_offset=8)))
    assert p.tcp is None


def test_ipv4_options_are_skipped():
    p = P.parse(ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, ts=(5, 6)), options=b"\x01" * 4)))
    assert p.tcp.tsval == 5


def test_raw_ppp_and_cooked_link_types():
    l3 = ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, ts=(5, 6)))
    assert P.parse(l3, P.LINKTYPE_RAW).tcp.tsval == 5
    assert P.parse(l3, 12).tcp.tsval == 5
    assert P.parse(ppp(l3), P.LINKTYPE_PPP).tcp.tsval == 5
    v6 = ipv6("::1", "::2", 6, tcp(1, 2, ts=(5, 6)))
    assert P.parse(ppp(v6, 0x0057), P.LINKTYPE_PPP).ip_version == 6
    sll = struct.pack("!HHH8sH", 4, 1, 6, b"\0" * 8, 0x0800) + l3
    p = P.parse(sll, P.LINKTYPE_LINUX_SLL)
    assert p.tcp.tsval == 5 and p.direction == P.EGRESS
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 2, 1, 0, 6, b"\0" * 8) + l3
    p = P.parse(sll2, P.LINKTYPE_LINUX_SLL2)
    assert p.tcp.tsval == 5 and p.direction == P.INGRESS


def test_icmp_and_icmpv6_echo():
    e = Endpoints()
    p = P.parse(e.ping(True, 77, 3))
    assert p.echo.is_request and (p.echo.ident, p.echo.seq) == (77, 3)
    assert P.parse(e.ping(False, 77, 3)).echo.is_request is False
    e6 = Endpoints("2001:db8::1", "2001:db8::2", v6=True)
    assert P.parse(e6.ping(True, 5, 6)).echo.seq == 6
    # ICMPv6 echo numbers inside IPv4 (and vice versa) are not echo
    assert P.parse(ether(ipv4("1.1.1.1", "2.2.2.2", 58, icmp_echo(True, 1, 1, v6=True)))).echo is None
    assert P.parse(ether(ipv4("1.1.1.1", "2.2.2.2", 1, b"\x03\x01" + b"\0" * 6))).echo is None


def test_dns_and_quic():
    q = P.parse(ether(ipv4("10.0.0.1", "10.0.0.53", 17, udp(5555, 53, dns(0xBEEF, False)))))
    assert (q.udp.dns_id, q.udp.dns_is_response) == (0xBEEF, False)
    r = P.parse(ether(ipv4("10.0.0.53", "10.0.0.1", 17, udp(53, 5555, dns(0xBEEF, True)))))
    assert r.udp.dns_is_response is True
    s = P.parse(ether(ipv4("10.0.0.1", "10.0.0.2", 17, udp(5555, 443, quic_short(1)))))
    assert s.udp.quic_spin == 1
    long_hdr = P.parse(ether(ipv4("10.0.0.1", "10.0.0.2", 17, udp(5555, 443, b"\xc0" + b"\0" * 20))))
    assert long_hdr.udp.quic_spin is None


@pytest.mark.parametrize("cut", [5, 14, 20, 33, 40, 53])
def test_truncated_frames_never_raise(cut):
    frame = ether(ipv4("10.0.0.1", "10.0.0.2", 6, tcp(1, 2, ts=(3, 4))))
    p = P.parse(frame[:cut])
    assert p is None or p.tcp is None


def test_non_ip_is_none():
    assert P.parse(ether(b"\0" * 28, 0x0806)) is None
    assert P.parse(b"\0" * 40, 9999) is None


def test_prefix_of():
    assert P.prefix_of("10.1.2.3", 24, 48) == "10.1.2.0/24"
    assert P.prefix_of("2001:db8:1:2::5", 24, 48) == "2001:db8:1::/48"
