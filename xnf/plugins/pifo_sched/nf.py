"""``pifo_sched`` as a network function: ``xnf attach pifo_sched IFACE ...``.

On this kernel (no BPF qdisc, no PIFO maps) the data path is SP-PIFO over eight
strict-priority HTB bands under a rate-limited HTB root, with WFQ or STFQ ranks
computed per packet by a tc egress program (see :mod:`.kernel`). Every other
scheduler runs on the reference runtime (``xnf sched simulate``).
"""
import os

import attrs

from xnf.nf import NetworkFunction
from xnf.plugins.pifo_sched import cli
from xnf.plugins.pifo_sched.kernel import MODES, NBANDS, RECORD, EgressDataPath, HtbBands


def _scheduler(value):
    if value not in MODES:
        raise ValueError(f"scheduler {value!r} has no kernel data path here: the tc egress ranker computes "
                         f"{' or '.join(MODES)} ranks; simulate the others with `xnf sched simulate {value}`")
    return value


@attrs.define
class PifoSchedConfig:
    scheduler: str = attrs.field(default="wfq", converter=_scheduler,
                                 metadata={"help": "rank function in BPF: wfq (finish tags) or stfq (start tags)"})
    weights: str = attrs.field(default="", metadata={"help": "per-port weights, e.g. 5201=1,5202=2,5203=3",
                                                     "metavar": "PORT=W,.."})
    rate: str = attrs.field(default="1gbit", metadata={"help": "egress rate limit of the HTB root",
                                                       "metavar": "RATE"})
    default_weight: float = attrs.field(default=1.0, metadata={"help": "weight of flows without a port weight"})
    limit: int = attrs.field(default=64, metadata={"help": "packets per band queue (pfifo limit)"})


class PifoSched(NetworkFunction):
    name = "pifo_sched"
    description = "programmable packet scheduling: WFQ/STFQ ranks at tc egress onto SP-PIFO HTB bands"
    objects = ("bpf/sched_egress.bpf.o",)
    hooks = ("tc-egress",)  # the HTB root it builds is a qdisc, but no program attaches there
    modes = ()
    Config = PifoSchedConfig

    def __init__(self, iface, config=None, netns=None, mode="auto"):
        super().__init__(iface, config, netns, mode)
        self._path = None

    def _data_path(self):
        c = self.config
        return EgressDataPath(self.iface, c.rate, c.weights, netns=self.netns, scheduler=c.scheduler,
                              default_weight=c.default_weight, limit=c.limit)

    def explain(self):
        """What this kernel runs instead of an exact PIFO, for `attach` to print."""
        # features probes the kernel: only where the qdisc choice is made
        from xnf.plugins.pifo_sched.features import bpf_qdisc_available

        have = "has the BPF qdisc, but its exact PIFO path is not shipped yet" if bpf_qdisc_available() \
            else "has no BPF qdisc"
        return (f"the kernel {have}: {self.config.scheduler} ranks at tc egress are mapped onto {NBANDS} "
                f"strict-priority HTB bands (SP-PIFO) under a {self.config.rate} HTB root")

    def attach(self):
        path = self._data_path()
        with self.building() as build:  # refuses if an instance (whole or broken) is there
            path.build_into(build.txn)
        self._path = path
        return self

    def detach(self):
        """Remove the program and the pins (under the interface lock), then the HTB root."""
        pins = self.pins
        with pins.locked():
            if self._path is not None:
                self._path.release()
                self._path = None
            pins.remove_all()
            HtbBands(self.iface, 0, self.netns).remove()

    @classmethod
    def clear(cls, iface, netns=None):
        """Remove a broken instance: its pins and records, then the HTB root it built."""
        pins = cls.pin_root(iface, netns)
        if not (pins.exists() or pins.leftovers()):
            return False
        with pins.locked():
            super().clear(iface, netns)
            HtbBands(iface, 0, netns).remove()
        return True

    @classmethod
    def attached(cls, iface, netns=None):
        record = cls.pin_root(iface, netns).read_record(RECORD)
        if record is None:
            return None
        weights = ",".join(f"{p}={w:g}" for p, w in record["weights"].items())
        config = PifoSchedConfig(scheduler=record["scheduler"], weights=weights, rate=f"{record['rate']}bit",
                                 default_weight=record["default_weight"], limit=record["limit"])
        return cls(iface, config, netns=netns)

    def _maps(self):
        # maps (and codec): not needed to list or parse options, only to read the pinned state
        from xnf.core.kernel.maps import Map

        if self._path is not None and self._path.collection is not None:
            return self._path.collection.maps
        maps_dir = self.pins.maps_dir
        return {name: Map.from_pin(os.path.join(maps_dir, name)) for name in ("flows", "bands")}

    def status(self):
        out = super().status()
        out.update(attrs.asdict(self.config))
        out["data_path"] = self.explain()
        try:
            maps = self._maps()
        except Exception as e:  # noqa: BLE001 - status reports what it cannot read
            out["error"] = str(e)
            return out
        path = self._path or self._data_path()
        out["flows"] = path.flow_bytes(maps)
        if self._path is not None:
            out["bands"] = self._path.band_stats()
        return out

    def run(self, out, stop):
        """Every second: bytes per flow and per-flow share since the previous line."""
        previous = {}
        out.write(self.explain() + "\n")
        while not stop.wait(1.0):
            flows = self._path.flow_bytes()
            delta = {k: v["bytes"] - previous.get(k, 0) for k, v in flows.items()}
            previous = {k: v["bytes"] for k, v in flows.items()}
            total = sum(delta.values()) or 1
            busy = sorted((k for k in delta if delta[k]), key=lambda k: -delta[k])[:8]
            out.write("  ".join(f"{k} {delta[k] / total:.3f}" for k in busy) + "\n")
            out.flush()

    @classmethod
    def register_cli(cls, subparsers):
        cli.register(subparsers)

    @classmethod
    def add_demo_arguments(cls, parser):
        cli.add_demo_arguments(parser)

    @classmethod
    def demo(cls, args):
        return cli.demo(args)

