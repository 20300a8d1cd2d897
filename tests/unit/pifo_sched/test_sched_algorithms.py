"""Scheduling properties on the reference runtime: shares, credit, bounds, shaping."""
import pytest

from xnf.plugins.pifo_sched import registry
from xnf.plugins.pifo_sched.errors import SchedulerConfigError, UnknownSchedulerError
from xnf.plugins.pifo_sched.packet import Packet
from xnf.plugins.pifo_sched.shaping import NS
from xnf.plugins.pifo_sched.sim.engine import Simulation
from xnf.plugins.pifo_sched.sim.runner import simulate

HPFQ_TREE = {"children": [
    {"name": "A", "weight": 70, "children": [{"flow": 0, "weight": 1}, {"flow": 1, "weight": 1}]},
    {"name": "B", "weight": 30, "children": [{"flow": 2, "weight": 1}, {"flow": 3, "weight": 9}]}]}


def bulk(flows, **extra):
    return [dict({"kind": "bulk", "flow": f, "size": "mixed"}, **extra) for f in flows]


@pytest.mark.parametrize("algorithm", ["wfq", "stfq", "wf2q", "drr"])
def test_weighted_shares_1_2_3_with_mixed_sizes(algorithm):
    results, _ = simulate(algorithm, {"weights": [1, 2, 3]}, bulk(range(3)), "10mbit", 10, seed=3,
                          weights=[1, 2, 3])
    for flow, expected in zip(results["flows"], (1 / 6, 2 / 6, 3 / 6)):
        assert abs(flow["share"] - expected) <= 0.02 * expected, flow


@pytest.mark.parametrize("algorithm", ["wfq", "stfq", "wf2q", "drr"])
def test_idle_flow_banks_no_credit(algorithm):
    """Flow 0 is idle from 2 s to 3 s; right after it returns it gets its share, no more."""
    traffic = [{"kind": "bulk", "flow": 0, "size": "mixed", "stop": 2},
               {"kind": "bulk", "flow": 0, "size": "mixed", "start": 3}] + bulk([1, 2])
    _, metrics = simulate(algorithm, {"weights": [1, 2, 3]}, traffic, "10mbit", 6, seed=2)
    bins = range(50, 55)  # 3.0 s .. 3.3 s, 60 ms each
    for b in bins:
        total = sum(stats.bins[b] for stats in metrics.flows.values())
        assert metrics.flows[0].bins[b] / total < 1 / 6 * 1.25, (b, metrics.flows[0].bins[b] / total)
    back = sum(metrics.flows[0].bins[b] for b in bins) / sum(
        sum(stats.bins[b] for b in bins) for stats in metrics.flows.values())
    assert abs(back - 1 / 6) < 0.02


@pytest.mark.parametrize("order", ["start", "finish"])
def test_hpfq_70_30_with_1_1_and_1_9(order):
    results, _ = simulate("hpfq", {"tree": HPFQ_TREE, "order": order}, bulk(range(4)), "10mbit", 10, seed=1)
    for flow, expected in zip(results["flows"], (0.35, 0.35, 0.03, 0.27)):
        assert abs(flow["share"] - expected) <= 0.02 * expected, flow


def test_hpfq_first_class_takes_the_whole_link_when_second_is_idle():
    results, _ = simulate("hpfq", {"tree": HPFQ_TREE}, bulk([0, 1]), "10mbit", 5, seed=1)
    sent = sum(f["throughput_bps"] for f in results["flows"])
    assert sent > 0.999 * 10e6
    assert [round(f["share"], 2) for f in results["flows"]] == [0.5, 0.5]


def test_hpfq_rejects_bad_trees():
    with pytest.raises(SchedulerConfigError, match="tree"):
        registry.create("hpfq", {})
    with pytest.raises(SchedulerConfigError, match="neither"):
        registry.create("hpfq", {"tree": {"children": [{"weight": 1}]}})
    with pytest.raises(SchedulerConfigError, match="positive"):
        registry.create("hpfq", {"tree": {"children": [{"flow": 1, "weight": -1}]}})


def test_strict_priority_starves_the_lower_band():
    results, _ = simulate("strict_priority", {"priorities": {"0": 0, "1": 1}},
                          [{"kind": "bulk", "flow": 0}, {"kind": "bulk", "flow": 1, "start": 0.001}],
                          "10mbit", 3, seed=1)
    high, low = results["flows"]
    assert low["bytes"] == 0 and high["share"] == 1.0


def test_strict_priority_serves_lower_band_when_higher_is_idle():
    results, _ = simulate("strict_priority", {"priorities": [0, 1]},
                          [{"kind": "cbr", "flow": 0, "rate": "4mbit"}, {"kind": "bulk", "flow": 1}],
                          "10mbit", 3, seed=1)
    high, low = results["flows"]
    assert abs(high["throughput_bps"] - 4e6) < 0.02 * 4e6 and low["throughput_bps"] > 5.5e6


def test_drr_serves_at_most_quantum_plus_one_packet_per_round():
    quantum, weights = 1000, [1, 2, 3]
    served = {}
    sched = registry.create("drr", {"quantum": quantum, "weights": weights})
    sim = Simulation(sched, bulk(range(3)), "10mbit", 5, 7)
    original = sched.dequeue

    def count(now):
        pkt = original(now)
        if pkt is not None:
            served[(pkt.flow, pkt.rank)] = served.get((pkt.flow, pkt.rank), 0) + pkt.size
        return pkt

    sched.dequeue = count
    sim.run()
    assert len(served) > 1000
    for (flow, _), size in served.items():
        assert size <= quantum * weights[flow] + 1500
    # and the bound is not vacuous: rounds do fill up to the quantum
    assert max(size for (flow, _), size in served.items() if flow == 0) > quantum


def drive_shaper(sched, packets):
    """Feed all ``packets`` at time 0 and let timer and dequeue run; (time, size) out."""
    for pkt in packets:
        assert sched.enqueue(pkt, 0)
    out, now = [], 0
    while len(sched):
        pkt = sched.dequeue(now)
        if pkt is None:
            now = sched.next_timer()
            sched.timer(now)
            continue
        out.append((now, pkt.size))
    return out


def test_token_bucket_rate_and_burst():
    rate, burst = 10_000_000, 15_000
    sched = registry.create("tbf", {"rate": "10mbit", "burst": burst, "capacity": 100_000})
    sizes = [64 + (i * 733) % 1437 for i in range(12_000)]  # mixed 64..1500, ~9 MB
    out = drive_shaper(sched, [Packet(0, s, 0, i) for i, s in enumerate(sizes)])
    # long run: everything after the initial bucket went at the configured rate
    total, end = sum(s for _, s in out), out[-1][0]
    long_run = (total - burst) * 8 * NS / end
    assert abs(long_run - rate) < 0.01 * rate, long_run
    # never above the bucket: bytes in any window [t_i, t_j] <= burst + rate * (t_j - t_i)
    times = [t for t, _ in out]
    prefix = [0]
    for _, s in out:
        prefix.append(prefix[-1] + s)
    worst = max(prefix[j + 1] - prefix[i] - rate * (times[j] - times[i]) / (8 * NS)
                for i in range(0, len(out), 7) for j in range(i, min(len(out), i + 400)))
    assert worst <= burst
    assert worst > burst - 1500  # the first burst does use the bucket


def test_token_bucket_in_the_runtime_holds_the_rate():
    results, _ = simulate("tbf", {"rate": "10mbit", "burst": 15000}, bulk([0]), "1gbit", 10, seed=1)
    rate = (results["total_bytes"] - 15000) * 8 / 10
    assert abs(rate - 10e6) < 0.01 * 10e6


def test_edt_paces_each_flow_to_its_rate_and_honours_timestamps():
    results, _ = simulate("edt", {"rates": {"0": "2mbit", "1": "3mbit"}}, bulk([0, 1]), "100mbit", 5, seed=1)
    rates = [f["throughput_bps"] for f in results["flows"]]
    assert abs(rates[0] - 2e6) < 0.01 * 2e6 and abs(rates[1] - 3e6) < 0.01 * 3e6
    sched = registry.create("edt")
    out = drive_shaper(sched, [Packet(0, 100, 0, 1, tstamp=5000), Packet(1, 100, 0, 1, tstamp=2000)])
    assert out == [(2000, 100), (5000, 100)]


def test_lstf_serves_least_slack_first():
    sched = registry.create("lstf")
    sched.enqueue(Packet("a", 100, 0, 1, slack=50_000), 0)
    sched.enqueue(Packet("b", 100, 0, 1, slack=90_000), 10_000)
    sched.enqueue(Packet("c", 100, 0, 1, slack=20_000), 20_000)
    assert [sched.dequeue(30_000).flow for _ in range(3)] == ["c", "a", "b"]


@pytest.mark.parametrize("ranks,load", [
    ("uniform:0:99", "5mbit"), ("uniform:0:99", "7mbit"),
    ("exp:10", "9mbit"), ("exp:10", "9.9mbit"), ("pareto:10:1.5", "9mbit"), ("pareto:10:1.5", "9.9mbit")])
def test_sp_pifo_has_fewer_inversions_than_static_equal_width_bands(ranks, load):
    """Packets that overtook a queued lower rank, SP-PIFO vs equal-width bands over the
    true rank range (at 95% load and more, equal width wins on uniform ranks: see docs)."""
    counts = {}
    for adaptive in (True, False):
        results, _ = simulate("sp_pifo", {"bands": 8, "adaptive": adaptive, "rank_max": 100},
                              [{"kind": "poisson", "flow": 0, "rate": load, "rank": ranks, "size": "mixed"}],
                              "10mbit", 10, seed=1)
        counts[adaptive] = results["inverted_packets"]
    assert counts[True] < counts[False], counts


def test_fq_codel_isolates_flows_and_keeps_delay_near_target():
    traffic = [{"kind": "poisson", "flow": 0, "rate": "11mbit", "size": 1500},
               {"kind": "cbr", "flow": 1, "rate": "500kbit", "size": 200}]
    results, _ = simulate("fq_codel", None, traffic, "10mbit", 10, seed=1)
    fat, thin = results["flows"]
    assert fat["drops"] > 0 and thin["drops"] == 0
    assert thin["delay_us"]["p99"] < 5000  # the sparse flow never waits behind the fat one
    # CoDel bounds the standing queue of an unresponsive overload; a FIFO grows to seconds
    assert fat["delay_us"]["max"] < 250_000
    fifo, _ = simulate("fifo", None, traffic, "10mbit", 10, seed=1)
    assert fifo["flows"][0]["delay_us"]["max"] > 1_000_000


def test_fifo_tail_drops_at_capacity():
    results, _ = simulate("fifo", {"capacity": 10}, [{"kind": "poisson", "flow": 0, "rate": "20mbit"}],
                          "10mbit", 2, seed=1)
    assert results["drops"] > 0 and results["flows"][0]["delay_us"]["max"] <= 11 * 1500 * 8 / 10


def test_unknown_scheduler_and_options_are_typed_errors():
    with pytest.raises(UnknownSchedulerError, match="available: drr"):
        registry.create("nope")
    with pytest.raises(SchedulerConfigError, match="no option 'wieghts'"):
        registry.create("wfq", {"wieghts": [1]})
    with pytest.raises(SchedulerConfigError, match="positive"):
        registry.create("wfq", {"weights": [1, 0]})
    with pytest.raises(SchedulerConfigError, match="rate"):
        registry.create("tbf", {"rate": "fast"})


def test_dequeue_hook_may_bulk():
    sched = registry.create("drr", {"weights": [1, 1]})
    for seq in range(6):
        sched.enqueue(Packet(seq % 2, 500, 0, seq), 0)
    first, second = sched.dequeue_bulk(0, 4), sched.dequeue_bulk(0, 4)
    assert len(first) == 4 and len(second) == 2 and not sched.dequeue_bulk(0, 4)
    assert sorted(p.seq for p in first + second) == list(range(6))


def test_wf2q_interleaves_where_wfq_bursts():
    """One flow of weight 10 against ten of weight 1 (Bennett and Zhang's example):
    WFQ and STFQ send the heavy flow's packets back to back, WF2Q+ spreads them."""
    longest = {}
    for algorithm in ("wfq", "stfq", "wf2q"):
        weights = {0: 10, **{flow: 1 for flow in range(1, 11)}}
        sched = registry.create(algorithm, {"weights": weights})
        for flow in range(11):
            for seq in range(12):
                sched.enqueue(Packet(flow, 1000, 0, seq), 0)
        run = longest[algorithm] = 0
        for _ in range(40):
            run = run + 1 if sched.dequeue(0).flow == 0 else 0
            longest[algorithm] = max(longest[algorithm], run)
    assert longest["wf2q"] <= 2 and longest["wfq"] >= 9 and longest["stfq"] >= 9
