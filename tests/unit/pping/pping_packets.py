"""A tiny packet builder for the pping tests: just enough headers, no checksums.

Checksums are left zero: neither the reference parser nor tcpdump's decoder needs
them, and the tests never send these frames on a wire.
"""

import socket
import struct

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def ether(payload, ethertype=0x0800, vlans=(), vlan_tpid=0x8100):
    hdr = MAC_B + MAC_A
    for vid in vlans:
        hdr += struct.pack("!HH", vlan_tpid, vid)
    return hdr + struct.pack("!H", ethertype) + payload


def ipv4(src, dst, proto, payload, frag_offset=0, more_fragments=False, options=b""):
    ihl = 5 + len(options) // 4
    flags = (0x2000 if more_fragments else 0) | (frag_offset // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(options) + len(payload), 1,
                      flags, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return hdr + options + payload


def ipv6(src, dst, nexthdr, payload, ext=()):
    """``ext``: sequence of ``(type, body)``; body is padded to the header's unit."""
    chain = b""
    types = [t for t, _ in ext] + [nexthdr]
    for i, (etype, body) in enumerate(ext):
        nxt = types[i + 1]
        if etype == 44:  # fragment header: fixed 8 bytes, body = (offset, more)
            offset, more = body
            chain += struct.pack("!BBHI", nxt, 0, (offset & 0xFFF8) | (1 if more else 0), 7)
        else:
            body = body + b"\0" * (-(len(body) + 2) % 8)
            chain += struct.pack("!BB", nxt, (len(body) + 2) // 8 - 1) + body
    first = types[0]
    plen = len(chain) + len(payload)
    return struct.pack("!IHBB16s16s", 0x60000000, plen, first, 64,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + chain + payload


FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}


def tcp(sport, dport, seq=0, ack=0, flags="A", ts=None, payload=b"", options=None):
    """``ts``: ``(tsval, tsecr)`` for the timestamp option; ``options`` overrides it."""
    fl = sum(FLAG_BITS[c] for c in flags)
    if options is None:
        options = b""
        if ts is not None:
            options = b"\x01\x01" + struct.pack("!BBII", 8, 10, ts[0], ts[1])
    options += b"\0" * (-len(options) % 4)
    doff = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                       doff << 4, fl, 65535, 0, 0) + options + payload


def udp(sport, dport, payload):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp_echo(request, ident, seq, v6=False, payload=b"x" * 16):
    typ = (128 if request else 129) if v6 else (8 if request else 0)
    return struct.pack("!BBHHH", typ, 0, 0, ident, seq) + payload


def dns(qid, response, qname=b"\x07example\x03com\x00"):
    flags = 0x8180 if response else 0x0100
    return struct.pack("!HHHHHH", qid, flags, 1, 1 if response else 0, 0, 0) + qname + b"\x00\x01\x00\x01"


def quic_short(spin, dcid=b"\x11" * 8, payload=b"\x00" * 24):
    return bytes([0x40 | (0x20 if spin else 0) | 0x01]) + dcid + payload


def ppp(payload, proto=0x0021):
    return b"\xff\x03" + struct.pack("!H", proto) + payload


class Endpoints:
    """Frames between two hosts: ``c2s``/``s2c`` build Ethernet frames in each direction."""

    def __init__(self, client="10.0.0.1", server="10.0.1.2", cport=40000, sport=5201, v6=False, vlans=()):
        self.client, self.server, self.cport, self.sport = client, server, cport, sport
        self.v6 = v6
        self.vlans = vlans

    def _ip(self, src, dst, proto, payload):
        if self.v6:
            return ether(ipv6(src, dst, proto, payload), 0x86DD, self.vlans)
        return ether(ipv4(src, dst, proto, payload), 0x0800, self.vlans)

    def c2s(self, **kw):
        return self._ip(self.client, self.server, 6, tcp(self.cport, self.sport, **kw))

    def s2c(self, **kw):
        return self._ip(self.server, self.client, 6, tcp(self.sport, self.cport, **kw))

    def ping(self, request, ident, seq):
        proto = 58 if self.v6 else 1
        src, dst = (self.client, self.server) if request else (self.server, self.client)
        return self._ip(src, dst, proto, icmp_echo(request, ident, seq, v6=self.v6))

    def udp_c2s(self, payload, dport=None):
        return self._ip(self.client, self.server, 17, udp(self.cport, dport or self.sport, payload))

    def udp_s2c(self, payload, sport=None):
        return self._ip(self.server, self.client, 17, udp(sport or self.sport, self.cport, payload))
