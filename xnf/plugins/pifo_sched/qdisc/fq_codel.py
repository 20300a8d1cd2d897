"""FQ-CoDel in pifo_sched's BPF qdisc: its own object (``fq_codel_qdisc.bpf.c``), configured
from the simulator's options (``algorithms/fq_codel.py``), so ``flows``, ``quantum``,
``target_ns``, ``interval_ns``, ``mtu`` and ``capacity`` mean what they mean in
``xnf sched simulate fq_codel``. :class:`~.bpf_qdisc.BpfQdisc` loads, attaches and reads it
like its other schedulers.

Two differences, both said at attach:

* ``ecn``: the qdisc cannot mark Congestion Experienced (a struct_ops program's skb dynptr
  is read-only), so it always drops; ``ecn: true`` is refused, and ``ecn`` is false when
  not given (the simulator's default is true);
* ``hash`` (the kernel's only option): a packet's bucket is its flow's, as the simulator
  hashes the flow number (``flows`` buckets: crc32 of the flow), or with ``hash`` the
  kernel's flow hash of the packet (the 5-tuple, as Linux's fq_codel) modulo ``flows``.
  It is on unless the flows were chosen (a ``flows`` kind such as ``"mark"``, ``ports`` or
  port weights), since every unmarked packet is flow 0 and would share one bucket.
"""
import os

from xnf.core.errors import ConfigError
from xnf.plugins.pifo_sched.qdisc import INCLUDE_DIR, MAX_FLOWS

OBJECT = os.path.join(INCLUDE_DIR, "fq_codel_qdisc.bpf.o")
MAX_BUCKETS = 1024  # FQ_MAX_BUCKETS
SIMULATOR_OPTIONS = ("flows", "quantum", "target_ns", "interval_ns", "mtu", "ecn", "capacity")


class Options:
    """fq_codel's options, taken out of the qdisc's ``params`` (which keep the qdisc's own:
    ``limit``, ``rate``, ``flows`` as a kind, ``ports``, ``weights``)."""

    def __init__(self, params):
        from xnf.plugins.pifo_sched import registry  # lazy: the simulator's scheduler

        chosen = isinstance(params.get("flows"), str) or params.get("ports") or isinstance(params.get("weights"), str)
        self.hash = params.pop("hash", not chosen)
        if not isinstance(self.hash, bool):
            raise ConfigError(f"fq_codel: hash must be true or false, got {self.hash!r}",
                              "true: buckets by the kernel's flow hash of the packet; false: by its flow")
        options = {k: params.pop(k) for k in SIMULATOR_OPTIONS
                   if k in params and not (k == "flows" and isinstance(params[k], str))}
        if options.setdefault("ecn", False) is True:
            raise ConfigError("fq_codel: the BPF qdisc cannot mark ECN (a struct_ops program cannot write the "
                              "packet), so ecn: true cannot run there",
                              "give ecn: false (CoDel drops instead of marking), or simulate ECN with "
                              "`xnf sched simulate fq_codel`")
        self.sched = registry.create("fq_codel", options)  # the simulator's own checks
        config = self.sched.config
        if config["flows"] > MAX_BUCKETS:
            raise ConfigError(f"fq_codel: flows {config['flows']} is above the {MAX_BUCKETS} buckets of the BPF qdisc",
                              f"give flows {MAX_BUCKETS} or less")
        if config["interval_ns"] >= 1 << 31:
            raise ConfigError(f"fq_codel: interval_ns {config['interval_ns']} is 2^31 ns or more, beyond the BPF "
                              "qdisc's exact control law", "give an interval under 2.14 s")
        if config["quantum"] >= 1 << 31:
            raise ConfigError(f"fq_codel: quantum {config['quantum']} is too large", "give a quantum under 2 GiB")

    def buckets_of_flows(self):
        """The bucket the simulator puts each flow number below MAX_FLOWS in (its own rule,
        not a copy)."""
        index = {id(q): i for i, q in enumerate(self.sched.queues)}
        return [index[id(self.sched._queue_of(flow))] for flow in range(MAX_FLOWS)]

    def configure(self, rodata):
        """``(rodata, variables)`` of the object: the qdisc's common ``rodata`` (flows,
        shaper, limit) and fq_codel's, the limit no more than the simulator's capacity."""
        config = self.sched.config
        rodata = dict(rodata, cfg_limit=min(rodata["cfg_limit"], self.sched.capacity), cfg_buckets=config["flows"],
                      cfg_hash=int(self.hash), cfg_bucket_of=self.buckets_of_flows(),
                      cfg_quantum=config["quantum"], cfg_target_ns=config["target_ns"],
                      cfg_interval_ns=config["interval_ns"], cfg_interval_sq=config["interval_ns"] ** 2,
                      cfg_mtu=config["mtu"])
        return rodata, {}
