"""A plugin's own rank function in the BPF qdisc: the docs' example plugin's
``example_smallest`` (smallest packet first; tests/plugin_example/xnf_example_nf/
example_smallest.bpf.c, compiled against xnf_rank.h) put in by `xnf attach pifo_sched
IFACE --scheduler example_smallest`.

The plugin is made importable with a throwaway dist-info (as the host test
tests/kernel/pifo_sched/test_rank_object_plugin.py does). 300 UDP datagrams of seeded
random sizes are sent while the qdisc holds every packet, then released: the order in
which the peer receives them must equal, datagram for datagram, the order the plugin's
Python class (the same rank in the simulator's PIFO) gives the same packets. Runs in the
VM tier (bpf-qdisc kernel).
"""
import os
import random
import socket
import struct
import subprocess
import sys
import time

import pytest

from xnf.plugins.pifo_sched.packet import Packet
from xnf.testing.topology import VethPair
from xnf.testing.traffic import socket_in

from support.distribution import write_distribution

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "tests", "plugin_example")
XNF = [sys.executable, "-m", "xnf.cli.main"]
PACKETS = 300
PORT = 7300
HEADERS = 14 + 20 + 8  # Ethernet, IPv4, UDP: skb->len at the root qdisc of a veth
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The example package importable, with its scheduler entry points, here and for `xnf`."""
    write_distribution(tmp_path, "xnf-example-nf", "0.1.0", {"xnf.schedulers": {
        "example_fifo": "xnf_example_nf.scheduler:ExampleFifo",
        "example_smallest": "xnf_example_nf.scheduler:ExampleSmallestFirst"}})
    monkeypatch.syspath_prepend(EXAMPLE)
    monkeypatch.syspath_prepend(str(tmp_path))
    path = os.pathsep.join([str(tmp_path), EXAMPLE, ROOT, os.environ.get("PYTHONPATH", "")])
    yield dict(os.environ, PYTHONPATH=path)
    for name in ("xnf_example_nf.scheduler", "xnf_example_nf"):
        sys.modules.pop(name, None)


@pytest.fixture
def pair():
    with VethPair(prefix="xr") as p:
        yield p


def test_the_cli_puts_the_plugins_rank_object_into_the_qdisc(plugin, pair):
    r = subprocess.run(XNF + ["attach", "pifo_sched", pair.if_a, "--netns", pair.ns_a, "--scheduler",
                              "example_smallest"], capture_output=True, text=True, env=plugin, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    try:
        assert "example_smallest ranks an exact PIFO" in r.stdout, r.stdout
        assert pair.ping(3, to="b") == 3
    finally:
        r = subprocess.run(XNF + ["detach", "pifo_sched", pair.if_a, "--netns", pair.ns_a], capture_output=True,
                           text=True, env=plugin, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr


def test_held_datagrams_leave_in_the_order_the_plugins_python_class_gives(plugin, pair):
    from xnf.plugins.pifo_sched import registry
    from xnf.plugins.pifo_sched.nf import PifoSched, PifoSchedConfig

    rng = random.Random(11)
    sizes = [rng.choice((18, 100, 576, 1000, 1400)) + rng.randrange(0, 3) for _ in range(PACKETS)]
    model = registry.create("example_smallest", {"capacity": PACKETS})
    for seq, size in enumerate(sizes):
        assert model.enqueue(Packet(flow=0, size=HEADERS + size, seq=seq), 0)
    expected = [p.seq for p in iter(lambda: model.dequeue(0), None)]

    rx = socket_in(pair.ns_b, socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket_in(pair.ns_a, socket.AF_INET, socket.SOCK_DGRAM)
    nf = PifoSched(pair.if_a, PifoSchedConfig(scheduler="example_smallest", qdisc="bpf"), netns=pair.ns_a)
    nf.attach()
    try:
        rx.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)  # the release arrives at once
        tx.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)  # held packets count against it
        rx.bind((pair.ip_b, PORT))
        rx.settimeout(5)
        assert pair.ping(2, to="b") == 2  # ARP resolved before the hold: no packet waits in the neighbour table
        qdisc = nf._path.qdisc
        qdisc.hold(True)
        for seq, size in enumerate(sizes):
            tx.sendto(struct.pack("<I", seq) + bytes(size - 4), (pair.ip_b, PORT))
        deadline = time.monotonic() + 10
        while qdisc.stats()["backlog_packets"] < PACKETS and time.monotonic() < deadline:
            time.sleep(0.05)
        assert qdisc.stats()["backlog_packets"] == PACKETS
        qdisc.hold(False)
        received = [struct.unpack_from("<I", rx.recv(2048))[0] for _ in range(PACKETS)]
        assert qdisc.stats()["drops"] == 0
    finally:
        nf.detach()
        rx.close()
        tx.close()
    assert received == expected
