"""The bracket oracle: pping's samples, sample by sample, against the reference over a tap capture.

The tap (:mod:`support.tap`) records each frame just before and just after pping at the
hook where pping saw it, on pping's own clock (``bpf_ktime_get_ns``). pping stamped the
frame somewhere in ``[first_ns, last_ns]``, so an RTT from request R to reply P lies in
the bracket ``[P.first - R.last, P.last - R.first]``, however long the host stalled
inside those windows. A wrong match (another TSval, another echo sequence, an order
mix-up) is off by a whole RTT or timestamp tick, far outside.

The reference (``xnf.plugins.pping.reference``) is fed the capture: each frame at the
middle of its window, with its hook as direction, and with its expiry passes at the
times the data path's timer ran them (read from pping's ``pping_gc`` map), so both
sides expire the same timestamps. :func:`compare` then pairs every pping sample with
the reference sample of the same reply frame (the frame whose window holds pping's
reply time; never by order) and checks identity and containment.

One difference remains, and is told apart rather than hidden: a kernel pass judges
staleness at its start but walks the maps for a while (~3 ms with the default
131072-entry maps, ~0.1 ms with 4096), so a reply arriving during the walk may still
find, and match, a timestamp the pass is about to delete; the reference, whose pass is
an instant, has no sample there. Such a pping sample is ``raced``: accepted only if its
reply time falls inside a pass's walk and both of its ends lie in tap windows (the
reply frame's at the hook it was matched on, a request frame's at the other hook).
"""
import bisect
import statistics
import struct

import attrs

from xnf.plugins.pping.events import RttEvent
from xnf.plugins.pping.reference import Reference

#: ``struct pp_gc`` in pping.bpf.c after its 16-byte ``struct bpf_timer``: runs, then
#: run_ns[64][2] (a pass's clock, and when its walk ended).
GC_HISTORY = 64
_GC = struct.Struct(f"<16xQ{2 * GC_HISTORY}Q")


def cleanup_passes(datapath) -> list:
    """When the data path's expiry passes ran: (clock, walk end) in ktime ns, oldest first."""
    raw = datapath.maps["pping_gc"].lookup_raw(0)
    runs, *ring = _GC.unpack_from(raw)
    if runs > GC_HISTORY:
        raise AssertionError(f"{runs} expiry passes ran, only the last {GC_HISTORY} are kept: "
                             "a shorter run or a longer --cleanup-interval")
    return sorted(zip(ring[0:2 * runs:2], ring[1:2 * runs:2]))


@attrs.frozen
class RefSample:
    """A reference sample and the frames it came from (request: the timestamped one)."""

    event: RttEvent
    reply: object
    request: object

    @property
    def low_ns(self) -> int:
        return self.reply.first_ns - self.request.last_ns

    @property
    def high_ns(self) -> int:
        return self.reply.last_ns - self.request.first_ns

    @property
    def mid_ns(self) -> int:
        return self.reply.mid_ns - self.request.mid_ns


def reference_samples(frames, config, passes=None) -> list:
    """The reference's RTT samples over the capture, each with its reply and request
    frames; ``passes`` (from :func:`cleanup_passes`): expiry at the data path's times."""
    times = None if passes is None else [start for start, _ in passes]
    ref = Reference(config, local_addresses=(), cleanup_times=times)
    ordered = sorted(frames, key=lambda f: f.mid_ns)
    by_mid = {}
    for f in ordered:
        by_mid.setdefault(f.mid_ns, []).append(f)
    out = []
    for f in ordered:
        for ev in ref.feed(f.mid_ns, f.data, direction=f.hook, wire_len=f.wire_len):
            if isinstance(ev, RttEvent):
                requests = [r for r in by_mid[f.mid_ns - ev.rtt_ns] if r.hook != f.hook] or \
                    by_mid[f.mid_ns - ev.rtt_ns]
                out.append(RefSample(ev, f, requests[0]))
    return out


@attrs.frozen
class Pair:
    pping: RttEvent
    ref: RefSample

    @property
    def contained(self) -> bool:
        return self.ref.low_ns <= self.pping.rtt_ns <= self.ref.high_ns

    @property
    def deviation_ns(self) -> int:
        """|pping - bracket midpoint|."""
        return abs(self.pping.rtt_ns - self.ref.mid_ns)


@attrs.frozen
class Comparison:
    pairs: tuple
    only_pping: tuple      # pping samples with no reference sample at their reply frame
    only_ref: tuple        # reference samples no pping sample claimed
    raced: tuple = ()      # pping samples taken while a pass walked the maps (module doc)

    def counts(self):
        """Samples per (flow, identifier kind): (pping, reference)."""
        out = {}
        for p in self.pairs:
            k = (p.pping.flow, p.pping.identifier_kind)
            a, b = out.get(k, (0, 0))
            out[k] = (a + 1, b + 1)
        for e in self.only_pping:
            k = (e.flow, e.identifier_kind)
            a, b = out.get(k, (0, 0))
            out[k] = (a + 1, b)
        for r in self.only_ref:
            k = (r.event.flow, r.event.identifier_kind)
            a, b = out.get(k, (0, 0))
            out[k] = (a, b + 1)
        return out

    def outside(self):
        return [p for p in self.pairs if not p.contained]

    def deviations(self):
        return sorted(p.deviation_ns for p in self.pairs)

    def problems(self) -> list:
        """Why pping and the reference disagree; empty when they agree sample by sample."""
        out = []
        for k, (a, b) in sorted(self.counts().items(), key=str):
            if a != b:
                out.append(f"{k[0]} ({k[1]}): {a} pping samples, {b} reference samples")
        out += [f"pping sample with no reference sample at its reply frame: {e}" for e in self.only_pping[:5]]
        out += [f"reference sample pping did not report: {r.event}" for r in self.only_ref[:5]]
        out += [f"{p.pping.flow}: pping {p.pping.rtt_ns} ns outside the bracket "
                f"[{p.ref.low_ns}, {p.ref.high_ns}]" for p in self.outside()[:5]]
        return out

    def summary(self) -> str:
        d = self.deviations()
        if not d:
            return "no samples"
        return (f"{len(self.pairs)} paired, {len(self.only_pping)} only pping, {len(self.only_ref)} only "
                f"reference, {len(self.raced)} raced with a pass, {len(self.outside())} outside the "
                f"bracket; |pping - midpoint| median "
                f"{statistics.median(d) / 1000:.2f} us, p99 {d[int(0.99 * (len(d) - 1))] / 1000:.2f} us, "
                f"max {d[-1] / 1000:.2f} us")


def compare(pping_events, ref_samples, clock_offset_ns=0, frames=(), passes=()) -> Comparison:
    """Pair pping's RTT events with ``ref_samples`` by reply frame.

    ``clock_offset_ns``: what pping's decoder added to ``bpf_ktime_get_ns`` (the data
    path's ``clock_offset_ns``); taken off again, a pping sample's time is its reply
    frame's pping stamp, inside that frame's tap window at the hook it was matched on.
    With ``frames`` (the capture) and ``passes`` (:func:`cleanup_passes`), unpaired pping
    samples that raced with a pass are told apart (module doc).
    """
    by_hook = {}
    for r in ref_samples:
        by_hook.setdefault(r.reply.hook, []).append(r)
    index = {}
    for hook, samples in by_hook.items():
        samples.sort(key=lambda r: r.reply.first_ns)
        widest = max(r.reply.width_ns for r in samples)
        index[hook] = ([r.reply.first_ns for r in samples], samples, widest)
    claimed, pairs, only_pping = set(), [], []
    for e in pping_events:
        if not isinstance(e, RttEvent):
            continue
        t = e.timestamp_ns - clock_offset_ns
        firsts, samples, widest = index.get("egress" if e.match_on_egress else "ingress", ([], [], 0))
        best = None
        i = bisect.bisect_right(firsts, t) - 1
        while i >= 0 and firsts[i] >= t - widest:
            r = samples[i]
            if (id(r) not in claimed and r.reply.last_ns >= t and r.event.flow == e.flow
                    and r.event.identifier_kind == e.identifier_kind):
                if best is None or abs(r.mid_ns - e.rtt_ns) < abs(best.mid_ns - e.rtt_ns):
                    best = r
            i -= 1
        if best is None:
            only_pping.append(e)
        else:
            claimed.add(id(best))
            pairs.append(Pair(e, best))
    only_ref = [r for r in ref_samples if id(r) not in claimed]
    raced = [e for e in only_pping if _raced(e, clock_offset_ns, frames, passes)]
    only_pping = [e for e in only_pping if e not in raced]
    return Comparison(tuple(pairs), tuple(only_pping), tuple(only_ref), tuple(raced))


def _raced(e, clock_offset_ns, frames, passes):
    """Whether ``e``'s reply came during a pass's walk, with both of its ends in tap windows."""
    t = e.timestamp_ns - clock_offset_ns
    if not any(start <= t <= end for start, end in passes):
        return False
    reply_hook = "egress" if e.match_on_egress else "ingress"
    sent = t - e.rtt_ns
    return (any(f.hook == reply_hook and f.first_ns <= t <= f.last_ns for f in frames)
            and any(f.hook != reply_hook and f.first_ns <= sent <= f.last_ns for f in frames))
