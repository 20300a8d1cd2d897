"""Helpers shared by the VM offload tests."""
import json
import os
import subprocess

import xnf
from xnf.core.kernel.netns import entered
from xnf.offload.device import prepare_offload


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bpf", "offload")
OK = os.path.join(FIXTURES, "offload_ok.bpf.o")
BAD = os.path.join(FIXTURES, "offload_bad.bpf.o")


def sh(*args, netns=None, check=True):
    """Run a tool (an oracle: ip, tc, ethtool, bpftool; xnf's CLI; netem), optionally inside
    ``netns`` (entered by this thread, which the tool inherits; namespaces and links come
    from xnf.testing.topology)."""
    with entered(netns):
        return subprocess.run(list(args), check=check, capture_output=True, text=True)


def load_bound(dev, programs=("xdp_ok",), path=OK):
    """Check, bind to ``dev`` and load; bpf(2) resolves the ifindex in the caller's
    namespace, so the load runs inside the device's."""
    spec = prepare_offload(xnf.open_object(path), dev.ifname, dev.netns, programs=list(programs))
    with entered(dev.netns):
        return xnf.load(spec, programs=list(programs))


def load_host(programs=("xdp_ok",), path=OK):
    return xnf.load(path, programs=list(programs))


def ip_link(dev):
    """`ip -d -j link show` of the device: the independent view of what is attached."""
    return json.loads(sh("ip", "-d", "-j", "link", "show", dev.ifname, netns=dev.netns).stdout)[0]


def xdp_oracle(dev):
    """{mode: prog id} from iproute2's JSON."""
    xdp = ip_link(dev).get("xdp")
    if not xdp:
        return {}
    names = {1: "native", 2: "skb", 3: "offload"}
    if xdp["mode"] in names:
        return {names[xdp["mode"]]: xdp["prog"]["id"]}
    out = {}
    for attached in xdp.get("attached", []):
        out[names[attached["mode"]]] = attached["prog"]["id"]
    return out
