"""Feature probes against the running kernel, with ``bpftool feature probe`` as the oracle."""
import json
import os

import pytest
from netenv import sh

from xnf.core.attach.xdp import device_capabilities
from xnf.core.kernel import features

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def bpftool_probe():
    return json.loads(sh("bpftool", "-j", "feature", "probe", "kernel"))


def test_kernel_version():
    assert features.kernel_version()[:2] == tuple(int(x) for x in os.uname().release.split(".")[:2])


def test_program_types_agree_with_bpftool(bpftool_probe):
    theirs = bpftool_probe["program_types"]
    compared = 0
    for name in features.PROG_TYPES:
        key = f"have_{name}_prog_type"
        if key not in theirs or name in ("ext", "lsm", "tracing", "struct_ops"):
            continue  # bpftool does not probe the types that need an attach target
        assert features.have_prog_type(name) == theirs[key], name
        compared += 1
    assert compared >= 20


def test_map_types_agree_with_bpftool(bpftool_probe):
    theirs = bpftool_probe["map_types"]
    compared = 0
    for name in list(features.MAP_TYPES) + ["array_of_maps", "hash_of_maps"]:
        key = f"have_{name}_map_type"
        if key in theirs:
            assert features.have_map_type(name) == theirs[key], name
            compared += 1
    assert compared >= 18
    assert features.have_map_type("sk_storage") is None  # needs BTF: not probed


@pytest.mark.parametrize("prog_type", ["xdp", "sched_cls"])
def test_helpers_agree_with_bpftool(bpftool_probe, prog_type):
    """What we find available, bpftool finds too. (bpftool 7.1 also lists helpers that
    this kernel refuses with "program of this type cannot use helper", so the
    comparison is one-way.)"""
    available = set(bpftool_probe["helpers"][f"{prog_type}_available_helpers"])
    ours = {name for name in features.HELPERS if features.have_helper(prog_type, name)}
    assert {f"bpf_{name}" for name in ours} - {"bpf_trace_printk"} <= available
    assert {"map_lookup_elem", "tail_call", "redirect", "ringbuf_output", "loop"} <= ours


def test_helper_depends_on_program_type():
    assert features.have_helper("sched_cls", "skb_set_tstamp")
    assert not features.have_helper("xdp", "skb_set_tstamp")
    assert features.have_helper(6, 44)  # xdp, xdp_adjust_head by number


def test_unknown_names_and_types():
    with pytest.raises(ValueError, match="unknown name"):
        features.have_prog_type("teleport")
    assert features.have_prog_type(999) is False


def test_link_probes_touch_nothing():
    """The link probes run in a private namespace: ours is unchanged and lo has nothing."""
    from xnf.core.attach import query

    own_ns = os.stat("/proc/thread-self/ns/net").st_ino
    features.clear_cache()
    assert features.have_xdp_link() is (features.kernel_version() >= (5, 9))
    assert features.have_tcx() is (features.kernel_version() >= (6, 6))
    assert os.stat("/proc/thread-self/ns/net").st_ino == own_ns
    assert query("lo") == []


def test_btf():
    assert features.have_btf() is True
    assert features.have_vmlinux_btf() == os.path.exists("/sys/kernel/btf/vmlinux")


def test_report_is_plain_json(netns_pair):
    report = features.features_report()
    assert json.loads(json.dumps(report)) == report
    assert report["privileged"] and report["links"] == {"xdp": True, "tcx": True}
    assert report["program_types"]["xdp"] and report["map_types"]["ringbuf"]
    iface = device_capabilities(netns_pair.if_a, netns_pair.ns_a)
    assert iface["ifname"] == netns_pair.if_a and "basic" in iface["xdp_features"]
    assert iface["xdp_modes"] == {"skb": True, "native": True, "offload": False}
    assert iface["xdp_attached"] == {}
