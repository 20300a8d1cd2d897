"""StructOpsSpec.set_member without a kernel: a machine-wide name (a congestion control's
``name``) written into the initializer, zero-padded to the member, the rest untouched."""
import os

import pytest

import xnf
from xnf.core.errors import ConfigError

BPF_CC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bpf", "bpf_cc.bpf.o")


def name_member(spec, ops):
    return next((bit_off // 8, spec.btf.size_of(t)) for name, t, bit_off, _bf in spec.btf[ops.type_id].members
                if name == "name")


def test_set_member_writes_the_name_zero_padded_and_leaves_the_rest():
    spec = xnf.open_object(BPF_CC)
    ops = spec.maps["xnf_reno"].struct_ops
    before = ops.data
    offset, size = name_member(spec, ops)
    ops.set_member(spec.btf, "name", b"xr1")
    assert size == 16 and ops.data[offset:offset + size] == b"xr1" + b"\0" * 13
    assert ops.data[:offset] == before[:offset] and ops.data[offset + size:] == before[offset + size:]


def test_set_member_refuses_an_unknown_member_and_a_value_too_long():
    spec = xnf.open_object(BPF_CC)
    ops = spec.maps["xnf_reno"].struct_ops
    before = ops.data
    with pytest.raises(ConfigError, match="no member 'nom'"):
        ops.set_member(spec.btf, "nom", b"x")
    with pytest.raises(ConfigError, match="17 bytes do not fit tcp_congestion_ops.name"):
        ops.set_member(spec.btf, "name", b"x" * 17)
    assert ops.data == before
