"""Regression guard for `xnf run pping`'s start-up (issue 14 item 4): what an attach asks
of the kernel, in counts that do not depend on the machine's speed or load.

An attached instance verifies only the programs its hooks and options run (egress, the
ingress hook's, and the clean-up timer's starter, or the one-pass program without the
timer): each one skipped is 10 to 25 ms of verifier CPU. Without --aggregate the two
per-CPU aggregation maps hold one entry each: their default preallocation was ~30 ms of
CPU and ~70 MB per map on two CPUs (docs/benchmarks.md, ``cli_startup``).
"""
import pytest

from xnf.core import uapi
from xnf.core.errors import XnfError
from xnf.core.kernel import syscall
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.datapath import Datapath

pytestmark = pytest.mark.root


@pytest.fixture
def count_bpf(monkeypatch):
    """{bpf(2) command: calls} made while the test runs."""
    calls, bpf_at = {}, syscall.bpf_at

    def counted(cmd, *args):
        calls[cmd] = calls.get(cmd, 0) + 1
        return bpf_at(cmd, *args)

    monkeypatch.setattr(syscall, "bpf_at", counted)
    return calls


@pytest.mark.parametrize("config, programs", [
    (PpingConfig(), {"pping_tc_egress", "pping_tc_ingress", "pping_gc_start"}),
    (PpingConfig(cleanup_interval=0), {"pping_tc_egress", "pping_tc_ingress", "pping_gc_now"}),
    (PpingConfig(ingress_hook="xdp", xdp_mode="generic"), {"pping_tc_egress", "pping_xdp_ingress", "pping_gc_start"}),
], ids=["default", "no-timer", "xdp"])
def test_attach_loads_only_the_programs_it_runs(netns_pair, count_bpf, config, programs):
    from xnf.core.attach import dispatcher
    from xnf.core.kernel import features

    # the probes' own loads (once per process, cached) before counting: tcx, XDP links, and
    # for the XDP hook whether libxdp's dispatcher could share the interface
    features.have_tcx(), features.have_xdp_link(), dispatcher.supported()
    count_bpf.clear()
    with Datapath(netns_pair.if_a, config, netns=netns_pair.ns_a).attach() as dp:
        assert set(dp.collection.programs) == programs
        assert count_bpf.get(uapi.BPF_PROG_LOAD) == len(programs)  # no retry, no probe
        assert count_bpf.get(uapi.BPF_MAP_CREATE) == len(dp.collection.maps) == 10
        for name in ("pping_agg_v4", "pping_agg_v6"):
            assert dp.maps[name].max_entries == 1
        if "pping_gc_now" in programs:
            dp.cleanup_now()
        else:
            with pytest.raises(XnfError, match="cleans up on its timer"):
                dp.cleanup_now()


def test_aggregation_keeps_its_maps(netns_pair):
    config = PpingConfig(aggregate=1, aggregate_map_size=100)
    with Datapath(netns_pair.if_a, config, netns=netns_pair.ns_a).attach() as dp:
        assert dp.maps["pping_agg_v4"].max_entries == dp.maps["pping_agg_v6"].max_entries == 202
        assert dp.collect_aggregates() == []
