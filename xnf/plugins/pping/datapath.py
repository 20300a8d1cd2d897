"""pping's BPF data path on one interface: load, attach, read, detach.

:class:`Datapath` loads ``pping.bpf.o`` with its ``.rodata`` set from a
:class:`~xnf.plugins.pping.config.PpingConfig` and its maps sized from it, attaches the
egress program at tc egress and the ingress program at tc ingress or XDP, arms the
clean-up timer (timestamp and flow expiry run in the kernel, so a pinned instance
needs no process), and reads events, counters and per-prefix histograms. Any failure
on the way detaches and closes what was already done: nothing is left half attached.

A pinned instance (``xnf attach pping IFACE``) keeps its maps and attachments under
the network function's :class:`~xnf.core.attach.pinroot.PinRoot`, built and removed with the attach
protocol of :mod:`xnf.core.kernel.pin` (lock, staging directory, atomic rename);
:meth:`Datapath.from_pins` opens it again from any process.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import socket
import struct
import time

import attrs

import xnf
from xnf.core.attach import attach_tc
from xnf.core.attach.tc import edge
from xnf.core.errors import AttachError, PinError, XnfError
from xnf.core.kernel import netns as _netns
from xnf.core.kernel.maps import possible_cpus
from xnf.core.kernel.pin import checkpoint
from xnf.core.kernel.ringbuf import RingBuffer
from xnf.plugins.pping import bpf_events
from xnf.plugins.pping.config import NS_PER_S, ConfigError, PpingConfig
from xnf.plugins.pping.reference import AGG_BIN_WIDTH_NS

OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pping.bpf.o")

#: Maps a pinned instance keeps, so that other processes can read it.
PINNED_MAPS = ("pping_events", "pping_counters", "pping_flows", "pping_ts", "pping_agg_v4",
               "pping_agg_v6", "pping_agg_gen", "pping_gc")
CONFIG_LINK = "config"  # bpffs refuses names with dots
# an instance's recorded mode -> the module whose DATAPATH class opens it (subclasses of
# Datapath, so this module names them as data and imports one only for its record)
MODE_MODULES = {"offload": "xnf.plugins.pping.offload"}

# Link types (ARPHRD_*) whose frames start with an Ethernet header at tc and XDP.
_ARPHRD_L2 = {1, 772}                    # ETHER, LOOPBACK
# ... and those whose frames start with the IP header.
_ARPHRD_L3 = {0xFFFE, 512, 519, 768, 769, 776, 778, 823}  # NONE, PPP, RAWIP, TUNNEL(6), SIT, IPGRE, IP6GRE
_SIOCGIFHWADDR = 0x8927
_GC_RUN_INPUT = bytes(64)                # PROG_TEST_RUN needs an Ethernet-sized input


class UnsupportedInterfaceError(AttachError):
    """The interface's link type has no header layout pping can parse."""


def link_type(ifname: str, netns: "str | None" = None) -> int:
    """The ARPHRD_* type of ``ifname`` (SIOCGIFHWADDR from a socket inside ``netns``)."""
    _netns.ifindex(ifname, netns)  # InterfaceNotFoundError with the usual message
    with _netns.entered(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        res = fcntl.ioctl(sock.fileno(), _SIOCGIFHWADDR, struct.pack("16s16x", ifname.encode()))
    finally:
        sock.close()
    return struct.unpack_from("H", res, 16)[0]


def is_l3(ifname: str, netns: "str | None" = None) -> bool:
    """Whether frames on ``ifname`` start at the IP header (PPP, tun, WireGuard, tunnels)."""
    kind = link_type(ifname, netns)
    if kind in _ARPHRD_L2:
        return False
    if kind in _ARPHRD_L3:
        return True
    raise UnsupportedInterfaceError(
        f"{ifname} has link type {kind} (ARPHRD), whose frames pping cannot parse",
        "pping handles Ethernet, loopback and IP-only (PPP, tun, tunnel) interfaces")


def _prefix_mask(length: int, width: int) -> int:
    """A prefix mask as the kernel compares it: raw network-order bytes read as little endian."""
    mask = ((1 << length) - 1) << (width - length) if length else 0
    return int.from_bytes(mask.to_bytes(width // 8, "big"), "little")


def rodata_values(config: PpingConfig, l3: bool = False) -> dict:
    """The ``cfg_*`` variables of pping.bpf.c for ``config``."""
    return {
        "cfg_track_tcp": int(config.track_tcp),
        "cfg_track_icmp": int(config.icmp),
        "cfg_track_tcp_seq": int(config.seq_ack),
        "cfg_track_dns": int(config.dns),
        "cfg_track_quic": int(config.quic),
        "cfg_rate_limit_ns": config.rate_limit_ns,
        "cfg_rtt_rate_fp": config.rtt_rate_fixed,
        "cfg_use_srtt": int(config.use_srtt),
        "cfg_local_filter": int(config.localfilt),
        "cfg_skip_syn": int(config.skip_syn),
        "cfg_push_events": int(not config.aggregate),
        "cfg_aggregate": int(bool(config.aggregate)),
        "cfg_agg_by_dst": int(config.aggregate_reverse),
        "cfg_agg_v4_mask": _prefix_mask(config.aggregate_subnets_v4, 32),
        "cfg_agg_v6_mask": _prefix_mask(config.aggregate_subnets_v6, 64),
        "cfg_agg_bin_ns": bpf_events_bin_width(),
        "cfg_ts_lifetime_ns": int(config.timestamp_lifetime * NS_PER_S),
        "cfg_ts_rtt_lifetime": int(config.timestamp_rtt_lifetime),
        "cfg_flow_lifetime_ns": int(config.flow_lifetime * NS_PER_S),
        "cfg_icmp_flow_lifetime_ns": int(config.icmp_flow_lifetime * NS_PER_S),
        "cfg_unopened_flow_lifetime_ns": int(config.unopened_flow_lifetime * NS_PER_S),
        "cfg_gc_interval_ns": int(config.cleanup_interval * NS_PER_S),
        "cfg_l3_iface": int(l3),
    }


def bpf_events_bin_width() -> int:
    """Histogram bin width: the reference's, so both produce comparable reports."""
    return AGG_BIN_WIDTH_NS


def build_spec(config: PpingConfig, l3: bool = False, ring_bytes: "int | None" = None, path: str = OBJECT):
    """The editable spec of pping.bpf.o configured for ``config``; ``ring_bytes`` sizes
    the event ring (a power of two, at least a page; default 4 MiB)."""
    spec = xnf.open_object(path)
    if ring_bytes is not None:
        if ring_bytes < 4096 or ring_bytes & (ring_bytes - 1):
            raise ConfigError(f"ring buffer size {ring_bytes} is not a power of two of at least 4096")
        spec.maps["pping_events"].max_entries = ring_bytes
    for name, value in rodata_values(config, l3).items():
        spec.rodata[name] = value
    spec.maps["pping_ts"].max_entries = config.timestamp_map_size
    spec.maps["pping_flows"].max_entries = config.flow_map_size
    # two generations of every prefix, plus each generation's catch-all entry; without
    # --aggregate the programs never reach these maps (cfg_aggregate is 0 in the frozen
    # .rodata), so one entry each: preallocating the default size per CPU cost ~30 ms of
    # CPU and ~70 MB per map on two CPUs at every start
    for name in ("pping_agg_v4", "pping_agg_v6"):
        spec.maps[name].max_entries = 2 * (config.aggregate_map_size + 1) if config.aggregate else 1
    return spec


def attached_programs(config: PpingConfig) -> tuple:
    """The programs an instance attached with ``config`` runs: egress, the ingress hook's,
    and the clean-up timer's starter (or, with ``cleanup_interval`` 0, the one-pass
    program that :meth:`Datapath.cleanup_now` runs). Each one the verifier skips is
    10 to 25 ms of CPU at start-up (docs/benchmarks.md, ``cli_startup``)."""
    ingress = "pping_xdp_ingress" if config.ingress_hook == "xdp" else "pping_tc_ingress"
    cleanup = "pping_gc_start" if config.cleanup_interval else "pping_gc_now"
    return ("pping_tc_egress", ingress, cleanup)


def load(config: PpingConfig, l3: bool = False, ring_bytes: "int | None" = None, xdp_component: bool = False,
         programs=None):
    """Load pping.bpf.o for ``config``; returns the live :class:`~xnf.core.kernel.collection.Collection`.

    ``programs``: the names of the programs to load (default: all of them, as tests
    running each hook's program by hand need); :func:`attached_programs` names those
    an attached instance uses. ``xdp_component``: the XDP ingress program loads as a
    libxdp dispatcher component (:mod:`xnf.core.attach.dispatcher`), to share the
    interface with xdp-tools."""
    spec = build_spec(config, l3, ring_bytes)
    if not xdp_component:
        return xnf.load(spec, programs=programs)
    from xnf.core.attach import dispatcher  # XDP sharing: not for the tc hooks' start-up

    with dispatcher.as_component(spec, "pping_xdp_ingress"):
        return xnf.load(spec, programs=programs)


class Datapath:
    """pping loaded, and (after :meth:`attach`) attached to one interface.

    ``collection`` holds the live programs and maps; ``attachments`` the hooks it
    sits on. Use :meth:`close` (or a ``with`` block) to detach and release all of it.
    """

    def __init__(self, iface: str, config: "PpingConfig | None" = None, netns: "str | None" = None):
        self.iface = iface
        self.config = config or PpingConfig()
        self.netns = netns
        self.collection = None
        self.attachments = {}
        self.pins = None
        self._l3 = False
        self._gen = 0
        self._agg_last_report = None
        self.clock_offset_ns = bpf_events.wall_clock_offset()

    # --- life cycle ------------------------------------------------------------------

    def attach(self, pins: "PinRoot | None" = None):
        """Load, attach egress and ingress, arm the clean-up; with ``pins`` (a
        :class:`~xnf.core.attach.pinroot.PinRoot`), pin it as one instance that appears only whole.

        The pins are built under the interface lock in a staging directory and
        published by one rename; a failure removes only what this attempt made.
        """
        self._check()
        if pins is None:
            self._build(None)
            return self
        with pins.attaching() as txn:
            self._build(txn)
            txn.commit()
        self.pins = pins
        return self

    def build_into(self, txn):
        """Load, attach and pin into ``txn``, a :class:`~xnf.core.attach.pinroot.Transaction`
        the caller commits (``Pping.attach`` through :meth:`xnf.nf.NetworkFunction.building`)."""
        self._check()
        self._build(txn)
        self.pins = txn.root
        return self

    def _check(self):
        """Refuse what cannot work before anything is made."""
        if self.config.read is not None:
            raise ConfigError("--read runs the reference over a capture; it attaches nothing",
                              "drop the interface, or drop --read")
        self._l3 = is_l3(self.iface, self.netns)

    def _build(self, txn):
        try:
            self._load_and_attach(txn)
            if txn is not None:
                self._pin(txn)
            if self.config.cleanup_interval:
                self._start_cleanup()
                checkpoint("cleanup-armed")
        except BaseException:
            self.close()  # our own objects only: nothing is published yet
            raise

    def _load_and_attach(self, txn):
        """Load, then attach egress and ingress; with ``txn``, each announced first
        (:meth:`~xnf.core.attach.pinroot.Transaction.intend`), so a netlink attachment is never unrecorded."""
        c = self.config
        # beside xdp-tools' programs when they use the interface (docs/attach.md, "Sharing XDP")
        shared = False
        if c.ingress_hook == "xdp":
            from xnf.core.attach import dispatcher  # XDP sharing: not for the tc hooks' start-up

            shared = dispatcher.wanted(self.iface, self.netns)
        self.collection = load(c, self._l3, xdp_component=shared, programs=attached_programs(c))
        checkpoint("loaded")
        progs = self.collection.programs
        # closest to the wire: last on egress, first on ingress (docs/pping.md, "Where pping stamps")
        _intend(txn, "egress", progs["pping_tc_egress"])
        self.attachments["egress"] = attach_tc(progs["pping_tc_egress"], self.iface, "egress", netns=self.netns,
                                               **edge("last"))
        checkpoint("attached-egress")
        if c.ingress_hook == "xdp":
            from xnf.core.attach import attach_xdp  # the XDP hook's module: not for the tc hooks' start-up

            mode = {"unspecified": "auto", "native": "native", "generic": "skb"}[c.xdp_mode]
            _intend(txn, "ingress", progs["pping_xdp_ingress"])
            self.attachments["ingress"] = attach_xdp(progs["pping_xdp_ingress"], self.iface,
                                                     mode=mode, netns=self.netns)
        else:
            _intend(txn, "ingress", progs["pping_tc_ingress"])
            self.attachments["ingress"] = attach_tc(progs["pping_tc_ingress"], self.iface, "ingress",
                                                    netns=self.netns, **edge("first"))
        checkpoint("attached-ingress")

    def _start_cleanup(self):
        ret = self.collection.programs["pping_gc_start"].test_run(_GC_RUN_INPUT).retval
        if ret != 0:
            raise XnfError(f"arming pping's clean-up timer failed (step {ret})",
                           "the kernel needs BPF timers (Linux 5.15 or newer)")

    def cleanup_now(self):
        """One expiry pass over timestamps and flows, now (tests, --cleanup-interval 0)."""
        prog = self.collection.programs.get("pping_gc_now")
        if prog is None:
            raise XnfError(f"this instance on {self.iface} cleans up on its timer (every "
                           f"{self.config.cleanup_interval} s); passes by hand are for one without it",
                           "attach with PpingConfig(cleanup_interval=0) to run clean-up passes by hand")
        prog.test_run(_GC_RUN_INPUT)

    def _pin(self, txn):
        txn.pin_maps(self._maps_to_pin())
        for name, att in self.attachments.items():
            txn.store(name, att)
        txn.write_record(CONFIG_LINK, self._state())

    def _maps_to_pin(self):
        """(name, Map) pairs an attached instance keeps pinned."""
        return [(name, self.collection.maps[name]) for name in PINNED_MAPS]

    def _state(self):
        """What a later process needs to find this instance again (the config record)."""
        return {"config": _config_dict(self.config), "iface": self.iface, "netns": self.netns}

    @property
    def pin_dir(self):
        return self.pins.path if self.pins is not None else None

    def detach(self):
        """Detach every hook, remove every pin, release every object; safe to repeat.

        A pinned instance is removed through its pins, under the interface lock (see
        :meth:`~xnf.core.attach.pinroot.PinRoot.remove_all`); otherwise our own attachments are.
        """
        pins = self.pins
        if pins is not None:
            self.release()
            pins.remove_all()
            return
        errors = []
        for name, att in list(self.attachments.items()):
            try:
                att.detach()
            except XnfError as e:
                errors.append(e)
            self.attachments.pop(name, None)
        if self.collection is not None:
            self.collection.close()
            self.collection = None
        if errors:
            raise errors[0]

    close = detach

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.detach()

    @classmethod
    def from_pins(cls, pins: "PinRoot"):
        """A :class:`Datapath` reading the instance pinned under ``pins`` (its maps, and
        its attachments for :meth:`status`); :meth:`detach` removes it."""
        state = pins.read_record(CONFIG_LINK)
        if state is None:
            raise PinError(f"no pping instance pinned at {pins.path}",
                           "attach one with `xnf attach pping IFACE`")
        if state.get("mode") in MODE_MODULES and cls is Datapath:
            # OffloadDatapath builds on this class, so it is named here as data, not imported
            module = importlib.import_module(MODE_MODULES[state["mode"]])
            return module.DATAPATH.from_pins(pins)
        self = cls(state["iface"], PpingConfig(**state["config"]), state.get("netns"))
        self.collection = _PinnedCollection(pins.open_maps(PINNED_MAPS))
        for name in ("egress", "ingress"):
            att = pins.find(name)
            if att is not None:
                self.attachments[name] = att
        self.pins = pins
        return self

    def release(self):
        """Drop this process's references without detaching (a pinned instance stays)."""
        for att in self.attachments.values():
            att.close()
        self.attachments = {}
        if self.collection is not None:
            self.collection.close()
            self.collection = None
        self.pins = None

    # --- reading ---------------------------------------------------------------------

    @property
    def maps(self):
        return self.collection.maps

    def counters(self) -> dict:
        """Totals of the kernel's per-CPU counters, by name (bpf_events.COUNTERS)."""
        m = self.maps["pping_counters"]
        return bpf_events.counters([m[i] for i in range(len(bpf_events.COUNTERS))])

    def stats(self, user_dropped: int = 0):
        return bpf_events.stats(self.counters(), user_dropped)

    def ring_buffer(self, callback=None):
        """A :class:`~xnf.core.kernel.ringbuf.RingBuffer` on the event ring."""
        return RingBuffer(self.maps["pping_events"], callback)

    def decoder(self):
        return bpf_events.Decoder(self.clock_offset_ns)

    def drain(self) -> list:
        """Every event waiting in the ring, decoded, without waiting for more (for one-shot
        readers and tests; a running consumer uses :meth:`ring_buffer`)."""
        decoder, out = self.decoder(), []
        rb = self.ring_buffer(lambda raw: out.append(decoder.decode(raw)))
        try:
            rb.consume()
        finally:
            rb.close()
        return out

    def flow_count(self) -> int:
        return len(self.maps["pping_flows"])

    def timestamp_count(self) -> int:
        return len(self.maps["pping_ts"])

    def collect_aggregates(self) -> list:
        """Close the current aggregation interval (see :func:`collect_aggregates`)."""
        return collect_aggregates(self.maps, self.config, self.clock_offset_ns)

    def status(self) -> dict:
        out = {"iface": self.iface, "netns": self.netns,
               "hooks": {n: str(a) for n, a in self.attachments.items()},
               "flows": self.flow_count(), "timestamps": self.timestamp_count()}
        out.update(self.counters())
        return out


def collect_aggregates(maps, config: PpingConfig, clock_offset_ns: int = 0) -> list:
    """Flip the generation the kernel aggregates into, read and delete the previous
    one, and return one AggregateReport per prefix that saw traffic."""
    gen_map = maps["pping_agg_gen"]
    old = gen_map[0] & 1
    gen_map[0] = old ^ 1
    time.sleep(0.001)  # let programs that read the old generation finish their packet
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) + clock_offset_ns
    reports = []
    for name, ipv, plen in (("pping_agg_v4", 4, config.aggregate_subnets_v4),
                            ("pping_agg_v6", 6, config.aggregate_subnets_v6)):
        m = maps[name]
        for raw_key, raw_value in m.lookup_batch_raw():
            gen, prefix = bpf_events.decode_agg_key(raw_key, ipv, plen)
            if gen != old:
                continue
            slot = len(raw_value) // possible_cpus()
            merged = bpf_events.merge_percpu_agg(raw_value[i:i + slot] for i in range(0, len(raw_value), slot))
            m.pop(raw_key, None)  # raw bytes keys are accepted as they are
            if merged[0] or merged[2]:
                reports.append(bpf_events.aggregate_report(now, prefix, merged, bpf_events_bin_width()))
    return reports


class _PinnedCollection:
    """The maps of a pinned instance, shaped like a Collection."""

    def __init__(self, maps):
        self.maps = maps
        self.programs = {}

    def close(self):
        for m in self.maps.values():
            m.close()


def _intend(txn, name, program):
    if txn is not None:
        txn.intend(name, program)


def _config_dict(config: PpingConfig) -> dict:
    d = attrs.asdict(config)
    d["local_addresses"] = list(d["local_addresses"])
    return d
