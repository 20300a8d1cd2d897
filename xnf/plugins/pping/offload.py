"""pping with its receive side on the NIC: ``xnf attach pping IFACE --mode offload``.

An offloaded XDP stage (``pping_nic.bpf.c``) parses and filters on the NIC and sends
each packet that echoes a TCP timestamp (TSecr) to the host as a small perf record;
the NIC has no clock, so the host stamps each record when it reads it. pping's own tc
egress program stays on the host and timestamps outgoing TSvals in ``pping_ts``; the
reader here matches TSecr against that map and emits the same
:class:`~xnf.plugins.pping.events.RttEvent` objects the normal data path does.

The device is checked (drivers capabilities, then the NIC's offload rules) before
anything is loaded; any failure afterwards detaches and unpins what was done.
Design and accuracy limits: docs/drivers-and-offload.md, "pping in offload mode".
"""

from __future__ import annotations

import os
import socket
import struct
import time

import xnf
from xnf.core.attach import attach_tc, attach_xdp
from xnf.core.kernel.netns import entered
from xnf.core.kernel.perfbuf import PerfBuffer
from xnf.core.kernel.pin import checkpoint
from xnf.offload.device import check_xdp_attach, prepare_offload
from xnf.plugins.pping.config import ConfigError, PpingConfig
from xnf.plugins.pping.datapath import Datapath, _intend, attached_programs, is_l3, load
from xnf.plugins.pping.events import Flow, RttEvent

NIC_OBJECT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pping_nic.bpf.o")
NIC_PROGRAM = "pping_nic"
#: The NIC stage's maps, pinned beside the host's (the perf array stays on the host).
NIC_MAPS = ("pping_nic_cfg", "pping_nic_stats", "pping_nic_events")
MODE = "offload"

# struct nic_event of pping_nic.bpf.c: addresses, ports, TSval and TSecr as on the wire
_NIC_EVENT = struct.Struct("=16s16s2s2sB3x4s4sI")
NIC_EVENT_SIZE = _NIC_EVENT.size
# struct pp_ident of pping.h: pp_flow (saddr, daddr, sport, dport, proto, ipv, app, pad), id, kind
_IDENT = struct.Struct("=16s16s2s2sBBBxIB3x")
_V4_MAPPED = bytes(10) + b"\xff\xff"
_IPPROTO_TCP = 6
_KIND_TSVAL = 0


def check_config(config: PpingConfig):
    """Refuse what the NIC stage cannot do: it hands the host TCP timestamp echoes only."""
    unsupported = [opt for opt, on in (("--icmp", config.icmp), ("--dns", config.dns), ("--quic", config.quic),
                                       ("--seq-ack", config.seq_ack), ("--aggregate", config.aggregate),
                                       ("--read", config.read is not None)) if on]
    if unsupported:
        raise ConfigError(f"--mode offload tracks TCP timestamps only; {', '.join(unsupported)} "
                          "needs the host data path",
                          "drop those options, or use --mode native or skb")


def nic_spec(iface: str, netns: "str | None" = None):
    """The NIC stage checked against ``iface``'s offload rules and bound to it; raises
    OffloadNotSupportedError (a ModeNotSupportedError) naming why the device cannot."""
    return prepare_offload(xnf.open_object(NIC_OBJECT), iface, netns, programs=[NIC_PROGRAM])


class OffloadDatapath(Datapath):
    """pping's host egress program plus the NIC stage, attached to one interface."""

    MODE = MODE

    def __init__(self, iface, config=None, netns=None):
        super().__init__(iface, config, netns)
        self.nic = None
        self._nic_spec = None

    def _check(self):
        """Check the device before anything is loaded: it refuses a device that cannot offload."""
        check_config(self.config)
        self._nic_spec = nic_spec(self.iface, self.netns)
        if is_l3(self.iface, self.netns):
            raise ConfigError(f"{self.iface} has no Ethernet header; pping's NIC stage parses Ethernet frames",
                              "use --mode native or skb on this interface")

    def _load_and_attach(self, txn):
        """Load the host egress side and the bound NIC stage, attach tc egress and XDP in hardware mode."""
        # the host's programs: egress and the clean-up starter (ingress is the NIC's stage)
        host = [name for name in attached_programs(self.config) if not name.endswith("_ingress")]
        self.collection = load(self.config, l3=False, programs=host)
        with entered(self.netns):  # bpf(2) resolves prog_ifindex in the caller's namespace
            self.nic = xnf.load(self._nic_spec, programs=[NIC_PROGRAM])
        checkpoint("loaded")
        self.nic.maps["pping_nic_cfg"][0] = 0  # every port: flows are filtered on the host
        _intend(txn, "egress", self.collection.programs["pping_tc_egress"])
        self.attachments["egress"] = attach_tc(self.collection.programs["pping_tc_egress"], self.iface,
                                               "egress", netns=self.netns)
        checkpoint("attached-egress")
        prog = self.nic.programs[NIC_PROGRAM]
        check_xdp_attach(prog, self.iface, MODE, self.netns)
        _intend(txn, "ingress", prog)
        self.attachments["ingress"] = attach_xdp(prog, self.iface, mode=MODE, netns=self.netns)
        checkpoint("attached-ingress")

    def _maps_to_pin(self):
        return super()._maps_to_pin() + [(name, self.nic.maps[name]) for name in NIC_MAPS]

    def _state(self):
        return {**super()._state(), "mode": MODE}

    def detach(self):
        """Detach both stages, remove every pin, release every object; safe to repeat."""
        try:
            super().detach()
        finally:
            if self.nic is not None:
                self.nic.close()
                self.nic = None

    close = detach

    @classmethod
    def from_pins(cls, pins):
        self = super().from_pins(pins)
        try:
            self.collection.maps.update(pins.open_maps(NIC_MAPS))
        except BaseException:
            self.release()
            raise
        return self

    def release(self):
        super().release()
        if self.nic is not None:
            self.nic.close()
            self.nic = None

    # --- reading ---------------------------------------------------------------------

    @property
    def maps(self):
        if self.nic is None:
            return self.collection.maps
        return {**self.collection.maps, **self.nic.maps}

    def ring_buffer(self, callback=None):
        """The NIC's records, matched on arrival: ``callback(RttEvent)`` per RTT sample
        (poll/consume/close like a ring buffer, so :func:`~xnf.plugins.pping.api.pump` reads it)."""
        return NicEventReader(self.maps["pping_nic_events"], self.maps["pping_ts"], callback, self.clock_offset_ns)

    def decoder(self):
        return _Matched()

    def nic_stats(self) -> dict:
        """Packets the NIC stage saw and records it sent to the host."""
        m = self.maps["pping_nic_stats"]
        return {"nic_packets": m[0], "nic_records": m[1]}

    def status(self) -> dict:
        out = super().status()
        out["mode"] = MODE
        out.update(self.nic_stats())
        return out


class _Matched:
    """The reader already hands over events; pump's decode step passes them on."""

    @staticmethod
    def decode(event):
        return event


def ident_key(record: bytes) -> bytes:
    """The ``pping_ts`` key the egress program wrote for the TSval this record echoes:
    the reverse flow of the record, its TSecr in host order, kind TSVAL."""
    saddr, daddr, sport, dport, family, _tsval, tsecr, _length = _NIC_EVENT.unpack_from(record)
    if family == 4:
        saddr, daddr = _V4_MAPPED + saddr[:4], _V4_MAPPED + daddr[:4]
    return _IDENT.pack(daddr, saddr, dport, sport, _IPPROTO_TCP, family, 0, int.from_bytes(tsecr, "big"),
                       _KIND_TSVAL)


def reply_flow(record: bytes) -> Flow:
    """The flow of the packet the NIC saw (the reply), as RttEvent reports it."""
    saddr, daddr, sport, dport, family = _NIC_EVENT.unpack_from(record)[:5]
    af, width = (socket.AF_INET, 4) if family == 4 else (socket.AF_INET6, 16)
    return Flow("TCP", socket.inet_ntop(af, saddr[:width]), int.from_bytes(sport, "big"),
                socket.inet_ntop(af, daddr[:width]), int.from_bytes(dport, "big"))


class NicEventReader:
    """Reads the NIC stage's perf records, stamps each on arrival (CLOCK_MONOTONIC, the
    clock of ``bpf_ktime_get_ns``) and turns those that match an egress timestamp into
    RttEvents. Per flow it keeps the minimum RTT and the packets and bytes received."""

    def __init__(self, events_map, ts_map, callback, clock_offset_ns: int = 0):
        self.ts_map = ts_map
        self.callback = callback
        self.clock_offset_ns = clock_offset_ns
        self.records = 0
        self.unmatched = 0
        self._flows = {}
        self.perf = PerfBuffer(events_map, callback=self._on_record)

    def _on_record(self, cpu, data):
        self.handle(bytes(data), time.clock_gettime_ns(time.CLOCK_MONOTONIC))

    def handle(self, record: bytes, arrival_ns: int) -> "RttEvent | None":
        """Match one record that arrived at ``arrival_ns``; the event, or None without a match."""
        self.records += 1
        if len(record) < NIC_EVENT_SIZE:
            self.unmatched += 1
            return None
        flow = reply_flow(record)
        if len(self._flows) > 65536:
            self._flows.clear()
        length = _NIC_EVENT.unpack_from(record)[7]
        state = self._flows.setdefault(flow, [None, 0, 0])  # min rtt, packets, bytes
        state[1] += 1
        state[2] += length
        sent = self.ts_map.pop(ident_key(record), None)
        if sent is None or sent > arrival_ns:
            self.unmatched += 1
            return None
        rtt = arrival_ns - sent
        state[0] = rtt if state[0] is None else min(state[0], rtt)
        event = RttEvent(arrival_ns + self.clock_offset_ns, flow, rtt, state[0], 0, 0, state[1], state[2],
                         False, "tsval")
        if self.callback is not None:
            self.callback(event)
        return event

    def poll(self, timeout_ms=-1):
        return self.perf.poll(timeout_ms)

    def consume(self):
        return self.perf.consume()

    def close(self):
        self.perf.close()


DATAPATH = OffloadDatapath  # what Datapath.from_pins opens a record of MODE with (datapath.MODE_MODULES)
