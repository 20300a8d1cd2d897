"""``xnf demo pifo_sched``: weighted TCP flows through the kernel data path on veth.

Two throwaway network namespaces joined by a veth pair are made through netlink; the
sender's veth gets the HTB bands and the egress ranking program; one TCP flow per
weight (Python sockets, cubic) runs from one namespace to the other, and the bytes
each receiver got after a warm-up give the measured shares, printed beside the
configured ones. Everything is removed at the end, also on failure or Ctrl-C.
"""
import os
import socket
import threading
import time
import uuid

from xnf.core.errors import XnfError
from xnf.core.kernel import netns as _netns
from xnf.plugins.pifo_sched.kernel import EgressDataPath

BASE_PORT = 5201
CHUNK = 1 << 16


class Topology:
    """Namespaces ``ns_a`` and ``ns_b`` with ``if_a`` (10.77.0.1) <-> ``if_b`` (10.77.0.2)."""

    ip_a, ip_b = "10.77.0.1", "10.77.0.2"

    def __init__(self):
        tag = uuid.uuid4().hex[:8]
        self.ns_a, self.ns_b = f"xnf-sched-{tag}-a", f"xnf-sched-{tag}-b"
        self.if_a, self.if_b = f"xsa{tag}", f"xsb{tag}"
        self.created = []

    def __enter__(self):
        try:
            self._create()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc):
        self.remove()

    def _create(self):
        from pyroute2 import netns

        from xnf.core.attach.netlink import rtnl

        for ns in (self.ns_a, self.ns_b):
            netns.create(ns)
            self.created.append(ns)
        with rtnl() as ipr:
            ipr.link("add", ifname=self.if_a, kind="veth", peer=self.if_b)
            for ifname, ns in ((self.if_a, self.ns_a), (self.if_b, self.ns_b)):
                ipr.link("set", index=ipr.link_lookup(ifname=ifname)[0], net_ns_fd=ns)
        for ifname, ns, ip in ((self.if_a, self.ns_a, self.ip_a), (self.if_b, self.ns_b, self.ip_b)):
            with rtnl(ns) as ipr:
                index = ipr.link_lookup(ifname=ifname)[0]
                ipr.addr("add", index=index, address=ip, prefixlen=24)
                ipr.link("set", index=index, state="up")
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")

    def remove(self):
        from pyroute2 import netns

        while self.created:
            ns = self.created.pop()
            try:
                netns.remove(ns)
            except OSError:
                pass


def _socket_in(ns, *args):
    with _netns.entered(ns):
        return socket.socket(*args)


def measure_shares(topo, ports, duration, warmup=2.0):
    """Run one bulk TCP flow per port from ns_a to ns_b; bytes received per port after warm-up."""
    stop = threading.Event()
    received = {port: 0 for port in ports}
    errors = []
    listeners = []
    for port in ports:
        sock = _socket_in(topo.ns_b, socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((topo.ip_b, port))
        sock.listen(4)
        sock.settimeout(0.5)
        listeners.append(sock)

    def receive(listener, port):
        while True:
            try:
                conn, _ = listener.accept()
                break
            except socket.timeout:
                if stop.is_set():
                    return
            except OSError as e:
                errors.append(e)
                return
        conn.settimeout(0.5)
        with conn:
            while not stop.is_set():
                try:
                    data = conn.recv(CHUNK)
                except socket.timeout:
                    continue
                if not data:
                    break
                received[port] += len(data)

    def send(port):
        try:
            sock = _socket_in(topo.ns_a, socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
            sock.connect((topo.ip_b, port))
            sock.settimeout(0.5)
            payload = bytes(CHUNK)
            with sock:
                while not stop.is_set():
                    try:
                        sock.send(payload)
                    except socket.timeout:
                        continue
        except OSError as e:
            if not stop.is_set():  # the receiver closing at the end is expected
                errors.append(e)

    threads = [threading.Thread(target=receive, args=(sock, port), daemon=True)
               for sock, port in zip(listeners, ports)]
    threads += [threading.Thread(target=send, args=(port,), daemon=True) for port in ports]
    for t in threads:
        t.start()
    try:
        time.sleep(warmup)
        before = dict(received)
        time.sleep(duration)
        after = dict(received)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=2)
        for sock in listeners:
            sock.close()
    if errors:
        raise XnfError(f"a demo flow failed: {errors[0]}", "check that nothing else uses the namespaces")
    return {port: after[port] - before[port] for port in ports}


def run_demo(weights, rate, duration, scheduler, out):
    if os.geteuid() != 0:
        raise XnfError("the demo needs root to create namespaces and attach", "run it with sudo")
    ports = [BASE_PORT + i for i in range(len(weights))]
    with Topology() as topo:
        path = EgressDataPath(topo.if_a, rate, dict(zip(ports, weights)), netns=topo.ns_a, scheduler=scheduler)
        path.attach()
        try:
            out.write(f"{len(ports)} TCP flows {topo.ns_a} -> {topo.ns_b} through {topo.if_a} egress: "
                      f"HTB root at {path.rate / 1e6:g} Mbit/s, 8 SP-PIFO bands, {scheduler} ranks in BPF\n")
            out.flush()
            got = measure_shares(topo, ports, duration)
            bands = path.band_stats()
        finally:
            path.detach()
    total_bytes, total_weight = sum(got.values()) or 1, sum(weights)
    out.write(f"{'flow':>10} {'weight':>7} {'configured':>11} {'measured':>9} {'Mbit/s':>8}\n")
    for port, weight in zip(ports, weights):
        out.write(f"{'tcp/' + str(port):>10} {weight:>7g} {weight / total_weight:>11.3f} "
                  f"{got[port] / total_bytes:>9.3f} {got[port] * 8 / duration / 1e6:>8.2f}\n")
    out.write("packets per band: " + " ".join(str(b["packets"]) for b in bands) + "\n")
    return 0
