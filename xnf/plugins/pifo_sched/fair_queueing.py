"""Flat fair queueing over per-flow FIFOs: the shared body of STFQ and WFQ."""
from heapq import heapreplace

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
        root = self.root
        if root.count >= self.capacity:  # full(), written out: once per packet
            self.drop(pkt, now, "overflow")
            return False
        try:  # (a failed subscript costs more than get(), a hit less)
            leaf = self.flows[pkt.flow]
        except KeyError:
            leaf = self.flow_queue(pkt.flow)
        leaf.packets.append(pkt)  # push_packet() for a tree of one level, written out
        leaf.count += 1
        root.count += 1
        if leaf.count == 1:
            root.activate(leaf)
        return True

    def dequeue(self, now):
        root = self.root
        if not root.count:
            return None
        # FairNode.pop() for a tree of one level, written out (with FlowQueue.pop and
        # FairNode._push): five calls per packet were a fifth of a simulated WFQ packet.
        # The child served is the head, dequeued by requeue_head() when it stays backlogged
        # (instead of dequeue() and enqueue()), else by dequeue()
        pifo = root.pifo
        child = pifo.heap[0][2]
        pkt = child.packets.popleft()
        child.count -= 1
        root.count -= 1
        costs, size, by_finish = child.costs, pkt.size, root.by_finish
        try:  # (a failed subscript costs more than get(), a hit less)
            cost = costs[size]
        except KeyError:
            cost = costs[size] = root.cost(size, child.weight)
        start = child.start
        child.finish = finish = start + cost
        tag = finish if by_finish else start
        if tag > root.vtime:
            root.vtime = tag
        if child.count:
            child.start = rank = finish
            if by_finish:
                size = child.packets[0].size
                try:
                    cost = costs[size]
                except KeyError:
                    cost = costs[size] = root.cost(size, child.weight)
                rank += cost
            # pifo.requeue_head(rank) for a rank that stays in the primary window (nearly
            # all), written out: the heap entry replaced in place, behind earlier arrivals
            min_rank = pifo.min_rank
            if pifo._in_primary and min_rank <= rank < min_rank + pifo.rank_range:
                pifo._arrivals = arrival = pifo._arrivals + 1
                heapreplace(pifo.heap, (rank, arrival, child))
            else:
                pifo.requeue_head(rank)  # a past rank goes first
        else:
            pifo.dequeue()
        return pkt
