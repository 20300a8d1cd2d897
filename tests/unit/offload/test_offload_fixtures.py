"""The checker on clang-built objects: real instruction streams and BTF line info."""
import os

import pytest

import xnf
from xnf.offload import rules as R
from xnf.offload.check import OffloadRejected, check_object, check_program
from xnf.offload.rules import target

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "..", "bpf", "offload")


def spec(name):
    return xnf.open_object(os.path.join(FIXTURES, f"{name}.bpf.o"))


@pytest.mark.parametrize("t", ["nfp", "netdevsim", "generic"])
def test_good_object_passes_every_target(t):
    assert check_object(spec("offload_ok"), target(t)) is None


def broken(obj, program, t):
    return [v.rule for v in check_program(obj.programs[program], obj.maps, target(t))]


def test_each_bad_program_breaks_its_rule():
    obj = spec("offload_bad")
    assert broken(obj, "xdp_store", "nfp") == [R.MAP_VALUE_STORE]
    assert broken(obj, "xdp_clock", "nfp") == [R.HELPERS]
    assert broken(obj, "tc_ok", "nfp") == [R.TC_RETURN]
    for t in ("nfp", "netdevsim", "generic"):
        assert R.MAP_TYPE in broken(obj, "xdp_ringbuf", t)


def test_netdevsim_accepts_what_only_nfp_refuses():
    obj = spec("offload_bad")
    for program in ("xdp_store", "xdp_clock", "tc_ok"):
        assert broken(obj, program, "netdevsim") == []


def test_message_names_instruction_source_line_and_rule():
    obj = spec("offload_bad")
    with pytest.raises(OffloadRejected) as err:
        check_object(obj, target("nfp"), programs=["xdp_store"])
    v = err.value.violations[0]
    assert v.rule is R.MAP_VALUE_STORE
    assert v.instruction == "*(u64 *)(r0 +0) = r2"
    file, line, _col, text = v.source
    assert file.endswith("offload_bad.bpf.c")
    assert text == "*count = ctx->data_end - ctx->data;"
    with open(os.path.join(FIXTURES, "offload_bad.bpf.c")) as f:
        assert f.read().splitlines()[line - 1].strip() == text
    message = str(err.value)
    assert f"insn {v.index} `*(u64 *)(r0 +0) = r2`" in message
    assert f"offload_bad.bpf.c:{line}: `{text}`" in message
    assert "[rule: no direct stores into map values" in message


def test_clock_helper_is_named():
    obj = spec("offload_bad")
    (v,) = check_program(obj.programs["xdp_clock"], obj.maps, target("nfp"))
    assert "calls bpf_ktime_get_ns, which nfp does not implement" in v.detail
    assert v.source[3] == "__u64 now = bpf_ktime_get_ns();"
