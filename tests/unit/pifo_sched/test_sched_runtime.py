"""The reference runtime: determinism, generators, traces, metrics."""
import random
import struct

import pytest

from xnf.plugins.pifo_sched import registry
from xnf.plugins.pifo_sched.errors import SchedulerConfigError, TraceError
from xnf.plugins.pifo_sched.packet import Packet
from xnf.plugins.pifo_sched.sim.engine import Simulation
from xnf.plugins.pifo_sched.sim.metrics import jain_index, percentile, percentiles
from xnf.plugins.pifo_sched.sim.runner import simulate, write_events
from xnf.plugins.pifo_sched.sim.trace import read_trace

MIXED = [{"kind": "poisson", "flow": 0, "rate": "4mbit", "size": "imix"},
         {"kind": "onoff", "flow": 1, "rate": "6mbit", "on": 0.2, "off": 0.3, "size": "mixed"},
         {"kind": "flows", "flow": 100, "load": "3mbit", "flow_size": "pareto:20000:1.3"},
         {"kind": "bulk", "flow": 2, "size": "mixed", "start": 0.5, "stop": 1.5}]


def events_bytes(tmp_path, name, seed):
    _, metrics = simulate("fq_codel", None, MIXED, "10mbit", 2, seed=seed, record_events=True)
    path = tmp_path / name
    write_events(metrics, path)
    return path.read_bytes()


def test_same_seed_same_trace_byte_for_byte(tmp_path):
    first, second = events_bytes(tmp_path, "a.csv", 5), events_bytes(tmp_path, "b.csv", 5)
    assert first == second and first.count(b"\n") > 1000
    assert events_bytes(tmp_path, "c.csv", 6) != first


def test_generators_reach_their_rates():
    traffic = [{"kind": "cbr", "flow": 0, "rate": "2mbit", "size": 1000},
               {"kind": "poisson", "flow": 1, "rate": "3mbit", "size": "mixed"},
               {"kind": "onoff", "flow": 2, "rate": "2mbit", "on": 0.1, "off": 0.1, "size": 500}]
    results, _ = simulate("fifo", None, traffic, "100mbit", 20, seed=1)
    rates = [f["throughput_bps"] for f in results["flows"]]
    assert abs(rates[0] - 2e6) < 0.01 * 2e6
    assert abs(rates[1] - 3e6) < 0.05 * 3e6
    assert abs(rates[2] - 1e6) < 0.15 * 1e6  # on half of the time


def test_flow_arrivals_carry_remaining_bytes_for_srpt():
    results, _ = simulate("srpt", None, [{"kind": "flows", "flow": 0, "load": "8mbit",
                                          "flow_size": "exp:30000"}], "10mbit", 5, seed=1)
    fifo, _ = simulate("fifo", None, [{"kind": "flows", "flow": 0, "load": "8mbit",
                                       "flow_size": "exp:30000"}], "10mbit", 5, seed=1)
    assert len(results["flows"]) > 50
    mean = lambda r: sum(f["delay_us"]["p50"] for f in r["flows"]) / len(r["flows"])  # noqa: E731
    assert mean(results) < mean(fifo)


def test_csv_trace(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time,flow,size,rank\n0.0,a,1000,5\n0.0,b,1000,1\n0.5,a,500,\n")
    packets = read_trace(str(path))
    assert [(p.flow, p.size, p.arrival, p.rank) for p in packets] == [
        ("a", 1000, 0, 5), ("b", 1000, 0, 1), ("a", 500, 500_000_000, None)]
    results, _ = simulate("fifo", None, (), "1mbit", 1, trace=str(path))
    assert results["total_bytes"] == 2500
    path.write_text("when,flow\n1,2\n")
    with pytest.raises(TraceError, match="header"):
        read_trace(str(path))


def write_pcap(path, frames, nanosecond=False):
    magic = 0xA1B23C4D if nanosecond else 0xA1B2C3D4
    out = [struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65535, 1)]
    for sec, frac, frame in frames:
        out.append(struct.pack("<IIII", sec, frac, len(frame), len(frame) + 10) + frame)
    path.write_bytes(b"".join(out))


def ipv4_udp(src_port):
    eth = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00"
    ip = bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2])
    return eth + ip + struct.pack("!HHHH", src_port, 53, 8, 0)


def test_pcap_trace(tmp_path):
    path = tmp_path / "t.pcap"
    write_pcap(path, [(100, 0, ipv4_udp(1111)), (100, 250_000, ipv4_udp(2222)), (101, 0, ipv4_udp(1111)),
                      (101, 1, b"\x00" * 14)])
    packets = read_trace(str(path))
    assert [(p.flow, p.arrival, p.size) for p in packets] == [
        ("10.0.0.1:1111>10.0.0.2:53/17", 0, 52), ("10.0.0.1:2222>10.0.0.2:53/17", 250_000_000, 52),
        ("10.0.0.1:1111>10.0.0.2:53/17", 1_000_000_000, 52)]
    write_pcap(path, [(0, 5, ipv4_udp(1))], nanosecond=True)
    assert read_trace(str(path))[0].size == 52
    path.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\x00" * 40)
    with pytest.raises(TraceError, match="pcapng"):
        read_trace(str(path))


def test_metrics_helpers():
    assert percentile([1, 2, 3, 4], 0.5) == 2 and percentile([], 0.5) is None
    assert jain_index([1, 1, 1]) == 1.0 and abs(jain_index([1, 0]) - 0.5) < 1e-9


def test_percentiles_of_unsorted_values_are_those_of_the_sorted_list():
    rng = random.Random(3)
    fractions = (0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0)
    for size in (1, 2, 3, 10, 99, 100, 101, 1000, 5000):
        for spread in (1, 5, 1000, 10**9):  # from all equal to all distinct
            values = [rng.randrange(spread) for _ in range(size)]
            ordered = sorted(values)
            assert percentiles(values, fractions) == [percentile(ordered, q) for q in fractions]
    assert percentiles([], (0.5, 1.0)) == [None, None]


def test_inversions_are_zero_for_an_exact_pifo_and_counted_for_fifo():
    traffic = [{"kind": "poisson", "flow": 0, "rate": "11mbit", "rank": "uniform:0:7", "size": 1500}]
    exact, _ = simulate("strict_priority", None,
                        [dict(traffic[0], priority=0)], "10mbit", 2, seed=1)
    assert exact["rank_inversions"] in (None, 0)
    fifo, _ = simulate("fifo", None, traffic, "10mbit", 2, seed=1)
    assert fifo["rank_inversions"] > 0


def test_bad_simulation_inputs():
    with pytest.raises(SchedulerConfigError, match="no traffic"):
        simulate("fifo", None, (), "10mbit", 1)
    with pytest.raises(SchedulerConfigError, match="unknown traffic kind"):
        simulate("fifo", None, [{"kind": "burst"}], "10mbit", 1)
    with pytest.raises(SchedulerConfigError, match="duration"):
        simulate("fifo", None, [{"kind": "bulk"}], "10mbit", 0)
    with pytest.raises(SchedulerConfigError, match="distribution"):
        simulate("fifo", None, [{"kind": "bulk", "size": "huge"}], "10mbit", 1)
    with pytest.raises(SchedulerConfigError, match="no option"):
        simulate("fifo", None, [{"kind": "bulk", "rate": "1mbit"}], "10mbit", 1)


def test_a_trace_out_of_time_order_is_refused_not_replayed_late():
    rows = [Packet("a", 100, 2_000_000, 1), Packet("b", 100, 1_000_000, 1)]
    sim = Simulation(registry.create("fifo"), (), "10mbit", 1, 1, trace=rows)
    with pytest.raises(SchedulerConfigError, match="not in time order"):
        sim.run()
