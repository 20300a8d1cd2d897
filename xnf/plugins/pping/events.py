"""The pping event model, shared by the BPF data path and the pure-Python reference.

Both producers (ring-buffer decoding in :mod:`xnf.plugins.pping.nf` and the offline
state machine in :mod:`xnf.plugins.pping.reference`) emit exactly these objects, so
formats, Prometheus export, plotting and tests never care where an event came from.

All times are integer nanoseconds: ``timestamp_ns`` is wall-clock time since the Unix
epoch (the BPF side converts ``bpf_ktime_get_ns`` before building the object), RTTs are
durations.
"""

from __future__ import annotations

import attrs

#: Protocol names as they appear in every output format.
PROTOCOLS = ("TCP", "ICMP", "ICMPv6", "UDP", "QUIC")

#: Which packet identifier produced an RTT sample.
IDENTIFIER_KINDS = ("tsval", "seq", "icmp", "dns", "spin")

OPENING = "opening"
CLOSING = "closing"

#: Reasons a flow opens or closes (ePPing's wording, plus our own for timeouts).
REASON_SYN = "SYN"
REASON_SYN_ACK = "SYN-ACK"
REASON_FIRST_PACKET = "first observed packet"
REASON_FIN = "FIN"
REASON_RST = "RST"
REASON_TIMEOUT = "flow timeout"
REASONS = (
    REASON_SYN,
    REASON_SYN_ACK,
    REASON_FIRST_PACKET,
    REASON_FIN,
    REASON_RST,
    REASON_TIMEOUT,
)

#: Which end of the reported flow sent the packet that triggered a flow event;
#: timeouts are found by the periodic clean-up (ePPing's wording).
TRIGGERED_BY = ("src", "dest", "garbage collection")


def _one_of(allowed):
    return attrs.validators.in_(allowed)


@attrs.frozen(slots=True, cache_hash=True)
class Flow:
    """A directed 5-tuple. For ICMP echo the echo identifier stands in for both ports.

    ``str(flow)`` is ePPing's ``src:port+dst:port``; IPv6 addresses are printed without
    brackets, as ePPing does.
    """

    proto: str = attrs.field(validator=_one_of(PROTOCOLS))
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int

    def __str__(self) -> str:
        return f"{self.src_ip}:{self.src_port}+{self.dst_ip}:{self.dst_port}"

    def reversed(self) -> "Flow":
        """The same flow seen from the other end."""
        return Flow(self.proto, self.dst_ip, self.dst_port, self.src_ip, self.src_port)


@attrs.frozen(slots=True)
class RttEvent:
    """One RTT sample.

    ``flow`` is the tuple of the *reply* packet that produced the match: its source is
    the host the RTT was measured to. Counters are those of the flow's two directions
    as seen from the reply's perspective: ``sent_*`` counts packets in the direction of
    the timestamped packet (towards ``flow.src_ip``), ``rec_*`` the reply direction,
    as ePPing reports them.

    Built for every sample at up to hundreds of thousands per second, so unlike the
    rarer objects its fields are not validated: producers take ``identifier_kind``
    from :data:`IDENTIFIER_KINDS`.
    """

    timestamp_ns: int
    flow: Flow
    rtt_ns: int
    min_rtt_ns: int
    sent_packets: int
    sent_bytes: int
    rec_packets: int
    rec_bytes: int
    match_on_egress: bool
    identifier_kind: str


@attrs.frozen(slots=True)
class FlowEvent:
    """A flow direction opening or closing.

    Orientation follows ePPing's output: an *opening* names the direction that was
    opened (``flow.src`` sent its first tracked packet, the reply came back from
    ``dest``); a *closing* caused by a FIN/RST names the packet's reverse tuple (so the
    sender is ``dest``), except the second direction closed by an RST, which is the
    packet's own tuple (sender ``src``); a timeout names the reverse of the expired
    direction, like an RTT event. ``triggered_by`` says which end of ``flow`` sent the
    packet, or ``"garbage collection"`` for timeouts.
    """

    timestamp_ns: int
    flow: Flow
    event: str = attrs.field(validator=_one_of((OPENING, CLOSING)))
    reason: str = attrs.field(validator=_one_of(REASONS))
    triggered_by: str = attrs.field(validator=_one_of(TRIGGERED_BY))


@attrs.frozen(slots=True)
class AggregateReport:
    """Per-prefix traffic counters and RTT histogram for one aggregation interval.

    ``histogram[i]`` counts RTTs in ``[i * bin_width_ns, (i + 1) * bin_width_ns)``;
    the last bin also holds everything above. ``min_rtt_ns``/``max_rtt_ns`` are exact
    when the producer tracks them (the kernel does), else ``None``.
    """

    timestamp_ns: int
    prefix: str
    rx_packets: int
    rx_bytes: int
    tx_packets: int
    tx_bytes: int
    histogram: tuple = attrs.field(converter=tuple)
    bin_width_ns: int
    min_rtt_ns: "int | None" = None
    max_rtt_ns: "int | None" = None


@attrs.frozen(slots=True)
class Stats:
    """Counters of a pping instance; what could not be recorded is never lost silently.

    ``dropped_events``: events the ring buffer (or a slow consumer) could not take.
    ``*_map_full``: insertions refused because a map had no room.
    ``packets``: packets seen; ``parsed``: those with a usable identifier.
    ``timestamps_expired``/``flows_expired``: timestamp-map entries and flows removed
    by the clean-up, whose passes ``cleanup_runs`` counts. ``karn_skipped``:
    outstanding seq/ACK samples discarded by Karn's rule (a retransmission was seen).
    """

    dropped_events: int = 0
    timestamp_map_full: int = 0
    flow_map_full: int = 0
    aggregate_map_full: int = 0
    rtt_events: int = 0
    flow_events: int = 0
    packets: int = 0
    parsed: int = 0
    timestamps_expired: int = 0
    flows_expired: int = 0
    karn_skipped: int = 0
    cleanup_runs: int = 0


#: Anything a pping source can yield.
Event = "RttEvent | FlowEvent | AggregateReport"
