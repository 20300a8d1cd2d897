"""Deficit round robin written as a PIFO: the rank of a packet is its round."""
from xnf.plugins.pifo_sched.pifo import BucketedPifo
from xnf.plugins.pifo_sched.scheduler import Scheduler, check_weights, weight_of


class _Credit:
    __slots__ = ("round", "credit", "quantum")

    def __init__(self, quantum):
        self.round = -1
        self.credit = 0
        self.quantum = quantum


class Drr(Scheduler):
    """Deficit round robin: per round a flow sends at most quantum x weight + one packet."""

    defaults = {"quantum": 1500, "weights": None}

    def __init__(self, config=None):
        super().__init__(config)
        check_weights(self.config["weights"])
        check_weights([self.config["quantum"]], "quantum")
        self.pifo = BucketedPifo(1 << 16, self.capacity)
        self.round = 0
        self.flows = {}

    def __len__(self):
        return len(self.pifo)

    def full(self):
        return self.pifo.count >= self.capacity

    def quantum_of(self, flow):
        return self.config["quantum"] * weight_of(self.config["weights"], flow)

    def enqueue(self, pkt, now):
        pifo = self.pifo
        if pifo.count >= self.capacity:  # full(), written out: once per packet
            self.drop(pkt, now, "overflow")
            return False
        try:  # (a failed subscript costs more than get(), a hit less)
            state = self.flows[pkt.flow]
        except KeyError:
            state = self.flows[pkt.flow] = _Credit(self.quantum_of(pkt.flow))
        size, rank, credit = pkt.size, state.round, state.credit  # locals: once per packet
        if rank < self.round:  # idle flows keep no deficit from past rounds
            rank = self.round
            credit = state.quantum
        while size > credit:
            rank += 1
            credit += state.quantum
        state.round, state.credit = rank, credit - size
        pkt.rank = rank
        # pifo.enqueue(pkt, rank) when the round already has a bucket in the primary
        # window (most packets), written out: the PIFO's own capacity is this one's
        window = pifo._primary
        bucket = window.buckets.get(rank - window.base)
        if bucket is None:
            pifo.enqueue(pkt, rank)
        else:
            bucket.append(pkt)
            window.count += 1
            pifo.count += 1
        return True

    def dequeue(self, now):
        pifo = self.pifo
        # pifo.dequeue() when the head bucket is known and keeps a packet (most
        # packets: a round holds several), written out
        window = pifo._primary
        index = window.head
        if index >= 0:
            bucket = window.buckets[index]
            pkt = bucket.popleft()
            if bucket:
                window.count -= 1
                pifo.count -= 1
                self.round = window.base + index
                return pkt
            bucket.append(pkt)  # its last packet: the bucket goes too, in pifo.dequeue()
        if not pifo.count:
            return None
        self.round, pkt = pifo.dequeue()
        return pkt
