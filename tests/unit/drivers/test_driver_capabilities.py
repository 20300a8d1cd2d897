"""Mode choice from capabilities given as data (no interface needed)."""
import pytest

from xnf.core.errors import ConfigError, ModeNotSupportedError
from xnf.drivers.capabilities import Capabilities, choose_mode, modes_from_profile
from xnf.drivers.info import DriverInfo
from xnf.drivers.probe import ModeSupport
from xnf.drivers.profiles import NETDEVSIM, NFP

ALL = ("skb", "native", "offload")


def caps_with(modes, ifname="eth9"):
    table = {m: ModeSupport(m, s, "test", "" if s else f"no {m} here") for m, s in modes.items()}
    return Capabilities(ifname, 9, None, DriverInfo(ifname, 9), None, None, table, {})


def test_auto_prefers_offload_then_native_then_skb():
    assert choose_mode(caps_with({"skb": True, "native": True, "offload": True}), ALL) == "offload"
    assert choose_mode(caps_with({"skb": True, "native": True, "offload": True}), ("skb", "native")) == "native"
    assert choose_mode(caps_with({"skb": True, "native": None, "offload": False}), ALL) == "skb"


def test_auto_with_nothing_in_common():
    caps = caps_with({"skb": True, "native": False, "offload": False})
    with pytest.raises(ModeNotSupportedError, match="native: no native here; offload: no offload here"):
        choose_mode(caps, ("native", "offload"))


def test_mode_the_network_function_lacks():
    caps = caps_with({"skb": True, "native": True, "offload": True})
    with pytest.raises(ModeNotSupportedError, match="network function cannot run in offload mode"):
        choose_mode(caps, ("skb", "native"), "offload")


def test_unknown_support_is_left_to_the_kernel():
    assert choose_mode(caps_with({"skb": True, "native": None, "offload": None}), ALL, "native") == "native"


def test_unknown_mode_name():
    with pytest.raises(ConfigError, match="unknown XDP mode 'hw'"):
        choose_mode(caps_with({"skb": True, "native": True, "offload": True}), ALL, "hw")


# Profiles of hardware this machine cannot have: the driver info is plain data.

def test_nfp_with_bpf_firmware_offloads():
    info = DriverInfo("enp1s0np0", 3, "nfp", "6.1", "0.0.3.5 0.22 bpf-2.0.6.124 ebpf", "0000:01:00.0")
    modes = modes_from_profile(NFP, info)
    assert modes["offload"].supported is True


def test_nfp_with_nic_firmware_cannot_offload():
    info = DriverInfo("enp1s0np0", 3, "nfp", "6.1", "0.0.3.5 0.22 nic-2.1.13", "0000:01:00.0")
    modes = modes_from_profile(NFP, info)
    assert modes["offload"].supported is False
    assert "not the BPF offload firmware" in modes["offload"].reason
    assert modes["native"].supported is True


def test_netdevsim_profile_offloads_without_firmware():
    modes = modes_from_profile(NETDEVSIM, DriverInfo("eth0", 2, "netdevsim"))
    assert modes["offload"].supported is True
