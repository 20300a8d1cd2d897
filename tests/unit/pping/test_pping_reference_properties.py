"""Properties of the reference over random TCP exchanges (hypothesis).

Whatever the packets, every RTT sample must be explained by the rules: a reply with
ACK whose echo names an earlier timestamped packet of the other direction (payload or
SYN), RTT = the time between them, each timestamped packet used at most once, and in
seq/ACK mode never a segment that was retransmitted or sent during a recovery.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import RttEvent
from xnf.plugins.pping.reference import Reference
from xnf.testing.frames import Endpoints

E = Endpoints()
T0 = 1_700_000_000_000_000_000

def packets(flags):
    return st.fixed_dictionaries({
        "c2s": st.booleans(),
        "gap_us": st.integers(1, 150_000),
        "flags": st.sampled_from(flags),
        "val": st.integers(0, 40),
        "ecr": st.integers(0, 40),
        "seq": st.integers(0, 30),
        "ack": st.integers(0, 30),
        "payload": st.sampled_from([0, 0, 10, 100]),
    })


def build(pkts, with_ts):
    t = T0
    out = []
    for p in pkts:
        t += p["gap_us"] * 1000
        kw = dict(flags=p["flags"], seq=p["seq"] * 100, ack=p["ack"] * 100, payload=b"x" * p["payload"])
        if with_ts:
            kw["ts"] = (p["val"], p["ecr"])
        out.append((t, p, (E.c2s if p["c2s"] else E.s2c)(**kw)))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(packets(["A", "PA", "S", "SA", "", "FA", "RA"]), max_size=60), st.integers(0, 150), st.booleans())
def test_every_tsval_sample_is_explained(pkts, rate_ms, syn):
    ref = Reference(PpingConfig(rate_limit=rate_ms, include_syn=syn))
    frames = build(pkts, with_ts=True)
    used = set()
    for i, (t, p, frame) in enumerate(frames):
        for ev in ref.feed(t, frame):
            if not isinstance(ev, RttEvent):
                continue
            assert "A" in p["flags"] and ev.rtt_ns >= 0 and ev.min_rtt_ns <= ev.rtt_ns
            sent_at = t - ev.rtt_ns
            match = [(j, q) for j, (tq, q, _) in enumerate(frames[:i])
                     if tq == sent_at and q["c2s"] != p["c2s"]]
            assert len(match) == 1, "the sample's send time is an earlier packet of the other direction"
            j, q = match[0]
            assert q["val"] == p["ecr"], "the reply echoes the timestamped TSval"
            assert q["payload"] or "S" in q["flags"], "only payload or SYN is timestamped"
            if "S" in q["flags"]:
                assert syn, "SYNs are skipped unless --include-syn"
            assert j not in used, "a timestamp yields one sample"
            used.add(j)
            # the flow reported is the reply's tuple
            assert ev.flow.src_port == (E.sport if not p["c2s"] else E.cport)


@settings(max_examples=300, deadline=None)
@given(st.lists(packets(["A", "PA", "S", "SA", ""]), max_size=60))
def test_seq_ack_never_samples_a_retransmission(pkts):
    # no FIN/RST: those never create flow state, so this model of what the state machine
    # has seen (every data packet) would be wrong for them
    ref = Reference(PpingConfig(seq_ack=True, rate_limit=0, include_syn=True))
    frames = build(pkts, with_ts=False)
    ends = []  # per packet: (direction, end, was it new data)
    highest = {True: None, False: None}
    for t, p, _ in frames:
        if p["payload"] or "S" in p["flags"]:
            end = p["seq"] * 100 + p["payload"] + (1 if "S" in p["flags"] else 0)
            h = highest[p["c2s"]]
            new = h is None or end > h
            highest[p["c2s"]] = end if new else h
            ends.append((p["c2s"], end, new))
        else:
            ends.append((p["c2s"], None, None))
    for i, (t, p, frame) in enumerate(frames):
        for ev in ref.feed(t, frame):
            if not isinstance(ev, RttEvent):
                continue
            sent_at = t - ev.rtt_ns
            [j] = [j for j, (tq, q, _) in enumerate(frames[:i]) if tq == sent_at and q["c2s"] != p["c2s"]]
            direction, end, new = ends[j]
            assert new, "sampled segment carried new data"
            assert p["ack"] * 100 >= end, "the ACK covers the sampled segment"
            later = [ends[k] for k in range(j + 1, i) if ends[k][0] == direction and ends[k][1] is not None]
            assert all(n for _, _, n in later), "no retransmission between the sample and its ACK"
