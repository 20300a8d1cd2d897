"""Traffic generators: each source makes the packets of one flow (or of many, for
flow arrivals) with arrival times in integer nanoseconds.

Open-loop sources (``cbr``, ``poisson``, ``onoff``, ``flows``, traces) answer
:meth:`Source.next_packet`; the ``bulk`` source keeps ``window`` packets queued and
makes a new one whenever one leaves or is dropped, so it is always backlogged without
overflowing the buffer. The responsive ``reno`` and ``cubic`` sources (:mod:`.tcp`)
send as their congestion window allows and hear of each packet a round trip later.

A source spec is a dict: ``kind``, ``flow``, and per kind ``rate`` (bits/s or
``10mbit``), ``size`` (see :mod:`.distributions`), ``start``/``stop`` (seconds), plus the
optional packet fields ``cls``, ``priority``, ``rank`` (a distribution), ``slack_ns``.
"""
import random

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.packet import Packet, new_packet
from xnf.plugins.pifo_sched.shaping import NS, parse_rate
from xnf.plugins.pifo_sched.sim.distributions import sampler

_new = object.__new__
SIZE_BATCH = 256  # a bulk source's packet sizes drawn at once
COMMON_KEYS = {"kind", "flow", "size", "start", "stop", "cls", "priority", "rank", "slack_ns"}


def _mean(draw):
    """A size distribution's mean, from a fixed side stream: never perturbs the run's draws."""
    estimate = random.Random(7)
    return sum(draw(estimate) for _ in range(4000)) / 4000


def _at_least_a_ns_apart(mean_bytes, rate, what, kind):
    """Refuse arrivals less than 1 ns apart on average: the clock counts whole nanoseconds, so
    their gaps round to 0 and virtual time would stop at one instant."""
    if mean_bytes * 8 * NS < rate:
        raise SchedulerConfigError(f"a {kind} source's {what} of {rate} bit/s sends its arrivals less than 1 ns "
                                   f"apart (mean {mean_bytes:.0f} bytes each): the simulator's clock counts whole "
                                   f"nanoseconds", f"lower the {what} below {int(mean_bytes * 8 * NS)} bit/s")


def _seconds(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SchedulerConfigError(f"{what} must be a non-negative number of seconds, got {value!r}",
                                   "e.g. start=0.5")
    return int(value * NS)


class Source:
    """Common fields of every source; subclasses pace the packets."""

    keys = set()

    def __init__(self, spec, rng, duration_ns):
        # a window source's base RTT: it hears of its packets that much later. An instance
        # attribute, read per packet: CPython 3.11 reads a class attribute through an
        # instance at about half the speed
        self.rtt = None
        unknown = set(spec) - COMMON_KEYS - self.keys
        if unknown:
            raise SchedulerConfigError(f"traffic source {spec.get('kind')!r} has no option(s) {sorted(unknown)}",
                                       "valid: " + ", ".join(sorted(COMMON_KEYS | self.keys)))
        self.rng = rng
        self.flow = spec.get("flow", 0)
        self.size = sampler(spec.get("size", 1500), minimum=64)
        self.rank = sampler(spec["rank"], minimum=0) if "rank" in spec else None
        self.cls = spec.get("cls")
        self.priority = spec.get("priority", 0)
        self.slack = spec.get("slack_ns")
        self.start = _seconds(spec.get("start", 0), "start")
        self.stop = min(duration_ns, _seconds(spec["stop"], "stop")) if "stop" in spec else duration_ns
        self.seq = 0

    def make(self, now, flow=None, size=None, remaining=None):
        self.seq += 1
        rank = self.rank  # positional arguments: a third cheaper than keywords, per packet
        return new_packet(self.flow if flow is None else flow, size or self.size(self.rng), now, self.seq,
                          self.cls, self.priority, rank(self.rng) if rank else None, self.slack, remaining)

    def next_packet(self):
        """The next open-loop packet (arrival time set), or None when done."""
        return None

    def on_done(self, pkt, now):
        """A packet of this source left or was dropped: closed-loop sources answer one, which
        arrives now (the engine sets its ``arrival`` and ``enqueued``)."""
        return None


class Bulk(Source):
    """Always backlogged: ``window`` packets in the queue from ``start`` to ``stop``."""

    keys = {"window"}

    def __init__(self, spec, rng, duration_ns):
        super().__init__(spec, rng, duration_ns)
        self.window = spec.get("window", 32)
        if not isinstance(self.window, int) or self.window < 1:
            raise SchedulerConfigError(f"window must be a positive integer, got {self.window!r}", "e.g. window=32")
        self.initial = self.window
        # sizes drawn SIZE_BATCH at a time (last first) when the rng serves sizes alone:
        # the same values in the same order, without a sampler call per packet
        self.sizes = [] if self.rank is None else None

    def _size(self):
        sizes = self.sizes
        if sizes is None:
            return self.size(self.rng)
        if not sizes:
            sizes[:] = self.size.batch(self.rng, SIZE_BATCH)[::-1]
        return sizes.pop()

    def next_packet(self):
        if self.initial and self.start < self.stop:
            self.initial -= 1
            return self.make(self.start, size=self._size())
        return None

    def on_done(self, pkt, now):
        if now >= self.stop:
            return None
        # make(now), written out: a bulk source answers every packet it sends
        sizes = self.sizes  # and _size(): sizes come in batches only where there is no rank
        if sizes:
            size = sizes.pop()
            rank = None
        else:
            size = self._size()
            rank = self.rank(self.rng) if self.rank else None
        # new_packet(self.flow, size, now, self.seq, self.cls, self.priority, rank, self.slack,
        # None), written out: the call with nine arguments was a twentieth of a packet.
        # arrival and enqueued (now) are left to the engine, which sets them on every
        # answer as it arrives
        pkt = _new(Packet)
        pkt.flow = self.flow
        pkt.size = size
        pkt.seq = self.seq = self.seq + 1
        pkt.cls = self.cls
        pkt.priority = self.priority
        pkt.rank = rank
        pkt.slack = self.slack
        pkt.remaining = None
        pkt.tstamp = None
        pkt.ect = False
        pkt.ce = False
        return pkt


class Cbr(Source):
    """Constant bit rate: packets evenly spaced so the mean rate is ``rate``."""

    keys = {"rate"}

    def __init__(self, spec, rng, duration_ns):
        super().__init__(spec, rng, duration_ns)
        self.rate = parse_rate(spec.get("rate"), "rate of a cbr source")
        _at_least_a_ns_apart(_mean(self.size), self.rate, "rate", spec.get("kind", "cbr"))
        self.next_time = self.start

    def gap(self, pkt):
        return pkt.size * 8 * NS // self.rate

    def next_packet(self):
        if self.next_time >= self.stop:
            return None
        pkt = self.make(self.next_time)
        self.next_time += self.gap(pkt)
        return pkt


class Poisson(Cbr):
    """Poisson arrivals (exponential gaps) with mean bit rate ``rate``."""

    def gap(self, pkt):
        return int(self.rng.expovariate(1.0) * pkt.size * 8 * NS / self.rate)


class OnOff(Cbr):
    """Constant rate during exponential ``on`` periods, silent during exponential ``off``
    periods (means in seconds)."""

    keys = {"rate", "on", "off"}

    def __init__(self, spec, rng, duration_ns):
        super().__init__(spec, rng, duration_ns)
        self.on = _seconds(spec.get("on", 0.5), "on")
        self.off = _seconds(spec.get("off", 0.5), "off")
        self.on_until = self.start + int(self.rng.expovariate(1.0) * self.on)

    def gap(self, pkt):
        gap = super().gap(pkt)
        if self.next_time + gap > self.on_until:
            silence = int(self.rng.expovariate(1.0) * self.off)
            self.on_until += silence + int(self.rng.expovariate(1.0) * self.on)
            gap += silence
        return gap


class FlowArrivals(Source):
    """Flows arriving as a Poisson process with sizes from ``flow_size``, offered load
    ``load``; each flow's packets arrive together, carrying the bytes left (for SRPT).
    Flows are numbered ``flow``, ``flow+1``, ..."""

    keys = {"load", "flow_size", "mtu"}

    def __init__(self, spec, rng, duration_ns):
        super().__init__(spec, rng, duration_ns)
        self.load = parse_rate(spec.get("load"), "load of a flows source")
        self.flow_size = sampler(spec.get("flow_size", "pareto:100000:1.2"), minimum=64)
        self.mtu = spec.get("mtu", 1500)
        self.mean_size = _mean(self.flow_size)
        _at_least_a_ns_apart(self.mean_size, self.load, "load", "flows")
        self.next_time = self.start
        self.flow_id = self.flow - 1
        self.pending = []

    def next_packet(self):
        if not self.pending:
            if self.next_time >= self.stop:
                return None
            self.flow_id += 1
            left = self.flow_size(self.rng)
            while left > 0:
                size = min(max(left, 64), self.mtu)
                self.pending.append((size, left))
                left -= size
            self.pending.reverse()
            self.arrival = self.next_time
            self.next_time += int(self.rng.expovariate(1.0) * self.mean_size * 8 * NS / self.load)
        size, left = self.pending.pop()
        return self.make(self.arrival, flow=self.flow_id, size=size, remaining=left)


class TraceSource:
    """Packets replayed from a trace: rows of (time_ns, flow, size, fields)."""

    def __init__(self, rows, duration_ns):
        self.rtt = None  # as Source.rtt
        self.rows = iter(rows)
        self.duration = duration_ns
        self.last = 0

    def next_packet(self):
        row = next(self.rows, None)
        if row is None or row.arrival >= self.duration:
            return None
        if row.arrival < self.last:  # the engine replays in order: an earlier row would run late
            raise SchedulerConfigError(
                f"trace rows are not in time order: a packet at {row.arrival} ns follows one at {self.last} ns",
                "sort the rows by time, or read the trace with read_trace(), which sorts")
        self.last = row.arrival
        return row

    def on_done(self, pkt, now):
        return None


# the open-loop kinds; :mod:`.sources` adds the window kinds of :mod:`.tcp`
KINDS = {"bulk": Bulk, "cbr": Cbr, "poisson": Poisson, "onoff": OnOff, "flows": FlowArrivals}
