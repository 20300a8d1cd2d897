"""The ``xnf pping`` command group and pping's options, with ePPing's long names.

``register(subparsers, nf_cls)`` adds ``xnf pping read FILE`` (offline run through the
reference implementation), ``xnf pping plot RESULTS -o FILE`` and, given the network
function class, the live commands on an attached instance (``events IFACE``, ``stats
IFACE``). ``add_options(parser)`` adds the options for any command that runs pping;
``config_from_args(args)`` turns parsed options into a :class:`PpingConfig`.
Handlers return exit codes and raise :mod:`xnf.core.errors` types for the ``xnf``
entry point to print as one line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

import attrs

from xnf.core.errors import PluginError, XnfError
from xnf.plugins.pping.config import FORMATS, INGRESS_HOOKS, RTT_TYPES, XDP_MODES, PpingConfig
from xnf.plugins.pping.reference import Reference

#: ePPing's short options, kept for its users.
SHORT = {"tcp": "-T", "icmp": "-C", "rate_limit": "-r", "rtt_rate": "-R", "rtt_type": "-t",
         "include_local": "-l", "include_syn": "-s", "ingress_hook": "-I", "xdp_mode": "-x",
         "cleanup_interval": "-c", "format": "-F", "write": "-w", "aggregate": "-a"}

_LIVE_ONLY = ("ingress_hook", "xdp_mode", "read", "prometheus")
_OFFLINE_ONLY = ("local_addresses",)
_METAVARS = {"rate_limit": "MS", "rtt_rate": "X", "cleanup_interval": "S", "write": "FILE",
             "aggregate": "S", "aggregate_subnets_v4": "LEN", "aggregate_subnets_v6": "LEN",
             "aggregate_timeout": "S", "prometheus": "ADDR:PORT", "read": "FILE",
             "local_addresses": "ADDR[,ADDR...]", "timestamp_lifetime": "S", "timestamp_rtt_lifetime": "N",
             "flow_lifetime": "S", "icmp_flow_lifetime": "S", "unopened_flow_lifetime": "S",
             "timestamp_map_size": "N", "flow_map_size": "N", "aggregate_map_size": "N"}
_CHOICES = {"rtt_type": RTT_TYPES, "ingress_hook": INGRESS_HOOKS, "xdp_mode": XDP_MODES, "format": FORMATS}
_TYPES = {"float": float, "int": int}
_LIVE_HELP = {"ingress_hook": "where the ingress hook goes: tc (default) or xdp; -m/--mode skb or native "
                              "implies xdp",
              "xdp_mode": argparse.SUPPRESS}  # deprecated: -m/--mode says it (docs/cli.md)


def add_options(parser, short: bool = True, live: bool = True):
    """Add pping's options to ``parser``: one per :class:`PpingConfig` field.

    ``live=True`` (``xnf run pping``) adds the hook options and ``--read``;
    ``live=False`` (``xnf pping read``) adds ``--local-addresses`` instead.
    ``short`` adds ePPing's one-letter aliases.
    """
    skip = _OFFLINE_ONLY if live else _LIVE_ONLY
    group = parser.add_argument_group("pping options")
    for field in attrs.fields(PpingConfig):
        if field.name in skip:
            continue
        names = ["--" + field.name.replace("_", "-")]
        if field.name == "include_syn":
            names.append("--include-SYN")  # ePPing's spelling
        if short and field.name in SHORT:
            names.insert(0, SHORT[field.name])
        kw = {"dest": field.name, "help": (_LIVE_HELP if live else {}).get(field.name, field.metadata["help"]),
              "default": argparse.SUPPRESS}
        if field.type == "bool":
            kw["action"] = "store_true"
        else:
            kw["metavar"] = _METAVARS.get(field.name, field.name.upper())
            if field.name in _CHOICES:
                kw["choices"] = _CHOICES[field.name]
                kw.pop("metavar")
            kw["type"] = _TYPES.get(field.type, str)
        group.add_argument(*names, **kw)
    return parser


def add_demo_arguments(parser):
    """`xnf demo pping`'s options (here, not in demo.py: every `xnf run pping` builds them)."""
    parser.add_argument("--duration", type=float, default=12.0, metavar="S",
                        help="seconds the demo runs (default 12; the bulk flow stops halfway)")
    parser.add_argument("--rate", default="20mbit", help="bottleneck rate (default 20mbit)")
    parser.add_argument("--buffer-ms", type=int, default=300,
                        help="bottleneck buffer depth in ms at that rate (default 300)")
    parser.add_argument("--interval", type=float, default=0.5, metavar="S",
                        help="seconds between output lines (default 0.5)")


def config_from_args(args, **overrides) -> PpingConfig:
    """A :class:`PpingConfig` from the options given (others keep their defaults).

    Raises :class:`~xnf.plugins.pping.config.ConfigError` for contradictions.
    """
    values = {f.name: getattr(args, f.name) for f in attrs.fields(PpingConfig) if hasattr(args, f.name)}
    values.update(overrides)
    return PpingConfig(**values)


def register(subparsers, nf_cls=None):
    """Add the ``pping`` command group; with ``nf_cls`` (:class:`~xnf.plugins.pping.nf.Pping`,
    which finds attached instances), its live commands too. Returns the group's subparsers."""
    group = subparsers.add_parser("pping", help="passive RTT monitoring: offline runs, plots, attached instances",
                                  description="pping tools beside attach/run: read a capture through the "
                                              "reference implementation, plot results, read an attached instance.")
    sub = group.add_subparsers(dest="pping_command", metavar="COMMAND")
    sub.required = True

    read = sub.add_parser("read", help="run pping's matching rules over a pcap or pcapng file",
                          description="Offline pping (like ePPing's live output, from a capture file): "
                                      "the pure-Python reference implementation of the matching rules.")
    read.add_argument("file", metavar="FILE.pcap", help="capture file (pcap or pcapng); - for standard input")
    add_options(read, live=False)
    read.set_defaults(func=cmd_read)

    plot = sub.add_parser("plot", help="plot RTTs over time per flow and their distribution",
                          description="Plot pping json/jsonl results: RTT over time per flow "
                                      "and the RTT distribution.")
    plot.add_argument("results", metavar="RESULTS", help="pping output written with --format json or jsonl")
    plot.add_argument("-o", "--output", required=True, metavar="FILE.png", help="image to write (png, svg, pdf)")
    plot.add_argument("--max-flows", type=int, default=10, metavar="N", help="flows drawn in colour (default 10)")
    plot.set_defaults(func=cmd_plot)
    if nf_cls is not None:
        add_live_commands(sub, nf_cls)
    return sub


# --- reading an attached (pinned) instance: xnf pping events|stats IFACE -------------------

def add_live_commands(sub, nf_cls):
    """Add ``events IFACE`` and ``stats IFACE`` to the ``xnf pping`` group's subparsers."""
    for name, func, text in (("events", cmd_events, "stream the events of pping attached to IFACE"),
                             ("stats", cmd_stats, "counters and table sizes of pping attached to IFACE")):
        p = sub.add_parser(name, help=text, description=text + " (see `xnf attach pping IFACE`)")
        p.add_argument("iface", metavar="IFACE", help="network interface pping is attached to")
        p.add_argument("-n", "--netns", default=None, metavar="NAME", help="network namespace of IFACE")
        if name == "events":
            p.add_argument("-F", "--format", default=None, choices=FORMATS,
                           help="output format (default: the one it was attached with)")
            p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
        else:
            p.add_argument("-j", "--json", action="store_true", help="one JSON object")
        p.set_defaults(func=func, nf_cls=nf_cls)


def _pinned(args):
    inst = args.nf_cls.attached(args.iface, netns=args.netns)
    if inst is None:
        where = f" --netns {args.netns}" if args.netns else ""
        raise PluginError(f"pping is not attached to {args.iface}" + (f" in netns {args.netns}" if args.netns else ""),
                          f"attach it with `xnf attach pping {args.iface}{where}`")
    return inst


def cmd_events(args) -> int:
    """``xnf pping events IFACE``: read the ring buffer of a pinned instance until Ctrl-C."""
    inst = _pinned(args)
    stop = threading.Event()
    old = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    if args.duration is not None:
        threading.Timer(args.duration, stop.set).start()
    try:
        if args.format:
            inst.config = attrs.evolve(inst.config, format=args.format)
            inst.datapath.config = inst.config
        inst.run(sys.stdout, stop)
    finally:
        inst.datapath.release()
        for s, h in old.items():
            signal.signal(s, h)
    return 0


def cmd_stats(args) -> int:
    """``xnf pping stats IFACE``: counters, flows and timestamps held, as text or JSON."""
    inst = _pinned(args)
    try:
        st = inst.datapath.status()
    finally:
        inst.datapath.release()
    if args.json:
        print(json.dumps(st, sort_keys=True))
    else:
        for k, v in st.items():
            print(f"{k}: {v}")
    return 0


def run_offline(config: PpingConfig, out=None):
    """Run ``config.read`` through the reference and write the events; return the Stats."""
    # the offline path: not loaded by `xnf --help` or live runs
    from xnf.plugins.pping.pcap import read
    # output (and prometheus_client when asked for): only for commands that print events
    from xnf.plugins.pping.writer import Output

    ref = Reference(config)
    with Output(config, stream=out) as output:
        for rec in read(config.read):
            if rec.timestamp_ns is not None:
                output.emit(ref.feed(rec.timestamp_ns, rec.data, rec.linktype, rec.direction, rec.wire_len))
        output.emit(ref.finish())
    return ref.stats


def cmd_read(args) -> int:
    # formats: only for commands that print events, not for `xnf --help`
    from xnf.plugins.pping.formats import stats_line

    config = config_from_args(args, read=args.file)
    stats = run_offline(config, out=sys.stdout)
    print(stats_line(stats), file=sys.stderr)
    return 0


def cmd_plot(args) -> int:
    # plot: matplotlib, only for `xnf pping plot`
    from xnf.plugins.pping.plot import plot

    drawn = plot(args.results, args.output, max_flows=args.max_flows)
    what = (f"{drawn['samples']} RTT samples of {drawn['flows']} flows" if "samples" in drawn
            else f"{drawn['reports']} reports of {drawn['prefixes']} prefixes")
    print(f"{args.output}: {what}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    """``python3 -m xnf.plugins.pping.cli``: the group on its own, errors as one line."""
    parser = argparse.ArgumentParser(prog="xnf")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except XnfError as exc:
        print(f"xnf: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
