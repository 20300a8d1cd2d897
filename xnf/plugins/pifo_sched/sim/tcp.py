"""Closed-loop sources: bulk transfers whose sending is clocked by a congestion window.

A window source keeps at most ``cwnd`` packets in flight. The runtime tells it about
each packet one base ``rtt`` after the packet has left the link (an ACK, carrying the
packet's ECN mark) or after it was dropped (the loss as duplicate ACKs reveal it), and
the source then sends what its window allows. At most one window reduction happens
per window of data, as in NewReno's fast recovery, and during that recovery the
sending rate comes down gradually by proportional rate reduction (RFC 6937), as in
Linux, instead of pausing for half a round trip. A lost packet's bytes are not sent
again (the model measures queues, not goodput). Two window laws:

* ``reno``: slow start (+1 per ACK) up to ``ssthresh``, then +1/cwnd per ACK (one
  packet per RTT); on loss or mark cwnd and ssthresh halve (RFC 5681).
* ``cubic``: the same slow start, then cwnd follows W(t) = C (t - K)^3 + W_max with
  C = 0.4, K = (W_max (1 - beta) / C)^(1/3), or the Reno-friendly estimate if that is
  larger; on loss or mark W_max = cwnd and cwnd x beta = 0.7 (RFC 8312).

Spec keys besides the common ones: ``rtt`` (base round-trip time in seconds, default
0.02), ``window`` (initial window in packets, default 10), ``ecn`` (send ECN-capable
packets, default false).
"""
from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.shaping import NS
from xnf.plugins.pifo_sched.sim.traffic import Source, _seconds


class WindowSource(Source):
    """A bulk transfer clocked by ACKs; subclasses give the window law."""

    keys = {"rtt", "window", "ecn"}

    def __init__(self, spec, rng, duration_ns):
        super().__init__(spec, rng, duration_ns)
        self.rtt = _seconds(spec.get("rtt", 0.02), "rtt")
        if self.rtt <= 0:
            raise SchedulerConfigError("rtt must be positive", "e.g. rtt=0.02 (20 ms)")
        window = spec.get("window", 10)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise SchedulerConfigError(f"window must be a positive integer, got {window!r}", "e.g. window=10")
        self.ecn = bool(spec.get("ecn", False))
        self.cwnd = float(window)
        self.ssthresh = float("inf")
        self.in_flight = 0
        self.recover = 0  # no reduction for packets sent before the last one
        self.recovering = False
        self.prior_cwnd = self.delivered = self.sent = 0  # PRR's state during recovery
        self.initial = window if self.start < self.stop else 0

    def make(self, now, flow=None, size=None, remaining=None):
        pkt = super().make(now, flow, size, remaining)
        pkt.ect = self.ecn
        self.in_flight += 1
        return pkt

    def next_packet(self):
        if self.initial:
            self.initial -= 1
            return self.make(self.start)
        return None

    def on_feedback(self, pkt, lost, now):
        """``pkt`` was acknowledged (``lost`` False) or found lost: packets to send now."""
        self.in_flight -= 1
        if (lost or pkt.ce) and pkt.seq > self.recover:
            self.prior_cwnd = self.cwnd
            self.reduce(now)
            self.recover = self.seq
            self.recovering = True
            self.delivered = self.sent = 0
        elif self.recovering and not lost and pkt.seq >= self.recover:
            self.recovering = False
        elif not (self.recovering or lost or pkt.ce):
            self.grow(now)
        if self.recovering:  # RFC 6937 with slow-start reduction bound
            self.delivered += 1
            if self.in_flight > self.cwnd:
                budget = -(-self.delivered * self.cwnd // self.prior_cwnd) - self.sent
            else:
                budget = min(self.cwnd - self.in_flight, max(self.delivered - self.sent, 1))
            budget = int(budget)
        else:
            budget = int(self.cwnd) - self.in_flight
        out = []
        while len(out) < budget and now < self.stop:
            out.append(self.make(now))
        self.sent += len(out)
        return out

    def grow(self, now):
        raise NotImplementedError

    def reduce(self, now):
        raise NotImplementedError


class Reno(WindowSource):
    """AIMD: +1 packet per RTT, halve on loss or mark."""

    def grow(self, now):
        self.cwnd += 1 if self.cwnd < self.ssthresh else 1 / self.cwnd

    def reduce(self, now):
        self.ssthresh = max(self.cwnd / 2, 2.0)
        self.cwnd = self.ssthresh


class Cubic(WindowSource):
    """CUBIC: cubic growth around the window of the last loss (RFC 8312)."""

    C, BETA = 0.4, 0.7

    def __init__(self, spec, rng, duration_ns):
        super().__init__(spec, rng, duration_ns)
        self.w_max = 0.0
        self.epoch = None
        self.k = 0.0

    def grow(self, now):
        if self.cwnd < self.ssthresh:
            self.cwnd += 1
            return
        if self.epoch is None:  # left slow start without a loss: start an epoch here
            self.epoch, self.w_max, self.k = now, self.cwnd, 0.0
        rtt = self.rtt / NS
        t = (now - self.epoch) / NS
        target = self.C * (t + rtt - self.k) ** 3 + self.w_max
        friendly = self.w_max * self.BETA + 3 * (1 - self.BETA) / (1 + self.BETA) * t / rtt
        target = max(target, friendly)
        self.cwnd += (target - self.cwnd) / self.cwnd if target > self.cwnd else 0.01 / self.cwnd

    def reduce(self, now):
        self.w_max = self.cwnd
        self.cwnd = max(self.cwnd * self.BETA, 2.0)
        self.ssthresh = self.cwnd
        self.epoch = now
        self.k = (self.w_max * (1 - self.BETA) / self.C) ** (1 / 3)
