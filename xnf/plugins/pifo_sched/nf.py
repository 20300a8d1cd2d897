"""``pifo_sched`` as a network function: ``xnf attach pifo_sched IFACE ...``.

Two data paths, chosen with ``--qdisc``:

``bpf``
    the BPF qdisc of :mod:`.qdisc` (Linux 6.16+ with ``CONFIG_NET_SCH_BPF``): an exact
    PIFO in the kernel's Qdisc layer running any of its built-in schedulers, or a
    plugin's own rank function (:func:`.registry.rank_object`);
``htb``
    SP-PIFO over eight strict-priority HTB bands under a rate-limited HTB root, with WFQ
    or STFQ ranks computed per packet by a tc egress program (see :mod:`.kernel`);
``auto`` (the default)
    ``bpf`` where the kernel has it, else ``htb``; :meth:`PifoSched.explain` says which.

The kind chosen is in the instance's record, so :meth:`PifoSched.attached` rebuilds the
same path in a later process. Schedulers that no kernel path runs are refused at
configuration with the reason; the reference runtime (``xnf sched simulate``) runs all.
"""
import json

import attrs

from xnf.core.errors import ConfigError
from xnf.nf import NetworkFunction
from xnf.plugins.pifo_sched import cli
from xnf.plugins.pifo_sched.kernel import MODES, NBANDS, RECORD, EgressDataPath, HtbBands

QDISCS = ("auto", "bpf", "htb")
BPF_RECORD = "qdisc_choice"
"""The record of an instance on the BPF qdisc: ``{"qdisc": "bpf", "config": {...}}``."""


def bpf_schedulers():
    """Names the BPF qdisc can run: its built-in schedulers and the plugins' rank objects."""
    # lazy: the qdisc package and the plugin scan only where the BPF qdisc is considered
    from xnf.plugins.pifo_sched import registry
    from xnf.plugins.pifo_sched.qdisc.bpf_qdisc import SCHEDULERS

    return sorted(set(SCHEDULERS) | set(registry.rank_objects()))


def _no_htb_path(name, why):
    return ValueError(f"scheduler {name!r} has no kernel data path here: {why}the tc egress ranker of the HTB "
                      f"path computes {' or '.join(MODES)} ranks; simulate the others with "
                      f"`xnf sched simulate {name}`")


def _check_choice(config, attribute, value):
    """The scheduler against the qdisc: every field is set when attrs runs validators."""
    # features probes the kernel: only when the choice depends on it
    from xnf.plugins.pifo_sched.features import BPF_QDISC_OPTION, bpf_qdisc_available, require_bpf_qdisc

    name = config.scheduler
    if config.qdisc not in QDISCS:
        raise ValueError(f"--qdisc {config.qdisc!r} is not one of {', '.join(QDISCS)}")
    if config.qdisc == "bpf":
        require_bpf_qdisc()
    elif name in MODES:
        return  # the HTB path runs it, and so does the BPF qdisc
    elif config.qdisc == "htb":
        raise _no_htb_path(name, "--qdisc htb was asked for, and ")
    elif not bpf_qdisc_available():
        raise _no_htb_path(name, f"the kernel has no BPF qdisc ({BPF_QDISC_OPTION}, Linux 6.16+), and ")
    known = bpf_schedulers()
    if name not in known:
        # lazy: the qdisc package only where the BPF qdisc is considered
        from xnf.plugins.pifo_sched.qdisc.bpf_qdisc import refusal

        raise ValueError(f"scheduler {name!r} cannot run in the BPF qdisc: {refusal(name)}; it runs "
                         f"{', '.join(known)}; simulate {name} with `xnf sched simulate {name}`")


def _params(value):
    """``--params`` as a dict: JSON text, ``@FILE`` of JSON, or a dict (the Python API)."""
    if isinstance(value, dict):
        return value
    text = value or ""
    if text.startswith("@"):
        try:
            with open(text[1:]) as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(f"cannot read --params file {text[1:]!r}: {e.strerror}", "check the path") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"--params is not JSON: {e}", "e.g. --params '{\"tree\": {...}}' or --params @FILE")
    if not isinstance(data, dict):
        raise ConfigError("--params must be a JSON object of scheduler options", "e.g. --params '{\"burst\": 15000}'")
    return data


_BPF_QDISC_HOW = {
    "fq_codel": "fq_codel serves buckets round robin by quantum, CoDel dropping at dequeue",
    "sp_pifo": "sp_pifo maps ranks onto strict-priority FIFO bands with adaptive bounds (SP-PIFO)",
}
"""What `explain` says of a scheduler the BPF qdisc runs without one exact PIFO."""


@attrs.define
class PifoSchedConfig:
    scheduler: str = attrs.field(default="wfq", metadata={
        "help": "rank function: wfq or stfq on either qdisc; with the BPF qdisc also its other schedulers and "
                "plugins' rank objects"})
    weights: str = attrs.field(default="", metadata={"help": "per-port weights, e.g. 5201=1,5202=2,5203=3",
                                                     "metavar": "PORT=W,.."})
    rate: str = attrs.field(default="1gbit", metadata={"help": "egress rate limit (the HTB root, or the BPF "
                                                               "qdisc's shaper)", "metavar": "RATE"})
    default_weight: float = attrs.field(default=1.0, metadata={"help": "weight of flows without a port weight"})
    limit: int = attrs.field(default=64, metadata={"help": "packets per band queue (pfifo limit); the BPF qdisc holds "
                                                           "the same in total: 8 x limit"})
    qdisc: str = attrs.field(default="auto", validator=_check_choice, metadata={
        "choices": QDISCS, "help": "bpf: exact PIFO in a BPF qdisc (Linux 6.16+, CONFIG_NET_SCH_BPF); htb: SP-PIFO "
                                   "over 8 HTB bands; auto: bpf where the kernel has it, else htb"})
    params: dict = attrs.field(factory=dict, converter=_params, metadata={
        "help": "more scheduler options for the BPF qdisc as JSON or @FILE (e.g. an hpfq tree)",
        "metavar": "JSON"})


class PifoSched(NetworkFunction):
    name = "pifo_sched"
    description = "programmable packet scheduling: an exact PIFO in a BPF qdisc, or SP-PIFO over HTB bands"
    objects = ("bpf/sched_egress.bpf.o",)
    hooks = ("tc-egress",)  # the qdiscs it builds are not hooks; the BPF qdisc is registered, not attached
    modes = ()
    Config = PifoSchedConfig

    def __init__(self, iface, config=None, netns=None, mode="auto"):
        super().__init__(iface, config, netns, mode)
        self._path = None

    @property
    def qdisc_kind(self):
        """``bpf`` or ``htb``: what ``--qdisc`` resolves to on this kernel."""
        if self.config.qdisc != "auto":
            return self.config.qdisc
        # features probes the kernel: only where the qdisc choice is made
        from xnf.plugins.pifo_sched.features import bpf_qdisc_available

        return "bpf" if bpf_qdisc_available() else "htb"

    def _data_path(self):
        c = self.config
        if self.qdisc_kind == "bpf":
            return BpfPath(self.iface, c, self.netns)
        return EgressDataPath(self.iface, c.rate, c.weights, netns=self.netns, scheduler=c.scheduler,
                              default_weight=c.default_weight, limit=c.limit)

    def explain(self):
        """Which data path runs and why, for `attach` to print."""
        # features probes the kernel: only where the qdisc choice is made
        from xnf.plugins.pifo_sched.features import BPF_QDISC_OPTION, bpf_qdisc_available

        c = self.config
        if self.qdisc_kind == "bpf":
            why = "--qdisc bpf" if c.qdisc == "bpf" else "the kernel has the BPF qdisc (--qdisc auto)"
            how = _BPF_QDISC_HOW.get(c.scheduler, f"{c.scheduler} ranks an exact PIFO (rank order, FIFO among "
                                                    f"equal ranks)")
            return f"{why}: {how} in the BPF qdisc at the root of {self.iface}, sending at most {c.rate}"
        if bpf_qdisc_available():
            why = f"--qdisc {c.qdisc}"
        else:
            why = f"the kernel has no BPF qdisc ({BPF_QDISC_OPTION}), so " + (
                "--qdisc auto uses HTB" if c.qdisc == "auto" else "the HTB path runs")
        return (f"{why}: {c.scheduler} ranks at tc egress are mapped onto {NBANDS} strict-priority HTB bands "
                f"(SP-PIFO, an approximation of a PIFO) under a {c.rate} HTB root")

    def attach(self):
        path = self._data_path()
        with self.building() as build:  # refuses if an instance (whole or broken) is there
            if self.qdisc_kind == "bpf":  # the HTB path's own record names its kind
                build.write_record(BPF_RECORD, {"qdisc": "bpf",
                                                "config": attrs.asdict(attrs.evolve(self.config, qdisc="bpf"))})
            path.build_into(build.txn)
        self._path = path
        return self

    def detach(self):
        """Remove the program and the pins (under the interface lock), and the qdisc built:
        the BPF qdisc before its registration (a pin) goes, the HTB root after the program."""
        pins = self.pins
        with pins.locked():
            if self._path is not None:
                self._path.release()
                self._path = None
            if self.qdisc_kind == "bpf":
                _remove_qdiscs(self.iface, self.netns)
            pins.remove_all()
            _remove_qdiscs(self.iface, self.netns)

    @classmethod
    def clear(cls, iface, netns=None):
        """Remove a broken instance: its pins and records, then the qdisc it built."""
        pins = cls.pin_root(iface, netns)
        if not (pins.exists() or pins.leftovers()):
            return False
        with pins.locked():
            super().clear(iface, netns)
            _remove_qdiscs(iface, netns)
        return True

    @classmethod
    def attached(cls, iface, netns=None):
        pins = cls.pin_root(iface, netns)
        record = pins.read_record(BPF_RECORD)
        if record is not None:
            config = PifoSchedConfig(**record["config"])
            return cls(iface, config, netns=netns)
        record = pins.read_record(RECORD)
        if record is None:
            return None
        weights = ",".join(f"{p}={w:g}" for p, w in record["weights"].items())
        config = PifoSchedConfig(scheduler=record["scheduler"], weights=weights, rate=f"{record['rate']}bit",
                                 default_weight=record["default_weight"], limit=record["limit"], qdisc="htb")
        return cls(iface, config, netns=netns)

    def _maps(self):
        if self._path is not None and self._path.collection is not None:
            return self._path.collection.maps
        return self.pins.open_maps(("flows", "bands"))

    def status(self):
        out = super().status()
        out.update(attrs.asdict(self.config))
        out["qdisc"] = self.qdisc_kind
        out["data_path"] = self.explain()
        if self.qdisc_kind == "bpf":
            return self._bpf_status(out)
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

    def _bpf_status(self, out):
        """Backlog, drops and per-flow figures of the BPF qdisc (from its pinned state)."""
        # lazy: the BPF qdisc (struct_ops loader) only where it is chosen
        from xnf.plugins.pifo_sched.qdisc import bpf_qdisc

        try:
            stats = self._path.qdisc.stats() if self._path is not None else bpf_qdisc.pinned_stats(self.pins)
        except Exception as e:  # noqa: BLE001 - status reports what it cannot read
            out["error"] = str(e)
            return out
        out.update(BpfPath.label_flows(stats, self.config))
        return out

    def _flows(self):
        """{flow: {"bytes": ...}} of the running data path."""
        if self.qdisc_kind == "bpf":
            return BpfPath.label_flows(self._path.qdisc.stats(), self.config)["flows"]
        return self._path.flow_bytes()

    def run(self, out, stop):
        """Every second: bytes per flow and per-flow share since the previous line."""
        previous = {}
        out.write(self.explain() + "\n")
        while not stop.wait(1.0):
            flows = self._flows()
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


def _remove_qdiscs(iface, netns):
    """Remove the root qdisc an instance built, whichever kind it is and only if it is ours
    (a foreign root is left alone); the kernel puts the default qdisc back."""
    # lazy: the BPF qdisc module only where an instance may have built one
    from xnf.plugins.pifo_sched.qdisc import bpf_qdisc

    HtbBands(iface, 0, netns).remove()
    bpf_qdisc.remove(iface, netns)


class BpfPath:
    """The BPF qdisc data path (:class:`~.qdisc.bpf_qdisc.BpfQdisc`) with the options of
    ``xnf attach``: flows by port from ``--weights``, ``--rate``, 8 x ``--limit`` packets."""

    def __init__(self, iface, config, netns=None):
        # lazy: the BPF qdisc (struct_ops loader) only where it is chosen
        from xnf.plugins.pifo_sched import registry
        from xnf.plugins.pifo_sched.qdisc.bpf_qdisc import BpfQdisc

        params = {"limit": config.limit * NBANDS, "rate": config.rate, "default_weight": config.default_weight}
        if config.weights:
            params["weights"] = config.weights  # "PORT=W,..": flows by port, in port order
        params.update(config.params)
        self.qdisc = BpfQdisc(iface, config.scheduler, params, netns=netns,
                              obj=registry.rank_object(config.scheduler))

    @property
    def collection(self):
        return self.qdisc.collection

    def build_into(self, txn):
        return self.qdisc.build_into(txn)

    def release(self):
        self.qdisc.release()

    @staticmethod
    def label_flows(stats, config):
        """The qdisc's per-flow figures keyed by what the user configured: ``port 5201``
        (flows by port are the ports in order, then ``other``), else ``flow N``."""
        # lazy: the port parser only where the BPF qdisc's figures are shown
        from xnf.plugins.pifo_sched.kernel import parse_port_weights

        ports = sorted(parse_port_weights(config.weights)) if config.weights else []
        names = {str(flow): f"port {port}" for flow, port in enumerate(ports)}
        if ports:
            names[str(len(ports))] = "other"
        flows = {names.get(k, f"flow {k}"): v for k, v in stats.get("flows", {}).items()}
        return dict(stats, flows=flows)
