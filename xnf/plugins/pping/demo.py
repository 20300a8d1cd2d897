"""``xnf demo pping``: pping on a throwaway bottleneck, RTTs live as the queue fills and drains.

Three network namespaces (client, router, server) joined by veth pairs; the router's
link towards the server is a token bucket (TBF) with a deep buffer. A cubic bulk flow
from the client fills the buffer, then stops and the buffer drains, while the client
pings the server. pping runs on the router's server-side interface; each line shows
the RTT ping measured next to the RTTs pping saw in the flows' own packets.

Everything is done through netlink and sockets (no external commands), and
everything is removed on exit, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import struct
import sys
import threading
import time
import uuid

from xnf.core.kernel import netns
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import RttEvent

_PREFIX = "10.199"


def add_demo_arguments(parser):
    parser.add_argument("--duration", type=float, default=12.0, metavar="S",
                        help="seconds the demo runs (default 12; the bulk flow stops halfway)")
    parser.add_argument("--rate", default="20mbit", help="bottleneck rate (default 20mbit)")
    parser.add_argument("--buffer-ms", type=int, default=300,
                        help="bottleneck buffer depth in ms at that rate (default 300)")
    parser.add_argument("--interval", type=float, default=0.5, metavar="S",
                        help="seconds between output lines (default 0.5)")


def demo(args) -> int:
    """Build, run, show, remove. Returns an exit code."""
    from xnf.plugins.pping.datapath import Datapath

    lab = Lab()
    stop = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        lab.build(_rate_bps(args.rate), args.buffer_ms)
        dp = Datapath("r1", PpingConfig(tcp=True, icmp=True, rate_limit=20), netns=lab.router).attach()
        try:
            _show(lab, dp, args, stop)
        finally:
            dp.detach()
    finally:
        lab.destroy()
        for s, h in old.items():
            signal.signal(s, h)
    return 0


def _rate_bps(text: str) -> int:
    units = {"kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bit": 1}
    for suffix, mult in units.items():
        if text.lower().endswith(suffix):
            return int(float(text[: -len(suffix)]) * mult)
    return int(text)


class Lab:
    """client (c0) <-> (r0) router (r1) <-> (s0) server, with a TBF on r1."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.client, self.router, self.server = f"xnfdemo-{tag}-c", f"xnfdemo-{tag}-r", f"xnfdemo-{tag}-s"
        self.client_ip, self.server_ip = f"{_PREFIX}.1.2", f"{_PREFIX}.2.2"
        self._made = []
        self.threads = []
        self.stop = threading.Event()

    def build(self, rate_bps: int, buffer_ms: int):
        from pyroute2 import IPRoute, netns

        from xnf.core.attach.netlink import rtnl

        for ns in (self.client, self.router, self.server):
            netns.create(ns)
            self._made.append(ns)
        tag = self.client[-8:-2]
        with IPRoute() as ipr:
            for a, b, ns_a, ns_b in (("c0", "r0", self.client, self.router), ("r1", "s0", self.router, self.server)):
                tmp_a, tmp_b = f"xd{tag}{a}", f"xd{tag}{b}"
                ipr.link("add", ifname=tmp_a, kind="veth", peer=tmp_b)
                for tmp, ns, name in ((tmp_a, ns_a, a), (tmp_b, ns_b, b)):
                    idx = ipr.link_lookup(ifname=tmp)[0]
                    ipr.link("set", index=idx, net_ns_fd=ns)
                    with rtnl(ns) as inner:
                        i = inner.link_lookup(ifname=tmp)[0]
                        inner.link("set", index=i, ifname=name)
        for ns, dev, addr in ((self.client, "c0", f"{_PREFIX}.1.2"), (self.router, "r0", f"{_PREFIX}.1.1"),
                              (self.router, "r1", f"{_PREFIX}.2.1"), (self.server, "s0", f"{_PREFIX}.2.2")):
            with rtnl(ns) as ipr:
                for name in ("lo", dev):
                    ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
                ipr.addr("add", index=ipr.link_lookup(ifname=dev)[0], address=addr, prefixlen=24)
        with rtnl(self.client) as ipr:
            ipr.route("add", dst="0.0.0.0/0", gateway=f"{_PREFIX}.1.1")
        with rtnl(self.server) as ipr:
            ipr.route("add", dst="0.0.0.0/0", gateway=f"{_PREFIX}.2.1")
        _sysctl(self.router, "net/ipv4/ip_forward", "1")
        with rtnl(self.router) as ipr:
            limit = max(rate_bps // 8 * buffer_ms // 1000, 16000)
            ipr.tc("add", "tbf", ipr.link_lookup(ifname="r1")[0], rate=rate_bps // 8, burst=16000,
                   limit=limit)

    def start_traffic(self, bulk_seconds: float, on_ping):
        self._thread(self._server)
        time.sleep(0.2)
        self._thread(self._bulk, bulk_seconds)
        self._thread(self._pinger, on_ping)

    def _thread(self, target, *args):
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _server(self):
        with netns.entered(self.server):
            srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((self.server_ip, 5001))
        srv.listen(1)
        srv.settimeout(0.2)
        conn = None
        try:
            while not self.stop.is_set():
                if conn is None:
                    try:
                        conn, _ = srv.accept()
                        conn.settimeout(0.2)
                    except socket.timeout:
                        continue
                try:
                    if not conn.recv(1 << 16):
                        conn.close()
                        conn = None
                except socket.timeout:
                    pass
        finally:
            srv.close()
            if conn is not None:
                conn.close()

    def _bulk(self, seconds):
        with netns.entered(self.client):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
        except OSError:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno")  # loss-based too
        s.connect((self.server_ip, 5001))
        s.settimeout(0.2)
        chunk = bytes(1 << 16)
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end and not self.stop.is_set():
                try:
                    s.send(chunk)
                except socket.timeout:
                    pass
        finally:
            s.close()

    def _pinger(self, on_ping):
        with netns.entered(self.client):
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        s.settimeout(1.0)
        ident, seq = os.getpid() & 0xFFFF, 0
        try:
            while not self.stop.is_set():
                seq = (seq + 1) & 0xFFFF
                body = struct.pack("!HH", ident, seq) + b"xnf-demo" * 7
                pkt = struct.pack("!BBH", 8, 0, _checksum(struct.pack("!BBH", 8, 0, 0) + body)) + body
                sent = time.monotonic_ns()
                s.sendto(pkt, (self.server_ip, 0))
                while True:
                    try:
                        data = s.recv(2048)
                    except socket.timeout:
                        break
                    hl = (data[0] & 0xF) * 4
                    if data[hl] == 0 and struct.unpack_from("!HH", data, hl + 4) == (ident, seq):
                        on_ping(time.monotonic_ns() - sent)
                        break
                self.stop.wait(0.2)
        finally:
            s.close()

    def destroy(self):
        from pyroute2 import netns

        self.stop.set()
        for t in self.threads:
            t.join(2)
        for ns in reversed(self._made):
            try:
                netns.remove(ns)
            except OSError:
                pass
        self._made = []


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _sysctl(ns, key, value):
    with netns.entered(ns):
        fd = os.open(f"/proc/sys/{key}", os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _show(lab, dp, args, stop):
    pings, samples = [], []
    lock = threading.Lock()
    decoder = dp.decoder()

    def on_record(raw):
        ev = decoder.decode(raw)
        if isinstance(ev, RttEvent) and ev.flow.src_ip == lab.server_ip:
            with lock:
                samples.append(ev)

    def on_ping(ns):
        with lock:
            pings.append(ns)

    out = sys.stdout
    out.write(f"xnf demo pping: client {lab.client_ip} -> router (pping on r1, {args.rate} TBF, "
              f"{args.buffer_ms} ms buffer) -> server {lab.server_ip}\n"
              "a cubic bulk flow fills the buffer for the first half, then stops and it drains.\n\n")
    out.write(f"{'time':>6}  {'ping':>9}  {'pping TCP':>9}  {'pping ICMP':>10}  samples  queue\n")
    rb = dp.ring_buffer(on_record)
    start = time.monotonic()
    lab.start_traffic(args.duration / 2, on_ping)
    next_line = start + args.interval
    try:
        while not stop.is_set() and time.monotonic() - start < args.duration:
            rb.poll(50)
            if time.monotonic() < next_line:
                continue
            next_line += args.interval
            with lock:
                p, s = pings[:], samples[:]
                pings.clear()
                samples.clear()
            tcp = [e.rtt_ns for e in s if e.flow.proto == "TCP"]
            icmp = [e.rtt_ns for e in s if e.flow.proto != "TCP"]
            line_tcp = _ms(tcp)
            bar = "#" * min(40, int((statistics.median(tcp) if tcp else 0) / 10e6))
            out.write(f"{time.monotonic() - start:5.1f}s  {_ms(p):>9}  {line_tcp:>9}  {_ms(icmp):>10}  "
                      f"{len(s):>7}  {bar}\n")
            out.flush()
    finally:
        rb.close()
    st = dp.stats()
    out.write(f"\n{st.rtt_events} RTT samples, {st.flow_events} flow events, {st.dropped_events} dropped. "
              "Everything the demo created is being removed.\n")


def _ms(values):
    return f"{statistics.median(values) / 1e6:.2f} ms" if values else "-"
