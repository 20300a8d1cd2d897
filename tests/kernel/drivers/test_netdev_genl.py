import pytest

from xnf.core.errors import InterfaceNotFoundError, NotSupportedError
from xnf.core.kernel.netns import ifindex as interface_index
from xnf.drivers.netdev_genl import XdpFeature, netdev_features

pytestmark = pytest.mark.root


def features_or_skip(ifindex, netns):
    try:
        return netdev_features(ifindex, netns)
    except NotSupportedError:
        pytest.skip("needs the netdev generic netlink family (Linux 6.3+)")


def test_veth_reports_native_xdp(veth):
    netns, a, _ = veth
    ifindex = interface_index(a, netns)
    f = features_or_skip(ifindex, netns)
    assert f.ifindex == ifindex
    assert XdpFeature.BASIC in f.xdp_features
    assert XdpFeature.REDIRECT in f.xdp_features
    assert XdpFeature.HW_OFFLOAD not in f.xdp_features


def test_loopback_reports_nothing(netns):
    f = features_or_skip(1, netns)
    assert f.xdp_features == XdpFeature(0)
    assert f.xdp_zc_max_segs is None


def test_unknown_ifindex(netns):
    features_or_skip(1, netns)
    with pytest.raises(InterfaceNotFoundError):
        netdev_features(0x7FFFFFF0, netns)


def test_flag_values_match_uapi():
    assert [int(f) for f in XdpFeature] == [1, 2, 4, 8, 16, 32, 64]
