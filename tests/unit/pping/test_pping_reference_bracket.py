"""The bracket oracle's comparison (tests/support/bracket.py) on a made-up capture: it
passes pping samples stamped inside the tap's windows and fails every kind of wrong
match (a test of the test, without root)."""
import attrs
import pytest

from xnf.testing.frames import ether, icmp_echo, ipv4, tcp
from support import bracket
from support.tap import Frame
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import Flow

US, MS = 1_000, 1_000_000
CLI, SRV = "10.0.1.2", "10.0.2.2"
CONFIG = PpingConfig(tcp=True, icmp=True, rate_limit=0)
OFFSET = 1_700_000_000 * 10**9   # what pping's decoder adds to ktime


def frame(hook, t, data, width=2 * US):
    return Frame(hook, t, t + width, data, len(data))


def capture():
    """Echo requests every 10 ms (replies 300 us later) and TCP segments every 1 ms (one
    TSval each, the first one a mid-stream edge), each ACKed 200 us later."""
    frames = []
    for i in range(20):
        t = 1 * MS + i * 10 * MS
        frames.append(frame("egress", t, ether(ipv4(CLI, SRV, 1, icmp_echo(True, 7, i)))))
        frames.append(frame("ingress", t + 300 * US, ether(ipv4(SRV, CLI, 1, icmp_echo(False, 7, i)))))
    for i in range(50):
        t = 2 * MS + i * MS
        frames.append(frame("egress", t, ether(ipv4(CLI, SRV, 6, tcp(40000, 5201, seq=i * 100, ack=1, flags="AP",
                                                                     ts=(100 + i, 5), payload=b"x" * 100)))))
        frames.append(frame("ingress", t + 200 * US, ether(ipv4(SRV, CLI, 6, tcp(5201, 40000, seq=1,
                                                                                 ack=i * 100 + 100, ts=(5, 100 + i))))))
    return frames


def pping_like(ref):
    """What pping would report: stamped 1 us into each window (the windows are 2 us)."""
    return [attrs.evolve(r.event, timestamp_ns=r.reply.first_ns + US + OFFSET,
                         rtt_ns=(r.reply.first_ns + US) - (r.request.first_ns + US)) for r in ref]


@pytest.fixture(scope="module")
def ref():
    return bracket.reference_samples(capture(), CONFIG)


def test_samples_inside_their_windows_pass(ref):
    assert len([r for r in ref if r.event.identifier_kind == "icmp"]) == 20
    assert len([r for r in ref if r.event.identifier_kind == "tsval"]) == 49
    cmp = bracket.compare(pping_like(ref), ref, OFFSET)
    assert not cmp.problems() and len(cmp.pairs) == 69
    assert cmp.deviations()[-1] == 0   # stamped at each window's middle


def test_a_match_with_the_previous_identifier_is_outside_the_bracket(ref):
    samples = pping_like(ref)
    for i, shift in ((5, 10 * MS), (30, 1 * MS)):   # previous echo request, previous TSval
        wrong = samples[:i] + [attrs.evolve(samples[i], rtt_ns=samples[i].rtt_ns + shift)] + samples[i + 1:]
        cmp = bracket.compare(wrong, ref, OFFSET)
        assert len(cmp.outside()) == 1 and cmp.problems()


def test_a_missing_sample_is_one_unpaired_sample_not_a_shift(ref):
    samples = pping_like(ref)
    cmp = bracket.compare(samples[:30] + samples[31:], ref, OFFSET)
    # pairing by order would have mis-paired every later sample of the flow
    assert len(cmp.only_ref) == 1 and not cmp.outside() and len(cmp.pairs) == 68
    assert any("pping samples" in p for p in cmp.problems())


def test_a_sample_at_a_frame_without_a_reference_sample_is_unpaired(ref):
    samples = pping_like(ref)
    # the same flow, but at an echo request's frame time (no reply there)
    extra = attrs.evolve(samples[0], timestamp_ns=samples[0].timestamp_ns - 300 * US)
    cmp = bracket.compare(samples + [extra], ref, OFFSET)
    assert cmp.only_pping == (extra,) and cmp.problems()
    # a sample of another flow at a reply frame
    other = attrs.evolve(samples[0], flow=Flow("ICMP", SRV, 8, CLI, 8))
    assert bracket.compare(samples[1:] + [other], ref, OFFSET).only_pping == (other,)


def test_a_sample_reported_on_the_wrong_hook_is_unpaired(ref):
    samples = pping_like(ref)
    moved = attrs.evolve(samples[3], match_on_egress=True)
    assert bracket.compare(samples[:3] + [moved] + samples[4:], ref, OFFSET).only_pping == (moved,)



def test_a_sample_taken_while_a_pass_walked_the_maps_is_told_apart(ref):
    """The kernel matched a timestamp the reference's instant pass expired: accepted as
    raced only inside the pass's walk and with both ends in tap windows."""
    frames = capture()
    samples = pping_like(ref)
    kept = samples[:30] + samples[31:]
    t = samples[30].timestamp_ns - OFFSET                 # its reply, 1 us into the window
    shorter = [r for r in ref if r is not ref[30]]        # the reference expired it
    walk = [(t - 500 * US, t + 500 * US)]
    cmp = bracket.compare(samples, shorter, OFFSET, frames, walk)
    assert cmp.raced == (samples[30],) and not cmp.problems() and len(cmp.pairs) == 68
    # outside any walk: an unpaired sample
    cmp = bracket.compare(samples, shorter, OFFSET, frames, [(t + 1 * US, t + 500 * US)])
    assert cmp.only_pping == (samples[30],) and not cmp.raced
    # inside a walk but its request end in no tap window: an unpaired sample
    off = attrs.evolve(samples[30], rtt_ns=samples[30].rtt_ns + 50 * US)
    cmp = bracket.compare(kept + [off], shorter, OFFSET, frames, walk)
    assert cmp.only_pping == (off,) and not cmp.raced
