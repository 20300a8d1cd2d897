"""Per-flow and per-class measurements of one simulation run, and its JSON results.

Shares are byte shares of what the link sent; Jain's index is taken over throughput
divided by weight, so 1.0 means every flow got exactly its weighted share. A rank
inversion is counted for every queued packet of lower rank that a dequeued packet
overtakes, i.e. the distance from an ideal PIFO (only for packets that carry a rank).

The ideal PIFO is the sorted list of queued ranks, ``queued_ranks``. For speed (issue
14) the engine appends the ranks it queues to ``pending_ranks`` instead of inserting
each in order (a binary search over Python ints per packet: 4 % of a simulated DRR
packet), and keeps a bound at or below the lowest of them: while the rank leaving is
the first of ``queued_ranks`` and no pending one is lower, nothing was overtaken.
Everything else sorts the pending ranks in first (:meth:`merge_pending`): a stable
sort of the ranks in order followed by those pending, in arrival order, gives the
list that inserting each in turn would have.
"""
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from itertools import accumulate

from xnf.plugins.pifo_sched.scheduler import weight_of
from xnf.plugins.pifo_sched.shaping import NS

BINS = 100
DELAY_NAMES, DELAY_FRACTIONS = ("p50", "p90", "p99", "max"), (.5, .9, .99, 1.0)


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an already sorted list (None if empty)."""
    if not sorted_values:
        return None
    return sorted_values[_nearest_rank(fraction, len(sorted_values))]


def _nearest_rank(fraction, count):
    """The index of the nearest-rank ``fraction`` percentile among ``count`` sorted values."""
    return max(0, min(count - 1, int(-(-fraction * count // 1)) - 1))


def percentiles(values, fractions):
    """:func:`percentile` of the sorted ``values`` at each of ``fractions``.

    A long run's delays in whole nanoseconds repeat many times over (at 10 Gbit/s, 4 to
    26 distinct values per hundred): then the distinct values are counted (in C) and
    only those sorted, about 0.7x the CPU time of sorting every delay (1.1M packets:
    0.14 s against 0.20 s; issue 14). Where most values are distinct, counting costs up
    to 4.7x the sort, so a sample of every 16th value decides: counted when fewer than
    4 in 5 of the sample are distinct (about 1 in 7 of all values), else sorted."""
    if not values:
        return [None] * len(fractions)
    sample = values[::16]
    if len(values) < 4096 or len(set(sample)) * 5 >= len(sample) * 4:
        ordered = sorted(values)
        return [percentile(ordered, fraction) for fraction in fractions]
    counts = Counter(values)
    distinct = sorted(counts)
    at_or_below = list(accumulate(map(counts.__getitem__, distinct)))  # values <= each
    return [distinct[bisect_right(at_or_below, _nearest_rank(fraction, len(values)))] for fraction in fractions]


def jain_index(values):
    values = [v for v in values if v is not None]
    if not values or not any(values):
        return None
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


class FlowStats:
    """What one flow sent: a delay per departed packet, bytes per throughput bin, drops.

    ``bytes`` and ``packets`` follow from those (every departure adds its size to one
    bin and its delay to ``delays``), so a departure does not count them (issue 14).
    """

    __slots__ = ("flow", "cls", "drops", "delays", "bins")

    def __init__(self, flow, cls):
        self.flow = flow
        self.cls = cls
        self.drops = 0
        self.delays = []
        self.bins = [0] * BINS

    @property
    def bytes(self):
        return sum(self.bins)

    @property
    def packets(self):
        return len(self.delays)


class Metrics:
    """Collects arrivals, departures and drops; :meth:`results` summarises them."""

    def __init__(self, duration_ns, weights=None, events=None):
        self.duration = duration_ns
        self.weights = weights
        self.flows = {}
        self.queued_ranks = []  # sorted, but for the pending ranks (module doc)
        self.pending_ranks = []  # queued after every rank in queued_ranks, in arrival order
        self.inversions = 0
        self.inverted_packets = 0
        self.ranked = 0
        self.events = events  # a list to append (time, event, flow, seq, size) to, or None
        self._bin, self._bin_end = 0, 0  # the throughput bin of the last departure, and its end

    def bin_of(self, now):
        """``(bin, end)``: throughput bin ``now * BINS // duration`` (the last one from the
        end on) and the time it ends. Departures come in time order, so a caller keeps
        both and calls again only once ``now`` reaches ``end``: the division (on
        multi-digit ints) is done once per bin rather than once per packet."""
        index = now * BINS // self.duration
        if index >= BINS - 1:
            return BINS - 1, float("inf")
        return index, -(-(index + 1) * self.duration // BINS)

    def flow_stats(self, pkt):
        """The :class:`FlowStats` of ``pkt``'s flow, made at its first packet."""
        stats = self.flows.get(pkt.flow)
        if stats is None:
            stats = self.flows[pkt.flow] = FlowStats(pkt.flow, pkt.cls)
        return stats

    def queued(self, pkt, now):
        """After a successful enqueue: the rank the packet now holds joins the ideal PIFO."""
        if pkt.flow not in self.flows:
            self.flow_stats(pkt)
        if self.events is not None:
            self.events.append((now, "enq", pkt.flow, pkt.seq, pkt.size))
        rank = pkt.rank
        if rank is not None:
            self.merge_pending()
            ranks = self.queued_ranks
            if not ranks or rank >= ranks[-1]:  # insort's place when no queued rank is higher
                ranks.append(rank)
            else:
                insort(ranks, rank)

    def merge_pending(self):
        """Sort the pending ranks into ``queued_ranks`` (see the module doc)."""
        pending = self.pending_ranks
        if pending:
            ranks = self.queued_ranks
            ranks += pending
            ranks.sort()
            pending.clear()

    def _leave(self, rank):
        """A queued ``rank`` leaves the ideal PIFO; returns how many queued ranks are lower."""
        self.merge_pending()
        ranks = self.queued_ranks
        index = bisect_left(ranks, rank)
        if index < len(ranks) and ranks[index] == rank:
            del ranks[index]
        return index

    def overtook(self, rank):
        """A packet of ``rank`` departed: count the queued packets of lower rank it overtook."""
        self.ranked += 1
        self.merge_pending()
        ranks = self.queued_ranks
        if ranks and ranks[0] == rank:  # mostly the lowest leaves, overtaking nothing
            del ranks[0]
            return
        overtaken = self._leave(rank)
        if overtaken:
            self.inversions += overtaken
            self.inverted_packets += 1

    def departed(self, pkt, now):
        """``pkt`` left the scheduler for the link at ``now``.

        The engine writes this out in its loop when no event trace is recorded (see
        ``Simulation.run``); both ways are pinned by ``test_sched_digest``.
        """
        stats = self.flows.get(pkt.flow) or self.flow_stats(pkt)
        if now >= self._bin_end:
            self._bin, self._bin_end = self.bin_of(now)
        stats.delays.append(now - pkt.arrival)
        stats.bins[self._bin] += pkt.size
        if pkt.rank is not None:
            self.overtook(pkt.rank)
        if self.events is not None:
            self.events.append((now, "deq", pkt.flow, pkt.seq, pkt.size))

    def dropped(self, pkt, now, reason, was_queued):
        self.flow_stats(pkt).drops += 1
        if was_queued and pkt.rank is not None:
            self._leave(pkt.rank)
        if self.events is not None:
            self.events.append((now, "drop:" + reason, pkt.flow, pkt.seq, pkt.size))

    def results(self):
        """JSON-ready dict; floats rounded so equal runs give equal bytes."""
        total = sum(s.bytes for s in self.flows.values()) or 1
        seconds = self.duration / NS
        flows, classes = [], {}
        weights = {key: weight_of(self.weights, key) for key in self.flows}
        weight_sum = sum(weights.values())
        for key in sorted(self.flows, key=lambda k: (str(type(k)), k)):
            s = self.flows[key]
            delays = dict(zip(DELAY_NAMES, percentiles(s.delays, DELAY_FRACTIONS)))
            entry = {
                "flow": key, "cls": s.cls, "bytes": s.bytes, "packets": s.packets, "drops": s.drops,
                "share": round(s.bytes / total, 6),
                "throughput_bps": round(s.bytes * 8 / seconds, 1),
                "delay_us": {name: None if delay is None else round(delay / 1000, 3) for name, delay in delays.items()},
            }
            if self.weights is not None:
                entry["weight"] = weights[key]
                entry["configured_share"] = round(weights[key] / weight_sum, 6)
            flows.append(entry)
            if s.cls is not None:
                c = classes.setdefault(s.cls, {"cls": s.cls, "bytes": 0, "packets": 0, "drops": 0})
                c["bytes"] += s.bytes
                c["packets"] += s.packets
                c["drops"] += s.drops
        for c in classes.values():
            c["share"] = round(c["bytes"] / total, 6)
        jain = jain_index([self.flows[k].bytes / weights[k] for k in self.flows])
        return {
            "flows": flows,
            "classes": [classes[k] for k in sorted(classes, key=str)],
            "total_bytes": sum(s.bytes for s in self.flows.values()),
            "packets": sum(s.packets for s in self.flows.values()),
            "drops": sum(s.drops for s in self.flows.values()),
            "jain_index": None if jain is None else round(jain, 6),
            "rank_inversions": self.inversions if self.ranked else None,
            "inverted_packets": self.inverted_packets if self.ranked else None,
        }
