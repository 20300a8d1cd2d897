"""VM-tier fixtures: netdevsim devices and namespaces, inside the kernel tools/vm builds.

Every test here is marked ``vm`` and skips on kernels without netdevsim (the host).
Each netdevsim device gets its own id and network namespace and is deleted afterwards,
even when the test fails.
"""
import itertools
import os
import time

import attrs
import pytest

from xnf.testing.topology import Topology, move_link

NSIM_BUS = "/sys/bus/netdevsim"
NSIM_DEBUGFS = "/sys/kernel/debug/netdevsim"
NSIM_NETDEV_TIMEOUT = 60.0
_ids = itertools.count(os.getpid() % 1000 * 10 + 1)


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(os.path.abspath(__file__))
    skip = pytest.mark.skip(reason="needs the VM tier kernel (netdevsim)")
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.vm)
            if "nsim" in getattr(item, "fixturenames", ()) and not os.path.isdir(NSIM_BUS):
                item.add_marker(skip)


@attrs.define
class Nsim:
    id: int
    netns: str
    ifname: str
    ifindex: int
    port: int = 0

    @property
    def ddir(self):
        """Device debugfs dir: bpf_bound_progs/, bpf_bind_accept, bpf_bind_verifier_accept."""
        return f"{NSIM_DEBUGFS}/netdevsim{self.id}"

    @property
    def port_ddir(self):
        """Port debugfs dir: bpf_offloaded_id, bpf_tc_accept, bpf_xdpdrv_accept, bpf_map_accept..."""
        return f"{self.ddir}/ports/{self.port}"

    def knob(self, name, value=None, device=False):
        path = f"{self.ddir if device else self.port_ddir}/{name}"
        if value is None:
            with open(path) as f:
                return f.read().strip()
        with open(path, "w") as f:
            f.write(value)

    def bound_progs(self):
        """Program ids netdevsim holds for this device (loaded or not)."""
        d = f"{self.ddir}/bpf_bound_progs"
        ids = []
        for entry in sorted(os.listdir(d)):
            with open(f"{d}/{entry}/id") as f:
                ids.append(int(f.read()))
        return ids


def _new_device(dev_id, netns):
    """Create netdevsim ``dev_id`` with one port; its netdev goes to ``netns`` as ``nsim<ID>``."""
    with open(f"{NSIM_BUS}/new_device", "w") as f:
        f.write(f"{dev_id} 1")
    net = f"{NSIM_BUS}/devices/netdevsim{dev_id}/net"
    # the netdev appears asynchronously: milliseconds natively, seconds under emulation (TCG)
    # on a loaded host; the deadline is only there to fail instead of hanging
    deadline = time.monotonic() + NSIM_NETDEV_TIMEOUT
    while not (os.path.isdir(net) and os.listdir(net)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"netdevsim{dev_id} created no network interface in {NSIM_NETDEV_TIMEOUT:.0f} s")
        time.sleep(0.02)
    ifname = f"nsim{dev_id}"
    move_link(os.listdir(net)[0], netns, ifname)
    from xnf.core.kernel.netns import ifindex

    return Nsim(dev_id, netns, ifname, ifindex(ifname, netns))


def _del_device(dev_id):
    with open(f"{NSIM_BUS}/del_device", "w") as f:
        f.write(str(dev_id))


@pytest.fixture
def netns():
    """A fresh named network namespace, deleted afterwards."""
    with Topology(prefix="xnfvm") as topology:
        yield topology.namespace("ns")


@pytest.fixture
def nsim(netns):
    """A fresh netdevsim device with one port, in its own namespace, up."""
    dev_id = next(_ids)
    try:
        yield _new_device(dev_id, netns)
    finally:
        _del_device(dev_id)


@pytest.fixture
def nsim2(nsim):
    """A second netdevsim device in the same namespace (for wrong-device tests)."""
    dev_id = next(_ids)
    try:
        yield _new_device(dev_id, nsim.netns)
    finally:
        _del_device(dev_id)
