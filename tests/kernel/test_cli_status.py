"""`xnf status` against the real kernel (issue 12 item 3): MODE is the XDP mode the kernel
runs the program in, as `ip -d link show` prints it (``xdpgeneric`` is skb mode, ``xdp``
native), never the ``auto`` that was asked for; DETAILS is readable text, not a Python
dict; ``--json`` keeps the whole record."""
import json
import os
import re

import pytest

from tests.kernel.netenv import sh
from tests.kernel.test_cli import xnf

pytestmark = pytest.mark.root

IP_MODES = {"xdpgeneric": "skb", "xdp": "native", "xdpoffload": "offload"}


def ip_xdp_mode(ns, dev):
    """The mode `ip -d link show` names after the MTU (``xdpgeneric``/``xdp``/``xdpoffload``)."""
    out = sh("ip", "-n", ns, "-d", "link", "show", dev)
    found = re.search(r"mtu \d+ (xdpgeneric|xdpoffload|xdp)\b", out)
    assert found, out
    return IP_MODES[found.group(1)]


@pytest.mark.parametrize("mode", ["auto", "skb"])
def test_status_shows_the_xdp_mode_in_force(netns_pair, mode):
    ns, dev = netns_pair.ns_b, netns_pair.if_b
    r = xnf("attach", "pping", dev, "--netns", ns, "--ingress-hook", "xdp", "--mode", mode)
    assert r.returncode == 0, r.stderr
    try:
        in_force = ip_xdp_mode(ns, dev)
        if mode == "skb":
            assert in_force == "skb"
        [entry] = json.loads(xnf("status", dev, "--netns", ns, "--json").stdout)
        assert entry["mode"] == in_force
        assert "hooks" in entry and isinstance(entry["hooks"], dict)   # the whole record stays in --json
        r = xnf("status", dev, "--netns", ns)
        assert r.returncode == 0, r.stderr
        header, row = r.stdout.splitlines()[:2]
        assert header.split()[:5] == ["NF", "IFACE", "NETNS", "MODE", "DETAILS"]
        assert row.split()[:4] == ["pping", dev, ns, in_force], r.stdout
        details = row[header.index("DETAILS"):]
        assert "{" not in details and "'" not in details, details   # no Python repr
        assert "ingress: xdp prog" in details and "ingress_hook=xdp" in details, details
    finally:
        assert xnf("detach", "pping", dev, "--netns", ns).returncode == 0
    assert ip_xdp_mode_absent(ns, dev)


def ip_xdp_mode_absent(ns, dev):
    return re.search(r"mtu \d+ xdp", sh("ip", "-n", ns, "-d", "link", "show", dev)) is None


def test_status_skips_an_instance_detached_while_it_is_read(netns_pair, monkeypatch):
    """Another process detaching an instance between `xnf status`'s scan and its read of the
    instance makes the instance disappear from the list, not an error (two runs at once once
    met here: a FileNotFoundError from the vanished pin directory)."""
    from xnf import registry
    from xnf.cli import nf_commands

    ns, dev = netns_pair.ns_b, netns_pair.if_b
    assert xnf("attach", "pping", dev, "--netns", ns).returncode == 0
    cls = registry.network_function("pping")
    read = cls.status

    def detached_meanwhile(self):
        assert xnf("detach", "pping", dev, "--netns", ns).returncode == 0
        return read(self)

    try:
        monkeypatch.setattr(cls, "status", detached_meanwhile)
        assert nf_commands._entries(dev, ns) == []
    finally:
        xnf("detach", "pping", dev, "--netns", ns)  # already gone when the test passed


def test_status_skips_an_instance_detached_before_its_maps_are_opened(netns_pair, monkeypatch):
    """The same race one step later: the detach renames the instance after `xnf status` read
    its config and before it opened its maps (two runs at once met this: an instance opened
    without its maps, then a KeyError 'pping_flows' as an internal error)."""
    from xnf.cli import nf_commands
    from xnf.core.attach.pinroot import PinRoot

    ns, dev = netns_pair.ns_b, netns_pair.if_b
    assert xnf("attach", "pping", dev, "--netns", ns).returncode == 0
    open_maps = PinRoot.open_maps

    def detached_meanwhile(pins, names):
        assert xnf("detach", "pping", dev, "--netns", ns).returncode == 0
        return open_maps(pins, names)

    try:
        monkeypatch.setattr(PinRoot, "open_maps", detached_meanwhile)
        assert nf_commands._entries(dev, ns) == []
    finally:
        xnf("detach", "pping", dev, "--netns", ns)  # already gone when the test passed


def test_an_instance_missing_a_pinned_map_is_broken_and_detach_removes_it(netns_pair):
    from xnf.core.attach.pinroot import PinRoot

    ns, dev = netns_pair.ns_b, netns_pair.if_b
    assert xnf("attach", "pping", dev, "--netns", ns).returncode == 0
    try:
        os.unlink(os.path.join(PinRoot(dev, "pping", netns=ns).maps_dir, "pping_flows"))
        r = xnf("status", "--json")
        assert r.returncode == 0, r.stderr
        entries = [e for e in json.loads(r.stdout) if e["iface"] == dev and e["netns"] == ns]
        assert [e["state"] for e in entries] == ["broken"], entries
        assert entries[0]["fix"] == f"xnf detach pping {dev} --netns {ns}"
        r = xnf("detach", "pping", dev, "--netns", ns)
        assert r.returncode == 0 and "removed a broken" in r.stdout, (r.stdout, r.stderr)
        assert not os.path.exists(PinRoot(dev, "pping", netns=ns).ifdir) or \
            os.listdir(PinRoot(dev, "pping", netns=ns).ifdir) == []
    finally:
        xnf("detach", "pping", dev, "--netns", ns)
