"""Shared fixtures for privileged tests: namespaces with veth pairs, a private bpffs,
and an oracle snapshot of an interface taken with iproute2 and bpftool.

Fixture names are stable; other test modules rely on them:

* ``netns_pair``: two fresh namespaces joined by a veth pair with IPv4 addresses (IPv6
  is disabled there, so only the test's own packets cross);
* ``root_veth``: a veth whose ``if_a`` end is in the initial namespace (netns=None paths);
* ``netns``: one fresh namespace; ``veth``: ``(netns, a, b)``, both ends of an up veth in it;
* ``bpffs``: a private bpf filesystem mounted on a temporary directory;
* ``iface_state(ns, ifname)``: what ``ip``, ``tc`` and ``bpftool`` say about an interface.

Everything they create is removed when the test ends, even when it fails: the
topologies are :mod:`xnf.testing.topology` context managers. The oracle helpers
(``sh``, ``in_ns``, ``bpftool_links``) live in ``netenv.py``: import them from there
(``from netenv import in_ns``), not from ``conftest``, whose module name several
directories share.
"""
import json
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from netenv import bpftool_links, in_ns, sh  # noqa: E402
from progs import Counters  # noqa: E402
from xnf.testing.topology import Topology, VethPair  # noqa: E402

__all__ = ["VethPair", "bpftool_links", "in_ns", "sh"]  # kept for tests that still import them here


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_BPF, CAP_NET_ADMIN)")


@pytest.fixture
def netns_pair():
    """Two new namespaces joined by a veth pair (10.201.0.1/24 <-> 10.201.0.2/24)."""
    _require_root()
    with VethPair() as pair:
        yield pair


@pytest.fixture
def root_veth():
    """A veth pair with ``if_a`` in the initial namespace and ``if_b`` in a new one."""
    _require_root()
    with VethPair("10.202.0.1", "10.202.0.2", root_a=True) as pair:
        yield pair


@pytest.fixture
def netns():
    """The name of a fresh network namespace."""
    _require_root()
    with Topology() as topo:
        yield topo.namespace("n")


@pytest.fixture
def veth():
    """(netns, a, b): both ends of an up veth pair inside a fresh namespace."""
    _require_root()
    with VethPair(same_namespace=True) as pair:
        yield pair.ns_a, pair.if_a, pair.if_b


@pytest.fixture
def counters():
    """Eight u64 counters in an array map, for the counting test programs of ``progs``."""
    _require_root()
    c = Counters(8)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def bpffs():
    """A private bpf filesystem on a temporary directory (unmounted, with its pins, at the end)."""
    _require_root()
    path = tempfile.mkdtemp(prefix="xnf-bpffs-")
    try:
        sh("mount", "-t", "bpf", "bpf", path)
        try:
            yield path
        finally:
            sh("umount", "-l", path, check=False)
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def iface_state():
    """A function giving what the kernel tools report about an interface: compare before/after."""

    def snapshot(ns, ifname):
        return {
            "link": in_ns(ns, "ip", "-d", "link", "show", "dev", ifname),
            "qdisc": in_ns(ns, "tc", "qdisc", "show", "dev", ifname),
            "filter_ingress": in_ns(ns, "tc", "filter", "show", "dev", ifname, "ingress", check=False),
            "filter_egress": in_ns(ns, "tc", "filter", "show", "dev", ifname, "egress", check=False),
            "bpftool_net": json.loads(in_ns(ns, "bpftool", "-j", "net", "show", "dev", ifname) or "[]"),
        }

    return snapshot
