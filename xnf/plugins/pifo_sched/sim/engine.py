"""The discrete-event loop: sources feed a scheduler that feeds a link of fixed rate.

Virtual time is integer nanoseconds. Events are ordered by (time, sequence number), so
the same sources with the same seed give the same run, byte for byte. The link asks
the dequeue hook for a packet whenever it is idle, once every event of the current
instant has been handled, so packets that arrive together are all queued before the
scheduler chooses among them; when the scheduler holds packets it will not release
yet, the loop sleeps until ``next_timer()`` and runs the timer hook.

For speed (issue 14) the loop keeps the order without a heap operation per packet: an
event for the current instant (a bulk source's next packet, a drop's answer) is always
newer than every queued one, so it goes to the back of a FIFO of this instant instead
of the heap; and the link's end of transmission is a time kept aside, not an event,
since all it does is free the link, which is only asked for a packet once the
instant's events are done.
"""
import heapq
import random
from collections import deque

from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.shaping import NS, parse_rate
from xnf.plugins.pifo_sched.sim.metrics import Metrics
from xnf.plugins.pifo_sched.sim.sources import make_source
from xnf.plugins.pifo_sched.sim.traffic import TraceSource

ARRIVAL, TIMER, FEEDBACK = 0, 1, 2
INFINITY = float("inf")


class Simulation:
    """One run: ``scheduler`` in front of a ``link_rate`` link for ``duration`` seconds."""

    def __init__(self, scheduler, traffic=(), link_rate="10mbit", duration=10.0, seed=1,
                 trace=None, weights=None, record_events=False):
        if isinstance(duration, bool) or not isinstance(duration, (int, float)) or duration <= 0:
            raise SchedulerConfigError(f"duration must be a positive number of seconds, got {duration!r}",
                                       "e.g. --duration 10")
        if not isinstance(seed, int):
            raise SchedulerConfigError(f"seed must be an integer, got {seed!r}", "e.g. --seed 1")
        self.scheduler = scheduler
        self.link_rate = parse_rate(link_rate, "link rate")
        self.duration = int(duration * NS)
        self.seed = seed
        self.sources = [make_source(spec, random.Random(f"{seed}:{index}"), self.duration)
                        for index, spec in enumerate(traffic)]
        if trace is not None:
            self.sources.append(TraceSource(trace, self.duration))
        if not self.sources:
            raise SchedulerConfigError("no traffic to simulate", "give traffic sources or --trace FILE")
        self.metrics = Metrics(self.duration, weights, [] if record_events else None)
        self.events = []  # heap of (time, sequence, kind, data) of later instants
        self.instant = deque()  # (kind, data) of events for the current instant, in order
        self.now = None
        self.sequence = 0
        self.owner = {}  # queued packet -> its source (by identity: Packet defines no equality)
        self.timer_at = None
        self.lost_at, self.lost = None, {}  # the instant of the last bulk loss; losses per source then
        scheduler.on_drop = self._on_drop

    def _push(self, time, kind, data=None):
        if time == self.now:  # newer than every queued event: last of this instant
            self.instant.append((kind, data))
        else:
            self.sequence += 1
            heapq.heappush(self.events, (time, self.sequence, kind, data))

    def _on_drop(self, pkt, now, reason):
        source = self.owner.pop(pkt, None)
        self.metrics.dropped(pkt, now, reason, was_queued=source is not None)
        if source is not None:
            self._answer(source, pkt, now, lost=True)

    def _answer(self, source, pkt, now, lost=False, done_at=None):
        """Tell the source its packet left (at ``now``, off the wire at ``done_at``) or was
        dropped. A window source (with ``rtt``) hears of it a base RTT later."""
        if source.rtt is not None:
            self._push((now if lost else done_at) + source.rtt, FEEDBACK, (source, pkt, lost))
            return
        reply = source.on_done(pkt, now)
        if reply is not None:
            if lost:
                self._count_loss(source, now)
            self._push(now, ARRIVAL, (source, reply, False))

    def _count_loss(self, source, now):
        """A bulk source answers a drop at once, at the same instant. Once it has lost more
        than its whole window at one instant, its answers are being dropped as they come
        (the buffer cannot hold its window) and virtual time would never advance: refuse."""
        if self.lost_at != now:
            self.lost_at, self.lost = now, {}
        lost = self.lost[source] = self.lost.get(source, 0) + 1
        if lost > source.window:
            capacity = getattr(self.scheduler, "capacity", None)
            buffer = "the buffer" if capacity is None else f"the buffer ({capacity} packets)"
            raise SchedulerConfigError(
                f"the bulk source of flow {source.flow!r} lost more than its whole window "
                f"({source.window} packets) at {now} ns: each packet it sends in place of a dropped one "
                f"is dropped again at once, so the run cannot advance; {buffer} cannot hold the bulk "
                f"windows beside the other traffic queued",
                "give the scheduler a capacity above the sum of the bulk windows and the other traffic's "
                "backlog, give the bulk sources smaller windows (window=N), or use reno/cubic sources, "
                "which back off")

    def _feedback(self, source, pkt, lost, now):
        for reply in source.on_feedback(pkt, lost, now):
            self._push(now, ARRIVAL, (source, reply, False))

    def _next_arrival(self, source):
        pkt = source.next_packet()
        if pkt is not None:
            self._push(pkt.arrival, ARRIVAL, (source, pkt, True))

    def _refused(self, source, pkt, now):
        """The enqueue hook said False without passing the packet to the drop hook."""
        del self.owner[pkt]
        self.metrics.dropped(pkt, now, "refused", was_queued=False)
        self._answer(source, pkt, now, lost=True)

    def _sleep(self, now):
        """Nothing to send now: wake up when the scheduler's timer has work."""
        wake = self.scheduler.next_timer()
        if wake is not None and (self.timer_at is None or wake < self.timer_at):
            self.timer_at = max(wake, now)
            self._push(self.timer_at, TIMER)

    def run(self):
        """Run to the end and return the :class:`Metrics`.

        The per-packet path (arrive, send, answer the source) is written out in this
        loop rather than in methods: a call costs as much as the work it would hold.
        """
        for source in self.sources:
            self._next_arrival(source)
        events, instant, duration, owner = self.events, self.instant, self.duration, self.owner
        enqueue, dequeue = self.scheduler.enqueue, self.scheduler.dequeue
        metrics = self.metrics
        queued, departed = metrics.queued, metrics.departed
        # Metrics.queued has work only for a ranked packet, a new flow or a recorded trace
        flows, recording = metrics.flows, metrics.events is not None
        # for Metrics.departed and Metrics.queued written out below
        flow_stats, bin_of, overtook = metrics.flow_stats, metrics.bin_of, metrics.overtook
        ranks, pend = metrics.queued_ranks, metrics.pending_ranks.append
        # at or below every pending rank (above them all: none is pending); only the loop
        # adds pending ranks, and a merge by the metrics only empties them, so it stays a bound
        pending_low = INFINITY
        bin_index, bin_end = 0, 0  # the throughput bin of the last departure, and its end
        ranked = 0  # ranked departures not yet counted in metrics.ranked
        pop, later, next_in_instant = heapq.heappop, instant.append, instant.popleft
        bit_ns, link_rate = 8 * NS, self.link_rate
        wire_ns = {}  # size -> ns on the wire: the division is on multi-digit ints, per packet
        busy_until = None  # while a packet is on the wire: when it is off
        while True:
            # the next instant: the earliest event, or the link coming free before it
            if events:
                now = events[0][0]
                if busy_until is not None and busy_until < now:
                    now = busy_until
            elif busy_until is not None:
                now = busy_until
            else:
                break
            if now >= duration:
                break
            self.now = now
            if busy_until == now:
                busy_until = None
            # every event of this instant (arrivals above all) is in before the link
            # chooses: otherwise whichever packet was listed first would go out alone
            while True:
                if events and events[0][0] == now:
                    kind, data = pop(events)[2:]
                elif instant:
                    kind, data = next_in_instant()
                elif busy_until is None:  # the link is free: ask for a packet
                    # one packet per turn of this loop while nothing else happens at its
                    # instant (a bulk source's answer queued at once); any other case
                    # leaves it for the checks above
                    while True:
                        pkt = dequeue(now)
                        if pkt is None:
                            self._sleep(now)
                            break
                        source = owner.pop(pkt, None)
                        if recording:
                            departed(pkt, now)
                        else:  # departed(pkt, now) without a trace, written out: the call and its
                            # attribute lookups were a tenth of a simulated packet
                            try:  # (a failed subscript costs more than get(), a hit less)
                                stats = flows[pkt.flow]
                            except KeyError:
                                stats = flow_stats(pkt)
                            if now >= bin_end:
                                bin_index, bin_end = bin_of(now)
                            stats.delays.append(now - pkt.arrival)
                            stats.bins[bin_index] += pkt.size
                            rank = pkt.rank
                            if rank is not None:
                                # overtook(rank) when the lowest left (metrics' module doc)
                                if ranks and ranks[0] == rank and rank <= pending_low:
                                    del ranks[0]
                                    ranked += 1
                                else:
                                    overtook(rank)  # merges the pending ranks
                                    pending_low = INFINITY
                        try:
                            wire = wire_ns[pkt.size]
                        except KeyError:
                            wire = wire_ns[pkt.size] = -(-pkt.size * bit_ns // link_rate)
                        busy_until = now + wire
                        if source is None:
                            break
                        if source.rtt is not None:
                            self._answer(source, pkt, now, done_at=busy_until)
                            break
                        reply = source.on_done(pkt, now)
                        if reply is None:
                            break
                        if instant:  # answers to drops in the dequeue hook came first
                            later((ARRIVAL, (source, reply, False)))
                            break
                        # the answer arrives now: the ARRIVAL branch below, written out
                        reply.arrival = reply.enqueued = now
                        owner[reply] = source
                        if enqueue(reply, now):
                            rank = reply.rank
                            if recording or reply.flow not in flows:
                                queued(reply, now)
                            elif rank is not None:  # queued(reply, now) for a flow known, written out
                                pend(rank)
                                if rank < pending_low:
                                    pending_low = rank
                        elif reply in owner:
                            self._refused(source, reply, now)
                        if events or instant:
                            break
                        # nothing else in this instant, and the link is busy: the next instant is
                        # the end of this transmission (the outer loop's step, written out), where
                        # the link is free with nothing else to do: ask again at once
                        if busy_until >= duration:
                            break  # (the outer loop ends the run)
                        now = self.now = busy_until
                        busy_until = None
                    if pkt is None and not instant:
                        break
                    continue
                else:
                    break
                if kind == ARRIVAL:
                    if data is not None:
                        source, pkt, streamed = data
                    pkt.arrival = pkt.enqueued = now
                    owner[pkt] = source
                    if enqueue(pkt, now):
                        if pkt.rank is not None or recording or pkt.flow not in flows:
                            queued(pkt, now)
                    elif pkt in owner:
                        self._refused(source, pkt, now)
                    if streamed:  # the source's own stream: fetch its next packet lazily
                        self._next_arrival(source)
                elif kind == FEEDBACK:
                    self._feedback(*data, now)
                else:
                    if self.timer_at == now:
                        self.timer_at = None
                    self.scheduler.timer(now)
        metrics.ranked += ranked
        metrics.merge_pending()
        return metrics
