"""Pinned digests of whole simulations: speed work on the runtime must not change its results.

Each run below (every built-in scheduler; bulk, open-loop, flow-arrival and responsive
traffic; several seeds) is reduced to a SHA-256 of its JSON results and of its event
trace (every enqueue, dequeue and drop with time, flow, sequence number and size). The
digests were taken before the simulator was optimised (issue 14) and must stay equal:
a change here means the simulator now computes something else. If that is intended
(a fixed bug, a new field), say so in the commit and update the digest.
"""
import hashlib
import json

import pytest

from xnf.plugins.pifo_sched.sim.runner import simulate

WEIGHTS = [1, 2, 3]
BULK = [{"kind": "bulk", "flow": flow, "size": "mixed"} for flow in range(3)]
OPEN = [{"kind": "poisson", "flow": 0, "rate": "4mbit", "size": "imix", "rank": "exp:10"},
        {"kind": "onoff", "flow": 1, "rate": "6mbit", "on": 0.05, "off": 0.05, "size": "mixed", "priority": 1},
        {"kind": "cbr", "flow": 2, "rate": "2mbit", "size": 1000, "slack_ns": 200000},
        {"kind": "flows", "flow": 100, "load": "3mbit", "flow_size": "pareto:20000:1.3"},
        {"kind": "bulk", "flow": 3, "size": "mixed", "start": 0.1, "stop": 0.3}]
TCP = [{"kind": "reno", "flow": 0, "rtt": 0.02}, {"kind": "cubic", "flow": 1, "rtt": 0.03, "ecn": True},
       {"kind": "reno", "flow": 2, "rtt": 0.01, "ecn": True, "size": "mixed"},
       {"kind": "cbr", "flow": 3, "rate": "100kbit", "size": 200}]
HPFQ_TREE = {"children": [
    {"name": "A", "weight": 70, "children": [{"flow": 0, "weight": 1}, {"flow": 1, "weight": 1}]},
    {"name": "B", "weight": 30, "children": [{"flow": 2, "weight": 1}, {"flow": 100, "weight": 9}]}]}

# (scheduler, config, traffic, seed, digest)
RUNS = [
    ("fifo", None, "bulk", 1,
     "e3aab6b483241bff6edfb2a7967b7306c29bbd60799353def50a100170e17a5b"),
    ("fifo", {"capacity": 50}, "tcp", 2,
     "243fc9ebd3d972e91b175065e32407f9aab4b0fbc22ef0ffad05405fc7c4f750"),
    ("wfq", {"weights": WEIGHTS}, "bulk", 1,
     "639195daf649cb0e9cec48c760300e14607f01e3ec7299adfeb8939123fc73fc"),
    ("wfq", {"weights": WEIGHTS}, "open", 3,
     "b844662153134e009c7e682197b40970b255f95c7c51fd3a0ad39092e15d6cb3"),
    ("drr", {"weights": WEIGHTS}, "bulk", 1,
     "f4fe434d7e65482d9ecac32e3390e46e0caaab9ebcb74acddda8cb6a100335be"),
    ("drr", {"weights": WEIGHTS, "quantum": 500}, "open", 4,
     "9cbfd07e4c347a153780c0527fa858f092ed119ee20ba753f63e486226c5d7f3"),
    ("stfq", {"weights": WEIGHTS}, "open", 1,
     "4f87507141e25efe1f6e5de6b42e5a57cfc3ad6cc0ff51f09cbaf344698b2ba6"),
    ("wf2q", {"weights": WEIGHTS}, "open", 2,
     "dd0d9d38473e4b18c70395bbc68469d61b59733a40a3f8880da60901e2671fbd"),
    ("hpfq", {"tree": HPFQ_TREE}, "open", 1,
     "d961c7f8a1ec9edfac888e69de1cfc72246b0265969c8dc47fb740e0606d6082"),
    ("strict_priority", {"priorities": [0, 1, 2]}, "open", 1,
     "f9802c636abd51d421fe508f19ff639aa0e1180694f9bf4ffcf6423b2a01b6b8"),
    ("srpt", None, "open", 5,
     "4284d0a49f00703dbce3918e1655dc3e47cfbc13eefa05bc6a0d0483131ff209"),
    ("lstf", None, "open", 6,
     "f9b18202659d0feece03e3c43a44a0cc27a8a954d3b5a96b610e6daabdc42565"),
    ("tbf", {"rate": "8mbit"}, "open", 1,
     "c59508db130576289fa11113afe0602b31fe0287bdf68a9a168af96f05c28140"),
    ("edt", {"default_rate": "3mbit"}, "open", 1,
     "96f7f62ed5923816e42ff708fc3c77dbc894ce17e70aee3e6f6b42a8b9d445f1"),
    ("sp_pifo", None, "open", 7,
     "29c04315db7c001df25f5bf9971ee99594d9498eabee98434d65f1ca317f59b3"),
    ("fq_codel", None, "tcp", 1,
     "2e7fabcfa7b952d23650fd699318cc98affc7c2d95108a57da56fcd5f167dbb2"),
    ("fq_codel", {"ecn": False, "capacity": 100}, "tcp", 8,
     "a1219ec4b425b093d4782cbe0c5d8e0c2e8fd987690fe89e0d4951868cd0e209"),
]
TRAFFIC = {"bulk": BULK, "open": OPEN, "tcp": TCP, "overload": OPEN[:4]}


def digest(algorithm, config, traffic, seed):
    results, metrics = simulate(algorithm, config, TRAFFIC[traffic], "10mbit", 0.4, seed=seed,
                                weights=WEIGHTS, record_events=True)
    h = hashlib.sha256(json.dumps(results, sort_keys=True).encode())
    h.update(repr(metrics.events).encode())
    return h.hexdigest()


@pytest.mark.parametrize("algorithm, config, traffic, seed, expected", RUNS,
                         ids=[f"{run[0]}-{run[2]}-{run[3]}" for run in RUNS])
def test_simulation_results_are_unchanged(algorithm, config, traffic, seed, expected):
    assert digest(algorithm, config, traffic, seed) == expected, \
        "the simulator's results changed (see the module docstring)"


# The benchmark's path (bench/sim_speed.py): no event trace recorded, many packets on a fast
# link; and open-loop traffic above the link rate into a short buffer (drops, ranks). Without
# a trace the departure order is pinned by each flow's delays, in order.
# (scheduler, config, traffic, link, duration, seed, digest)
FAST_RUNS = [
    ("fifo", None, "bulk", "10gbit", 0.02, 2,
     "082020b325fcafc7289612b5aeae41e1d1b202406b50b7a93ee464ce559fca0c"),
    ("wfq", {"weights": WEIGHTS}, "bulk", "10gbit", 0.02, 2,
     "013a315f5aacf2b8f8e43efe407999ceabe9136fc925d33fe070079add0ba162"),
    ("stfq", {"weights": WEIGHTS}, "bulk", "10gbit", 0.02, 2,
     "a23f70e1350806939afef28dcc9c940f248e463c1b0dd6573a4c97dafb61f4b6"),
    ("drr", {"weights": WEIGHTS}, "bulk", "10gbit", 0.02, 2,
     "360b75ba0e90ed9e9cab90453e6530179003baf9a4c91fa5fd6ba84c3be3daa3"),
    ("drr", {"weights": WEIGHTS, "quantum": 500}, "bulk", "10gbit", 0.02, 3,
     "c32ac785cc5a9c99f1367636752f8ffd60a0fe99b964f802ceb5f6e3a8a5c8fe"),
    ("wfq", {"weights": WEIGHTS, "capacity": 20}, "overload", "12mbit", 0.4, 3,
     "a866101fb13c4b5a5bf74f2d826fc6502809f8b51f324457600bbe28459ab99c"),
    ("drr", {"weights": WEIGHTS, "capacity": 20}, "overload", "12mbit", 0.4, 4,
     "5a8663374a4ae0513feedf4c1a33b011e467c07057fb77b309386e70cb63cbbf"),
    ("fifo", {"capacity": 20}, "overload", "12mbit", 0.4, 5,
     "543423862f82debed6f63ae3ba8551e8fbdee51b904217cf774206bacb4b11e9"),
]


def fast_digest(algorithm, config, traffic, link, duration, seed):
    results, metrics = simulate(algorithm, config, TRAFFIC[traffic], link, duration, seed=seed,
                                weights=WEIGHTS)
    h = hashlib.sha256(json.dumps(results, sort_keys=True).encode())
    for key in sorted(metrics.flows, key=str):
        stats = metrics.flows[key]
        h.update(repr((key, stats.bins, stats.delays)).encode())
    h.update(repr((metrics.queued_ranks, metrics.inversions, metrics.inverted_packets, metrics.ranked)).encode())
    return h.hexdigest()


@pytest.mark.parametrize("algorithm, config, traffic, link, duration, seed, expected", FAST_RUNS,
                         ids=[f"{run[0]}-{run[2]}-{run[5]}" for run in FAST_RUNS])
def test_untraced_simulation_results_are_unchanged(algorithm, config, traffic, link, duration, seed, expected):
    assert fast_digest(algorithm, config, traffic, link, duration, seed) == expected, \
        "the simulator's results changed (see the module docstring)"
