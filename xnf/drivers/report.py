"""``xnf features IFACE``: an interface's capabilities as plain data (JSON-ready)."""
from xnf.drivers.capabilities import Capabilities
from xnf.drivers.netdev_genl import XdpFeature, XdpRxMetadata, XskFeature
from xnf.drivers.profiles import XDP_MODES


def _flag_names(value, flag_type):
    return [member.name.lower() for member in flag_type if value & member]


def features_report(ifname, netns=None):
    """A dict of driver, XDP features, modes (with who said so) and offload for ``ifname``."""
    caps = Capabilities.for_interface(ifname, netns)
    info = caps.driver
    report = {
        "interface": caps.ifname,
        "ifindex": caps.ifindex,
        "netns": netns,
        "driver": {"name": info.driver, "version": info.version, "firmware": info.firmware,
                   "bus_info": info.bus_info, "source": info.source},
        "profile": None,
        "xdp_features": None,
        "modes": {mode: {"supported": caps.modes[mode].supported, "source": caps.modes[mode].source,
                         "reason": caps.modes[mode].reason} for mode in XDP_MODES},
        "attached": dict(caps.attached),
        "offload": {"possible": caps.supports("offload"), "target": caps.offload_target},
        "hw_tc_offload": None if caps.hw_tc_offload is None else {
            "active": caps.hw_tc_offload.active, "changeable": caps.hw_tc_offload.changeable},
    }
    if caps.profile is not None:
        p = caps.profile
        report["profile"] = {"driver": p.driver, "xdp_modes": [m for m in XDP_MODES if m in p.xdp_modes],
                             "xdp_features": _flag_names(p.xdp_features, XdpFeature),
                             "offload_target": p.offload_target, "notes": p.notes}
    if caps.netdev_features is not None:
        f = caps.netdev_features
        report["xdp_features"] = {
            "xdp": _flag_names(f.xdp_features, XdpFeature),
            "xdp_zc_max_segs": f.xdp_zc_max_segs,
            "xdp_rx_metadata": _flag_names(f.xdp_rx_metadata_features, XdpRxMetadata),
            "xsk": _flag_names(f.xsk_features, XskFeature),
        }
    return report


def format_report(report):
    """The report as the lines ``xnf features`` prints."""
    d = report["driver"]
    lines = [f"{report['interface']} (ifindex {report['ifindex']})"
             + (f" in netns {report['netns']}" if report["netns"] else ""),
             f"  driver:    {d['name'] or 'unknown'}" + (f" {d['version']}" if d["version"] else ""),
             f"  bus:       {d['bus_info'] or '-'}",
             f"  firmware:  {d['firmware'] or '-'}"]
    if report["xdp_features"] is not None:
        f = report["xdp_features"]
        lines.append(f"  xdp-features: {' '.join(f['xdp']) or 'none'}")
        if f["xdp_zc_max_segs"] is not None:
            lines.append(f"  xdp-zc-max-segs: {f['xdp_zc_max_segs']}")
        lines.append(f"  xdp-rx-metadata: {' '.join(f['xdp_rx_metadata']) or 'none'}")
        lines.append(f"  xsk-features: {' '.join(f['xsk']) or 'none'}")
    else:
        lines.append("  xdp-features: not reported by this kernel (needs Linux 6.3)")
    lines.append("  XDP modes:")
    for mode, m in report["modes"].items():
        state = {True: "yes", False: "no", None: "unknown"}[m["supported"]]
        why = f" ({m['reason']})" if m["reason"] and m["supported"] is not True else ""
        lines.append(f"    {mode:8} {state:8} [{m['source'] or '-'}]{why}")
    if report["attached"]:
        lines.append("  attached:  " + ", ".join(f"{mode} prog {pid}" for mode, pid in report["attached"].items()))
    offload = report["offload"]
    lines.append(f"  offload:   {'yes, rules ' + offload['target'] if offload['possible'] else 'no'}")
    tc = report["hw_tc_offload"]
    if tc is not None:
        lines.append(f"  hw-tc-offload: {'on' if tc['active'] else 'off'}{'' if tc['changeable'] else ' [fixed]'}")
    if report["profile"] is not None:
        lines.append(f"  notes:     {report['profile']['notes']}")
    return "\n".join(lines)
