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

from xnf.core.kernel import netns
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import RttEvent
from xnf.testing.frames import icmp_echo
from xnf.testing.topology import ClientMiddleboxServer


def demo(args) -> int:
    """Build, run, show, remove. Returns an exit code."""
    # the data path (loader, attach): not loaded by `xnf --help`, which registers this NF
    from xnf.plugins.pping.datapath import Datapath

    lab = Lab()
    stop = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        lab.build(_rate_bps(args.rate), args.buffer_ms)
        dp = Datapath("mid1", PpingConfig(tcp=True, icmp=True, rate_limit=20), netns=lab.router).attach()
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
    """client (cli0) <-> (mid0) router (mid1) <-> (srv0) server, with a TBF on mid1."""

    def __init__(self):
        self.topo = ClientMiddleboxServer(net=199, congestion_control=None, prefix="xnfdemo")
        self.client, self.router, self.server = self.topo.cli, self.topo.mid, self.topo.srv
        self.client_ip, self.server_ip = self.topo.cli_ip, self.topo.srv_ip
        self.threads = []
        self.stop = threading.Event()

    def build(self, rate_bps: int, buffer_ms: int):
        from xnf.core.attach.netlink import rtnl  # pyroute2 inside: only when the demo runs

        self.topo.__enter__()
        with rtnl(self.router) as ipr:
            limit = max(rate_bps // 8 * buffer_ms // 1000, 16000)
            ipr.tc("add", "tbf", ipr.link_lookup(ifname="mid1")[0], rate=rate_bps // 8, burst=16000,
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
                pkt = icmp_echo(True, ident, seq, payload=b"xnf-demo" * 7)
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
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.topo.close()


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
    out.write(f"xnf demo pping: client {lab.client_ip} -> router (pping on mid1, {args.rate} TBF, "
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
