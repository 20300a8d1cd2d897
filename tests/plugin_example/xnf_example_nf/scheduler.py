"""``example_fifo``: first in, first out, as a pifo_sched scheduler plugin."""
import collections

from xnf.plugins.pifo_sched.scheduler import Scheduler


class ExampleFifo(Scheduler):
    """Example third-party FIFO: one queue, tail drop at capacity."""

    def __init__(self, config=None):
        super().__init__(config)
        self.queue = collections.deque()

    def __len__(self):
        return len(self.queue)

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        self.queue.append(pkt)
        return True

    def dequeue(self, now):
        return self.queue.popleft() if self.queue else None
