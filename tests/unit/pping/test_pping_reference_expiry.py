"""The reference's expiry passes at given times (``cleanup_times``): a delayed ACK whose
timestamp is expired by one schedule and matched under another (issue 16)."""
from xnf.testing.frames import ether, ipv4, tcp
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.events import RttEvent
from xnf.plugins.pping.reference import Reference

MS = 1_000_000
CLI, SRV = "10.0.1.2", "10.0.2.2"
# a 10 ms timestamp lifetime, passes every 100 ms: a delayed ACK 40 ms after its segment
CONFIG = PpingConfig(tcp=True, rate_limit=0, timestamp_lifetime=0.01, cleanup_interval=0.1)


def data(tsval):
    return ether(ipv4(CLI, SRV, 6, tcp(40000, 7000, seq=tsval * 100, ack=1, flags="AP", ts=(tsval, 1),
                                         payload=b"x" * 100)))


def ack(tsecr):
    return ether(ipv4(SRV, CLI, 6, tcp(7000, 40000, seq=1, ack=tsecr * 100 + 100, flags="A", ts=(9, tsecr))))


def samples(reference):
    """A first segment (TSval 1, which a flow seen mid-stream waits past) at 0, then
    segments at 100, 200, 300 ms (TSvals 2-4), each acknowledged 40 ms later."""
    out = reference.feed(0, data(1), direction="egress")
    for i in range(1, 4):
        t = i * 100 * MS
        out += reference.feed(t, data(i + 1), direction="egress")
        out += reference.feed(t + 40 * MS, ack(i + 1), direction="ingress")
    return [e.rtt_ns for e in out if isinstance(e, RttEvent)]


def test_own_schedule_runs_passes_from_the_first_packet():
    # passes at 100, 200, 300 ms: each falls at a segment, none inside an ACK's wait
    assert samples(Reference(CONFIG)) == [40 * MS] * 3


def test_passes_at_the_data_paths_times_expire_the_same_timestamps():
    # a kernel timer armed 75 ms before the first packet: passes at 125, 225, 325 ms,
    # each 25 ms into an ACK's wait, past the 10 ms lifetime: nothing is matched
    kernel = [25 * MS, 125 * MS, 225 * MS, 325 * MS]
    ref = Reference(CONFIG, cleanup_times=kernel)
    assert samples(ref) == []
    assert ref.stats.timestamps_expired == 3 and ref.stats.cleanup_runs == 4


def test_a_pass_runs_before_a_packet_at_the_same_time_and_every_pass_runs():
    # a pass exactly at the ACK (140 ms) comes first and expires it; passes are not merged
    ref = Reference(CONFIG, cleanup_times=[140 * MS, 141 * MS, 142 * MS])
    ref.feed(0, data(1), direction="egress")
    ref.feed(100 * MS, data(2), direction="egress")
    assert [e for e in ref.feed(140 * MS, ack(2), direction="ingress") if isinstance(e, RttEvent)] == []
    ref.feed(150 * MS, data(3), direction="egress")
    assert ref.stats.cleanup_runs == 3
    # a pass within the lifetime leaves the timestamp alone
    ref = Reference(CONFIG, cleanup_times=[105 * MS])
    ref.feed(0, data(1), direction="egress")
    ref.feed(100 * MS, data(2), direction="egress")
    assert [e.rtt_ns for e in ref.feed(140 * MS, ack(2), direction="ingress")
            if isinstance(e, RttEvent)] == [40 * MS]
