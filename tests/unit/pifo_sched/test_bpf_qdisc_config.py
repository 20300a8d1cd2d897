"""The BPF qdisc's object and its configuration, without a kernel: what the loader will be
given (struct_ops, the skb kptr slot, the qdisc kind) and the integer tags that must equal
the simulator's float ones."""
import pytest

from xnf.core.errors import ConfigError
from xnf.core.object import btf as B
from xnf.plugins.pifo_sched.qdisc import bpf_qdisc
from xnf.plugins.pifo_sched.qdisc.bpf_qdisc import MAX_FLOWS, NONE, BpfQdisc, cost_fraction, refusal

HPFQ_TREE = {"children": [
    {"name": "A", "weight": 70, "children": [{"flow": 0, "weight": 1}, {"flow": 1, "weight": 1}]},
    {"name": "B", "weight": 30, "children": [{"flow": 2, "weight": 1}, {"flow": 3, "weight": 9}]}]}


def test_the_object_is_a_qdisc_struct_ops_with_the_five_members():
    spec = BpfQdisc("lo", "fifo").spec()
    ops = spec.maps["xnf_pifo"].struct_ops
    assert ops.type_name == "Qdisc_ops" and ops.link
    assert set(ops.programs) == {"enqueue", "dequeue", "init", "reset", "destroy"}


def test_each_instance_has_its_own_kind_in_the_id_member():
    """Kinds are registered host-wide: two live instances, in one process or two, never share
    one (an id()-derived suffix once did, when a freed object's address was reused)."""
    a, b = BpfQdisc("lo", "fifo"), BpfQdisc("lo", "fifo")
    assert a.kind != b.kind and len(a.kind) < 16
    kinds = {BpfQdisc("lo", "fifo").kind for _ in range(2000)}  # each freed at once
    assert len(kinds) == 2000 and all(len(k) == 15 for k in kinds)
    spec = a.spec()
    ops = spec.maps["xnf_pifo"].struct_ops
    offset = next(off // 8 for name, _t, off, _bf in spec.btf[ops.type_id].members if name == "id")
    assert ops.data[offset:offset + 16].rstrip(b"\0") == a.kind.encode()


def test_the_slot_map_holds_an_skb_kptr_in_btf():
    """clang 14 loses `__kptr` in a map definition: the slot type comes from a function's
    signature, and the spec names it as the map's value type."""
    spec = BpfQdisc("lo", "fifo").spec()
    slots = spec.maps["slots"]
    value = spec.btf[slots.btf_value_type_id]
    assert value.name == "xnf_slot" and value.size == slots.value_size
    skb = next(t for name, t, _off, _bf in value.members if name == "skb")
    ptr = spec.btf[skb]
    tag = spec.btf[ptr.type]
    assert (ptr.kind, tag.kind, tag.name) == (B.KIND_PTR, B.KIND_TYPE_TAG, "kptr")
    assert spec.btf[tag.type].name == "sk_buff"


@pytest.mark.parametrize("scale, weight", [(58, 1), (58, 3), (58, 7), (29.0, 0.5), (58 * 30, 70), (58, 9)])
def test_integer_tags_equal_the_simulators_float_tags(scale, weight):
    num, den = cost_fraction(scale, weight, "test")
    for size in (0, 1, 63, 64, 577, 1499, 1500, 1514, 9000, 65535):
        assert max(1, (2 * size * num + den) // (2 * den)) == max(1, int(size * scale / weight + 0.5))


def test_weights_without_an_exact_integer_form_are_refused():
    with pytest.raises(ConfigError, match="cannot compute exactly"):
        BpfQdisc("lo", "wfq", {"weights": [1, 0.1, 3]})


def test_wfq_flows_hang_under_the_root_with_their_cost_fractions():
    q = BpfQdisc("lo", "wfq", {"weights": [1, 2, 4]})
    assert q.rodata["cfg_mode"] == bpf_qdisc.MODE_TREE and q.rodata["cfg_by_finish"] == 1
    ch = q.variables["ch"]
    assert [(c["parent"], c["cost_num"], c["cost_den"]) for c in ch[:4]] == [(0, 58, 1), (0, 29, 1),
                                                                              (0, 29, 2), (0, 58, 1)]
    assert ch[MAX_FLOWS]["parent"] == NONE  # the root node


def test_hpfq_tree_gives_node_indices_depth_first():
    q = BpfQdisc("lo", "hpfq", {"tree": HPFQ_TREE})
    ch = q.variables["ch"]
    assert [ch[f]["parent"] for f in range(5)] == [1, 1, 2, 2, 0]  # flow 4: not in the tree, under the root
    assert (ch[3]["cost_num"], ch[3]["cost_den"]) == (58, 9)
    assert [(ch[MAX_FLOWS + n]["parent"], ch[MAX_FLOWS + n]["cost_num"], ch[MAX_FLOWS + n]["cost_den"])
            for n in range(3)] == [(NONE, 1, 1), (0, 29, 35), (0, 29, 15)]


def test_wf2q_total_weight_and_configured_flows():
    q = BpfQdisc("lo", "wf2q", {"weights": [1, 2, 3]})
    assert q.variables["wf_total"] == 6 and q.rodata["cfg_wf_num"] == 58
    ch = q.variables["ch"]
    assert [(c["weight"], c["configured"]) for c in ch[:4]] == [(1, 1), (2, 1), (3, 1), (1, 0)]


def test_strict_priority_bands_by_flow_or_from_skb_priority():
    q = BpfQdisc("lo", "strict_priority", {"priorities": [0, 3, 9]})
    assert [c["band"] for c in q.variables["ch"][:4]] == [0, 3, 7, NONE]


def test_schedulers_not_in_the_qdisc_are_refused_with_the_reason():
    assert refusal("wfq") is None
    assert refusal("tbf") is None and refusal("lstf") is None and refusal("sp_pifo") is None
    with pytest.raises(ConfigError, match="'nosuch' cannot run in the BPF qdisc: 'nosuch' is no built-in"):
        BpfQdisc("lo", "nosuch")


def test_lstf_takes_each_flows_slack_and_refuses_one_beyond_the_rank_window():
    q = BpfQdisc("lo", "lstf", {"slack_ns": [5000, 0], "resolution_ns": 10})
    assert q.rodata["cfg_mode"] == bpf_qdisc.MODE_FLOWS and q.rodata["cfg_lstf"] == 1
    assert (q.rodata["cfg_resolution_ns"], q.rodata["cfg_max_slack_ns"]) == (10, 10 * 2**20 - 1)
    assert [c["cost_num"] for c in q.variables["ch"][:3]] == [5000, 0, 1_000_000]  # default_slack_ns
    with pytest.raises(ConfigError, match="flow 1's slack 2000000000 ns is not within"):
        BpfQdisc("lo", "lstf", {"slack_ns": [1, 2_000_000_000]})


def test_sp_pifo_tags_round_down_as_the_simulators():
    q = BpfQdisc("lo", "sp_pifo", {"weights": [1, 3, 0.5], "bands": 4})
    assert (q.rodata["cfg_mode"], q.rodata["cfg_sp_bands"], q.rodata["cfg_sp_adaptive"]) == (
        bpf_qdisc.MODE_SPPIFO, 4, 1)
    assert [(c["cost_num"], c["cost_den"]) for c in q.variables["ch"][:4]] == [(64, 1), (64, 3), (128, 1), (64, 1)]
    num, den = cost_fraction(64, 3, "test", floor=True)
    assert all(size * num // den == int(size * 64 / 3) for size in (1, 2, 3, 1499, 1514, 65535))
    assert BpfQdisc("lo", "sp_pifo", {"adaptive": False, "rank_max": 1000}).rodata["cfg_sp_rank_max"] == 1000


def test_limit_above_what_the_qdisc_holds_is_refused():
    with pytest.raises(ConfigError, match="limit 5000 is above the 4096 packets"):
        BpfQdisc("lo", "fifo", {"limit": 5000})
    assert BpfQdisc("lo", "fifo", {"limit": 100}).rodata["cfg_limit"] == 100
