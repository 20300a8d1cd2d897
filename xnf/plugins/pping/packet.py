"""Header parsing in Python, exactly as far as pping's matching rules need.

The BPF data path parses the same headers in C; this module is the user-space twin
used by the offline reference (``--read``) and by the tests. Everything unusable
(non-IP, a third VLAN tag, a fourth IPv6 extension header, truncated headers, a
non-first fragment) parses to ``None`` or to a packet without transport information,
never to an exception: capture files are full of such packets.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

# Link types (pcap LINKTYPE_* values) a packet can start with.
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
#: ``DLT_RAW`` as some BSD-derived writers store it.
LINKTYPE_RAW_ALIASES = (12, 14)

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
PPP_IP = 0x0021
PPP_IPV6 = 0x0057

#: As many VLAN tags as the BPF data path parses (ePPing: 2).
MAX_VLAN_TAGS = 2
#: As many IPv6 extension headers as the BPF data path skips (ePPing: 3).
MAX_IPV6_EXT_HEADERS = 3

IPPROTO_HOPOPTS = 0
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ROUTING = 43
IPPROTO_FRAGMENT = 44
IPPROTO_AH = 51
IPPROTO_ICMPV6 = 58
IPPROTO_DSTOPTS = 60
IPPROTO_MH = 135

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129

DNS_PORT = 53
QUIC_PORT = 443

#: Direction hints a capture can carry (pcapng flags, SLL packet type).
INGRESS = "ingress"
EGRESS = "egress"

_U16 = struct.Struct("!H")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_ICMP_ECHO = struct.Struct("!BBHHH")
_TSOPT = struct.Struct("!II")


class TcpInfo:
    """The TCP fields pping uses. ``tsval``/``tsecr`` are ``None`` without the option."""

    __slots__ = ("sport", "dport", "seq", "ack", "flags", "tsval", "tsecr")

    def __init__(self, sport, dport, seq, ack, flags, tsval, tsecr):
        self.sport = sport
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.tsval = tsval
        self.tsecr = tsecr


class EchoInfo:
    """An ICMP or ICMPv6 echo request/reply."""

    __slots__ = ("is_request", "ident", "seq")

    def __init__(self, is_request, ident, seq):
        self.is_request = is_request
        self.ident = ident
        self.seq = seq


class UdpInfo:
    """A UDP datagram, with what DNS and QUIC matching read from its payload.

    ``dns_id``/``dns_is_response`` are set when a port is 53 and a DNS header fits;
    ``quic_spin`` (0 or 1) when a port is 443 and the first byte is a QUIC short
    header (form bit clear, fixed bit set).
    """

    __slots__ = ("sport", "dport", "dns_id", "dns_is_response", "quic_spin")

    def __init__(self, sport, dport, dns_id=None, dns_is_response=None, quic_spin=None):
        self.sport = sport
        self.dport = dport
        self.dns_id = dns_id
        self.dns_is_response = dns_is_response
        self.quic_spin = quic_spin


class Packet:
    """A parsed IP packet.

    ``wire_len`` is the frame length from its first byte at the capture's layer (what
    ``skb->len`` is at tc), ``payload_len`` the transport payload computed from the IP
    length (so Ethernet padding never counts as data). Exactly one of ``tcp``,
    ``echo``, ``udp`` is set when the transport header was parsed.
    """

    __slots__ = (
        "ip_version", "src_ip", "dst_ip", "proto", "wire_len", "payload_len",
        "tcp", "echo", "udp", "direction",
    )

    def __init__(self, ip_version, src_ip, dst_ip, proto, wire_len):
        self.ip_version = ip_version
        self.src_ip = src_ip
        self.dst_ip = dst_ip
        self.proto = proto
        self.wire_len = wire_len
        self.payload_len = 0
        self.tcp = None
        self.echo = None
        self.udp = None
        self.direction = None


def parse(data: bytes, linktype: int = LINKTYPE_ETHERNET, wire_len: "int | None" = None):
    """Parse one frame; return a :class:`Packet` or ``None`` if it is not usable IP."""
    if wire_len is None:
        wire_len = len(data)
    direction = None
    ethertype = None
    off = 0
    try:
        if linktype == LINKTYPE_ETHERNET:
            ethertype, off = _skip_ethernet(data)
        elif linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6) or linktype in LINKTYPE_RAW_ALIASES:
            ethertype = _ethertype_from_ip_version(data, 0)
        elif linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
            ethertype, off = _skip_ppp(data)
        elif linktype == LINKTYPE_LINUX_SLL:
            pkttype, = _U16.unpack_from(data, 0)
            direction = EGRESS if pkttype == 4 else INGRESS
            ethertype, = _U16.unpack_from(data, 14)
            off = 16
            ethertype, off = _skip_vlans(data, ethertype, off)
        elif linktype == LINKTYPE_LINUX_SLL2:
            ethertype, = _U16.unpack_from(data, 0)
            direction = EGRESS if data[10] == 4 else INGRESS
            off = 20
            ethertype, off = _skip_vlans(data, ethertype, off)
        else:
            return None
    except (struct.error, IndexError):
        return None
    if ethertype == ETH_P_IP:
        pkt = _parse_ipv4(data, off, wire_len)
    elif ethertype == ETH_P_IPV6:
        pkt = _parse_ipv6(data, off, wire_len)
    else:
        return None
    if pkt is not None:
        pkt.direction = direction
    return pkt


def _ethertype_from_ip_version(data, off):
    version = data[off] >> 4
    return ETH_P_IP if version == 4 else ETH_P_IPV6 if version == 6 else None


def _skip_ethernet(data):
    ethertype, = _U16.unpack_from(data, 12)
    return _skip_vlans(data, ethertype, 14)


def _skip_vlans(data, ethertype, off):
    for _ in range(MAX_VLAN_TAGS):
        if ethertype not in (ETH_P_8021Q, ETH_P_8021AD):
            break
        ethertype, = _U16.unpack_from(data, off + 2)
        off += 4
    if ethertype in (ETH_P_8021Q, ETH_P_8021AD):
        return None, off
    return ethertype, off


def _skip_ppp(data):
    off = 2 if data[0] == 0xFF and data[1] == 0x03 else 0
    # Protocol field compression: an odd first byte is a one-byte protocol.
    if data[off] & 1:
        proto, off = data[off], off + 1
    else:
        proto, = _U16.unpack_from(data, off)
        off += 2
    return {PPP_IP: ETH_P_IP, PPP_IPV6: ETH_P_IPV6}.get(proto), off


def _parse_ipv4(data, off, wire_len):
    if len(data) < off + 20:
        return None
    vihl, _tos, total_len, _id, frag, _ttl, proto, _csum, src, dst = _IPV4.unpack_from(data, off)
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20 or len(data) < off + ihl:
        return None
    pkt = Packet(4, socket.inet_ntop(socket.AF_INET, src), socket.inet_ntop(socket.AF_INET, dst),
                 proto, wire_len)
    if frag & 0x1FFF:  # not the first fragment: no transport header here
        return pkt
    end = off + total_len if total_len >= ihl else off + ihl
    _parse_transport(pkt, data, off + ihl, end, proto)
    return pkt


_IPV6_EXT = (IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_FRAGMENT, IPPROTO_AH, IPPROTO_MH)


def _parse_ipv6(data, off, wire_len):
    if len(data) < off + 40:
        return None
    vtcfl, payload_len, nexthdr, _hlim, src, dst = _IPV6.unpack_from(data, off)
    if vtcfl >> 28 != 6:
        return None
    end = off + 40 + payload_len
    pos = off + 40
    for _ in range(MAX_IPV6_EXT_HEADERS):
        if nexthdr not in _IPV6_EXT:
            break
        if len(data) < pos + 8:
            return None
        if nexthdr == IPPROTO_FRAGMENT:
            frag_off, = _U16.unpack_from(data, pos + 2)
            if frag_off & 0xFFF8:
                nexthdr = None  # non-first fragment: no transport header
                break
            hdrlen = 8
        elif nexthdr == IPPROTO_AH:
            hdrlen = (data[pos + 1] + 2) * 4
        else:
            hdrlen = (data[pos + 1] + 1) * 8
        nexthdr = data[pos]
        pos += hdrlen
    pkt = Packet(6, socket.inet_ntop(socket.AF_INET6, src), socket.inet_ntop(socket.AF_INET6, dst),
                 nexthdr if nexthdr is not None else -1, wire_len)
    if nexthdr in _IPV6_EXT or nexthdr is None:
        return pkt
    _parse_transport(pkt, data, pos, end, nexthdr)
    return pkt


def _parse_transport(pkt, data, pos, end, proto):
    if proto == IPPROTO_TCP:
        if len(data) < pos + 20:
            return
        sport, dport, seq, ack, doff, flags, _win, _csum, _urg = _TCP.unpack_from(data, pos)
        hlen = (doff >> 4) * 4
        if hlen < 20 or len(data) < pos + hlen:
            return
        tsval, tsecr = _tcp_timestamps(data, pos + 20, pos + hlen)
        pkt.tcp = TcpInfo(sport, dport, seq, ack, flags, tsval, tsecr)
        pkt.payload_len = max(end - pos - hlen, 0)
    elif proto == IPPROTO_UDP:
        if len(data) < pos + 8:
            return
        sport, dport, _ulen, _csum = _UDP.unpack_from(data, pos)
        udp = UdpInfo(sport, dport)
        body = pos + 8
        if (sport == DNS_PORT or dport == DNS_PORT) and len(data) >= body + 4:
            udp.dns_id, = _U16.unpack_from(data, body)
            udp.dns_is_response = bool(data[body + 2] & 0x80)
        elif (sport == QUIC_PORT or dport == QUIC_PORT) and len(data) > body:
            first = data[body]
            if not first & 0x80 and first & 0x40:
                udp.quic_spin = (first >> 5) & 1
        pkt.udp = udp
        pkt.payload_len = max(end - body, 0)
    elif proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        if len(data) < pos + 8:
            return
        typ, code, _csum, ident, seq = _ICMP_ECHO.unpack_from(data, pos)
        pkt.payload_len = max(end - pos - 8, 0)
        if code != 0:
            return
        if proto == IPPROTO_ICMP and pkt.ip_version == 4:
            request = {ICMP_ECHO_REQUEST: True, ICMP_ECHO_REPLY: False}.get(typ)
        elif proto == IPPROTO_ICMPV6 and pkt.ip_version == 6:
            request = {ICMPV6_ECHO_REQUEST: True, ICMPV6_ECHO_REPLY: False}.get(typ)
        else:
            request = None
        if request is not None:
            pkt.echo = EchoInfo(request, ident, seq)


def _tcp_timestamps(data, pos, end):
    """Walk the TCP options for the timestamp option (kind 8, length 10)."""
    while pos < end:
        kind = data[pos]
        if kind == 0:
            break
        if kind == 1:
            pos += 1
            continue
        if pos + 2 > end:
            break
        size = data[pos + 1]
        if size < 2:
            break
        if kind == 8 and size == 10:
            if pos + 10 > end:
                break
            return _TSOPT.unpack_from(data, pos + 2)
        pos += size
    return None, None


def prefix_of(ip: str, v4_len: int, v6_len: int) -> str:
    """The aggregation prefix (``10.0.0.0/24``, ``2001:db8::/48``) an address falls in."""
    addr = ipaddress.ip_address(ip)
    plen = v4_len if addr.version == 4 else v6_len
    return str(ipaddress.ip_network(f"{ip}/{plen}", strict=False))
