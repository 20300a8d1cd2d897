"""Network environments for privileged tests: commands in namespaces and veth pairs.

Tests may shell out (iproute2, tc, bpftool and ping are independent oracles); the
library never does. The fixtures in ``conftest.py`` are built from these helpers.
"""
import json
import subprocess
import time
import uuid

import attrs


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


def make_pair(ns_a_is_root):
    """Unique names for a pair (nothing is created yet; see setup_pair)."""
    tag = uuid.uuid4().hex[:8]
    ns_a = None if ns_a_is_root else f"xnf-{tag}-a"
    ns_b = f"xnf-{tag}-b"
    return VethPair(ns_a=ns_a, ns_b=ns_b, if_a=f"xa{tag}", if_b=f"xb{tag}")


def setup_pair(pair):
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


def teardown_pair(pair):
    if pair.ns_a is None:
        sh("ip", "link", "del", pair.if_a, check=False)
    for ns in (pair.ns_a, pair.ns_b):
        if ns is not None:
            sh("ip", "netns", "del", ns, check=False)



def bpftool_links():
    """bpftool's view of every BPF link in the system (a list of dicts)."""
    return json.loads(sh("bpftool", "-j", "link", "show") or "[]")


def delete_ns_under(attachment, ns, timeout=5.0):
    """Delete ``ns`` and wait until ``attachment`` (in it) no longer reports itself
    attached: the kernel dismantles a namespace asynchronously."""
    sh("ip", "netns", "del", ns)
    deadline = time.monotonic() + timeout
    while attachment.attached and time.monotonic() < deadline:
        time.sleep(0.05)
