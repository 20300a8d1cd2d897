"""Earliest departure time pacing: per-flow rates and packet timestamps."""
from xnf.plugins.pifo_sched.hierarchy import FlowQueue
from xnf.plugins.pifo_sched.scheduler import weight_of
from xnf.plugins.pifo_sched.shaping import NS, Shaper, parse_rate


class EdtPacing(Shaper):
    """EDT pacing: a packet leaves at max(packet.tstamp, its flow's pacing time)."""

    defaults = {"rates": None, "default_rate": None, "resolution_ns": 1000}

    def __init__(self, config=None):
        super().__init__(config)
        self.flows = {}
        self.next_time = {}
        self.rates = {}
        self.count = 0

    def __len__(self):
        return self.count

    def rate_of(self, flow):
        rate = weight_of(self.config["rates"], flow, self.config["default_rate"])
        return None if rate is None else parse_rate(rate, f"rate of flow {flow!r}")

    def _schedule_head(self, flow, now):
        pkt = flow.packets[0]
        when = max(now, self.next_time.get(flow.key, 0), pkt.tstamp or 0)
        flow.start = when
        self.calendar.schedule(flow, when)

    def enqueue(self, pkt, now):
        if self.full():
            self.drop(pkt, now, "overflow")
            return False
        flow = self.flows.get(pkt.flow)
        if flow is None:
            flow = self.flows[pkt.flow] = FlowQueue(pkt.flow)
            self.rates[pkt.flow] = self.rate_of(pkt.flow)
        flow.push(pkt)
        self.count += 1
        if flow.count == 1:
            self._schedule_head(flow, now)
        return True

    def release(self, flow, now):
        pkt = flow.pop()
        rate = self.rates[flow.key]
        if rate is not None:
            self.next_time[flow.key] = flow.start + -(-pkt.size * 8 * NS // rate)
        self.ready.append(pkt)
        if flow.count:
            self._schedule_head(flow, now)

    def dequeue(self, now):
        pkt = super().dequeue(now)
        if pkt is not None:
            self.count -= 1
        return pkt
