"""tc offload (cls_bpf skip_sw) on netdevsim."""
import json

import pytest

from xnf.core.attach.tc import attach_tc
from xnf.core.errors import AttachError
from xnf.core.info import prog_info
from xnf.offload.device import DeviceMismatchError, check_tc_attach

from vm_offload import load_bound, sh


def tc_filters(dev):
    out = sh("tc", "-j", "filter", "show", "dev", dev.ifname, "ingress", netns=dev.netns).stdout
    return [f for f in json.loads(out or "[]") if f.get("options")]


def test_skip_sw_attach_runs_in_hardware(nsim):
    sh("ethtool", "-K", nsim.ifname, "hw-tc-offload", "on", netns=nsim.netns)
    with load_bound(nsim, programs=("tc_shot",)) as coll:
        prog = coll.programs["tc_shot"]
        check_tc_attach(prog, nsim.ifname, skip_sw=True, netns=nsim.netns)
        att = attach_tc(prog, nsim.ifname, "ingress", netns=nsim.netns, skip_sw=True)
        try:
            (f,) = tc_filters(nsim)
            assert f["options"].get("in_hw") is True
            assert f["options"].get("skip_sw") is True
            assert f["options"]["prog"]["id"] == prog_info(prog.fd).id
            assert int(nsim.knob("bpf_offloaded_id")) == prog_info(prog.fd).id
        finally:
            att.detach()
        assert tc_filters(nsim) == []


def test_bound_tc_program_needs_skip_sw(nsim):
    sh("ethtool", "-K", nsim.ifname, "hw-tc-offload", "on", netns=nsim.netns)
    with load_bound(nsim, programs=("tc_shot",)) as coll:
        with pytest.raises(DeviceMismatchError, match="skip_sw"):
            check_tc_attach(coll.programs["tc_shot"], nsim.ifname, skip_sw=False, netns=nsim.netns)
        with pytest.raises(AttachError):
            attach_tc(coll.programs["tc_shot"], nsim.ifname, "ingress", netns=nsim.netns, via="clsact")
    assert tc_filters(nsim) == []
