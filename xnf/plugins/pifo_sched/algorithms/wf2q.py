"""WF2Q+: worst-case fair weighted fair queueing, expressed with two PIFOs.

Only flows whose start tag is not ahead of virtual time are eligible; among them the
lowest finish tag goes first. A PIFO ordered by start tag holds the flows that are not
yet eligible, and each dequeue moves the ones virtual time has caught up with into the
PIFO ordered by finish tag: dequeue-by-predicate (PIEO) on PIFOs.

System virtual time is Bennett and Zhang's (1997): each packet served advances it by
its bytes divided by the sum of the weights of *all* flows (every configured weight and
every flow seen so far), i.e. by real time at the guaranteed rates, and it then jumps
to the lowest start tag of a backlogged flow if that is ahead. Dividing by the weight
of the flows backlogged in the packet system instead (what this module did first) runs
ahead of GPS: flows that empty early there are still served under GPS, so the heavy
flow became eligible too soon (1.5 packets ahead of GPS in their example, where the
bound is half a packet). A new busy period starts virtual time after every finish tag,
since GPS has finished every packet when the (equally work-conserving) packet system
runs empty. The jump to the lowest start tag is taken when the next packet is chosen,
not right after a packet is chosen: taken early, it moved virtual time to the next
start tag of the flow on the wire, and a flow arriving during that packet started
too late.
"""
from xnf.plugins.pifo_sched.hierarchy import FlowQueue, RANK_RANGE, tag_scale
from xnf.plugins.pifo_sched.pifo import HeapPifo
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
        self.eligible = HeapPifo(RANK_RANGE)  # one entry per backlogged flow in either
        self.pending = HeapPifo(RANK_RANGE)
        self.flows = {}
        self.vtime = 0
        self.total_weight = sum(values)  # grows as flows not in `weights` show up
        # what the packet on the wire adds to vtime by the next choice: a flow that
        # arrives meanwhile starts at vtime as of the last choice, never later than
        # Bennett and Zhang's V(t), which grows with real time in between
        self.advance = 0
        self.last_finish = 0
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
            if not self._configured(pkt.flow):
                self.total_weight += flow.weight
        if not self.count:  # a new busy period: GPS has served everything before it
            self.vtime = max(self.vtime + self.advance, self.last_finish)
            self.advance = 0
        flow.push(pkt)
        self.count += 1
        if flow.count == 1:
            flow.start = max(self.vtime, flow.finish)
            self._schedule(flow)
        return True

    def _configured(self, key):
        weights = self.config["weights"]
        if isinstance(weights, dict):
            return key in weights or str(key) in weights
        return isinstance(weights, list) and isinstance(key, int) and 0 <= key < len(weights)

    def dequeue(self, now):
        if not self.count:
            return None
        self.vtime += self.advance
        if not self.eligible:
            self.vtime = max(self.vtime, self.pending.peek()[0])
        while self.pending and self.pending.peek()[0] <= self.vtime:
            _, flow = self.pending.dequeue()
            push_clamped(self.eligible, flow, flow.finish)
        _, flow = self.eligible.dequeue()
        pkt = flow.pop()
        self.count -= 1
        self.last_finish = max(self.last_finish, flow.finish)
        # real time at the guaranteed rates; rounded down, so never ahead of GPS
        self.advance = int(pkt.size * self.scale / self.total_weight)
        if flow.count:
            flow.start = flow.finish
            self._schedule(flow)
        return pkt
