"""A runner that feeds the same frames (built with xnf.testing.frames) to the BPF programs
(PROG_TEST_RUN) and to the reference implementation, for side-by-side comparison.

Times: the kernel stamps packets with bpf_ktime_get_ns() (CLOCK_MONOTONIC); the
reference gets the CLOCK_MONOTONIC time read just before each run. The kernel's stamp
lies between that read and the read just after the run (the *window*), so an RTT or an
event time differs between the two by at most the largest window of the runs involved:
:func:`assert_same` allows exactly that, nothing more. Every decision that depends on
time (rate limits, lifetimes) is the same as long as the test spaces its packets far
from the thresholds.
"""
import struct
import time

import attrs

from xnf.plugins.pping import datapath
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import Flow, FlowEvent, RttEvent
from xnf.plugins.pping.packet import LINKTYPE_ETHERNET, LINKTYPE_RAW
from xnf.plugins.pping.reference import OPEN, WAITOPEN, Reference


@attrs.define
class Sent:
    hook: str
    frame: bytes
    time_ns: int      # the clock just before the run (the reference's time for it)
    after_ns: int     # and just after: the kernel stamped the packet in between


class Runner:
    """Loads pping.bpf.o for ``config`` (nothing attached) and runs frames through it.

    ``send(frame, hook)`` with hook ``egress``/``ingress`` (tc) or ``xdp``; the events
    the kernel reported are in :meth:`bpf_events`, the reference's in :meth:`ref_events`.
    """

    def __init__(self, config=None, l3=False, local_addresses=(), ring_bytes=None):
        self.config = config or PpingConfig()
        self.l3 = l3
        self.coll = datapath.load(self.config, l3, ring_bytes)
        self.sent = []
        self.max_window_ns = 0
        self.ref = Reference(self.config, local_addresses=local_addresses)
        self._ref_events = []
        self._records = []
        from xnf.core.kernel.ringbuf import RingBuffer

        self._rb = RingBuffer(self.coll.maps["pping_events"], self._records.append)
        self._decoder = datapath.bpf_events.Decoder(clock_offset_ns=0)

    def close(self):
        self._rb.close()
        self.coll.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, frame, hook="egress", ingress_ifindex=None):
        """Run one frame; ``ingress_ifindex`` (XDP only) names the arrival device, which
        local filtering's route lookup needs."""
        prog = {"egress": "pping_tc_egress", "ingress": "pping_tc_ingress", "xdp": "pping_xdp_ingress"}[hook]
        ctx = None
        if ingress_ifindex is not None:
            ctx = struct.pack("<6I", 0, len(frame), 0, ingress_ifindex, 0, 0)  # struct xdp_md
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        res = self.coll.programs[prog].test_run(frame, ctx=ctx)
        # the kernel stamped the packet somewhere in this window (a loaded machine can
        # preempt us between the clock read and the run)
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self.max_window_ns = max(self.max_window_ns, after - now)
        expected = 2 if hook == "xdp" else -1  # XDP_PASS, TC_ACT_UNSPEC
        assert res.retval in (expected, expected & 0xFFFFFFFF), f"{prog} returned {res.retval}"
        self.sent.append(Sent(hook, frame, now, after))
        linktype = LINKTYPE_RAW if self.l3 else LINKTYPE_ETHERNET
        direction = "egress" if hook == "egress" else "ingress"
        self._ref_events += self.ref.feed(now, frame, linktype, direction=direction)
        return res

    def cleanup(self):
        """One kernel clean-up pass, and the reference's at the same time."""
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        self.coll.programs["pping_gc_now"].test_run(bytes(64))
        self.max_window_ns = max(self.max_window_ns, time.clock_gettime_ns(time.CLOCK_MONOTONIC) - now)
        self.ref._cleanup(now, self._ref_events)

    def bpf_events(self):
        self._rb.consume()  # drains without waiting for the epoll wake-up (irq_work)
        return [self._decoder.decode(r) for r in self._records]

    def ref_events(self):
        return list(self._ref_events)

    def counters(self):
        m = self.coll.maps["pping_counters"]
        return datapath.bpf_events.counters([m[i] for i in range(len(datapath.bpf_events.COUNTERS))])


def last_seen(runner):
    """Each active direction's ``last_seen`` (idle timeout), kernel and reference:
    two dicts {Flow of the direction: ns}."""
    decoder = datapath.bpf_events.Decoder(clock_offset_ns=0)
    kernel = {}
    for k, st in runner.coll.maps["pping_flows"].items():
        flow = decoder.flow(k.saddr, k.daddr, k.sport, k.dport, k.proto, k.ipv, k.app)
        back = Flow(flow.proto, flow.dst_ip, flow.dst_port, flow.src_ip, flow.src_port)
        for d, f in zip(st.dir, (flow, back)):
            if d.conn in (WAITOPEN, OPEN):
                kernel[f] = d.last_seen
    ref = {}
    for key, pair in runner.ref.flows.items():
        proto, src, sport, dst, dport = key
        for d, f in zip(pair, (Flow(*key), Flow(proto, dst, dport, src, sport))):
            if d.active:
                ref[f] = d.last_seen
    return kernel, ref


def assert_same_last_seen(runner, addresses=None):
    """Kernel and reference took each active direction's ``last_seen`` from the same
    packet: the reference holds that packet's time, and the kernel's stamp lies in the
    window of that packet's run (see :class:`Sent`). ``addresses``: compare only the
    kernel's flows from these (the reference was restarted; the kernel kept older flows).
    Returns {Flow: index of the packet in runner.sent}."""
    kernel, ref = last_seen(runner)
    if addresses is not None:
        kernel = {f: t for f, t in kernel.items() if f.src_ip in addresses}
    assert set(kernel) == set(ref), (kernel, ref)
    index = {s.time_ns: i for i, s in enumerate(runner.sent)}
    out = {}
    for flow, t in ref.items():
        i = out[flow] = index[t]
        assert runner.sent[i].time_ns <= kernel[flow] <= runner.sent[i].after_ns, (flow, i, kernel[flow], runner.sent[i])
    return out


def shape(ev):
    """An event without its times: what must be identical between kernel and reference."""
    if isinstance(ev, RttEvent):
        return ("rtt", ev.flow, ev.sent_packets, ev.sent_bytes, ev.rec_packets, ev.rec_bytes,
                ev.match_on_egress, ev.identifier_kind)
    if isinstance(ev, FlowEvent):
        return ("flow", ev.flow, ev.event, ev.reason, ev.triggered_by)
    return ("other", ev)


def assert_same(runner):
    """Kernel and reference reported the same events in the same order, with times that
    differ by no more than the largest window between a run's two clock reads.

    The kernel's stamp of a run lies in [before, after] of that run and the reference
    uses ``before``; an RTT is a difference of two stamps, so it differs by at most one
    window (the later run's stamp can be late by up to its window, the earlier run's by up
    to its own, in the opposite direction); an event time or a minimum by at most one.
    """
    got, want = runner.bpf_events(), runner.ref_events()
    assert [shape(e) for e in got] == [shape(e) for e in want], f"kernel: {got}\nreference: {want}"
    bound = runner.max_window_ns
    for g, w in zip(got, want):
        assert abs(g.timestamp_ns - w.timestamp_ns) <= bound, (g, w, bound)
        if isinstance(g, RttEvent):
            assert abs(g.rtt_ns - w.rtt_ns) <= bound, (g, w, bound)
            assert abs(g.min_rtt_ns - w.min_rtt_ns) <= bound, (g, w, bound)
    return got
