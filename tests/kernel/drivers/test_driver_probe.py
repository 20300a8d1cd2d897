import pytest

from xnf.core.kernel.netns import ifindex as interface_index
from xnf.drivers import probe

pytestmark = pytest.mark.root


def test_offload_load_probe_refused_on_loopback():
    # lo of the caller's namespace: the load is refused, nothing is created
    result = probe.offload_load_probe(1)
    assert result.supported is False
    assert "no BPF offload" in result.reason


def test_probe_modes_on_veth(veth):
    netns, a, _ = veth
    modes = probe.probe_modes(a, interface_index(a, netns), netns)
    if probe.genl_features(1, netns) is None:
        # without xdp-features nothing can say whether native works; the load probe
        # still says veth cannot offload
        assert modes["native"].supported is None
        assert modes["offload"].supported is False
    else:
        assert modes["native"].supported is True
        assert modes["offload"].supported is False


def test_attached_xdp_none(veth):
    netns, a, _ = veth
    assert probe.attached_xdp(a, netns) == {}


def test_offload_load_probe_inside_a_namespace(veth):
    netns, a, _ = veth
    result = probe.offload_load_probe(interface_index(a, netns), netns)
    assert result.supported is False


def test_missing_namespace_is_not_created():
    import os

    from xnf.core.kernel.netns import NamespaceNotFoundError

    with pytest.raises(NamespaceNotFoundError):
        probe.attached_xdp("lo", "xnf-absent-ns")
    with pytest.raises(NamespaceNotFoundError):
        probe.genl_features(1, "xnf-absent-ns")
    assert not os.path.exists("/run/netns/xnf-absent-ns")
