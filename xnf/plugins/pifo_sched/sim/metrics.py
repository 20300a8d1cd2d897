"""Per-flow and per-class measurements of one simulation run, and its JSON results.

Shares are byte shares of what the link sent; Jain's index is taken over throughput
divided by weight, so 1.0 means every flow got exactly its weighted share. A rank
inversion is counted for every queued packet of lower rank that a dequeued packet
overtakes, i.e. the distance from an ideal PIFO (only for packets that carry a rank).
"""
from bisect import bisect_left, insort

from xnf.plugins.pifo_sched.scheduler import weight_of
from xnf.plugins.pifo_sched.shaping import NS

BINS = 100


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an already sorted list (None if empty)."""
    if not sorted_values:
        return None
    index = max(0, min(len(sorted_values) - 1, int(-(-fraction * len(sorted_values) // 1)) - 1))
    return sorted_values[index]


def jain_index(values):
    values = [v for v in values if v is not None]
    if not values or not any(values):
        return None
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


class FlowStats:
    __slots__ = ("flow", "cls", "bytes", "packets", "drops", "delays", "bins")

    def __init__(self, flow, cls):
        self.flow = flow
        self.cls = cls
        self.bytes = 0
        self.packets = 0
        self.drops = 0
        self.delays = []
        self.bins = [0] * BINS


class Metrics:
    """Collects arrivals, departures and drops; :meth:`results` summarises them."""

    def __init__(self, duration_ns, weights=None, events=None):
        self.duration = duration_ns
        self.weights = weights
        self.flows = {}
        self.queued_ranks = []
        self.inversions = 0
        self.inverted_packets = 0
        self.ranked = 0
        self.events = events  # a list to append (time, event, flow, seq, size) to, or None
        self._bin, self._bin_end = 0, 0  # the throughput bin of the last departure, and its end

    def _bin_of(self, now):
        """Throughput bin ``now * BINS // duration`` (the last one from the end on), and the
        times it covers: departures come in time order, so the division (on multi-digit
        ints) is done once per bin rather than once per packet."""
        index = now * BINS // self.duration
        if index >= BINS - 1:
            index, end = BINS - 1, float("inf")
        else:
            end = -(-(index + 1) * self.duration // BINS)
        self._bin, self._bin_end = index, end
        return index

    def _flow(self, pkt):
        stats = self.flows.get(pkt.flow)
        if stats is None:
            stats = self.flows[pkt.flow] = FlowStats(pkt.flow, pkt.cls)
        return stats

    def queued(self, pkt, now):
        """After a successful enqueue: the rank the packet now holds joins the ideal PIFO."""
        if pkt.flow not in self.flows:
            self._flow(pkt)
        if self.events is not None:
            self.events.append((now, "enq", pkt.flow, pkt.seq, pkt.size))
        rank = pkt.rank
        if rank is not None:
            ranks = self.queued_ranks
            if not ranks or rank >= ranks[-1]:  # insort's place when no queued rank is higher
                ranks.append(rank)
            else:
                insort(ranks, rank)

    def _leave(self, pkt):
        if pkt.rank is not None:
            index = bisect_left(self.queued_ranks, pkt.rank)
            if index < len(self.queued_ranks) and self.queued_ranks[index] == pkt.rank:
                del self.queued_ranks[index]
            return index
        return 0

    def departed(self, pkt, now):
        stats = self.flows.get(pkt.flow) or self._flow(pkt)
        size = pkt.size
        stats.bytes += size
        stats.packets += 1
        stats.delays.append(now - pkt.arrival)
        if now < self._bin_end:  # departures come in time order: never before the bin's start
            stats.bins[self._bin] += size
        else:
            stats.bins[self._bin_of(now)] += size
        rank = pkt.rank
        if rank is not None:
            self.ranked += 1
            ranks = self.queued_ranks  # _leave(), written out; mostly the lowest leaves
            if ranks and ranks[0] == rank:  # overtakes nothing
                del ranks[0]
            else:
                overtaken = bisect_left(ranks, rank)
                if overtaken < len(ranks) and ranks[overtaken] == rank:
                    del ranks[overtaken]
                if overtaken:
                    self.inversions += overtaken
                    self.inverted_packets += 1
        if self.events is not None:
            self.events.append((now, "deq", pkt.flow, pkt.seq, size))

    def dropped(self, pkt, now, reason, was_queued):
        self._flow(pkt).drops += 1
        if was_queued:
            self._leave(pkt)
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
            delays = sorted(s.delays)
            entry = {
                "flow": key, "cls": s.cls, "bytes": s.bytes, "packets": s.packets, "drops": s.drops,
                "share": round(s.bytes / total, 6),
                "throughput_bps": round(s.bytes * 8 / seconds, 1),
                "delay_us": {name: None if percentile(delays, q) is None else round(percentile(delays, q) / 1000, 3)
                             for name, q in (("p50", .5), ("p90", .9), ("p99", .99), ("max", 1.0))},
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
