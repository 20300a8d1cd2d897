"""Shaping transactions: a calendar PIFO ranked by release time, and the timer hook.

An element that must wait (token bucket, pacing) is put in a :class:`Calendar`, a
bucketed PIFO whose rank is its release time rounded up to ``resolution_ns``. The
runtime asks :meth:`Shaper.next_timer` when to run the timer hook; :meth:`Shaper.timer`
moves every due element on into the ready FIFO that the dequeue hook serves.
"""
from collections import deque

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.pifo import BucketedPifo
from xnf.plugins.pifo_sched.scheduler import Scheduler, push_clamped

NS = 1_000_000_000


class Calendar:
    """Timing wheel on a bucketed PIFO: release time in ``resolution_ns`` steps."""

    def __init__(self, resolution_ns=1000, rank_range=1 << 20):
        if not isinstance(resolution_ns, int) or resolution_ns < 1:
            raise SchedulerConfigError(f"resolution_ns must be a positive integer, got {resolution_ns!r}",
                                       "e.g. resolution_ns=1000")
        self.resolution = resolution_ns
        self.pifo = BucketedPifo(rank_range)

    def __len__(self):
        return len(self.pifo)

    def schedule(self, item, time_ns):
        push_clamped(self.pifo, item, -(-time_ns // self.resolution))

    def next_time(self):
        if not self.pifo:
            return None
        return self.pifo.peek()[0] * self.resolution

    def pop_due(self, now):
        """The next element whose release time has come, or None."""
        if self.pifo and self.pifo.peek()[0] * self.resolution <= now:
            return self.pifo.dequeue()[1]
        return None


class Shaper(Scheduler):
    """Base of shaping schedulers: subclasses implement :meth:`release` for due elements."""

    defaults = {"resolution_ns": 1000}

    def __init__(self, config=None):
        super().__init__(config)
        self.calendar = Calendar(self.config["resolution_ns"])
        self.ready = deque()

    def release(self, item, now):
        """Move the due ``item`` on (append packets to :attr:`ready`, re-schedule)."""
        raise NotImplementedError

    def next_timer(self):
        return self.calendar.next_time()

    def timer(self, now):
        item = self.calendar.pop_due(now)
        while item is not None:
            self.release(item, now)
            item = self.calendar.pop_due(now)

    def dequeue(self, now):
        self.timer(now)
        return self.ready.popleft() if self.ready else None


def parse_rate(value, what="rate"):
    """Bits per second from an int or a string such as ``10mbit``, ``1gbit``, ``500kbit``."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)) and value > 0:
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower().replace("bps", "bit").replace("bit/s", "bit")
        for suffix, factor in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3), ("bit", 1),
                               ("g", 10**9), ("m", 10**6), ("k", 10**3)):
            if text.endswith(suffix):
                try:
                    number = float(text[: -len(suffix)])
                except ValueError:
                    break
                if number > 0:
                    return int(number * factor)
                break
        else:
            try:
                number = float(text)
                if number > 0:
                    return int(number)
            except ValueError:
                pass
    raise SchedulerConfigError(f"{what} must be a positive rate, got {value!r}",
                               "give bits per second or a string such as 10mbit")
