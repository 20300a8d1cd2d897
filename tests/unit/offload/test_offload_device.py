"""Device binding and the same-device rule, on specs only (no kernel)."""
import os

import pytest

import xnf
from xnf.core import uapi
from xnf.core.object.spec import MapSpec, ObjectSpec, ProgramSpec
from xnf.offload.device import DeviceMismatchError, bind, check_binding

from offload_asm import exit_, lddw_map, mov

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bpf", "offload")
OK = os.path.join(FIXTURES, "offload_ok.bpf.o")


def test_bind_skips_offload_neutral_maps():
    obj = bind(xnf.open_object(OK), 7)
    assert {n: p.ifindex for n, p in obj.programs.items()} == {"xdp_ok": 7, "tc_shot": 7}
    assert {n: m.ifindex for n, m in obj.maps.items()} == {"ok_count": 7, "ok_last_len": 7, "ok_events": 0}


def two_maps_spec(prog_ifindex, map_ifindex):
    p = ProgramSpec("p", "xdp", uapi.BPF_PROG_TYPE_XDP, ifindex=prog_ifindex,
                    instructions=[lddw_map(1, "m"), mov(0, 2), exit_()])
    m = MapSpec("m", uapi.BPF_MAP_TYPE_HASH, 4, 4, 2, ifindex=map_ifindex)
    return ObjectSpec("t.bpf.o", programs={"p": p}, maps={"m": m})


@pytest.mark.parametrize("prog_if,map_if,ok", [(0, 0, True), (5, 5, True), (5, 0, False), (0, 5, False), (5, 6, False)])
def test_program_and_map_must_share_a_device(prog_if, map_if, ok):
    obj = two_maps_spec(prog_if, map_if)
    if ok:
        check_binding(obj)
    else:
        with pytest.raises(DeviceMismatchError, match="program 'p' runs on .* but its map 'm' lives on"):
            check_binding(obj)
