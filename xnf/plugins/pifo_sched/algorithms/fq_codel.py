"""FQ-CoDel (RFC 8290): flow queues served by DRR, each kept short by CoDel (RFC 8289).

With ``ecn`` (on by default, as in Linux), CoDel marks a packet whose sender set
``ect`` (Congestion Experienced) instead of dropping it.
"""
import zlib
from collections import deque
from math import sqrt

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.scheduler import Scheduler


class _FlowState:
    __slots__ = ("packets", "bytes", "deficit", "listed", "first_above", "drop_next",
                 "dropping", "count", "last_count")

    def __init__(self):
        self.packets = deque()
        self.bytes = 0
        self.deficit = 0
        self.listed = False
        self.first_above = 0
        self.drop_next = 0
        self.dropping = False
        self.count = 0
        self.last_count = 0


class FqCodel(Scheduler):
    """FQ-CoDel: hashed flow queues, new-flow priority, DRR quantum, CoDel drops."""

    defaults = {"flows": 1024, "quantum": 1514, "target_ns": 5_000_000, "interval_ns": 100_000_000,
                "mtu": 1514, "ecn": True}

    def __init__(self, config=None):
        super().__init__(config)
        for key in ("flows", "quantum", "target_ns", "interval_ns", "mtu"):
            if not isinstance(self.config[key], int) or self.config[key] < 1:
                raise SchedulerConfigError(f"{key} must be a positive integer, got {self.config[key]!r}",
                                           "see RFC 8290 for the usual values")
        if not isinstance(self.config["ecn"], bool):
            raise SchedulerConfigError(f"ecn must be true or false, got {self.config['ecn']!r}",
                                       "ecn: true marks ECN-capable packets instead of dropping them")
        self.queues = [_FlowState() for _ in range(self.config["flows"])]
        self.new_flows = deque()
        self.old_flows = deque()
        self.count = 0

    def __len__(self):
        return self.count

    def _queue_of(self, flow):
        # crc32, not hash(): the same flow must land in the same queue in every run
        return self.queues[zlib.crc32(repr(flow).encode()) % len(self.queues)]

    def enqueue(self, pkt, now):
        queue = self._queue_of(pkt.flow)
        pkt.enqueued = now
        queue.packets.append(pkt)
        queue.bytes += pkt.size
        self.count += 1
        if not queue.listed:
            queue.listed = True
            queue.deficit = self.config["quantum"]
            self.new_flows.append(queue)
        if self.count > self.capacity:  # drop at the head of the fattest flow
            fattest = max(self.queues, key=lambda q: q.bytes)
            victim = self._pop(fattest)
            self.drop(victim, now, "overflow")
            return victim is not pkt
        return True

    def _pop(self, queue):
        pkt = queue.packets.popleft()
        queue.bytes -= pkt.size
        self.count -= 1
        return pkt

    def _codel_pop(self, queue, now):
        """One dequeue step of CoDel: (packet or None, whether it may be dropped)."""
        if not queue.packets:
            queue.first_above = 0
            return None, False
        pkt = self._pop(queue)
        sojourn = now - pkt.enqueued
        if sojourn < self.config["target_ns"] or queue.bytes <= self.config["mtu"]:
            queue.first_above = 0
            return pkt, False
        if queue.first_above == 0:
            queue.first_above = now + self.config["interval_ns"]
            return pkt, False
        return pkt, now >= queue.first_above

    def _mark(self, pkt):
        """Mark instead of drop when the sender understands ECN."""
        if self.config["ecn"] and pkt.ect:
            pkt.ce = True
            return True
        return False

    def _control_law(self, start, count):
        return start + int(self.config["interval_ns"] / sqrt(count))

    def _codel_dequeue(self, queue, now):
        pkt, ok_to_drop = self._codel_pop(queue, now)
        if pkt is None:
            queue.dropping = False
            return None
        if queue.dropping:
            if not ok_to_drop:
                queue.dropping = False
            while queue.dropping and now >= queue.drop_next:
                queue.count += 1
                if self._mark(pkt):
                    queue.drop_next = self._control_law(queue.drop_next, queue.count)
                    break
                self.drop(pkt, now, "codel")
                pkt, ok_to_drop = self._codel_pop(queue, now)
                if pkt is None or not ok_to_drop:
                    queue.dropping = False
                else:
                    queue.drop_next = self._control_law(queue.drop_next, queue.count)
        elif ok_to_drop:
            if not self._mark(pkt):
                self.drop(pkt, now, "codel")
                pkt, _ = self._codel_pop(queue, now)
            queue.dropping = True
            delta = queue.count - queue.last_count
            recent = now - queue.drop_next < 16 * self.config["interval_ns"]
            queue.count = delta if delta > 1 and recent else 1
            queue.last_count = queue.count
            queue.drop_next = self._control_law(now, queue.count)
        return pkt

    def dequeue(self, now):
        while self.new_flows or self.old_flows:
            flows = self.new_flows if self.new_flows else self.old_flows
            queue = flows[0]
            if queue.deficit <= 0:
                queue.deficit += self.config["quantum"]
                flows.popleft()
                self.old_flows.append(queue)
                continue
            pkt = self._codel_dequeue(queue, now)
            if pkt is None:
                flows.popleft()
                if flows is self.new_flows:
                    self.old_flows.append(queue)
                else:
                    queue.listed = False
                continue
            queue.deficit -= pkt.size
            return pkt
        return None
