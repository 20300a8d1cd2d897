"""pping as an xnf network function: ``xnf run|attach|detach|status pping IFACE``.

The generic commands come from :mod:`xnf.nf`; this class adds pping's options (ePPing's
long and short names, from :mod:`xnf.plugins.pping.cli`), its own command group
(``xnf pping read|plot|events|stats``) and its demo (``xnf demo pping``).
"""

from __future__ import annotations

import sys

import attrs

from xnf.nf import NetworkFunction
from xnf.plugins.pping.config import PpingConfig


class Pping(NetworkFunction):
    name = "pping"
    description = "passive RTT monitoring of existing traffic (TCP, ICMP, DNS, QUIC)"
    objects = ("pping.bpf.o",)
    hooks = ("tc-egress", "tc-ingress", "xdp")
    modes = ("skb", "native", "offload")
    Config = PpingConfig

    def __init__(self, iface, config=None, netns=None, mode="auto"):
        super().__init__(iface, config, netns, mode)
        if mode not in ("auto", "offload"):  # offload: the NIC stage replaces the ingress hook
            from xnf.plugins.pping.config import ConfigError

            if self.config.ingress_hook != "xdp":
                raise ConfigError(f"--mode {mode} is an XDP mode; add --ingress-hook xdp")
            self.config = attrs.evolve(self.config, xdp_mode={"skb": "generic", "native": "native"}[mode])
        self.datapath = None

    # --- life cycle ------------------------------------------------------------------

    @property
    def offline(self):
        return self.config.read is not None

    def attach(self):
        if self.mode == "offload":
            from xnf.plugins.pping.offload import OffloadDatapath as Datapath
        else:
            from xnf.plugins.pping.datapath import Datapath

        dp = Datapath(self.iface, self.config, self.netns)
        dp.attach(pins=self._pins())
        self.datapath = dp
        return self

    def _pins(self):
        from xnf.core.attach.pinroot import PinRoot

        return PinRoot(self.iface, self.name, netns=self.netns)

    def detach(self):
        if self.datapath is None:
            from xnf.plugins.pping.datapath import Datapath

            self.datapath = Datapath.from_pins(self._pins())
        self.datapath.detach()
        self.datapath = None

    def status(self):
        out = super().status()
        if self.datapath is not None:
            out.update(self.datapath.status())
            out["ingress_hook"] = self.config.ingress_hook
        return out

    @classmethod
    def attached(cls, iface, netns=None):
        from xnf.core.attach.pinroot import PinRoot
        from xnf.plugins.pping.datapath import CONFIG_LINK, Datapath

        pins = PinRoot(iface, cls.name, netns=netns)
        if pins.read_record(CONFIG_LINK) is None:  # a permission error is raised, not taken for "absent"
            return None
        dp = Datapath.from_pins(pins)
        inst = cls(iface, dp.config, netns=netns, mode=getattr(dp, "MODE", "auto"))
        inst.datapath = dp
        return inst

    def run(self, out, stop):
        """Write events as --format/--write/--prometheus say until ``stop`` (or, with
        --read, until the capture ends); the stats line goes to stderr."""
        from xnf.plugins.pping.formats import stats_line

        if self.offline:
            from xnf.plugins.pping.cli import run_offline

            stats = run_offline(self.config, out=out)
        else:
            from xnf.plugins.pping.api import pump
            from xnf.plugins.pping.writer import Output

            with Output(self.config, stream=out) as output:
                stats = pump(self.datapath, output.emit, stop, output.update_stats)
                output.update_stats(stats)
        print(stats_line(stats), file=sys.stderr)

    # --- CLI ---------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser):
        from xnf.plugins.pping.cli import add_options

        add_options(parser, short=True, live=True)

    @classmethod
    def config_from_args(cls, args):
        from xnf.plugins.pping.cli import config_from_args

        return config_from_args(args)

    @classmethod
    def register_cli(cls, subparsers):
        """``xnf pping read|plot`` (user side) and ``xnf pping events|stats`` (live)."""
        from xnf.plugins.pping.cli import register

        add_live_commands(register(subparsers))

    @staticmethod
    def demo(args):
        from xnf.plugins.pping.demo import demo

        return demo(args)

    @staticmethod
    def add_demo_arguments(parser):
        from xnf.plugins.pping.demo import add_demo_arguments

        add_demo_arguments(parser)


# --- reading an attached (pinned) instance: xnf pping events|stats IFACE -------------------

def add_live_commands(sub):
    """Add ``events IFACE`` and ``stats IFACE`` to the ``xnf pping`` group's subparsers."""
    for name, func, text in (("events", events_main, "stream the events of pping attached to IFACE"),
                             ("stats", stats_main, "counters and table sizes of pping attached to IFACE")):
        p = sub.add_parser(name, help=text, description=text + " (see `xnf attach pping IFACE`)")
        p.add_argument("iface", metavar="IFACE")
        p.add_argument("--netns", default=None, help="network namespace of IFACE")
        if name == "events":
            p.add_argument("-F", "--format", default=None, choices=("standard", "json", "jsonl", "ppviz"),
                           help="output format (default: the one it was attached with)")
            p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
        else:
            p.add_argument("--json", action="store_true", help="one JSON object")
        p.set_defaults(func=func)


def _pinned(args):
    from xnf.core.errors import PluginError

    inst = Pping.attached(args.iface, netns=args.netns)
    if inst is None:
        raise PluginError(f"pping is not attached to {args.iface}",
                          f"attach it with `xnf attach pping {args.iface}`")
    return inst


def events_main(args) -> int:
    """``xnf pping events IFACE``: read the ring buffer of a pinned instance until Ctrl-C."""
    import signal
    import threading

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


def stats_main(args) -> int:
    """``xnf pping stats IFACE``: counters, flows and timestamps held, as text or JSON."""
    import json

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
