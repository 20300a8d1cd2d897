"""SP-PIFO: approximate a PIFO with a few strict-priority FIFOs whose bounds adapt.

Each band ``i`` has a bound ``q[i]`` (the rank last queued there). A packet goes to the
lowest-priority band whose bound is not above its rank and raises that bound to its
rank ("push-up"); a rank below every bound goes to the highest band and lowers all
bounds by the difference ("push-down"). With ``adaptive: false`` the bands instead cut
``[0, rank_max)`` into equal widths: the static mapping SP-PIFO is measured against.

The input rank is ``packet.rank``; packets without one get a start-time fair queueing
tag from the flow ``weights`` (virtual time = highest rank served).
"""
from collections import deque

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.scheduler import Scheduler, check_weights, weight_of


class SpPifo(Scheduler):
    """SP-PIFO: N strict-priority FIFOs with push-up/push-down rank bounds (or static bands)."""

    defaults = {"bands": 8, "adaptive": True, "rank_max": 100, "weights": None}

    def __init__(self, config=None):
        super().__init__(config)
        bands = self.config["bands"]
        if not isinstance(bands, int) or not 1 <= bands <= 64:
            raise SchedulerConfigError(f"bands must be an integer 1..64, got {bands!r}", "e.g. bands=8")
        if not self.config["adaptive"] and (not isinstance(self.config["rank_max"], int)
                                            or self.config["rank_max"] < bands):
            raise SchedulerConfigError("static bands need an integer rank_max >= bands",
                                       "give the upper end of the rank range, e.g. rank_max=100")
        check_weights(self.config["weights"])
        self.bands = [deque() for _ in range(bands)]
        self.bounds = [0] * bands
        self.count = 0
        self.vtime = 0
        self.finish = {}

    def __len__(self):
        return self.count

    def rank_of(self, pkt):
        if pkt.rank is None:
            start = max(self.vtime, self.finish.get(pkt.flow, 0))
            self.finish[pkt.flow] = start + int(pkt.size * 64 / weight_of(self.config["weights"], pkt.flow))
            pkt.rank = start
        return pkt.rank

    def band_of(self, rank):
        bands = len(self.bands)
        if not self.config["adaptive"]:
            return min(max(rank, 0) * bands // self.config["rank_max"], bands - 1)
        bounds = self.bounds
        for band in range(bands - 1, -1, -1):
            if rank >= bounds[band]:
                bounds[band] = rank  # push-up
                return band
        cost = bounds[0] - rank  # push-down
        for band in range(bands):
            bounds[band] -= cost
        return 0

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        self.bands[self.band_of(self.rank_of(pkt))].append(pkt)
        self.count += 1
        return True

    def dequeue(self, now):
        for band in self.bands:
            if band:
                self.count -= 1
                pkt = band.popleft()
                self.vtime = max(self.vtime, pkt.rank)
                return pkt
        return None
