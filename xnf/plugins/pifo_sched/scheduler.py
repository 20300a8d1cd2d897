"""The scheduler contract: enqueue, dequeue and timer hooks over PIFO queues.

A scheduler is a plugin class registered in the ``xnf.schedulers`` entry-point
namespace. The runtime (simulation or kernel model) drives it through three hooks:

* ``enqueue(pkt, now) -> bool``: choose the queue and the rank (False: dropped);
* ``dequeue(now) -> Packet | None``: choose which queue to serve; ``dequeue_bulk``
  may hand over several packets at once;
* ``timer(now)`` with ``next_timer()``: optional, releases elements delayed for shaping
  or pacing; ``next_timer`` tells the runtime when it must run next.

Configuration is a dict checked against :attr:`Scheduler.defaults`.
"""
from collections import deque

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.pifo import BucketedPifo, HeapPifo

#: options every scheduler accepts
COMMON_DEFAULTS = {"capacity": 10000}


def weight_of(weights, key, default=1.0):
    """Weight of a flow or class from ``weights`` (dict by id or str(id), list by index)."""
    if weights is None:
        return default
    if isinstance(weights, dict):
        if key in weights:
            return weights[key]
        return weights.get(str(key), default)
    if isinstance(key, int) and 0 <= key < len(weights):
        return weights[key]
    return default


def check_weights(weights, what="weights"):
    """Reject non-positive or non-numeric weights before any state is built."""
    values = weights.values() if isinstance(weights, dict) else (weights or [])
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise SchedulerConfigError(f"{what} must be positive numbers, got {value!r}",
                                       "give weights such as 1,2,3")
    return weights


def push_clamped(pifo, item, rank):
    """Enqueue with ``rank`` raised to the queue's minimum: a rank in the past goes first."""
    if rank < pifo.min_rank:
        rank = pifo.min_rank
    pifo.enqueue(item, rank)
    return rank


class Scheduler:
    """Base of every scheduler; subclasses implement :meth:`enqueue` and :meth:`dequeue`."""

    #: scheduler-specific options and their defaults
    defaults = {}

    def __init__(self, config=None):
        self.config = self.parse_config(config)
        self.capacity = self.config["capacity"]
        if not isinstance(self.capacity, int) or self.capacity < 1:
            raise SchedulerConfigError(f"capacity must be a positive integer, got {self.capacity!r}",
                                       "give the buffer size in packets")
        self.on_drop = None
        self.dropped = 0

    @classmethod
    def parse_config(cls, config):
        merged = dict(COMMON_DEFAULTS)
        merged.update(cls.defaults)
        for key, value in (config or {}).items():
            if key not in merged:
                raise SchedulerConfigError(
                    f"scheduler {cls.__name__} has no option {key!r}",
                    "valid options: " + ", ".join(sorted(merged)))
            merged[key] = value
        return merged

    @classmethod
    def summary(cls):
        """First line of the class docstring, for ``xnf sched list``."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    def __len__(self):
        raise NotImplementedError

    def enqueue(self, pkt, now):
        raise NotImplementedError

    def dequeue(self, now):
        raise NotImplementedError

    def dequeue_bulk(self, now, limit):
        """Up to ``limit`` packets in one call (bulking at the driver)."""
        out = []
        while len(out) < limit:
            pkt = self.dequeue(now)
            if pkt is None:
                break
            out.append(pkt)
        return out

    def next_timer(self):
        """Earliest virtual time at which :meth:`timer` has work, or None."""
        return None

    def timer(self, now):
        """Release elements whose time has come (shaping, pacing)."""

    def full(self):
        return len(self) >= self.capacity

    def drop(self, pkt, now, reason):
        """Account a packet the scheduler refuses or discards."""
        self.dropped += 1
        if self.on_drop is not None:
            self.on_drop(pkt, now, reason)


class RankScheduler(Scheduler):
    """One PIFO with tail drop: a subclass only says how a packet is ranked.

    :meth:`rank` returns a rank in the PIFO's window and records it on the packet when
    the rank-inversion metric should count it.
    """

    #: rank range of the PIFO (a power of two)
    rank_range = 2

    def __init__(self, config=None):
        super().__init__(config)
        self.pifo = BucketedPifo(self.pifo_range())

    def pifo_range(self):
        """The PIFO's rank range; the options are parsed by the time it is asked."""
        return self.rank_range

    def __len__(self):
        return len(self.pifo)

    def full(self):
        return self.pifo.count >= self.capacity

    def rank(self, pkt, now):
        raise NotImplementedError

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        self.pifo.enqueue(pkt, self.rank(pkt, now))
        return True

    def dequeue(self, now):
        return self.pifo.dequeue()[1] if self.pifo.count else None


class _FlowHead:
    __slots__ = ("key", "packets", "rank", "token", "state")

    def __init__(self, key):
        self.key = key
        self.packets = deque()
        self.rank = None
        self.token = 0
        self.state = None  # whatever the subclass keeps per flow


class FlowOrderScheduler(Scheduler):
    """One PIFO entry per backlogged flow, standing for its head packet: every flow's
    packets leave in arrival order, whatever their ranks.

    For ranks that can fall within a flow. SRPT's rank, the bytes left in the flow,
    shrinks with every packet; ranked per packet in one PIFO, a flow queued at once
    left tail first, and flows queued together took turns instead of the shortest
    finishing first. The flow's rank is :meth:`flow_rank` when it becomes backlogged
    and after each of its packets is served (the PIFO re-ranks nothing, so the flow is
    pushed again). :meth:`arrival_rank` may lower it when a packet arrives (a closer
    deadline behind the head): the flow is pushed again at the lower rank and the old
    entry, now stale, is skipped when it comes out. A rank beyond the window the PIFO
    can order is held at its end, so it goes after everything queued (and ties keep
    arrival order) instead of stopping the run.
    """

    rank_range = 2

    def __init__(self, config=None):
        super().__init__(config)
        self.pifo = HeapPifo(self.pifo_range())  # an entry per backlogged flow (and stale ones)
        self.flows = {}
        self.count = 0

    def pifo_range(self):
        return self.rank_range

    def __len__(self):
        return self.count

    def flow_rank(self, flow, now):
        """Rank of ``flow`` (a :class:`_FlowHead`) with ``flow.packets[0]`` at its head."""
        raise NotImplementedError

    def arrival_rank(self, flow, pkt, now):
        """A rank to lower a backlogged flow to when ``pkt`` joins it, or None."""
        return None

    def joined(self, flow, pkt, now):
        """``pkt`` was appended to ``flow.packets`` (per-flow bookkeeping)."""

    def left(self, flow, pkt):
        """``pkt`` left the head of ``flow.packets``."""

    def _push(self, flow, rank):
        if self.pifo and rank > self.pifo.max_rank:
            rank = self.pifo.max_rank
        flow.token += 1
        flow.rank = push_clamped(self.pifo, (flow, flow.token), rank)

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        flow = self.flows.get(pkt.flow)
        if flow is None:
            flow = self.flows[pkt.flow] = _FlowHead(pkt.flow)
        flow.packets.append(pkt)
        self.joined(flow, pkt, now)
        self.count += 1
        if len(flow.packets) == 1:
            self._push(flow, self.flow_rank(flow, now))
        else:
            rank = self.arrival_rank(flow, pkt, now)
            if rank is not None and rank < flow.rank:
                self._push(flow, rank)
        return True

    def dequeue(self, now):
        while self.pifo:
            _, (flow, token) = self.pifo.dequeue()
            if token == flow.token:
                break
        else:
            return None
        pkt = flow.packets.popleft()
        self.left(flow, pkt)
        self.count -= 1
        if flow.packets:
            self._push(flow, self.flow_rank(flow, now))
        else:
            flow.token += 1
            del self.flows[flow.key]
        return pkt
