"""``xnf demo pifo_sched``: weighted TCP flows through the kernel data path on veth.

Two throwaway network namespaces joined by a veth pair are made through netlink
(:class:`xnf.testing.topology.VethPair`); the sender's veth gets the HTB bands and the
egress ranking program; one TCP flow per weight (Python sockets, cubic,
:func:`xnf.testing.traffic.tcp_flows`) runs from one namespace to the other, and the
bytes each receiver got after a warm-up give the measured shares, printed beside the
configured ones. Everything is removed at the end, also on failure or Ctrl-C.
"""
import os

from xnf.core.errors import XnfError
from xnf.plugins.pifo_sched.kernel import EgressDataPath
from xnf.testing.topology import VethPair
from xnf.testing.traffic import tcp_flows

BASE_PORT = 5201
DEMO_NET = ("10.77.0.1", "10.77.0.2")


def run_demo(weights, rate, duration, scheduler, out):
    if os.geteuid() != 0:
        raise XnfError("the demo needs root to create namespaces and attach", "run it with sudo")
    ports = [BASE_PORT + i for i in range(len(weights))]
    with VethPair(*DEMO_NET, prefix="xnf-sched") as topo:
        path = EgressDataPath(topo.if_a, rate, dict(zip(ports, weights)), netns=topo.ns_a, scheduler=scheduler)
        path.attach()
        try:
            out.write(f"{len(ports)} TCP flows {topo.ns_a} -> {topo.ns_b} through {topo.if_a} egress: "
                      f"HTB root at {path.rate / 1e6:g} Mbit/s, 8 SP-PIFO bands, {scheduler} ranks in BPF\n")
            out.flush()
            try:
                got = tcp_flows(topo.ns_a, topo.ns_b, topo.ip_b, ports, duration)
            except OSError as e:
                raise XnfError(f"a demo flow failed: {e}", "check that nothing else uses the namespaces") from None
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
