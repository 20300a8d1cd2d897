"""FQ-CoDel's BPF qdisc object and its configuration, without a kernel: the simulator's
options reach the object meaning the same, what the kernel cannot do is refused, and the
object keeps the state the loader and `xnf status` read."""
import pytest

from xnf.core.errors import ConfigError
from xnf.plugins.pifo_sched import registry
from xnf.plugins.pifo_sched.qdisc import bpf_qdisc, fq_codel
from xnf.plugins.pifo_sched.qdisc.bpf_qdisc import BpfQdisc


def test_fq_codel_runs_in_the_bpf_qdisc_from_its_own_object():
    assert bpf_qdisc.refusal("fq_codel") is None and "fq_codel" in bpf_qdisc.SCHEDULERS
    q = BpfQdisc("lo", "fq_codel")
    assert q.obj == fq_codel.OBJECT
    spec = q.spec()
    ops = spec.maps[bpf_qdisc.OPS].struct_ops
    assert ops.type_name == "Qdisc_ops" and set(ops.programs) == {"enqueue", "dequeue", "init", "reset", "destroy"}
    assert spec.btf[spec.maps["slots"].btf_value_type_id].name == "xnf_slot"
    for name in ("hold", "count", "enq_packets", "deq_packets", "drops_overflow", "drops_codel", "errors", "ch",
                 "log_n", "deq_log"):
        assert name in spec.variables


def test_the_simulators_options_reach_the_object():
    q = BpfQdisc("lo", "fq_codel", {"flows": 4, "quantum": 300, "target_ns": 2_000_000, "interval_ns": 50_000_000,
                                    "mtu": 1500, "capacity": 700, "limit": 900})
    r = q.rodata
    assert (r["cfg_buckets"], r["cfg_quantum"], r["cfg_target_ns"], r["cfg_interval_ns"], r["cfg_mtu"]) == (
        4, 300, 2_000_000, 50_000_000, 1500)
    assert r["cfg_interval_sq"] == 50_000_000 ** 2 and r["cfg_limit"] == 700  # the smaller of limit and capacity
    sim = registry.create("fq_codel", {"flows": 4})
    assert r["cfg_bucket_of"] == [sim.queues.index(sim._queue_of(f)) for f in range(fq_codel.MAX_FLOWS)]
    assert q.variables == {}


def test_buckets_by_hash_unless_the_flows_were_chosen():
    assert BpfQdisc("lo", "fq_codel").rodata["cfg_hash"] == 1  # every unmarked packet would be flow 0
    assert BpfQdisc("lo", "fq_codel", {"weights": "5201=1,5202=1"}).rodata["cfg_hash"] == 0
    assert BpfQdisc("lo", "fq_codel", {"flows": "mark"}).rodata["cfg_hash"] == 0
    assert BpfQdisc("lo", "fq_codel", {"flows": 16, "hash": False}).rodata["cfg_buckets"] == 16


@pytest.mark.parametrize("params, message", [
    ({"ecn": True}, "cannot mark ECN"),
    ({"flows": 2048}, "above the 1024 buckets"),
    ({"interval_ns": 3_000_000_000}, r"2\^31 ns or more"),
    ({"hash": "yes"}, "hash must be true or false"),
    ({"quantum": 0}, "quantum must be a positive integer"),  # the simulator's own check
])
def test_what_the_kernel_cannot_do_is_refused(params, message):
    with pytest.raises(ConfigError, match=message):
        BpfQdisc("lo", "fq_codel", params)


def test_stats_count_codel_drops_and_omit_pifo_windows():
    state = {"ch": [{"sent_packets": 3, "sent_bytes": 300, "drops": 2, "count": 1}], "count": 1,
             "enq_packets": 6, "enq_bytes": 600, "deq_packets": 3, "deq_bytes": 300, "drops_overflow": 1,
             "drops_codel": 1, "errors": 0, "hold": 0}
    stats = bpf_qdisc._stats(state)
    assert (stats["drops"], stats["drops_overflow"], stats["drops_codel"]) == (2, 1, 1)
    assert "beyond_window" not in stats and stats["flows"]["0"]["drops"] == 2
