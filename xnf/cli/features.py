"""`xnf features [IFACE] [--json]`: what the kernel (and an interface) can do."""
from xnf.cli.output import emit_json


def register(sub):
    p = sub.add_parser("features", help="probe kernel and interface features")
    p.add_argument("iface", metavar="IFACE", nargs="?", help="also what this interface and its driver offer")
    p.add_argument("-n", "--netns", metavar="NAME", help="the interface is in this network namespace")
    p.add_argument("-j", "--json", action="store_true", help="the whole report as JSON")
    p.set_defaults(func=cmd_features)


def collect(iface=None, netns=None):
    # every `xnf` command imports this module; loaded only when this one runs
    from xnf.core.kernel.features import features_report
    from xnf.plugins.pifo_sched.features import scheduling_features

    report = features_report()
    report["scheduling"] = scheduling_features()
    if iface:
        # every `xnf` command imports this module; loaded only when this one runs
        from xnf.drivers.report import features_report as iface_report

        report["interface"] = iface_report(iface, netns)
    return report


def cmd_features(args):
    report = collect(args.iface, args.netns)
    if args.json:
        emit_json(report)
        return 0
    print(f"kernel {report['release']}" + ("" if report["privileged"] else " (not root: probes limited)"))
    print(f"  btf: load={_yn(report['btf']['load'])} vmlinux={_yn(report['btf']['vmlinux'])}")
    print(f"  links: xdp={_yn(report['links']['xdp'])} tcx={_yn(report['links']['tcx'])}")
    for key in ("program_types", "map_types"):
        have = [k for k, v in report[key].items() if v]
        missing = [k for k, v in report[key].items() if v is False]
        print(f"  {key.replace('_', ' ')}: {len(have)} available" + (f"; missing: {', '.join(missing)}" if missing else ""))
    for kind, lacks in (("helpers", "this kernel lacks"), ("kfuncs", "not in vmlinux")):
        for hook, found in report[kind].items():  # only those the kernel lets this hook call
            have = [k for k, v in found.items() if v]
            print(f"  {kind} ({hook}, {len(have)}): {', '.join(have) if have else 'not probed'}")
        if report.get(f"{kind}_missing"):
            print(f"  {kind} {lacks}: {', '.join(report[f'{kind}_missing'])}")
    for k, v in report["scheduling"].items():
        print(f"  scheduling: {k}={_yn(v) if isinstance(v, (bool, type(None))) else v}")
    if "interface" in report:
        # every `xnf` command imports this module; loaded only when this one runs
        from xnf.drivers.report import format_report

        print(format_report(report["interface"]))
    return 0


def _yn(v):
    return {True: "yes", False: "no", None: "unknown"}.get(v, str(v))
