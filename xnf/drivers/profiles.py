"""Driver profiles: what a driver is known to support when the kernel cannot say.

Kernels before 6.3 report no XDP features, and no kernel says which offload rules a
NIC's firmware enforces, so each driver gets a profile. Profiles are plugins: the
stevedore namespace ``xnf.drivers`` maps the kernel's driver name (as ``ethtool -i``
prints it) to a :class:`DriverProfile`, so a vendor can ship one in its own package::

    [options.entry_points]
    xnf.drivers =
        mydrv = mypkg.xnf_profile:MYDRV
"""
import attrs

from xnf.core.errors import PluginError
from xnf.drivers.netdev_genl import XdpFeature

XDP_MODES = ("offload", "native", "skb")
"""Every XDP mode, best first: on the NIC, in the driver, in the generic (skb) path."""

_ALL_NATIVE = XdpFeature.BASIC | XdpFeature.REDIRECT | XdpFeature.NDO_XMIT


def _modes(_instance, _attribute, value):
    unknown = set(value) - set(XDP_MODES)
    if unknown:
        raise ValueError(f"unknown XDP modes {sorted(unknown)}; use {XDP_MODES}")


@attrs.frozen
class DriverProfile:
    driver: str
    """The kernel's driver name (``ethtool -i``); also the entry point name."""
    xdp_modes: frozenset = attrs.field(converter=frozenset, validator=_modes)
    xdp_features: XdpFeature = XdpFeature(0)
    """Native XDP features the driver has in current kernels (used when the kernel cannot report)."""
    offload_target: str = None
    """Name of the offload rule set in :mod:`xnf.offload.rules` when the NIC runs BPF itself."""
    offload_firmware_marker: str = None
    """Offload needs firmware whose version string contains this (e.g. nfp's BPF app)."""
    notes: str = ""

    @property
    def can_offload(self):
        return "offload" in self.xdp_modes


NFP = DriverProfile(
    "nfp", {"skb", "native", "offload"}, _ALL_NATIVE | XdpFeature.HW_OFFLOAD,
    offload_target="nfp", offload_firmware_marker="bpf",
    notes="Netronome Agilio SmartNIC. Offload (XDP hw mode, tc cls_bpf skip_sw) needs the BPF "
          "firmware app (its version contains 'bpf') and runs under the NFP JIT's rules; "
          "one offloaded XDP program per port, no multi-program dispatcher.")
NETDEVSIM = DriverProfile(
    "netdevsim", {"skb", "native", "offload"}, XdpFeature.BASIC | XdpFeature.HW_OFFLOAD,
    offload_target="netdevsim",
    notes="Simulated device for tests (CONFIG_NETDEVSIM): create with "
          "`echo 'ID PORTS' > /sys/bus/netdevsim/new_device`. Offload follows the kernel's "
          "generic offload rules; debugfs knobs under /sys/kernel/debug/netdevsim decide what "
          "it accepts. tc offload needs `ethtool -K IF hw-tc-offload on`.")
MLX5 = DriverProfile(
    "mlx5_core", {"skb", "native"},
    _ALL_NATIVE | XdpFeature.XSK_ZEROCOPY | XdpFeature.RX_SG | XdpFeature.NDO_XMIT_SG,
    notes="NVIDIA ConnectX-4 and later. Native XDP since 4.9, AF_XDP zero-copy since 5.3; "
          "multi-buffer needs legacy RQ or striding RQ with a large MTU. No BPF offload.")
I40E = DriverProfile(
    "i40e", {"skb", "native"},
    _ALL_NATIVE | XdpFeature.XSK_ZEROCOPY | XdpFeature.RX_SG,
    notes="Intel XL710/X710. Native XDP since 4.13, AF_XDP zero-copy since 4.20, "
          "multi-buffer receive since 6.4. No BPF offload.")
ICE = DriverProfile(
    "ice", {"skb", "native"},
    _ALL_NATIVE | XdpFeature.XSK_ZEROCOPY | XdpFeature.RX_SG | XdpFeature.NDO_XMIT_SG,
    notes="Intel E800 series. Native XDP and AF_XDP zero-copy since 5.5; RX metadata "
          "(timestamp, hash, VLAN) kfuncs since 6.8. No BPF offload.")
IXGBE = DriverProfile(
    "ixgbe", {"skb", "native"}, _ALL_NATIVE | XdpFeature.XSK_ZEROCOPY,
    notes="Intel 82599/X540/X550. Native XDP since 4.12, AF_XDP zero-copy since 5.1; "
          "no multi-buffer, so the MTU must fit one page. No BPF offload.")
BNXT = DriverProfile(
    "bnxt_en", {"skb", "native"}, _ALL_NATIVE | XdpFeature.RX_SG,
    notes="Broadcom NetXtreme-C/E. Native XDP since 4.11, multi-buffer since 5.18; "
          "no AF_XDP zero-copy. No BPF offload.")
VIRTIO_NET = DriverProfile(
    "virtio_net", {"skb", "native"}, _ALL_NATIVE | XdpFeature.RX_SG,
    notes="Paravirtual NIC. Native XDP needs guest offloads (LRO/TSO) off and enough queue "
          "pairs for XDP_TX (one per CPU); AF_XDP zero-copy in recent kernels (6.11+); "
          "NDO_XMIT is reported only while an XDP program is attached. No BPF offload.")
VETH = DriverProfile(
    "veth", {"skb", "native"},
    _ALL_NATIVE | XdpFeature.RX_SG | XdpFeature.NDO_XMIT_SG,
    notes="Virtual Ethernet pair. Native XDP runs on the receiving side of the pair; "
          "XDP_TX/XDP_REDIRECT into a veth need an XDP program (or GRO) on the peer.")
TUN = DriverProfile(
    "tun", {"skb", "native"}, _ALL_NATIVE,
    notes="tun/tap. Native XDP runs on packets the user-space side writes into the device.")


def find_profile(driver):
    """The DriverProfile registered for ``driver`` in ``xnf.drivers``, or None."""
    if not driver:
        return None
    # stevedore: only when a driver profile is looked up
    from stevedore import DriverManager
    from stevedore.exception import NoMatches

    try:
        manager = DriverManager("xnf.drivers", driver, invoke_on_load=False,
                                on_load_failure_callback=_load_failed)
    except NoMatches:
        return None
    profile = manager.driver
    if not isinstance(profile, DriverProfile):
        raise PluginError(f"xnf.drivers entry point {driver!r} is a {type(profile).__name__}, "
                          "not a DriverProfile", "point the entry point at a DriverProfile instance")
    return profile


def _load_failed(_manager, entrypoint, exc):
    raise PluginError(f"driver profile {entrypoint.name!r} ({entrypoint.value}) failed to load: {exc}",
                      "fix or uninstall the package that provides it") from exc
