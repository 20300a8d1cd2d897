"""The element the schedulers queue: one packet with what ranking functions may read."""


class Packet:
    """A packet in the reference runtime; times are integer nanoseconds.

    ``flow`` identifies the flow, ``cls`` its class (for hierarchies), ``priority`` a
    strict-priority band, ``rank`` an input rank (SP-PIFO) or the rank a scheduler gave
    it, ``slack`` a deadline budget (LSTF), ``remaining`` the bytes left in its flow
    including this packet (SRPT), ``tstamp`` an earliest departure time (EDT); ``ect``
    says the sender understands ECN, and an AQM sets ``ce`` instead of dropping it.
    """

    __slots__ = ("flow", "size", "arrival", "seq", "cls", "priority", "rank", "slack",
                 "remaining", "tstamp", "enqueued", "ect", "ce")

    def __init__(self, flow, size, arrival=0, seq=0, cls=None, priority=0, rank=None,
                 slack=None, remaining=None, tstamp=None, ect=False):
        self.flow = flow
        self.size = size
        self.arrival = arrival
        self.seq = seq
        self.cls = cls
        self.priority = priority
        self.rank = rank
        self.slack = slack
        self.remaining = remaining
        self.tstamp = tstamp
        self.enqueued = arrival
        self.ect = ect
        self.ce = False

    def __repr__(self):
        return f"Packet(flow={self.flow!r}, seq={self.seq}, size={self.size}, rank={self.rank})"


_new = object.__new__


def new_packet(flow, size, arrival, seq, cls, priority, rank, slack, remaining):
    """``Packet(flow, size, arrival, seq, cls, priority, rank, slack, remaining)`` for the
    simulator's sources, which make one per simulated packet: instantiating a class runs
    ``__init__`` through the C type call, which costs CPython 3.11 about as much again
    as this plain function call does (the same fields, set the same way)."""
    pkt = _new(Packet)
    pkt.flow = flow
    pkt.size = size
    pkt.arrival = arrival
    pkt.seq = seq
    pkt.cls = cls
    pkt.priority = priority
    pkt.rank = rank
    pkt.slack = slack
    pkt.remaining = remaining
    pkt.tstamp = None
    pkt.enqueued = arrival
    pkt.ect = False
    pkt.ce = False
    return pkt
