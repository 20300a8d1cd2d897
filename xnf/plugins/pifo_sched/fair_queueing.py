"""Flat fair queueing over per-flow FIFOs: the shared body of STFQ and WFQ."""
from xnf.plugins.pifo_sched.hierarchy import FairNode, FlowQueue, tag_scale
from xnf.plugins.pifo_sched.scheduler import Scheduler, check_weights, weight_of


class FairQueueing(Scheduler):
    """One :class:`FairNode` whose children are the flows; ``order`` picks the tag."""

    order = "start"
    defaults = {"weights": None, "default_weight": 1.0, "max_packet": 9000}

    def __init__(self, config=None):
        super().__init__(config)
        weights = check_weights(self.config["weights"])
        check_weights([self.config["default_weight"]], "default_weight")
        values = list(weights.values() if isinstance(weights, dict) else weights or [])
        min_weight = min(values + [self.config["default_weight"]])
        scale = tag_scale(self.config["max_packet"], min_weight)
        self.root = FairNode("root", order=self.order, scale=scale)
        self.flows = {}

    def __len__(self):
        return self.root.count

    def full(self):
        return self.root.count >= self.capacity

    def flow_queue(self, key):
        leaf = self.flows.get(key)
        if leaf is None:
            leaf = FlowQueue(key, weight_of(self.config["weights"], key, self.config["default_weight"]))
            leaf.parent = self.root
            self.flows[key] = leaf
        return leaf

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        leaf = self.flows.get(pkt.flow)
        if leaf is None:
            leaf = self.flow_queue(pkt.flow)
        leaf.packets.append(pkt)  # push_packet() for a tree of one level, written out
        leaf.count += 1
        root = self.root
        root.count += 1
        if leaf.count == 1:
            root.activate(leaf)
        return True

    def dequeue(self, now):
        if not self.root.count:
            return None
        return self.root.pop()
