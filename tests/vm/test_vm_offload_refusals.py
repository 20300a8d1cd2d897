"""What must be refused before anything is loaded or attached, and what the kernel says
when the checks are bypassed (the oracle that the checks match the kernel)."""
import pytest

import xnf
from xnf.core.attach.xdp import attach_xdp, query
from xnf.core.errors import AttachError, XnfError
from xnf.core.kernel.netns import entered
from xnf.offload import rules as R
from xnf.offload.check import OffloadRejected
from xnf.offload.device import (DeviceMismatchError, OffloadNotSupportedError, UnboundProgramError, bind,
                                check_binding, check_xdp_attach, prepare_offload)
from xnf.testing.topology import VethPair

from vm_offload import BAD, OK, load_bound, load_host, xdp_oracle


def test_program_bound_to_another_device(nsim, nsim2):
    with load_bound(nsim) as coll:
        prog = coll.programs["xdp_ok"]
        with pytest.raises(DeviceMismatchError, match=f"not {nsim2.ifname}"):
            check_xdp_attach(prog, nsim2.ifname, "offload", nsim2.netns)
        with pytest.raises(AttachError):  # the attach path refuses it too
            attach_xdp(prog, nsim2.ifname, mode="offload", netns=nsim2.netns)
    assert xdp_oracle(nsim2) == {} and xdp_oracle(nsim) == {}


def test_host_program_in_offload_mode(nsim):
    with load_host() as coll:
        with pytest.raises(UnboundProgramError, match="loaded for the host"):
            check_xdp_attach(coll.programs["xdp_ok"], nsim.ifname, "offload", nsim.netns)
        with pytest.raises(AttachError):
            attach_xdp(coll.programs["xdp_ok"], nsim.ifname, mode="offload", netns=nsim.netns)
    assert xdp_oracle(nsim) == {}


def test_bound_program_in_native_mode(nsim):
    with load_bound(nsim) as coll:
        prog = coll.programs["xdp_ok"]
        with pytest.raises(DeviceMismatchError, match="can only run in offload mode"):
            check_xdp_attach(prog, nsim.ifname, "native", nsim.netns)
        with pytest.raises(AttachError):  # kernel: device-bound program without HW_MODE
            attach_xdp(prog, nsim.ifname, mode="native", netns=nsim.netns)
    assert xdp_oracle(nsim) == {}


def test_unsupported_map_type_refused_before_load(nsim):
    with pytest.raises(OffloadRejected) as err:
        prepare_offload(xnf.open_object(BAD), nsim.ifname, nsim.netns, programs=["xdp_ringbuf"])
    assert err.value.rule is R.MAP_TYPE
    assert "bad_rb" in str(err.value)
    assert nsim.bound_progs() == []


def test_kernel_agrees_on_map_types(nsim):
    spec = bind(xnf.open_object(BAD), nsim.ifindex, ["xdp_ringbuf"])  # bypass the checker
    with entered(nsim.netns), pytest.raises(XnfError):
        xnf.load(spec, programs=["xdp_ringbuf"])
    assert nsim.bound_progs() == []


def test_netdevsim_map_size_limit_matches_kernel(nsim):
    spec = xnf.open_object(OK)
    spec.maps["ok_last_len"].max_entries = 8
    with pytest.raises(OffloadRejected) as err:
        prepare_offload(spec, nsim.ifname, nsim.netns, programs=["xdp_ok"])
    assert err.value.rule is R.MAX_ENTRIES
    bind(spec, nsim.ifindex, ["xdp_ok"])
    with entered(nsim.netns), pytest.raises(XnfError):
        xnf.load(spec, programs=["xdp_ok"])


def test_program_and_map_on_different_devices(nsim, nsim2):
    spec = bind(xnf.open_object(OK), nsim.ifindex, ["xdp_ok"])
    spec.maps["ok_count"].ifindex = nsim2.ifindex
    with pytest.raises(DeviceMismatchError, match="'ok_count' lives on"):
        check_binding(spec, ["xdp_ok"])
    with entered(nsim.netns), pytest.raises(XnfError) as err:  # the kernel's own refusal
        xnf.load(spec, programs=["xdp_ok"])
    assert "offload device mismatch between prog and map" in getattr(err.value, "log", str(err.value))
    assert nsim.bound_progs() == [] and nsim2.bound_progs() == []


def test_device_without_offload():
    with VethPair(same_namespace=True, prefix="xnfvm") as pair:
        with pytest.raises(OffloadNotSupportedError, match=f"{pair.if_a} cannot offload BPF programs"):
            prepare_offload(xnf.open_object(OK), pair.if_a, pair.ns_a)
        assert query(pair.if_a, pair.ns_a) == {}
