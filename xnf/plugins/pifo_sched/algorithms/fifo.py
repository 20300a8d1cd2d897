"""FIFO: the PIFO with every rank equal."""
from xnf.plugins.pifo_sched.pifo import BucketedPifo
from xnf.plugins.pifo_sched.scheduler import Scheduler


class Fifo(Scheduler):
    """First in, first out with tail drop (one PIFO, constant rank)."""

    def __init__(self, config=None):
        super().__init__(config)
        self.pifo = BucketedPifo(2)

    def __len__(self):
        return len(self.pifo)

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        self.pifo.enqueue(pkt, 0)
        return True

    def dequeue(self, now):
        return self.pifo.dequeue()[1] if self.pifo else None
