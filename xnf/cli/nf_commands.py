"""`xnf list | attach | detach | status | run | demo`: the network-function commands."""
import os
import signal
import sys
import threading

from xnf import registry
from xnf.cli.output import emit_json, table
from xnf.core.errors import ConfigError, NamespaceNotFoundError, PluginError, XnfError


def register(sub, nfs=None):
    """The commands; ``attach``, ``run`` and ``demo`` with one sub-command for each of
    ``nfs`` ({name: class}; None: every installed network function)."""
    p = sub.add_parser("list", help="list installed network functions and schedulers")
    p.add_argument("-j", "--json", action="store_true", help="the listing as JSON")
    p.set_defaults(func=cmd_list)

    nfs = registry.network_functions() if nfs is None else nfs
    for verb, helptext, func in (("attach", "attach a network function and leave it pinned", cmd_attach),
                                 ("run", "attach, stream results, detach on Ctrl-C or SIGTERM", cmd_run)):
        p = sub.add_parser(verb, help=helptext)
        nf_sub = p.add_subparsers(dest="nf", metavar="NF", parser_class=type(p))
        nf_sub.required = True
        for name, cls in sorted(nfs.items()):
            q = nf_sub.add_parser(name, help=cls.description)
            q.add_argument("iface", metavar="IFACE", help="network interface")
            q.add_argument("-n", "--netns", metavar="NAME", help="the interface is in this network namespace")
            q.set_defaults(func=func, nf_cls=cls)
            _guarded(name, q, cls.add_hook_arguments, q)  # -m/--mode: only the XDP modes it runs in
            _guarded(name, q, cls.add_arguments, q)

    p = sub.add_parser("detach", help="detach a network function and remove its pins")
    p.add_argument("nf", metavar="NF", help="network function (see `xnf list`)")
    p.add_argument("iface", metavar="IFACE", help="network interface")
    p.add_argument("-n", "--netns", metavar="NAME", help="the interface is in this network namespace")
    p.set_defaults(func=cmd_detach)

    p = sub.add_parser("status", help="show attached network functions")
    p.add_argument("iface", metavar="IFACE", nargs="?", help="only this interface")
    p.add_argument("-n", "--netns", metavar="NAME", help="only interfaces in this network namespace")
    p.add_argument("-j", "--json", action="store_true", help="the whole records as JSON")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("demo", help="a self-contained demonstration in throwaway namespaces")
    demo_sub = p.add_subparsers(dest="nf", metavar="NF", parser_class=type(p))
    demo_sub.required = True
    for name, cls in sorted(nfs.items()):
        if cls.demo is None:
            continue
        q = demo_sub.add_parser(name, help=f"demonstrate {name}")
        q.set_defaults(func=lambda args, cls=cls: cls.demo(args))
        _guarded(name, q, cls.add_demo_arguments, q)


def register_plugin_groups(sub):
    """The plugins' own command groups; returns [(name, help)] of those added."""
    before = len(sub._choices_actions)
    for name, cls in sorted(registry.network_functions().items()):
        _guarded(name, None, cls.register_cli, sub)
    return [(action.dest, action.help) for action in sub._choices_actions[before:]]


def _guarded(plugin, parser, fn, *args):
    """Run a plugin's CLI hook; if it fails, only the commands that use that plugin fail.

    A broken third-party plugin must not take every other `xnf` command down with it.
    """
    try:
        fn(*args)
    except Exception as e:  # any bug in plugin code: report it when the plugin is used
        error = PluginError(f"network function {plugin!r} is broken: {type(e).__name__}: {e}",
                            "reinstall or fix the plugin package")

        def fail(_args):
            raise error

        if parser is not None:
            parser.set_defaults(func=fail)


def cmd_list(args):
    """Installed plugins, and those registered but failing to import, with their error
    (a broken plugin must not vanish from the listing)."""
    nfs = registry.network_functions()
    scheds = registry.schedulers()
    broken = {"network_functions": registry.broken(registry.NETWORK_FUNCTIONS),
              "schedulers": registry.broken(registry.SCHEDULERS)}
    if args.json:
        emit_json({"network_functions": {n: {"description": c.description, "hooks": list(c.hooks),
                                             "modes": list(c.modes)} for n, c in nfs.items()},
                   "schedulers": sorted(scheds),
                   "broken": {kind: dict(sorted(errors.items())) for kind, errors in broken.items()}})
        return 0
    rows = [(n, ",".join(c.hooks), ",".join(c.modes), c.description) for n, c in sorted(nfs.items())]
    rows += [(n, "-", "-", f"BROKEN: {error}") for n, error in sorted(broken["network_functions"].items())]
    table(rows, ["NETWORK FUNCTION", "HOOKS", "MODES", "DESCRIPTION"])
    print(f"\nschedulers: {', '.join(sorted(scheds))}")
    for name, error in sorted(broken["schedulers"].items()):
        print(f"broken scheduler {name}: {error}")
    if any(broken.values()):
        print("\nbroken plugins fail to import: reinstall or fix their package")
    return 0


def _instance(args):
    cls = args.nf_cls
    return cls(args.iface, cls.config_from_args(args), netns=args.netns, mode=cls.mode_from_args(args))


def cmd_attach(args):
    nf = _instance(args)
    if nf.offline:
        raise ConfigError(f"these {nf.name} options run offline and attach nothing",
                          f"use `xnf run {nf.name} ...` with them instead")
    nf.attach()
    print(f"{nf.name} attached to {args.iface}" + (f" in {args.netns}" if args.netns else "")
          + f", pinned under {nf.pin_dir}")
    explanation = nf.explain()  # which data path it uses, where the kernel lacks the ideal one
    if explanation:
        print(explanation)
    return 0


def cmd_run(args):
    nf = _instance(args)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if nf.offline:
            nf.run(sys.stdout, stop)
            return 0
        nf.attach()
        try:
            nf.run(sys.stdout, stop)
        finally:
            nf.detach()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return 0


def cmd_detach(args):
    from xnf.core.kernel.pin import PinPermissionError  # with the attach machinery: not for `xnf --help`

    cls = registry.network_function(args.nf)
    try:
        nf = cls.attached(args.iface, netns=args.netns)
    except PinPermissionError:
        raise
    except XnfError:
        nf = None  # pins that cannot be read as an instance: removed below as a broken one
    where = args.iface + (f" in netns {args.netns}" if args.netns else "")
    if nf is not None:
        nf.detach()
        print(f"{args.nf} detached from {where}")
        return 0
    if cls.clear(args.iface, netns=args.netns):
        print(f"removed a broken {args.nf} instance from {where}")
        return 0
    status = "xnf status" + (f" --netns {args.netns}" if args.netns else "")
    raise PluginError(f"{args.nf} is not attached to {where}", f"see `{status}` for what is attached")


def _broken_entry(root, leftovers):
    """What `xnf status` shows for a half-made or half-removed instance."""
    problem = "; ".join(item.describe() for item in leftovers) or \
        f"{root.path} is there but cannot be read as a {root.nf} instance"
    return {"name": root.nf, "iface": root.ifname, "netns": root.netns, "mode": "-", "state": "broken",
            "problem": problem, "fix": root.detach_command,
            "leftovers": [item.path for item in leftovers] or [root.path]}


def _entries(iface=None, netns=None):
    """status() of each attached instance, and an entry for each broken or busy one."""
    # the pin and attach machinery: only for the commands that read pins, not for `xnf --help`
    from xnf.core.attach.pinroot import PinRoot
    from xnf.core.kernel.pin import PinPermissionError, find_bpffs

    if find_bpffs() is None:
        return []
    found = []
    for root in PinRoot.scan():
        if (iface and root.ifname != iface) or (netns and root.netns != netns):
            continue
        try:
            cls = registry.network_function(root.nf)
        except PluginError:
            continue  # pins of a plugin that is no longer installed
        try:
            inst = cls.attached(root.ifname, netns=root.netns)
        except PinPermissionError:
            raise
        except XnfError:
            inst = None  # pins left by an older xnf that cannot be read: shown as broken below
        if inst is not None:
            try:
                entry = inst.status()
                entry["mode"] = _mode_in_force(root, entry.get("mode"))
            except PinPermissionError:
                raise
            except (OSError, XnfError):
                if root.exists():
                    raise
                continue  # detached by another process while we read it: nothing to show
            if not root.exists():
                continue  # the same, when what we read still answered from our fds
            found.append(entry)
        if not (root.leftovers() or (inst is None and root.exists())):
            continue
        busy = root.busy()
        if busy is not None:
            found.append({"name": root.nf, "iface": root.ifname, "netns": root.netns, "mode": "-",
                          "state": "busy", "problem": "being attached or detached by "
                          + (f"pid {busy}" if busy else "another process")})
            continue
        leftovers = root.broken()
        if leftovers or (inst is None and root.exists()):
            found.append(_broken_entry(root, leftovers))
    return found


def _mode_in_force(root, configured):
    """The XDP mode the kernel runs the instance's program in (``skb``, ``native``,
    ``offload``), read back from the interface rather than the ``--mode`` asked for, which
    may be ``auto`` (the kernel's answer wins over the recorded mode); ``none`` if the
    kernel runs it nowhere (replaced, or the interface is gone); ``-`` for an instance with
    no XDP hook whose own answer is ``auto``."""
    from xnf.core.attach.base import is_attachment_dir
    from xnf.core.attach.xdp import XdpAttachment, query
    from xnf.core.kernel.pin import listdir

    modes = []
    # the instance's directories only: its records (pping's config) are symlinks, not attachments
    for name in listdir(root.path):  # [] once another process has detached the instance
        if not is_attachment_dir(os.path.join(root.path, name)):
            continue
        att = root.find(name)
        if att is None:
            continue
        try:
            if not isinstance(att, XdpAttachment):
                continue
            try:
                running = query(att.ifname, att.netns)
            except XnfError:  # the interface or its namespace is gone: nothing runs
                running = {}
            if att.kind == "xdp-dispatcher":  # the interface runs the dispatcher, not our program
                in_force = att.mode if att.mode in running else None
            else:
                in_force = next((m for m, hp in running.items() if hp.prog_id == att.prog_id), None)
            modes.append(in_force or "none")
        finally:
            att.close()  # our duplicate fds only; the attachment stays
    if modes:
        return ",".join(modes)
    return "-" if configured in (None, "auto") else configured


def _check_scope(iface, netns):
    """`xnf status IFACE` / `--netns NS` naming nothing that exists is an error, not an empty list."""
    from xnf.core.kernel import netns as _netns  # netlink: only when the scope is checked

    if netns and not _netns.exists(netns):
        raise NamespaceNotFoundError(netns)
    if iface:
        _netns.ifindex(iface, netns)


def cmd_status(args):
    found = _entries(args.iface, args.netns)
    if not found:
        _check_scope(args.iface, args.netns)
    if args.json:
        emit_json(found)
    elif not found:
        print("no network functions attached")
    else:
        table([(s.get("name"), s.get("iface"), s.get("netns") or "-", s.get("mode", "-"), _details(s))
               for s in found], ["NF", "IFACE", "NETNS", "MODE", "DETAILS"])
    return 0


def _details(entry):
    if entry.get("state") == "broken":
        return f"BROKEN: {entry['problem']}; clear it with `{entry['fix']}`"
    if entry.get("state") == "busy":
        return f"BUSY: {entry['problem']}"
    return "; ".join(f"{k}={_plain(v)}" for k, v in entry.items() if k not in ("name", "iface", "netns", "mode"))


def _plain(value):
    """A status value as text a reader scans (``ingress: xdp prog 7 on veth0, ...``), not
    a Python repr; ``--json`` keeps the structure."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(_plain(v) for v in value)
    return "-" if value is None else str(value)
