"""`xnf features` lists, per hook, only the helpers the kernel lets that hook call (issue 12
item 3): the kernel's own rule, asked by loading a one-call program per (type, helper) and
reading the verifier's answer ("program of this type cannot use helper" / "unknown func":
not for this type; "invalid func": not in this kernel). bpftool's `feature probe` is the
independent oracle for which helpers the kernel has."""
import json

import pytest

from tests.kernel.netenv import sh
from tests.kernel.test_cli import xnf
from xnf.core import uapi
from xnf.core.kernel import features

pytestmark = pytest.mark.root

ONLY_TC = {"skb_ecn_set_ce", "skb_set_tstamp"}
ONLY_XDP = {"xdp_adjust_head", "xdp_adjust_meta", "xdp_adjust_tail", "redirect_map"}


@pytest.fixture(scope="module")
def bpftool_probe():
    return json.loads(sh("bpftool", "-j", "feature", "probe", "kernel"))


def test_helpers_that_never_apply_to_a_hook_are_not_listed_for_it():
    report = features.features_report()
    xdp, tc = set(report["helpers"]["xdp"]), set(report["helpers"]["sched_cls"])
    assert ONLY_TC <= tc and not ONLY_TC & xdp
    assert ONLY_XDP <= xdp and not ONLY_XDP & tc
    assert {"map_lookup_elem", "tail_call", "ringbuf_output", "loop"} <= xdp & tc
    assert report["helpers_missing"] == []  # every helper xnf asks about is older than this kernel
    for name in ONLY_TC:
        assert features.helper_support("xdp", name) == "not_for_type"


def test_a_helper_past_the_kernels_last_is_missing_not_inapplicable():
    last = max(v for k, v in vars(uapi).items() if k.startswith("BPF_FUNC_"))
    assert features.helper_support("xdp", last + 1) == "missing"
    assert features.helper_support("xdp", uapi.BPF_FUNC_skb_ecn_set_ce) == "not_for_type"


@pytest.mark.parametrize("prog_type", ["xdp", "sched_cls"])
def test_against_bpftool(bpftool_probe, prog_type):
    """bpftool lists what the kernel has for the type. Its libbpf (1.1 for bpftool 7.1) reads
    only "invalid func"/"unknown func" as a refusal, so where it also lists helpers this
    kernel refuses with "program of this type cannot use helper", its list is ours plus
    those; a libbpf that knows the message lists exactly ours."""
    theirs = {h[len("bpf_"):] for h in bpftool_probe["helpers"][f"{prog_type}_available_helpers"]}
    # bpftool skips trace_printk unless run with `full` (it writes a banner to the kernel log)
    theirs &= set(features.HELPERS) - {"trace_printk"}
    ours = {h for h in features.HELPERS if features.helper_support(prog_type, h) == "available"} - {"trace_printk"}
    not_for_type = {h for h in features.HELPERS if features.helper_support(prog_type, h) == "not_for_type"}
    assert not_for_type, "the fixed sets above make some helper inapplicable to each type"
    if theirs & not_for_type:
        assert theirs == ours | not_for_type
    else:
        assert theirs == ours


def test_cli_lists_per_hook():
    r = xnf("features")
    assert r.returncode == 0, r.stderr
    lines = {line.split(":")[0].strip(): line for line in r.stdout.splitlines() if "helpers (" in line}
    xdp_line = next(v for k, v in lines.items() if k.startswith("helpers (xdp"))
    tc_line = next(v for k, v in lines.items() if k.startswith("helpers (sched_cls"))
    assert "skb_ecn_set_ce" not in xdp_line and "skb_ecn_set_ce" in tc_line
    assert "xdp_adjust_head" in xdp_line and "xdp_adjust_head" not in tc_line
    assert "missing" not in r.stdout.split("helpers (")[1]
    report = json.loads(xnf("features", "--json").stdout)
    assert "skb_ecn_set_ce" not in report["helpers"]["xdp"] and report["helpers_missing"] == []


def test_kfuncs_per_hook():
    """The kfunc sets the kernel registers per program type: bpf_dynptr_from_skb for tc (and
    other skb types), bpf_dynptr_from_xdp and bpf_xdp_get_xfrm_state for XDP alone; the
    verifier's "calling kernel function ... is not allowed" is the refusal."""
    report = features.features_report()
    xdp, tc = set(report["kfuncs"]["xdp"]), set(report["kfuncs"]["sched_cls"])
    assert {"bpf_dynptr_from_xdp", "bpf_xdp_get_xfrm_state"} <= xdp - tc
    assert "bpf_dynptr_from_skb" in tc - xdp
    assert "bpf_dynptr_slice" in xdp & tc
    assert features.kfunc_support("xdp", "bpf_dynptr_from_skb") == "not_for_type"
    assert features.kfunc_support("xdp", "xnf_no_such_kfunc") == "missing"
    r = xnf("features")
    line = next(line for line in r.stdout.splitlines() if line.strip().startswith("kfuncs (xdp"))
    assert "bpf_dynptr_from_xdp" in line and "bpf_dynptr_from_skb" not in line
