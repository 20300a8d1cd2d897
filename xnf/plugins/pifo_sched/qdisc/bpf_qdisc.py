"""Load, register and attach pifo_sched's BPF qdisc (Linux 6.16+, ``CONFIG_NET_SCH_BPF``).

API (used by :mod:`xnf.plugins.pifo_sched.nf`):

* ``SCHEDULERS``: the built-in schedulers the qdisc runs in the kernel (fifo,
  strict_priority, drr, stfq, wfq, wf2q, hpfq, srpt, lstf, sp_pifo, tbf, edt; all but
  tbf and edt leave in the simulator's order packet for packet,
  tests/vm_qdisc/test_qdisc_exactness.py; and fq_codel, an object and options of its own,
  :mod:`.fq_codel`); :func:`refusal` says why any other name is refused (None when it
  runs). SRPT reads the bytes left in the flow from skb->priority
  (0: unknown, ranked last), so its flows come from the mark or the port. LSTF reads a
  packet's slack (ns) from skb->priority, and when that is 0 takes the flow's
  (``slack_ns``, ``default_slack_ns``); a slack beyond the rank window (2**20 x
  ``resolution_ns``), which the simulator refuses, is cut to its end. SP-PIFO ranks a
  packet by its flow's start tag from ``weights`` (the simulator's rank for packets that
  carry none: no input rank reaches the kernel) and keeps ``bands`` strict-priority FIFOs
  with push-up/push-down bounds (``adaptive``; else equal bands of ``rank_max``);
* ``BpfQdisc(iface, scheduler, params=None, netns=None, obj=None)``: ``params`` are the
  simulator's options of that scheduler (``weights``, ``default_weight``, ``max_packet``,
  ``bands``, ``priorities``, ``tree``, ``order``, ``granularity``, ``rates``, ``rate``,
  ``burst``, ``slack_ns``, ``default_slack_ns``, ``resolution_ns``, ``adaptive``,
  ``rank_max``, ``capacity``) plus ``limit`` (packets,
  at most :data:`MAX_PACKETS`), ``flows`` (how a packet's flow 0..63 is found: ``"mark"``,
  skb->mark, the default; ``"priority"``, skb->priority; ``"port"``, the TCP/UDP
  destination port, else the source port, flow ``i`` being ``ports[i]`` and every other
  packet flow ``len(ports)``), ``ports``, and ``rate`` (bit/s or ``"20mbit"``: the dequeue
  hook sends no faster, waking through the watchdog). ``weights`` given as the CLI's
  ``"PORT=W,..."`` string mean flows by port, in port order. ``obj`` a plugin's rank
  object (``xnf_rank.h``), for a scheduler not in ``SCHEDULERS``.
  ``build_into(txn)`` loads the object, registers its struct_ops (a BPF link), creates the
  root qdisc (RTM_NEWQDISC, kind = the instance's ``kind``), and with a
  :class:`~xnf.core.attach.pinroot.Transaction` pins the link and the state map and
  writes a record naming the qdisc; any failure removes what was made.
  ``detach()`` deletes the qdisc (the kernel restores the default) and unregisters;
  ``release()`` drops this process's references only (a pinned instance stays);
  ``stats()`` backlog, drops and per-flow figures; ``hold(True/False)`` keeps every packet
  queued or releases them (tests); ``departures()`` the arrival numbers (from 1) of the
  dequeued packets, in departure order (the first 4096); ``arrivals()`` the packets'
  arrival times (ns of CLOCK_MONOTONIC, the first 4096).
* :func:`pinned_stats(pin_root)` the same figures from the pins of an attached instance;
  :func:`remove(iface, netns)` deletes the root qdisc if it is one of ours.

The simulator's tags are floats (``int(size * scale / weight + 0.5)``); the kernel's are
integers, ``(2 * size * num + den) // (2 * den)`` with ``num / den`` the exact fraction of
``scale / weight``. :func:`cost_fraction` checks that both agree for every packet size up to
64 KiB and refuses weights for which they do not (e.g. 0.1 or 1/3), so the kernel's order
is the simulator's, packet for packet. SP-PIFO's tags round down
(``int(size * 64 / weight)``): ``cost_fraction(..., floor=True)`` checks that form.
"""
import errno
import itertools
import functools
import math
import os
import struct
from fractions import Fraction

from xnf.core.errors import AttachError, ConfigError
from xnf.plugins.pifo_sched.qdisc import BUILTIN_OBJECT, MAX_FLOWS
from xnf.plugins.pifo_sched.shaping import NS, parse_rate

SCHEDULERS = ("fifo", "strict_priority", "drr", "stfq", "wfq", "wf2q", "hpfq", "srpt", "lstf", "sp_pifo", "tbf",
              "edt", "fq_codel")
"""Built-in schedulers the BPF qdisc runs, each with the simulator's exact order."""
MAX_PACKETS = 4096  # XNF_MAX_PKTS
MAX_NODES = 16  # XNF_MAX_NODES
MAX_DEPTH = 4  # XNF_MAX_DEPTH: tree levels below the root
LOG_SIZE = 4096  # XNF_LOG_SIZE: arrivals and departures logged
SP_PIFO_SCALE = 64  # sp_pifo.py: a packet moves its flow's finish tag on by int(size * 64 / weight)
NONE = 0xFFFFFFFF
MODE_RANK, MODE_TREE, MODE_WF2Q, MODE_FLOWS, MODE_SPPIFO = 0, 1, 2, 3, 4
RANK_FIFO, RANK_SP, RANK_EDT, RANK_DRR = 0, 1, 2, 3
FLOWS_BY = {"mark": 0, "priority": 1, "port": 2}
OPS = "xnf_pifo"  # the struct_ops variable of every qdisc object
RECORD = "bpf_qdisc"  # the instance's record (kind, handle)
LINK_PIN = "qdisc_ops"  # the struct_ops link's pin: keeps the kind registered
STATE_MAP = ".bss"
PINNED_MAPS = ((STATE_MAP, "state"),)
CHECKED_SIZES = 1 << 16  # packet sizes for which integer and float tags must agree
ROOT_HANDLE = 0xF1C0 << 16  # "f1c0:", the root qdisc's handle
_INSTANCES = itertools.count()


def refusal(name):
    """Why ``name`` cannot run in the BPF qdisc (a one-line reason), or None if it can."""
    if name in SCHEDULERS:
        return None
    return f"{name!r} is no built-in scheduler of the BPF qdisc and ships no rank object"


def cost_fraction(scale, weight, what, floor=False):
    """``(num, den)`` with ``(2*s*num + den) // (2*den) == int(s * scale / weight + 0.5)``
    (``floor``: ``s*num // den == int(s * scale / weight)``) for every size ``s`` below
    64 KiB; :class:`ConfigError` when no small fraction does."""
    found = _cost_fraction(scale, weight, floor)
    if isinstance(found, str):
        raise ConfigError(f"{what}: weight {weight!r} (scale {scale!r}) {found}",
                          "use integer weights, or fractions with small denominators such as 0.5")
    return found


@functools.lru_cache(maxsize=256)
def _cost_fraction(scale, weight, floor):
    """The fraction, or why there is none (checked once per pair: 64 Ki sizes)."""
    exact = Fraction(repr(scale)) / Fraction(repr(weight))
    num, den = exact.numerator, exact.denominator
    if num >= 1 << 40 or den >= 1 << 40:
        return "gives tags the kernel cannot compute exactly"
    for size in range(CHECKED_SIZES):
        if floor:
            simulator, kernel = int(size * scale / weight), size * num // den
        else:
            simulator, kernel = max(1, int(size * scale / weight + 0.5)), max(1, (2 * size * num + den) // (2 * den))
        if simulator != kernel:
            return f"gives a {size}-byte packet a different tag in integers than the simulator's floats"
    return num, den


def _child(parent=NONE, num=1, den=1, weight=0, configured=0, band=NONE):
    return {"parent": parent, "weight": weight, "cost_num": num, "cost_den": den, "configured": configured,
            "band": band, "head": NONE, "tail": NONE}


def _unique_kind():
    """A qdisc kind no other instance on the host uses, in the 15 characters ``Qdisc_ops.id``
    holds: "xnfq", the pid in 6 hex digits (pid_max is at most 2**22), and this process's
    instance count in 5."""
    return f"xnfq{os.getpid():06x}{next(_INSTANCES) % 0x100000:05x}"


class BpfQdisc:
    """One BPF qdisc at the root of an interface (see the module doc)."""

    def __init__(self, iface, scheduler, params=None, netns=None, obj=None):
        self.ifname, self.netns, self.scheduler = iface, netns, scheduler
        self.params = dict(params or {})
        if obj is None:
            why = refusal(scheduler)
            if why is not None:
                raise ConfigError(f"scheduler {scheduler!r} cannot run in the BPF qdisc: {why}",
                                  f"choose one of {', '.join(SCHEDULERS)}, or simulate it with "
                                  f"`xnf sched simulate {scheduler}`")
        self.fq_codel = None
        if obj is None and scheduler == "fq_codel":  # an object and options of its own
            from xnf.plugins.pifo_sched.qdisc import fq_codel

            obj, self.fq_codel = fq_codel.OBJECT, fq_codel.Options(self.params)
        self.obj = obj or BUILTIN_OBJECT
        self.kind = _unique_kind()
        self.collection = None
        self.registration = None
        self.qdisc_made = False
        rate = self.params.pop("rate", None)
        self.rate = parse_rate(rate, "rate") if rate else 0
        self.limit = int(self.params.pop("limit", 0) or 0)
        self.ports = [int(p) for p in self.params.pop("ports", None) or []]
        flows = self.params.pop("flows", None)
        if isinstance(self.params.get("weights"), str):  # "PORT=W,...": the CLI's weights
            from xnf.plugins.pifo_sched.kernel import parse_port_weights

            by_port = parse_port_weights(self.params["weights"])
            self.ports = sorted(by_port)
            self.params["weights"] = [by_port[p] for p in self.ports]
            flows = flows or "port"
        flows = flows or ("port" if self.ports else "mark")
        if flows not in FLOWS_BY:
            raise ConfigError(f"flows {flows!r} is not one of {', '.join(FLOWS_BY)}",
                              "mark: skb->mark is the flow (0..63); priority: skb->priority; port: by "
                              "TCP/UDP port (ports=[...], flow i is ports[i])")
        if flows == "port" and not 0 < len(self.ports) < MAX_FLOWS:
            raise ConfigError(f"flows by port need 1..{MAX_FLOWS - 1} ports, got {len(self.ports)}",
                              "give ports=[5201, 5202] or weights as PORT=WEIGHT,...")
        self.flows_by = flows
        self.rodata, self.variables = self._configure()

    # --- configuration ----------------------------------------------------------------------
    def _sim(self):
        """The simulator's scheduler with these options: the source of every number."""
        from xnf.plugins.pifo_sched import registry  # lazy: the scheduler registry
        from xnf.plugins.pifo_sched.scheduler import COMMON_DEFAULTS

        cls = registry.load(self.scheduler)
        # the CLI passes weights to every scheduler: those without weights (fifo,
        # strict_priority, hpfq) ignore them, as the simulator would never see them
        options = dict(self.params)
        if self.scheduler == "tbf" and self.rate:
            options["rate"] = self.rate  # the token bucket's own rate
        for key in ("weights", "default_weight"):
            if key not in cls.defaults and key not in COMMON_DEFAULTS:
                options.pop(key, None)
        return cls(options)

    def _configure(self):
        """(.rodata values, other globals) for the object, from the simulator's scheduler."""
        children = [_child() for _ in range(MAX_FLOWS + MAX_NODES)]
        rodata = {"cfg_flow_by": FLOWS_BY[self.flows_by]}
        if self.flows_by == "port":
            rodata["cfg_default_flow"] = len(self.ports)  # every other packet
        if self.rate:
            rodata["cfg_ns_per_byte_q16"] = round(8 * NS * 65536 / self.rate)
        variables = {}
        name = self.scheduler if self.obj == BUILTIN_OBJECT else None
        sched = self._sim() if name is not None else None
        capacity = getattr(sched, "capacity", MAX_PACKETS)
        limit = self.limit or capacity
        if limit > MAX_PACKETS:
            if self.limit:
                raise ConfigError(f"limit {limit} is above the {MAX_PACKETS} packets the BPF qdisc holds",
                                  f"give --limit {MAX_PACKETS} or less")
            limit = MAX_PACKETS
        rodata["cfg_limit"] = min(limit, capacity)
        if self.fq_codel is not None:
            return self.fq_codel.configure(rodata)
        if name is None or name == "fifo":
            rodata.update(cfg_mode=MODE_RANK)
            if name == "fifo":
                rodata["cfg_rank"] = RANK_FIFO
        elif name == "strict_priority":
            rodata.update(cfg_mode=MODE_RANK, cfg_rank=RANK_SP, cfg_bands=sched.bands)
            for flow in range(MAX_FLOWS):
                band = _weight(sched.config["priorities"], flow)
                if band is not None:
                    children[flow]["band"] = min(max(int(band), 0), sched.bands - 1)
        elif name in ("stfq", "wfq"):
            rodata.update(cfg_mode=MODE_TREE, cfg_by_finish=int(sched.root.by_finish))
            children[MAX_FLOWS] = _child()  # the root node
            for flow in range(MAX_FLOWS):
                w = _weight(sched.config["weights"], flow, sched.config["default_weight"])
                num, den = cost_fraction(sched.root.scale, w, f"flow {flow}")
                children[flow] = _child(0, num, den)
        elif name == "hpfq":
            rodata.update(cfg_mode=MODE_TREE, cfg_by_finish=int(sched.root.by_finish))
            self._tree(sched, children)
        elif name == "drr":  # the rank is the packet's round; quanta must be whole bytes
            rodata.update(cfg_mode=MODE_RANK, cfg_rank=RANK_DRR, cfg_rank_windows=1,
                          cfg_range_shift=sched.pifo.rank_range.bit_length() - 1)
            for flow in range(MAX_FLOWS):
                quantum = sched.quantum_of(flow)
                if quantum != int(quantum):
                    raise ConfigError(f"drr: flow {flow}'s quantum x weight is {quantum} bytes, not a whole number",
                                      "choose weights that make quantum x weight an integer")
                children[flow]["cost_num"] = int(quantum)
        elif name == "srpt":  # the bytes left in the flow ride in skb->priority (0: unknown)
            from xnf.plugins.pifo_sched.algorithms.srpt import RANGE

            rodata.update(cfg_mode=MODE_FLOWS, cfg_range_shift=RANGE.bit_length() - 1,
                          cfg_granularity=sched.granularity)
        elif name == "lstf":
            self._lstf(sched, rodata, children)
        elif name == "sp_pifo":  # the flows' start tags onto strict-priority FIFOs
            rodata.update(cfg_mode=MODE_SPPIFO, cfg_sp_bands=len(sched.bands),
                          cfg_sp_adaptive=int(bool(sched.config["adaptive"])))
            if not sched.config["adaptive"]:
                rodata["cfg_sp_rank_max"] = sched.config["rank_max"]
            for flow in range(MAX_FLOWS):
                num, den = cost_fraction(SP_PIFO_SCALE, _weight(sched.config["weights"], flow, 1.0),
                                         f"flow {flow}", floor=True)
                children[flow].update(cost_num=num, cost_den=den)
        elif name == "tbf":  # FIFO behind the dequeue hook's shaper, at the bucket's rate and depth
            rodata.update(cfg_mode=MODE_RANK, cfg_rank=RANK_FIFO,
                          cfg_ns_per_byte_q16=round(8 * NS * 65536 / sched.rate),
                          cfg_burst_ns=sched.config["burst"] * 8 * NS // sched.rate)
        elif name == "edt":  # ranks are departure times; the dequeue hook waits for them
            rodata.update(cfg_mode=MODE_RANK, cfg_rank=RANK_EDT, cfg_time_gated=1)
            for flow in range(MAX_FLOWS):
                rate = sched.rate_of(flow)
                if rate:
                    children[flow].update(cost_num=8 * NS, cost_den=rate)
                else:
                    children[flow].update(cost_num=0, cost_den=1)
        elif name == "wf2q":
            rodata["cfg_mode"] = MODE_WF2Q
            variables.update(self._wf2q(sched, children))
            rodata["cfg_wf_num"] = variables.pop("num")
        variables["ch"] = children
        return rodata, variables

    @staticmethod
    def _lstf(sched, rodata, children):
        """Deadlines in units of resolution_ns; each flow's slack (for packets that carry none)."""
        from xnf.plugins.pifo_sched.algorithms.lstf import RANGE

        window = RANGE * sched.resolution
        rodata.update(cfg_mode=MODE_FLOWS, cfg_lstf=1, cfg_range_shift=RANGE.bit_length() - 1,
                      cfg_resolution_ns=sched.resolution, cfg_max_slack_ns=window - 1)
        for flow in range(MAX_FLOWS):
            slack = _weight(sched.config["slack_ns"], flow, sched.config["default_slack_ns"])
            if not 0 <= slack < window:
                raise ConfigError(f"lstf: flow {flow}'s slack {slack!r} ns is not within [0, {window}) ns "
                                  f"(2**20 x resolution_ns)", "give a smaller slack, or raise resolution_ns")
            children[flow]["cost_num"] = int(slack)

    @staticmethod
    def _tree(sched, children):
        """Node indices in depth-first order (the root is 0); each child's cost fraction."""
        nodes = []

        def visit(node, parent):
            if len(nodes) >= MAX_NODES:
                raise ConfigError(f"the hpfq tree has more than {MAX_NODES} inner nodes",
                                  f"the BPF qdisc has {MAX_NODES} scheduling nodes")
            index = len(nodes)
            nodes.append(node)
            children[MAX_FLOWS + index] = _child(parent)
            return index

        def walk(node, index, depth):
            if depth > MAX_DEPTH:
                raise ConfigError(f"the hpfq tree is deeper than {MAX_DEPTH} levels",
                                  f"the BPF qdisc walks {MAX_DEPTH} levels below the root")
            for sub in [n for n in _inner_nodes(sched) if n.parent is node]:
                i = visit(sub, index)
                num, den = cost_fraction(node.scale, sub.weight, f"node {sub.key}")
                children[MAX_FLOWS + i].update(cost_num=num, cost_den=den)
                walk(sub, i, depth + 1)

        walk(sched.root, visit(sched.root, NONE), 1)
        where = {id(n): i for i, n in enumerate(nodes)}
        for flow in range(MAX_FLOWS):
            leaf = sched.leaves.get(flow)
            if leaf is None:  # (a FlowQueue has a length: `or` would skip an empty one)
                leaf = sched.leaves.get(str(flow))
            parent, weight = (leaf.parent, leaf.weight) if leaf is not None else (sched.root, 1.0)
            if leaf is not None and _depth(leaf) > MAX_DEPTH:
                raise ConfigError(f"flow {flow} is deeper than {MAX_DEPTH} levels in the hpfq tree")
            num, den = cost_fraction(parent.scale, weight, f"flow {flow}")
            children[flow] = _child(where[id(parent)], num, den)

    @staticmethod
    def _wf2q(sched, children):
        """Integer weights (all scaled by one denominator), cost fractions, the total and
        the numerator of the virtual-time advance."""
        weights = {flow: _weight(sched.config["weights"], flow, sched.config["default_weight"])
                   for flow in range(MAX_FLOWS)}
        fractions = [Fraction(repr(w)) for w in weights.values()] + [Fraction(repr(sched.scale))]
        fractions += [Fraction(repr(w)) for w in _values(sched.config["weights"])]
        denom = math.lcm(*(f.denominator for f in fractions))
        total = Fraction(repr(sched.total_weight)) * denom
        num = Fraction(repr(sched.scale)) * denom
        if total.denominator != 1 or num.denominator != 1 or num >= 1 << 40:
            raise ConfigError("wf2q: the weights give virtual times the kernel cannot compute exactly",
                              "use integer weights")
        for flow, w in weights.items():
            cnum, cden = cost_fraction(sched.scale, w, f"flow {flow}")
            children[flow] = _child(0, cnum, cden, weight=int(Fraction(repr(w)) * denom),
                                    configured=int(sched._configured(flow)))
        # the advance, size * scale // total, for the totals flows not configured can add
        default = Fraction(repr(sched.config["default_weight"])) * denom
        for extra in range(MAX_FLOWS + 1):
            t = int(total + extra * default)
            real = sched.total_weight + extra * sched.config["default_weight"]
            for size in (1, 64, 577, 1000, 1499, 1500, 1514, 9000, 65535):
                if t and int(size * sched.scale / real) != size * int(num) // t:
                    raise ConfigError("wf2q: the weights give virtual times the kernel cannot compute exactly",
                                      "use integer weights")
        return {"wf_total": int(total), "num": int(num)}

    def spec(self):
        """The object's spec with this instance's configuration and qdisc kind."""
        import xnf  # lazy: keeps import xnf light
        from xnf.core.object import btf as B

        spec = xnf.open_object(self.obj)
        if OPS not in spec.maps or spec.maps[OPS].struct_ops is None:
            raise ConfigError(f"{self.obj} has no struct_ops variable {OPS!r}",
                              "build the rank object from C that includes xnf_rank.h")
        for key, value in self.rodata.items():
            if key in spec.rodata:
                spec.rodata[key] = value
            elif key not in ("cfg_rank", "cfg_bands"):  # the built-in object's own
                raise ConfigError(f"{self.obj} lacks {key!r}: not built from this xnf_qdisc.h",
                                  "rebuild the rank object against xnf.plugins.pifo_sched.qdisc.INCLUDE_DIR")
        for key, value in self.variables.items():
            spec.variables[key] = value
        spec.maps[OPS].struct_ops.set_member(spec.btf, "id", self.kind.encode())
        # xnf_qdisc.h: the slot map names only its value size (clang 14 loses the kptr tag
        # in a map definition); its value type is struct xnf_slot
        slots = spec.maps["slots"]
        slots.btf_value_type_id = spec.btf.find("xnf_slot", B.KIND_STRUCT) or 0
        return spec

    # --- life cycle ---------------------------------------------------------------------------
    def load(self):
        """Load the object and register its struct_ops: the kind becomes usable."""
        import xnf  # lazy: keeps import xnf light

        from xnf.plugins.pifo_sched.features import require_bpf_qdisc

        require_bpf_qdisc()
        self.collection = xnf.load(self.spec())
        try:
            for flow, port in enumerate(self.ports):
                self.collection.maps["port_flows"][port] = flow
            self.registration = self.collection.maps[OPS].register()
        except BaseException:
            self.collection.close()
            self.collection = None
            raise
        return self.collection

    def record(self):
        return {"kind": self.kind, "handle": ROOT_HANDLE, "scheduler": self.scheduler, "obj": self.obj,
                "flows": self.flows_by, "ports": self.ports, "rate": self.rate, "limit": self.rodata["cfg_limit"]}

    def build_into(self, txn):
        """Load, register, create the root qdisc and (``txn`` not None) pin; all or nothing."""
        from xnf.core.kernel.pin import checkpoint
        from xnf.plugins.pifo_sched.kernel import root_qdisc

        kind, _ = root_qdisc(self.ifname, self.netns)
        from xnf.plugins.pifo_sched.kernel import DEFAULT_QDISCS

        if kind not in (None,) + DEFAULT_QDISCS:
            raise AttachError(f"{self.ifname} already has a {kind} root qdisc",
                              "remove it first (tc qdisc del dev IFACE root); xnf does not replace it")
        self.load()
        checkpoint("loaded")
        try:
            if txn is not None:
                txn.write_record(RECORD, self.record())
            self._create_qdisc()
            checkpoint("qdisc-created")
            if txn is not None:
                txn.store(LINK_PIN, _LinkPin(self.registration.link_fd))
                txn.pin_maps((pin, self.collection.maps[name]) for name, pin in PINNED_MAPS)
        except BaseException:
            self.detach()
            raise
        return self

    def attach(self):
        """Without pins: the qdisc lives while this object does (tests, demos)."""
        return self.build_into(None)

    def _create_qdisc(self):
        from xnf.core.attach.netlink import NetlinkError, kernel_message, rtnl
        from xnf.core.kernel import netns as _netns
        from xnf.core.uapi import TC_H_ROOT

        index = _netns.ifindex(self.ifname, self.netns)
        with rtnl(self.netns) as ipr:
            try:
                ipr.tc("add", self.kind, index, ROOT_HANDLE, parent=TC_H_ROOT)
            except NetlinkError as e:
                raise AttachError(f"cannot add the BPF qdisc {self.kind} at the root of {self.ifname}: "
                                  f"{kernel_message(e)}") from None
        self.qdisc_made = True

    def detach(self):
        """Delete our root qdisc (the kernel restores the default), unregister, close."""
        if self.qdisc_made:
            remove(self.ifname, self.netns, kind=self.kind)
            self.qdisc_made = False
        self.release()

    def release(self):
        """Drop this process's references (a pinned instance stays attached)."""
        if self.registration is not None:
            self.registration.close()
            self.registration = None
        if self.collection is not None:
            self.collection.close()
            self.collection = None

    # --- run time -----------------------------------------------------------------------------
    def hold(self, on=True):
        """Keep every packet queued (True) or let the qdisc dequeue again (False): the
        watchdog polls the switch every ``cfg_hold_poll_ns`` (1 ms)."""
        self.collection.data[STATE_MAP]["hold"] = int(bool(on))

    def departures(self):
        """Arrival numbers (from 1) of the packets dequeued so far, in order (the first 4096)."""
        state = self.collection.data[STATE_MAP]
        return list(state["deq_log"][:state["log_n"]])

    def arrivals(self):
        """Arrival times (ns of CLOCK_MONOTONIC) of the packets enqueued so far (the first 4096)."""
        state = self.collection.data[STATE_MAP]
        return list(state["arr_log"][:min(state["seq_in"], LOG_SIZE)])

    def stats(self):
        return _stats(self.collection.data[STATE_MAP])


def _weight(weights, key, default=None):
    from xnf.plugins.pifo_sched.scheduler import weight_of  # lazy: the scheduler base module

    return weight_of(weights, key, default)


def _values(weights):
    if isinstance(weights, dict):
        return list(weights.values())
    return list(weights or [])


def _inner_nodes(sched):
    """Every inner node of an Hpfq tree (FairNode), parents before children."""
    from xnf.plugins.pifo_sched.hierarchy import FairNode  # lazy: the hierarchy module

    seen, out = set(), []
    for leaf in sched.leaves.values():
        chain, node = [], leaf.parent
        while node is not None and id(node) not in seen:
            chain.append(node)
            seen.add(id(node))
            node = node.parent
        out.extend(reversed(chain))
    for node in sched.class_nodes.values():
        if id(node) not in seen:
            seen.add(id(node))
            out.append(node)
    return [n for n in out if isinstance(n, FairNode)]


def _depth(leaf):
    depth, node = 0, leaf.parent
    while node is not None:
        depth, node = depth + 1, node.parent
    return depth


class _LinkPin:
    """The struct_ops link as a transaction's attachment: pinned, it keeps the kind registered."""

    def __init__(self, link_fd):
        self.fd, self.pin_path = link_fd, None

    def pin(self, path):
        from xnf.core.kernel import syscall

        syscall.obj_pin(int(self.fd), path)
        self.pin_path = path


def _get(obj, name):
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def _stats(state):
    """Backlog, drops and per-flow figures from the decoded state (.bss) of a qdisc object."""
    flows = {}
    for flow, c in enumerate(_get(state, "ch")[:MAX_FLOWS]):
        sent, drops, queued = _get(c, "sent_packets"), _get(c, "drops"), _get(c, "count")
        if sent or drops or queued:
            flows[str(flow)] = {"packets": sent, "bytes": _get(c, "sent_bytes"), "drops": drops, "backlog": queued}
    # the object's drop counters: pifo_qdisc's overflow, rank and range; fq_codel's overflow and codel
    drops = {k: _get(state, "drops_" + k) for k in ("overflow", "rank", "range", "codel") if "drops_" + k in state.keys()}
    out = {"backlog_packets": _get(state, "count"), "enqueued_packets": _get(state, "enq_packets"),
           "enqueued_bytes": _get(state, "enq_bytes"), "sent_packets": _get(state, "deq_packets"),
           "sent_bytes": _get(state, "deq_bytes"), "drops": sum(drops.values()),
           "drops_overflow": drops["overflow"], "errors": _get(state, "errors"),
           "held": bool(_get(state, "hold")), "flows": flows}
    if "codel" in drops:
        out["drops_codel"] = drops["codel"]
    if "beyond_window" in state.keys():  # a PIFO's windows (fq_codel has none)
        out["beyond_window"] = _get(state, "beyond_window")
    return out


def pinned_stats(pin_root):
    """:meth:`BpfQdisc.stats` of an attached instance, from its pinned state map."""
    from xnf.core.kernel.maps import Map  # lazy: map codec only to read pinned state

    state = Map.from_pin(os.path.join(pin_root.maps_dir, dict(PINNED_MAPS)[STATE_MAP]))
    try:
        return _stats(state[0])
    finally:
        state.close()


def remove(iface, netns=None, kind=None):
    """Delete the root qdisc of ``iface`` if it is one of ours (kind ``xnfq*``, or exactly
    ``kind``); the kernel puts the default qdisc back. A foreign root is left alone."""
    from xnf.core.attach.netlink import NetlinkError, rtnl
    from xnf.core.errors import InterfaceNotFoundError, NamespaceNotFoundError
    from xnf.core.kernel import netns as _netns
    from xnf.core.uapi import TC_H_ROOT
    from xnf.plugins.pifo_sched.kernel import root_qdisc

    try:
        index = _netns.ifindex(iface, netns)
        current, handle = root_qdisc(iface, netns)
    except (InterfaceNotFoundError, NamespaceNotFoundError):
        return False  # gone, and its qdiscs with it
    if current is None or not (current == kind if kind else current.startswith("xnfq")):
        return False
    with rtnl(netns) as ipr:
        try:
            ipr.tc("del", current, index, handle, parent=TC_H_ROOT)
        except NetlinkError as e:
            if e.code not in (errno.ENOENT, errno.EINVAL):  # already gone
                raise
    return True


