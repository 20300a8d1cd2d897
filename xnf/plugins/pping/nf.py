"""pping as an xnf network function: ``xnf run|attach|detach|status pping IFACE``.

The generic commands come from :mod:`xnf.nf`; this class adds pping's options (ePPing's
long and short names), its own command group (``xnf pping read|plot|events|stats``),
all in :mod:`xnf.plugins.pping.cli`, and its demo (``xnf demo pping``).
"""

from __future__ import annotations

import sys

import attrs

from xnf.nf import NetworkFunction, warn
from xnf.plugins.pping import cli as pping_cli
from xnf.plugins.pping.config import ConfigError, PpingConfig

MODE_OF_XDP_MODE = {"unspecified": "auto", "generic": "skb", "native": "native"}
"""The config's ``xdp_mode`` (ePPing's ``-x`` values) as the network function's mode."""


class Pping(NetworkFunction):
    name = "pping"
    description = "passive RTT monitoring of existing traffic (TCP, ICMP, DNS, QUIC)"
    objects = ("pping.bpf.o",)
    hooks = ("tc-egress", "tc-ingress", "xdp")
    modes = ("skb", "native", "offload")
    Config = PpingConfig

    mode_help = ("XDP mode of the ingress hook: skb or native put it at XDP, offload runs the receive side "
                 "on the NIC; auto (default): the best mode, with --ingress-hook xdp")

    def __init__(self, iface, config=None, netns=None, mode="auto"):
        super().__init__(iface, config, netns, mode)
        c = self.config
        if c.read is not None and mode != "auto":
            raise ConfigError(f"--mode {mode} does not apply to --read (nothing is attached offline)")
        if mode in ("skb", "native"):
            wanted = {"skb": "generic", "native": "native"}[mode]
            if c.ingress_hook != "xdp":
                raise ConfigError(f"mode {mode!r} is an XDP mode but the ingress hook is {c.ingress_hook!r}",
                                  "use PpingConfig(ingress_hook='xdp'); on the command line --mode implies it")
            if c.xdp_mode not in ("unspecified", wanted):
                raise ConfigError(f"mode {mode!r} and xdp_mode {c.xdp_mode!r} ask for different XDP modes",
                                  "give the mode once")
            self.config = attrs.evolve(c, xdp_mode=wanted)
        elif mode == "offload":  # the NIC stage replaces the ingress hook
            if c.xdp_mode != "unspecified":
                raise ConfigError(f"mode 'offload' runs the receive side on the NIC; xdp_mode {c.xdp_mode!r} "
                                  "does not apply", "drop xdp_mode")
        elif c.xdp_mode != "unspecified":  # auto, and the config names the XDP mode: that is the mode
            self.mode = MODE_OF_XDP_MODE[c.xdp_mode]
        self.datapath = None

    # --- life cycle ------------------------------------------------------------------

    @property
    def offline(self):
        return self.config.read is not None

    def attach(self):
        if self.mode == "offload":
            # offload: a real cycle (OffloadDatapath builds on Datapath)
            from xnf.plugins.pping.offload import OffloadDatapath as Datapath
        else:
            # the data path (loader, attach): not loaded by `xnf --help`, which registers this NF
            from xnf.plugins.pping.datapath import Datapath

        dp = Datapath(self.iface, self.config, self.netns)
        with self.building() as build:
            dp.build_into(build.txn)
        self.datapath = dp
        return self

    def detach(self):
        if self.datapath is None:
            # the data path (loader, attach): not loaded by `xnf --help`, which registers this NF
            from xnf.plugins.pping.datapath import Datapath

            self.datapath = Datapath.from_pins(self.pins)
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
        # the data path (loader, attach): not loaded by `xnf --help`, which registers this NF
        from xnf.plugins.pping.datapath import CONFIG_LINK, Datapath

        pins = cls.pin_root(iface, netns)
        if pins.read_record(CONFIG_LINK) is None:  # a permission error is raised, not taken for "absent"
            return None
        dp = Datapath.from_pins(pins)
        inst = cls(iface, dp.config, netns=netns, mode=getattr(dp, "MODE", "auto"))
        inst.datapath = dp
        return inst

    def run(self, out, stop):
        """Write events as --format/--write/--prometheus say until ``stop`` (or, with
        --read, until the capture ends); the stats line goes to stderr."""
        # formats: only for commands that print events, not for `xnf --help`
        from xnf.plugins.pping.formats import stats_line

        if self.offline:
            stats = pping_cli.run_offline(self.config, out=out)
        else:
            # the event pump: only for `xnf run`
            from xnf.plugins.pping.api import pump
            # output (and prometheus_client when asked for): only for commands that print events
            from xnf.plugins.pping.writer import Output

            with Output(self.config, stream=out) as output:
                stats = pump(self.datapath, output.emit, stop, output.update_stats)
                output.update_stats(stats)
        print(stats_line(stats), file=sys.stderr)

    # --- CLI ---------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser):
        pping_cli.add_options(parser, short=True, live=True)

    @classmethod
    def _mode(cls, args):
        """-m/--mode, or the deprecated -x/--xdp-mode as a mode; both, disagreeing: ConfigError."""
        mode, old = getattr(args, "mode", None), getattr(args, "xdp_mode", None)
        if old is not None:
            if mode is not None and mode != MODE_OF_XDP_MODE[old]:
                raise ConfigError(f"--xdp-mode {old} and --mode {mode} ask for different XDP modes",
                                  "give --mode alone; --xdp-mode is deprecated")
            mode = MODE_OF_XDP_MODE[old]
        return mode or "auto"

    @classmethod
    def mode_from_args(cls, args):
        mode = cls._mode(args)
        if getattr(args, "xdp_mode", None) is not None:
            warn(f"-x/--xdp-mode is deprecated: use -m/--mode {mode} (docs/cli.md)")
        return mode

    @classmethod
    def config_from_args(cls, args):
        """The config, with the ingress hook where ``--mode`` puts it: skb or native imply
        ``--ingress-hook xdp``; naming ``tc`` beside an XDP or offload mode is refused."""
        mode, hook = cls._mode(args), getattr(args, "ingress_hook", None)
        if mode != "auto" and hook == "tc":
            where = "on the NIC" if mode == "offload" else "at XDP"
            raise ConfigError(f"--mode {mode} runs pping's ingress {where}, but --ingress-hook tc asks for tc",
                              "drop one of them")
        overrides = {"xdp_mode": "unspecified"}  # the mode goes to the constructor, which sets it
        if mode in ("skb", "native") and getattr(args, "read", None) is None:
            overrides["ingress_hook"] = "xdp"
        return pping_cli.config_from_args(args, **overrides)

    @classmethod
    def register_cli(cls, subparsers):
        """``xnf pping read|plot`` (user side) and ``xnf pping events|stats`` (live)."""
        pping_cli.register(subparsers, cls)

    @classmethod
    def demo(cls, args):
        # the demo (xnf.testing's namespaces and frames): only for `xnf demo pping`
        from xnf.plugins.pping.demo import demo

        return demo(args)

    @classmethod
    def add_demo_arguments(cls, parser):
        pping_cli.add_demo_arguments(parser)
