"""Frame builders: just enough Ethernet, VLAN, IPv4, IPv6, TCP, UDP, ICMP echo, DNS and
QUIC to feed a program through PROG_TEST_RUN, a parser or a capture file.

Each builder returns the bytes of its header followed by ``payload``; compose them
inside out: ``ether(ipv4(a, b, IPPROTO_TCP, tcp(1, 2, ts=(7, 0))))``. The IPv4 header
and ICMPv4 checksums are filled in (neither needs a pseudo-header, so these frames pass
any IPv4 parser and echo requests can go out on a raw socket); TCP, UDP and ICMPv6
checksums, which cover a pseudo-header, are left zero: programs under test and parsers
do not check them.
"""
import socket
import struct

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")

ETH_P_IP, ETH_P_ARP, ETH_P_IPV6, ETH_P_8021Q, ETH_P_8021AD = 0x0800, 0x0806, 0x86DD, 0x8100, 0x88A8
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6 = 1, 6, 17, 58
TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_FLAG_LETTERS = {"F": TCP_FIN, "S": TCP_SYN, "R": TCP_RST, "P": TCP_PSH, "A": TCP_ACK}


def ether(payload, ethertype=ETH_P_IP, vlans=(), dst=MAC_B, src=MAC_A):
    """An Ethernet frame; ``vlans`` lists tags outermost first, each a VLAN id (802.1Q)
    or a ``(tpid, vid)`` pair (e.g. ``(ETH_P_8021AD, 1)`` for a QinQ outer tag)."""
    tags = [(ETH_P_8021Q, v) if isinstance(v, int) else v for v in vlans]
    types = [tpid for tpid, _ in tags] + [ethertype]
    hdr = dst + src + struct.pack("!H", types[0])
    for i, (_, vid) in enumerate(tags):
        hdr += struct.pack("!HH", vid & 0xFFF, types[i + 1])
    return hdr + payload


def ipv4(src, dst, proto, payload, tos=0, frag_offset=0, more_fragments=False, options=b"", ttl=64):
    """An IPv4 header (``frag_offset`` in bytes, a multiple of 8); ``options`` padded by the caller."""
    ihl = 5 + len(options) // 4
    frag = (0x2000 if more_fragments else 0) | (frag_offset // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, 20 + len(options) + len(payload), 1, frag, ttl, proto, 0,
                      socket.inet_aton(src), socket.inet_aton(dst)) + options
    return hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:] + payload


def ipv6(src, dst, nexthdr, payload, ext=()):
    """An IPv6 header with extension headers ``ext``: ``(type, body)`` pairs, first to last.

    A fragment header's (44) body is ``(offset_bytes, more_fragments)``; an AH's (51) body
    is padded to 4-byte units, any other's to 8-byte units, as their length fields count.
    """
    chain = b""
    types = [t for t, _ in ext] + [nexthdr]
    for i, (etype, body) in enumerate(ext):
        nxt = types[i + 1]
        if etype == 44:
            offset, more = body
            chain += struct.pack("!BBHI", nxt, 0, (offset & 0xFFF8) | (1 if more else 0), 7)
        elif etype == 51:
            raw = body + bytes(-(len(body) + 2) % 4)
            chain += struct.pack("!BB", nxt, (len(raw) + 2) // 4 - 2) + raw
        else:
            raw = body + bytes(-(len(body) + 2) % 8)
            chain += struct.pack("!BB", nxt, (len(raw) + 2) // 8 - 1) + raw
    return struct.pack("!IHBB16s16s", 0x60000000, len(chain) + len(payload), types[0], 64,
                       socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)) + chain + payload


def tcp_flags(flags):
    """``flags`` as bits: an int already, or letters from ``"FSRPA"`` (``"SA"`` = SYN|ACK)."""
    return flags if isinstance(flags, int) else sum(_FLAG_LETTERS[c] for c in flags)


def tcp(sport, dport, seq=0, ack=0, flags=TCP_ACK, ts=None, payload=b"", options=b"", window=65535):
    """A TCP header. ``ts=(tsval, tsecr)`` adds the timestamp option (NOP NOP TS) after
    ``options``; the options are padded to 4 bytes with EOL."""
    if ts is not None:
        options += b"\x01\x01" + struct.pack("!BBII", 8, 10, ts[0] & 0xFFFFFFFF, ts[1] & 0xFFFFFFFF)
    options += bytes(-len(options) % 4)
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, doff << 4,
                       tcp_flags(flags), window, 0, 0) + options + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp_echo(request, ident, seq, v6=False, payload=b"x" * 16, code=0):
    """An ICMP (or ICMPv6) echo request or reply; ICMPv4's checksum is filled in."""
    typ = (128 if request else 129) if v6 else (8 if request else 0)
    msg = struct.pack("!BBHHH", typ, code, 0, ident, seq) + payload
    if v6:
        return msg  # the ICMPv6 checksum covers a pseudo-header: left zero
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def checksum(data):
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def dns(qid, response, qname=b"\x07example\x03com\x00"):
    """A DNS query (or its response header, no answer record) for an A record of ``qname``."""
    flags = 0x8180 if response else 0x0100
    return struct.pack("!HHHHHH", qid, flags, 1, 1 if response else 0, 0, 0) + qname + b"\x00\x01\x00\x01"


def quic_short(spin, dcid=b"\x11" * 8, payload=b"\x00" * 24):
    """A QUIC short-header packet (form bit clear, fixed bit set) with spin bit ``spin``."""
    return bytes([0x40 | (0x20 if spin else 0) | 0x01]) + dcid + payload


def ppp(payload, proto=0x0021):
    """A PPP frame in HDLC framing (address, control, protocol), as libpcap's LINKTYPE_PPP."""
    return b"\xff\x03" + struct.pack("!H", proto) + payload


def v4_tcp(src, dst, sport, dport, vlans=(), **tcp_fields):
    """Ethernet + IPv4 + TCP in one call (``tcp_fields`` go to :func:`tcp`)."""
    return ether(ipv4(src, dst, IPPROTO_TCP, tcp(sport, dport, **tcp_fields)), ETH_P_IP, vlans)


def v6_tcp(src, dst, sport, dport, ext=(), vlans=(), **tcp_fields):
    """Ethernet + IPv6 (with extension headers ``ext``) + TCP in one call."""
    return ether(ipv6(src, dst, IPPROTO_TCP, tcp(sport, dport, **tcp_fields), ext), ETH_P_IPV6, vlans)


class Endpoints:
    """Frames between a client and a server: ``c2s``/``s2c`` build Ethernet frames each way."""

    def __init__(self, client="10.0.0.1", server="10.0.1.2", cport=40000, sport=5201, v6=False, vlans=()):
        self.client, self.server, self.cport, self.sport = client, server, cport, sport
        self.v6 = v6
        self.vlans = vlans

    def _ip(self, src, dst, proto, payload):
        if self.v6:
            return ether(ipv6(src, dst, proto, payload), ETH_P_IPV6, self.vlans)
        return ether(ipv4(src, dst, proto, payload), ETH_P_IP, self.vlans)

    def c2s(self, **tcp_fields):
        return self._ip(self.client, self.server, IPPROTO_TCP, tcp(self.cport, self.sport, **tcp_fields))

    def s2c(self, **tcp_fields):
        return self._ip(self.server, self.client, IPPROTO_TCP, tcp(self.sport, self.cport, **tcp_fields))

    def ping(self, request, ident, seq):
        proto = IPPROTO_ICMPV6 if self.v6 else IPPROTO_ICMP
        src, dst = (self.client, self.server) if request else (self.server, self.client)
        return self._ip(src, dst, proto, icmp_echo(request, ident, seq, v6=self.v6))

    def udp_c2s(self, payload, dport=None):
        return self._ip(self.client, self.server, IPPROTO_UDP, udp(self.cport, dport or self.sport, payload))

    def udp_s2c(self, payload, sport=None):
        return self._ip(self.server, self.client, IPPROTO_UDP, udp(sport or self.sport, self.cport, payload))
