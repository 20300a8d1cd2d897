"""Fixtures shared by unit tests that need a namespace (drivers, offload): a private
network namespace with a veth pair, removed even on failure."""
import os
import subprocess
import uuid

import pytest


def _ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def netns():
    """A fresh named network namespace (``ip netns``), deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_NET_ADMIN) to create network namespaces")
    name = f"xnfdrv-{uuid.uuid4().hex[:8]}"
    _ip("netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def veth(netns):
    """(netns, ifname, peer) of an up veth pair inside ``netns``."""
    tag = uuid.uuid4().hex[:6]
    a, b = f"xv{tag}a", f"xv{tag}b"
    _ip("-n", netns, "link", "add", a, "type", "veth", "peer", "name", b)
    _ip("-n", netns, "link", "set", a, "up")
    _ip("-n", netns, "link", "set", b, "up")
    return netns, a, b
