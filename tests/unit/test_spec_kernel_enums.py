"""Program and map types in the spec are IntEnums named like the kernel (issue 12 item 4):
they print as ``BPF_PROG_TYPE_XDP``, still compare equal to the number, and a number this
kernel's table lacks stays a plain int."""
import json
import os

import xnf
from xnf.core import uapi
from xnf.core.object.spec import MapSpec, ProgramSpec

BPF = os.path.join(os.path.dirname(__file__), "..", "bpf")


def test_spec_types_are_kernel_enums():
    spec = xnf.open_object(os.path.join(BPF, "xdp_counter.bpf.o"))
    prog = spec.programs["xdp_count"]
    assert prog.type is uapi.ProgType.BPF_PROG_TYPE_XDP
    assert prog.type == uapi.BPF_PROG_TYPE_XDP == 6 and str(prog.type) == "BPF_PROG_TYPE_XDP"
    assert repr(prog.type) == "<ProgType.BPF_PROG_TYPE_XDP: 6>"
    assert {n: str(m.type) for n, m in spec.maps.items()} == {"pkt_count": "BPF_MAP_TYPE_ARRAY",
                                                             "proto_count": "BPF_MAP_TYPE_HASH"}
    assert json.dumps([prog.type, spec.maps["pkt_count"].type]) == "[6, 2]"
    assert prog.type_name == "xdp" and spec.maps["proto_count"].type_name == "hash"


def test_a_type_this_kernel_does_not_know_stays_an_int():
    m = MapSpec(name="m", type=10_000, key_size=4, value_size=4, max_entries=1)
    assert type(m.type) is int and m.type_name == "10000"
    m.type = uapi.BPF_MAP_TYPE_HASH  # assignment converts too
    assert m.type is uapi.MapType.BPF_MAP_TYPE_HASH
    p = ProgramSpec(name="p", section="tc", type=uapi.BPF_PROG_TYPE_SCHED_CLS)
    assert str(p.type) == "BPF_PROG_TYPE_SCHED_CLS"
