"""Everything xnf knows about one interface's XDP modes and offload, and the mode choice.

Sources, most trusted first: the kernel's own reports (netdev genl XDP features on
6.3+, programs attached now), the driver's profile (plugin), then probing the kernel
for drivers without a profile. Generic (skb) XDP works on every interface.
"""
import attrs

from xnf.core.errors import ConfigError, ModeNotSupportedError, NotSupportedError
from xnf.drivers import ethtool_features, probe
from xnf.drivers.info import driver_info
from xnf.drivers.profiles import XDP_MODES, find_profile


@attrs.frozen
class Capabilities:
    ifname: str
    ifindex: int
    netns: str
    driver: object
    """:class:`xnf.drivers.info.DriverInfo`."""
    profile: object
    """:class:`xnf.drivers.profiles.DriverProfile` or None for drivers without one."""
    netdev_features: object
    """:class:`xnf.drivers.netdev_genl.NetdevFeatures`, or None before Linux 6.3."""
    modes: dict
    """{mode: :class:`xnf.drivers.probe.ModeSupport`} for every mode in XDP_MODES."""
    attached: dict
    """{mode: program id} attached now."""
    hw_tc_offload: object = None
    """:class:`xnf.drivers.ethtool_features.Feature` ``hw-tc-offload`` (tc ``skip_sw``), or None."""

    @classmethod
    def for_interface(cls, ifname, netns=None):
        info = driver_info(ifname, netns)
        profile = find_profile(info.driver)
        features = probe.genl_features(info.ifindex, netns)
        attached = probe.attached_xdp(ifname, netns)
        modes = {"skb": probe.ModeSupport("skb", True, "kernel", "generic XDP works on every interface")}
        if features is not None:
            modes.update(probe.modes_from_features(features))
        elif profile is not None:
            modes.update(modes_from_profile(profile, info))
        else:
            modes.update(probe.probe_modes(ifname, info.ifindex, netns))
        for mode in attached:  # a program running in a mode proves the mode
            modes[mode] = probe.ModeSupport(mode, True, "attached XDP program",
                                            f"program {attached[mode]} is attached in this mode")
        if profile is not None and modes["offload"].supported:
            modes["offload"] = firmware_check(profile, info, modes["offload"])
        return cls(ifname, info.ifindex, netns, info, profile, features, modes, attached,
                   _hw_tc_offload(ifname, netns))

    def supports(self, mode):
        return bool(self.modes[mode].supported)

    @property
    def offload_target(self):
        """Name of the offload rule set for this NIC, or None when it cannot offload."""
        if not self.supports("offload"):
            return None
        return self.profile.offload_target if self.profile and self.profile.offload_target else "generic"


def _hw_tc_offload(ifname, netns):
    try:
        return ethtool_features.features(ifname, netns).get("hw-tc-offload")
    except NotSupportedError:
        return None


def modes_from_profile(profile, info):
    """ModeSupport for native and offload from what the driver profile says."""
    src = f"driver profile {profile.driver!r}"
    out = {}
    for mode in ("native", "offload"):
        ok = mode in profile.xdp_modes
        out[mode] = probe.ModeSupport(mode, ok, src, "" if ok else f"driver {info.driver} has no {mode} XDP")
    out["offload"] = firmware_check(profile, info, out["offload"])
    return out


def firmware_check(profile, info, support):
    """Offload support downgraded when the profile needs firmware the NIC is not running."""
    marker = profile.offload_firmware_marker
    if not support.supported or not marker or info.firmware is None or marker in info.firmware:
        return support
    return probe.ModeSupport(
        "offload", False, f"driver profile {profile.driver!r}",
        f"firmware {info.firmware!r} on {info.ifname} is not the BPF offload firmware "
        f"(its version would contain {marker!r}); load the {profile.driver} BPF firmware")


def choose_mode(caps, nf_modes, requested="auto"):
    """The XDP mode to attach in: ``requested``, or with ``auto`` the best one both the
    network function and the interface support (offload, then native, then skb).

    An explicit mode the interface is known not to support, or that the network
    function does not implement, raises ModeNotSupportedError with the reason; a mode
    nothing could confirm either way is left to the kernel to accept or refuse.
    """
    nf_modes = tuple(nf_modes)
    if requested != "auto" and requested not in XDP_MODES:
        raise ConfigError(f"unknown XDP mode {requested!r}", f"use one of auto, {', '.join(XDP_MODES)}")
    if requested != "auto":
        if requested not in nf_modes:
            raise ModeNotSupportedError(
                f"the network function cannot run in {requested} mode",
                f"it supports {', '.join(nf_modes) or 'no XDP mode'}")
        support = caps.modes[requested]
        if support.supported is False:
            raise ModeNotSupportedError(f"{caps.ifname} cannot run XDP in {requested} mode: {support.reason}",
                                        _alternatives(caps, nf_modes, requested))
        return requested
    for mode in XDP_MODES:
        if mode in nf_modes and caps.modes[mode].supported:
            return mode
    reasons = "; ".join(f"{m}: {caps.modes[m].reason or 'unknown'}" for m in nf_modes if m in caps.modes)
    raise ModeNotSupportedError(f"no XDP mode that both the network function and {caps.ifname} support "
                                f"({reasons or 'the network function has no XDP mode'})")


def _alternatives(caps, nf_modes, refused):
    usable = [m for m in XDP_MODES if m != refused and m in nf_modes and caps.modes[m].supported]
    return f"use --mode {usable[0]} or --mode auto" if usable else "no other mode fits"
