"""tc offload (cls_bpf skip_sw) on netdevsim."""
import json

import pytest

from xnf.core.attach.tc import attach_tc
from xnf.core.errors import AttachError
from xnf.core.kernel.info import prog_info
from xnf.drivers.capabilities import Capabilities
from xnf.drivers.ethtool_features import set_feature
from xnf.offload.device import DeviceMismatchError, OffloadNotSupportedError, check_tc_attach

from vm_offload import load_bound, sh


def tc_filters(dev):
    out = sh("tc", "-j", "filter", "show", "dev", dev.ifname, "ingress", netns=dev.netns).stdout
    return [f for f in json.loads(out or "[]") if f.get("options")]


def test_hw_tc_offload_off_by_default_and_switchable(nsim):
    caps = Capabilities.for_interface(nsim.ifname, nsim.netns)
    assert caps.hw_tc_offload.active is False and caps.hw_tc_offload.changeable
    with load_bound(nsim, programs=("tc_shot",)) as coll:
        with pytest.raises(OffloadNotSupportedError, match="hw-tc-offload off"):
            check_tc_attach(coll.programs["tc_shot"], nsim.ifname, skip_sw=True, netns=nsim.netns)
    assert set_feature(nsim.ifname, "hw-tc-offload", True, nsim.netns).active
    assert "hw-tc-offload: on" in sh("ethtool", "-k", nsim.ifname, netns=nsim.netns).stdout


def test_skip_sw_attach_runs_in_hardware(nsim):
    set_feature(nsim.ifname, "hw-tc-offload", True, nsim.netns)
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
    set_feature(nsim.ifname, "hw-tc-offload", True, nsim.netns)
    with load_bound(nsim, programs=("tc_shot",)) as coll:
        with pytest.raises(DeviceMismatchError, match="skip_sw"):
            check_tc_attach(coll.programs["tc_shot"], nsim.ifname, skip_sw=False, netns=nsim.netns)
        with pytest.raises(AttachError):
            attach_tc(coll.programs["tc_shot"], nsim.ifname, "ingress", netns=nsim.netns, via="clsact")
    assert tc_filters(nsim) == []
