import json
import os
import subprocess

import pytest

from xnf.core.errors import InterfaceNotFoundError
from xnf.core.kernel.netns import NamespaceNotFoundError
from xnf.drivers.info import DriverInfo, driver_info

pytestmark = pytest.mark.root


def ip_link(netns, ifname):
    out = subprocess.run(["ip", "-n", netns, "-j", "link", "show", ifname], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)[0]


def test_veth_driver_through_ethtool_ioctl(veth):
    netns, a, _ = veth
    info = driver_info(a, netns)
    assert info.driver == "veth"
    assert info.source == "ethtool"
    assert info.ifindex == ip_link(netns, a)["ifindex"]
    assert info.firmware is None  # veth reports an empty firmware string


def test_ethtool_tool_agrees(veth):
    netns, a, _ = veth
    out = subprocess.run(["ip", "netns", "exec", netns, "ethtool", "-i", a], check=True,
                         capture_output=True, text=True).stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    info = driver_info(a, netns)
    assert info.driver == fields["driver"]
    assert info.version == (fields["version"] or None)


def test_loopback_has_no_driver(netns):
    info = driver_info("lo", netns)
    assert info == DriverInfo("lo", 1, None, source="none")


def test_missing_interface(netns):
    with pytest.raises(InterfaceNotFoundError, match="no network interface named 'xnfnope0'"):
        driver_info("xnfnope0", netns)


@pytest.mark.parametrize("name", ["", "a" * 16, "a/b"])
def test_impossible_names(netns, name):
    with pytest.raises(InterfaceNotFoundError):
        driver_info(name, netns)


def test_missing_namespace():
    with pytest.raises(NamespaceNotFoundError, match="no network namespace named 'xnf-absent-ns'"):
        driver_info("lo", "xnf-absent-ns")
    assert not os.path.exists("/run/netns/xnf-absent-ns")
