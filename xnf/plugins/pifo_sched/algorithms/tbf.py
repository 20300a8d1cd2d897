"""Token bucket shaping through the timer hook."""
from collections import deque

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.shaping import NS, Shaper, parse_rate


class TokenBucket(Shaper):
    """Token bucket shaper: `rate` (bits/s or '10mbit') with a bucket of `burst` bytes."""

    defaults = {"rate": "10mbit", "burst": 15000, "resolution_ns": 1000}

    def __init__(self, config=None):
        super().__init__(config)
        self.rate = parse_rate(self.config["rate"])
        burst = self.config["burst"]
        if not isinstance(burst, int) or burst < 64:
            raise SchedulerConfigError(f"burst must be at least 64 bytes, got {burst!r}",
                                       "make the bucket hold at least one packet, e.g. burst=15000")
        # tokens in nanobits: `rate` of them arrive per nanosecond, a byte costs 8e9
        self.bucket = burst * 8 * NS
        self.tokens = self.bucket
        self.updated = 0
        self.backlog = deque()
        self.waiting = False

    def __len__(self):
        return len(self.backlog) + len(self.ready)

    def _tokens_at(self, now):
        return min(self.bucket, self.tokens + self.rate * (now - self.updated))

    def _schedule_head(self, now):
        need = self.backlog[0].size * 8 * NS
        if need > self.bucket:
            raise SchedulerConfigError(f"a {self.backlog[0].size}-byte packet is larger than the bucket",
                                       "raise burst above the largest packet size")
        have = self._tokens_at(now)
        when = now if have >= need else now - (-(need - have) // self.rate)
        self.calendar.schedule(self, when)
        self.waiting = True

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        self.backlog.append(pkt)
        if not self.waiting:
            self._schedule_head(now)
        return True

    def release(self, item, now):
        pkt = self.backlog.popleft()
        self.tokens = self._tokens_at(now) - pkt.size * 8 * NS
        self.updated = now
        self.ready.append(pkt)
        self.waiting = False
        if self.backlog:
            self._schedule_head(now)
