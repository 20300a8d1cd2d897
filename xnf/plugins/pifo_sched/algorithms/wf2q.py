"""WF2Q+: worst-case fair weighted fair queueing, expressed with two PIFOs.

Only flows whose start tag is not ahead of virtual time are eligible; among them the
lowest finish tag goes first. A PIFO ordered by start tag holds the flows that are not
yet eligible, and each dequeue moves the ones virtual time has caught up with into the
PIFO ordered by finish tag: dequeue-by-predicate (PIEO) on PIFOs. Virtual time
advances by the bytes served divided by the weight of all backlogged flows and never
lags the lowest start tag.
"""
from xnf.plugins.pifo_sched.hierarchy import FlowQueue, RANK_RANGE, tag_scale
from xnf.plugins.pifo_sched.pifo import BucketedPifo
from xnf.plugins.pifo_sched.scheduler import Scheduler, check_weights, push_clamped, weight_of


class Wf2q(Scheduler):
    """WF2Q+: smallest finish tag among eligible flows; smooth, worst-case fair service."""

    defaults = {"weights": None, "default_weight": 1.0, "max_packet": 9000}

    def __init__(self, config=None):
        super().__init__(config)
        weights = check_weights(self.config["weights"])
        check_weights([self.config["default_weight"]], "default_weight")
        values = list(weights.values() if isinstance(weights, dict) else weights or [])
        self.scale = tag_scale(self.config["max_packet"], min(values + [self.config["default_weight"]]))
        self.eligible = BucketedPifo(RANK_RANGE)
        self.pending = BucketedPifo(RANK_RANGE)
        self.flows = {}
        self.vtime = 0
        self.active_weight = 0.0
        self.count = 0

    def __len__(self):
        return self.count

    def cost(self, size, weight):
        return max(1, int(size * self.scale / weight + 0.5))

    def _schedule(self, flow):
        flow.finish = flow.start + self.cost(flow.head_size(), flow.weight)
        if flow.start <= self.vtime:
            push_clamped(self.eligible, flow, flow.finish)
        else:
            push_clamped(self.pending, flow, flow.start)

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        flow = self.flows.get(pkt.flow)
        if flow is None:
            flow = FlowQueue(pkt.flow, weight_of(self.config["weights"], pkt.flow, self.config["default_weight"]))
            self.flows[pkt.flow] = flow
        flow.push(pkt)
        self.count += 1
        if flow.count == 1:
            flow.start = max(self.vtime, flow.finish)
            self.active_weight += flow.weight
            self._schedule(flow)
        return True

    def dequeue(self, now):
        if not self.count:
            return None
        if not self.eligible:
            self.vtime = max(self.vtime, self.pending.peek()[0])
        while self.pending and self.pending.peek()[0] <= self.vtime:
            _, flow = self.pending.dequeue()
            push_clamped(self.eligible, flow, flow.finish)
        _, flow = self.eligible.dequeue()
        pkt = flow.pop()
        self.count -= 1
        self.vtime += self.cost(pkt.size, self.active_weight)
        if flow.count:
            flow.start = flow.finish
            self._schedule(flow)
        else:
            self.active_weight -= flow.weight
        if self.count and not self.eligible:
            self.vtime = max(self.vtime, self.pending.peek()[0])
        return pkt
