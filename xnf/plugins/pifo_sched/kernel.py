"""The kernel data path on kernels without a BPF qdisc: SP-PIFO over HTB bands.

:class:`HtbBands` builds, through netlink, a rate-limited HTB root (``1:``, one class
``1:1`` at the link rate) with ``bands`` strict-priority leaf classes ``1:10``..
(HTB ``prio`` 0..bands-1, a token guaranteed rate, ceiling the link rate) each over a
short pfifo. :class:`EgressDataPath` loads ``bpf/sched_egress.bpf.o``, writes the
per-port weights as nanoseconds per byte of each flow's weighted share, and attaches
the program at tc egress (tcx or clsact), where it ranks every packet and selects its
band through ``skb->priority``. Detaching removes the program, then the HTB root, so
the kernel puts the interface's default qdisc back.
"""
import errno
import ipaddress
import os
import struct

import xnf
from xnf.core.attach.tc import attach_tc
from xnf.core.errors import AttachError, ConfigError, InterfaceNotFoundError, NamespaceNotFoundError
from xnf.core.kernel import netns as _netns
from xnf.core.kernel.pin import checkpoint
from xnf.core.uapi import TC_H_ROOT
from xnf.plugins.pifo_sched.shaping import NS, parse_rate

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpf", "sched_egress.bpf.o")
HTB_MAJOR = 1
ROOT_CLASS = 1
MINOR_BASE = 0x10
NBANDS = 8  # NBANDS in sched_egress.bpf.c; HTB has 8 priorities per level
DEFAULT_QDISCS = ("noqueue", "pfifo_fast", "mq", "fq_codel", "pfifo", "fq", "sfq", "noop")
MODES = {"stfq": 0, "wfq": 1}
RESERVED_FRACTION = 0.9  # of the link rate, shared out by weight (see _configure)
RECORD = "sched_record"  # the instance's record (bpffs names take no dots)
PINNED_MAPS = ("flows", "bands", "config")


def handle(major, minor=0):
    return (major << 16) | minor


def cost_q10(weight, total_weight, rate_bps):
    """Nanoseconds per byte (<< 10) of a flow sending at weight/total of ``rate_bps``."""
    return int(8 * NS * 1024 * total_weight / (weight * rate_bps))


def parse_port_weights(text):
    """``"5201=1,5202=2"`` (or a dict) -> {port: weight}."""
    if isinstance(text, dict):
        items = text.items()
    else:
        items = []
        for part in filter(None, (p.strip() for p in str(text or "").split(","))):
            port, sep, weight = part.partition("=")
            if not sep:
                raise ConfigError(f"weight {part!r} is not PORT=WEIGHT", "e.g. --weights 5201=1,5202=2,5203=3")
            items.append((port, weight))
    out = {}
    for port, weight in items:
        try:
            port, weight = int(port), float(weight)
        except ValueError:
            raise ConfigError(f"weight {port}={weight} is not PORT=WEIGHT with numbers",
                              "e.g. --weights 5201=1,5202=2") from None
        if not 0 < port < 65536 or weight <= 0:
            raise ConfigError(f"port {port} must be 1..65535 and weight {weight} positive",
                              "e.g. --weights 5201=1,5202=2")
        out[port] = weight
    return out


def root_qdisc(ifname, netns=None):
    """Kind and handle of the root qdisc of ``ifname`` (None, 0 if it has none)."""
    # netlink: pyroute2 (~100 ms) is loaded only where a netlink request is made
    from xnf.core.attach.netlink import rtnl

    index = _netns.ifindex(ifname, netns)
    with rtnl(netns) as ipr:
        for msg in ipr.get_qdiscs(index=index):
            if msg["parent"] == TC_H_ROOT:
                return msg.get_attr("TCA_KIND"), msg["handle"]
    return None, 0


class HtbBands:
    """The HTB tree the egress program classifies into (see module doc)."""

    def __init__(self, ifname, rate_bps, netns=None, bands=NBANDS, limit=64):
        self.ifname, self.rate, self.netns, self.bands, self.limit = ifname, rate_bps, netns, bands, limit

    def check(self):
        """Refuse an interface whose root qdisc is not a default one (xnf never replaces it)."""
        kind, _ = root_qdisc(self.ifname, self.netns)
        if kind not in (None,) + DEFAULT_QDISCS:
            raise AttachError(f"{self.ifname} already has a {kind} root qdisc",
                              "remove it first (tc qdisc del dev IFACE root); xnf does not replace it")

    def build(self):
        # netlink: pyroute2 (~100 ms) is loaded only where a netlink request is made
        from xnf.core.attach.netlink import NetlinkError, kernel_message, rtnl

        self.check()
        index = _netns.ifindex(self.ifname, self.netns)
        guaranteed = max(8000, self.rate // 1000)
        with rtnl(self.netns) as ipr:
            try:
                ipr.tc("add", "htb", index, handle(HTB_MAJOR), default=MINOR_BASE + self.bands - 1)
            except NetlinkError as e:
                raise AttachError(f"cannot add an HTB root qdisc on {self.ifname}: {kernel_message(e)}",
                                  "the kernel needs CONFIG_NET_SCH_HTB") from None
            try:
                ipr.tc("add-class", "htb", index, handle(HTB_MAJOR, ROOT_CLASS), parent=handle(HTB_MAJOR),
                       rate=f"{self.rate}bit", ceil=f"{self.rate}bit")
                for band in range(self.bands):
                    classid = handle(HTB_MAJOR, MINOR_BASE + band)
                    ipr.tc("add-class", "htb", index, classid, parent=handle(HTB_MAJOR, ROOT_CLASS),
                           rate=f"{guaranteed}bit", ceil=f"{self.rate}bit", prio=band, quantum=1514)
                    ipr.tc("add", "pfifo", index, handle(0x100 + band), parent=classid, limit=self.limit)
            except NetlinkError as e:
                self._delete(ipr, index)
                raise AttachError(f"cannot build the HTB bands on {self.ifname}: {kernel_message(e)}") from None
        return self

    @staticmethod
    def _delete(ipr, index):
        # netlink: pyroute2 (~100 ms) is loaded only where a netlink request is made
        from xnf.core.attach.netlink import NetlinkError

        try:
            ipr.tc("del", "htb", index, handle(HTB_MAJOR), parent=TC_H_ROOT)
        except NetlinkError as e:
            if e.code not in (errno.ENOENT, errno.EINVAL):
                raise

    def remove(self):
        """Delete our HTB root (only if it is still ours); the default qdisc comes back."""
        # netlink: pyroute2 (~100 ms) is loaded only where a netlink request is made
        from xnf.core.attach.netlink import rtnl

        try:
            index = _netns.ifindex(self.ifname, self.netns)
        except (InterfaceNotFoundError, NamespaceNotFoundError):
            return  # the interface (or its namespace) is gone, and its qdiscs with it
        kind, root = root_qdisc(self.ifname, self.netns)
        if kind == "htb" and root == handle(HTB_MAJOR):
            with rtnl(self.netns) as ipr:
                self._delete(ipr, index)


class EgressDataPath:
    """Load, configure and attach the ranking program; the HTB bands behind it."""

    def __init__(self, ifname, rate, weights, netns=None, scheduler="wfq", default_weight=1.0, limit=64):
        if scheduler not in MODES:
            raise ConfigError(f"the kernel data path computes wfq or stfq ranks, not {scheduler!r}",
                              "use --scheduler wfq or stfq; the other schedulers run in `xnf sched simulate`")
        self.ifname, self.netns = ifname, netns
        self.rate = parse_rate(rate, "rate")
        self.weights = parse_port_weights(weights)
        if default_weight <= 0:
            raise ConfigError(f"default weight must be positive, got {default_weight}", "e.g. 1")
        self.scheduler, self.default_weight, self.limit = scheduler, default_weight, limit
        self.collection = None
        self.attachment = None
        self.htb = HtbBands(ifname, self.rate, netns, NBANDS, limit)

    def record(self):
        return {"rate": self.rate, "weights": {str(p): w for p, w in self.weights.items()},
                "scheduler": self.scheduler, "default_weight": self.default_weight, "limit": self.limit,
                "htb": f"{HTB_MAJOR}:", "bands": NBANDS}

    def _configure(self):
        total = sum(self.weights.values()) or self.default_weight
        # shares of slightly less than the link: backlogged flows then all run ahead of
        # the clock, each with a tag of its own (see sched_egress.bpf.c)
        reference = int(self.rate * RESERVED_FRACTION)
        self.collection.maps["config"][0] = struct.pack(
            "<QIII4x", cost_q10(self.default_weight, total, reference), MODES[self.scheduler],
            HTB_MAJOR, MINOR_BASE)
        for port, weight in self.weights.items():
            self.collection.maps["weights"][struct.pack("<H", port)] = struct.pack(
                "<Q", cost_q10(weight, total, reference))

    def load(self):
        """Load the ranking program and write its configuration; nothing is attached."""
        self.collection = xnf.load(OBJECT)
        try:
            self._configure()
        except BaseException:
            self.collection.close()
            self.collection = None
            raise
        return self.collection

    def attach(self, pin_root=None):
        """Everything or nothing: on any failure what was made is removed again.

        With ``pin_root`` (a :class:`~xnf.core.attach.pinroot.PinRoot`) the instance is built under
        the interface lock in a staging directory and published whole (see
        :mod:`xnf.core.kernel.pin`); its record, naming the HTB root, is written before the HTB
        is built, so that a process killed afterwards leaves something to clear it by.
        """
        if pin_root is None:
            self.build_into(None)
            return self
        with pin_root.attaching() as txn:
            self.build_into(txn)
            txn.commit()
        return self

    def build_into(self, txn):
        """Load, build the HTB root, attach and pin into ``txn`` (a
        :class:`~xnf.core.attach.pinroot.Transaction` the caller commits; None: nothing pinned)."""
        self.load()
        checkpoint("loaded")
        built = False
        try:
            self.htb.check()
            if txn is not None:
                txn.write_record(RECORD, self.record())
            self.htb.build()
            built = True
            checkpoint("htb-built")
            if txn is not None:
                txn.intend("egress", self.collection.programs["sched_egress"])
            self.attachment = attach_tc(self.collection.programs["sched_egress"], self.ifname, "egress",
                                        netns=self.netns)
            checkpoint("attached-egress")
            if txn is not None:
                txn.store("egress", self.attachment)
                txn.pin_maps((name, self.collection.maps[name]) for name in PINNED_MAPS)
        except BaseException:
            if self.attachment is not None:
                self.attachment.detach()
                self.attachment = None
            if built:
                self.htb.remove()
            self.collection.close()
            self.collection = None
            raise

    def detach(self):
        """Detach the program, remove the HTB root, close everything (an unpinned data path)."""
        if self.attachment is not None:
            self.attachment.detach()
            self.attachment = None
        self.htb.remove()
        if self.collection is not None:
            self.collection.close()
            self.collection = None

    def release(self):
        """Drop our references without detaching (a pinned instance stays)."""
        if self.attachment is not None:
            self.attachment.close()
            self.attachment = None
        if self.collection is not None:
            self.collection.close()
            self.collection = None

    def flow_bytes(self, maps=None):
        """{port or 5-tuple text: bytes sent} from the flows map."""
        flows = (maps or self.collection.maps)["flows"]
        out = {}
        for key, value in flows.lookup_batch_raw() if hasattr(flows, "lookup_batch_raw") else []:
            saddr, daddr, sport, dport, proto = struct.unpack("<16s16sHHB3x", key)
            _finish, nbytes, packets, band, port = struct.unpack("<QQQIH2x", value)
            v4 = not any(saddr[4:]) and not any(daddr[4:])
            src = str(ipaddress.ip_address(saddr[:4])) if v4 else f"[{ipaddress.ip_address(saddr)}]"
            dst = str(ipaddress.ip_address(daddr[:4])) if v4 else f"[{ipaddress.ip_address(daddr)}]"
            out[f"{src}:{sport}>{dst}:{dport}/{proto}"] = {"bytes": nbytes, "packets": packets, "band": band,
                                                           "port": port}
        return out

    def band_stats(self):
        out = []
        for band in range(NBANDS):
            per_cpu = self.collection.maps["bands"].lookup_raw(struct.pack("<I", band))
            values = [struct.unpack_from("<QQ", per_cpu, off) for off in range(0, len(per_cpu), 16)]
            out.append({"band": band, "packets": sum(v[0] for v in values), "bytes": sum(v[1] for v in values)})
        return out
