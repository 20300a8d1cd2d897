"""Shared fixtures for privileged tests: namespaces with veth pairs, a private bpffs,
and an oracle snapshot of an interface taken with iproute2 and bpftool.

Fixture names are stable; other test modules rely on them:

* ``netns_pair``: two fresh namespaces joined by a veth pair with IPv4 addresses (IPv6
  is disabled there, so only the test's own packets cross);
* ``root_veth``: a veth whose ``if_a`` end is in the initial namespace (netns=None paths);
* ``bpffs``: a private bpf filesystem mounted on a temporary directory;
* ``iface_state(ns, ifname)``: what ``ip``, ``tc`` and ``bpftool`` say about an interface.

Everything they create is removed in ``finally``, even when the test fails.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import attrs
import pytest

sys.path.insert(0, os.path.dirname(__file__))


def sh(*args, check=True):
    """Run a command (tests only: iproute2, tc, bpftool and ping are oracles)."""
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def in_ns(ns, *args, check=True):
    if ns is None:
        return sh(*args, check=check)
    return sh("ip", "netns", "exec", ns, *args, check=check)


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_BPF, CAP_NET_ADMIN)")


@attrs.define
class VethPair:
    """``if_a`` (in ``ns_a``, ``None`` = initial namespace) <-> ``if_b`` (in ``ns_b``)."""

    ns_a: str
    ns_b: str
    if_a: str
    if_b: str
    ip_a: str = "10.201.0.1"
    ip_b: str = "10.201.0.2"

    def ping(self, count=3, to="a"):
        """Ping ``ip_a`` from ``ns_b`` (or ``ip_b`` from ``ns_a``); returns packets received."""
        src_ns, dst = (self.ns_b, self.ip_a) if to == "a" else (self.ns_a, self.ip_b)
        out = in_ns(src_ns, "ping", "-c", str(count), "-i", "0.05", "-W", "1", "-q", dst, check=False)
        for line in out.splitlines():
            if "received" in line:
                return int(line.split(",")[1].split()[0])
        return 0


def _make_pair(ns_a_is_root):
    tag = uuid.uuid4().hex[:8]
    ns_a = None if ns_a_is_root else f"xnf-{tag}-a"
    ns_b = f"xnf-{tag}-b"
    pair = VethPair(ns_a=ns_a, ns_b=ns_b, if_a=f"xa{tag}", if_b=f"xb{tag}")
    return pair


def _setup(pair):
    for ns in (pair.ns_a, pair.ns_b):
        if ns is not None:
            sh("ip", "netns", "add", ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
            # no IPv6 autoconfiguration chatter: packet counts then come from the test alone
            in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    sh("ip", "link", "add", pair.if_a, "type", "veth", "peer", "name", pair.if_b)
    if pair.ns_a is not None:
        sh("ip", "link", "set", pair.if_a, "netns", pair.ns_a)
    else:
        sh("sysctl", "-qw", f"net.ipv6.conf.{pair.if_a}.disable_ipv6=1")
    sh("ip", "link", "set", pair.if_b, "netns", pair.ns_b)
    for ns, ifname, ip in ((pair.ns_a, pair.if_a, pair.ip_a), (pair.ns_b, pair.if_b, pair.ip_b)):
        in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", ifname)
        in_ns(ns, "ip", "link", "set", ifname, "up")


def _teardown(pair):
    if pair.ns_a is None:
        sh("ip", "link", "del", pair.if_a, check=False)
    for ns in (pair.ns_a, pair.ns_b):
        if ns is not None:
            sh("ip", "netns", "del", ns, check=False)


@pytest.fixture
def netns_pair():
    """Two new namespaces joined by a veth pair (10.201.0.1/24 <-> 10.201.0.2/24)."""
    _require_root()
    pair = _make_pair(ns_a_is_root=False)
    try:
        _setup(pair)
        yield pair
    finally:
        _teardown(pair)


@pytest.fixture
def root_veth():
    """A veth pair with ``if_a`` in the initial namespace and ``if_b`` in a new one."""
    _require_root()
    pair = _make_pair(ns_a_is_root=True)
    pair.ip_a, pair.ip_b = "10.202.0.1", "10.202.0.2"
    try:
        _setup(pair)
        yield pair
    finally:
        _teardown(pair)


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


def bpftool_links():
    """bpftool's view of every BPF link in the system (a list of dicts)."""
    return json.loads(sh("bpftool", "-j", "link", "show") or "[]")
