"""Fair queueing against the fluid GPS reference: lead and lag bounds from theory.

Every trace is made by a seeded ``random.Random`` (seeds in the tests), so the tests
are deterministic. ``EPS`` is float rounding of the water-filling (times in float ns,
rates in bytes/ns: far below one byte) plus the integer rounding of virtual-time tags
(WF2Q+ rounds a cost to 1/58 of a byte at weight 1): one byte covers both.
"""
import random

import pytest

from xnf.plugins.pifo_sched import registry
from xnf.plugins.pifo_sched.packet import Packet
from xnf.plugins.pifo_sched.shaping import NS
from xnf.plugins.pifo_sched.sim.engine import Simulation
from xnf.plugins.pifo_sched.sim.fluid import gps, lead_lag, packet_service

RATE = 10_000_000
EPS = 1.0


def departures(algorithm, packets, weights):
    """(start_ns, flow, size) of every packet the scheduler sent, replaying ``packets``."""
    sched = registry.create(algorithm, {"weights": weights, "capacity": 100_000})
    end = max(p.arrival for p in packets) + sum(p.size for p in packets) * 8 * NS // RATE
    trace = [Packet(p.flow, p.size, p.arrival, p.seq) for p in packets]
    metrics = Simulation(sched, (), RATE, end / NS + 1, 1, trace=trace, record_events=True).run()
    out = [(t, flow, size) for t, event, flow, _, size in metrics.events if event == "deq"]
    assert len(out) == len(packets)
    return out


def leads_and_lags(algorithm, packets, weights):
    """{flow: (lead, lag)} in bytes against GPS with the same arrivals and weights."""
    system = packet_service(departures(algorithm, packets, weights), RATE)
    reference = gps([(p.arrival, p.flow, p.size) for p in packets], weights, RATE)
    return {flow: lead_lag(system, reference, flow) for flow in weights}


def lead_bound(packets, weights, flow):
    """WF2Q's lead over GPS: Lmax x (1 - r_i / r) (Bennett and Zhang, INFOCOM 1996)."""
    return max(p.size for p in packets) * (1 - weights[flow] / sum(weights.values()))


def bennett_zhang():
    """Their example: at t=0 a flow of weight 0.5 queues 11 packets and ten flows of
    weight 0.05 one each, all of 1000 bytes. The small flows empty early in the packet
    system while GPS still serves them: a virtual time that follows only the packet
    system's backlog runs ahead here (the first WF2Q+ of this package led by 1500 B)."""
    weights = {0: 0.5, **{flow: 0.05 for flow in range(1, 11)}}
    packets = [Packet(0, 1000, 0, seq) for seq in range(1, 12)]
    return packets + [Packet(flow, 1000, 0, 1) for flow in range(1, 11)], weights


def backlogged_at_zero(seed):
    """2-10 flows with random weights, 1-30 packets of 64-1500 B each, all queued at t=0."""
    rng = random.Random(seed)
    weights = {flow: rng.uniform(0.05, 1) for flow in range(rng.randint(2, 10))}
    packets = [Packet(flow, rng.randint(64, 1500), 0, seq)
               for flow in weights for seq in range(1, rng.randint(1, 30) + 1)]
    return packets, weights


def joining_and_leaving(seed):
    """2-8 flows with random weights, each sending bursts and Poisson gaps for 0.2 s at
    0.6-3x its fair share, so flows join and leave while others are backlogged."""
    rng = random.Random(seed)
    weights = {flow: rng.choice([rng.uniform(0.05, 1), rng.randint(1, 10)]) for flow in range(rng.randint(2, 8))}
    packets = []
    for flow, weight in weights.items():
        load = rng.uniform(0.6, 3) * RATE * weight / sum(weights.values())
        time, seq = 0, 0
        while True:
            if rng.random() < 0.7:  # else the same instant: a burst
                time += int(rng.expovariate(1) * 1000 * 8 * NS / load)
            if time > 0.2 * NS:
                break
            seq += 1
            packets.append(Packet(flow, rng.randint(64, 1500), time, seq))
    packets.sort(key=lambda p: p.arrival)
    return packets, weights


def test_gps_reference_by_hand():
    """Flow a (weight 1) sends 3000 B at 0, flow b (weight 2) 1500 B at 0.6 ms on 10 Mbit/s
    (1250 B/ms): a alone until 0.6 ms (750 B), then a gets 1/3 and b 2/3 until b is done
    at 0.6 + 1500/(1250 x 2/3) = 2.4 ms (a: 750 + 750 B), then a alone until 3.6 ms."""
    curves = gps([(0, "a", 3000), (600_000, "b", 1500)], {"a": 1, "b": 2}, RATE)
    at = lambda flow, ms: round(curves.served(flow, ms * 1e6), 6)  # noqa: E731
    assert [at("a", t) for t in (0.6, 2.4, 3.6, 5)] == [750, 1500, 3000, 3000]
    assert [at("b", t) for t in (0.6, 1.5, 2.4)] == [0, 750, 1500]
    one = packet_service([(0, "a", 1250)], RATE)
    assert (one.served("a", 0.5e6), one.served("a", 2e6)) == (625, 1250)
    # ahead at 1 ms by 1250 - (750 + 400 x 1250/3 / 1000); behind at the end by 3000 - 1250
    lead, lag = lead_lag(one, curves, "a")
    assert (round(lead, 6), round(lag, 6)) == (round(1250 - 750 - 500 / 3, 6), 1750)


def test_wf2q_stays_within_half_a_packet_of_gps_in_the_bennett_zhang_example():
    """The heavy flow's lead over GPS is bounded by (1 - 0.5) x Lmax = 500 B for WF2Q+;
    self-clocked WFQ sends its first packets back to back and runs 4.5 packets ahead.
    Only the heavy flow is ever backlogged under GPS with others, so flows never join
    a busy period here (see the random traces below for why that matters)."""
    packets, weights = bennett_zhang()
    bound = lead_bound(packets, weights, 0)
    wf2q, wfq = leads_and_lags("wf2q", packets, weights), leads_and_lags("wfq", packets, weights)
    assert round(bound, 6) == 500
    assert all(lead <= lead_bound(packets, weights, f) + EPS for f, (lead, _) in wf2q.items()), wf2q
    assert wf2q[0][0] > bound - EPS  # the bound is reached, so it is the right one
    assert wfq[0][0] >= 4000, wfq[0]  # and the check does catch a scheduler that runs ahead


def test_wf2q_lead_over_gps_is_bounded_on_150_random_backlogged_traces():
    """Seeds 0..149: WF2Q+ never leads GPS by more than Lmax x (1 - r_i/r) + EPS; WFQ does
    on most traces (shown in the same loop, so the check can fail).

    All flows are queued at t=0 and only leave: with Bennett and Zhang's virtual time the
    bound against GPS holds then. A flow that joins a busy period starts at WF2Q+'s
    virtual time, which lags GPS's, and may then lead GPS by more (measured on traces
    with joins: up to 0.58 x Lmax beyond the bound; docs/pifo_sched.md)."""
    wfq_over = 0
    for seed in range(150):
        packets, weights = backlogged_at_zero(seed)
        for flow, (lead, _) in leads_and_lags("wf2q", packets, weights).items():
            assert lead <= lead_bound(packets, weights, flow) + EPS, (seed, flow, lead)
        wfq_over += any(lead > lead_bound(packets, weights, flow) + EPS
                        for flow, (lead, _) in leads_and_lags("wfq", packets, weights).items())
    assert wfq_over >= 50, wfq_over


@pytest.mark.parametrize("algorithm", ["wfq", "stfq"])
def test_self_clocked_lag_behind_gps_is_at_most_n_packets(algorithm):
    """Self-clocked WFQ (SCFQ) and STFQ: a flow is never more than N x Lmax behind GPS
    (Golestani 1994; Goyal et al. 1996), N flows; seeds 0..29 with joins and leaves."""
    worst = 0.0
    for seed in range(30):
        packets, weights = joining_and_leaving(seed)
        limit = len(weights) * max(p.size for p in packets)
        for flow, (_, lag) in leads_and_lags(algorithm, packets, weights).items():
            assert lag <= limit + EPS, (seed, flow, lag, limit)
            worst = max(worst, lag / limit)
    assert worst > 0.1  # the traces do make flows fall behind


def backlogged_periods(packets, sent, flow):
    """Intervals in which ``flow`` has a packet queued or on the wire."""
    steps = sorted([(p.arrival, 1) for p in packets if p.flow == flow] +
                   [(t + size * 8 * NS / RATE, -1) for t, f, size in sent if f == flow],
                   key=lambda s: (s[0], -s[1]))
    periods, count, start = [], 0, None
    for time, step in steps:
        if count == 0 and step > 0:
            start = time
        count += step
        if count == 0:
            periods.append((start, time))
    return periods


def overlap(first, second):
    out = []
    for a0, a1 in first:
        for b0, b1 in second:
            if max(a0, b0) < min(a1, b1):
                out.append((max(a0, b0), min(a1, b1)))
    return out


@pytest.mark.parametrize("algorithm", ["wfq", "stfq"])
def test_fairness_bound_between_any_two_backlogged_flows(algorithm):
    """SCFQ and STFQ: over any interval in which flows i and j are both backlogged,
    |W_i/w_i - W_j/w_j| <= Lmax_i/w_i + Lmax_j/w_j (Golestani 1994; Goyal et al. 1996).
    Seeds 0..29; the service counted continuously while a packet is on the wire."""
    worst = 0.0
    for seed in range(30):
        packets, weights = joining_and_leaving(seed)
        sent = departures(algorithm, packets, weights)
        curves = packet_service(sent, RATE)
        biggest = {flow: max(p.size for p in packets if p.flow == flow) for flow in weights}
        periods = {flow: backlogged_periods(packets, sent, flow) for flow in weights}
        for i in weights:
            for j in weights:
                if j <= i:
                    continue
                bound = biggest[i] / weights[i] + biggest[j] / weights[j]
                for start, end in overlap(periods[i], periods[j]):
                    times = [start, end] + [t for t in set(curves.times(i)) | set(curves.times(j)) if start < t < end]
                    gaps = [curves.served(i, t) / weights[i] - curves.served(j, t) / weights[j] for t in times]
                    spread = max(gaps) - min(gaps)
                    assert spread <= bound + EPS, (seed, i, j, spread, bound)
                    worst = max(worst, spread / bound)
    assert worst > 0.3, worst  # the bound is approached, not vacuous
