"""The offload checker on hand-written instruction sequences (no kernel needed)."""
import pytest

from xnf.core import uapi
from xnf.core.object.btf import LineInfo
from xnf.core.object.spec import MapSpec, ObjectSpec, ProgramSpec
from xnf.offload import rules as R
from xnf.offload.check import OffloadRejected, check_map, check_object, check_program
from xnf.offload.rules import target

from offload_asm import (ADD, FETCH, XCHG, add, addr, atomic, call, call_sub, exit_, ja, jeq, kfunc, ldx, lddw,
                  lddw_data, lddw_map, lookup, mov, movr, st, stx)

XDP, TC = uapi.BPF_PROG_TYPE_XDP, uapi.BPF_PROG_TYPE_SCHED_CLS
NFP, NSIM, GENERIC = target("nfp"), target("netdevsim"), target("generic")


def hash_map(name="counts", **kw):
    return MapSpec(name, uapi.BPF_MAP_TYPE_HASH, 4, 8, kw.pop("max_entries", 2), **kw)


MAPS = {"counts": hash_map(),
        "events": MapSpec("events", uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 0),
        "rb": MapSpec("rb", uapi.BPF_MAP_TYPE_RINGBUF, 0, 0, 4096)}


def prog(insns, type_=XDP, line_info=(), name="p", flags=0):
    return ProgramSpec(name, "xdp" if type_ == XDP else "tc", type_, flags=flags,
                       instructions=list(insns), line_info=list(line_info))


def rules_broken(insns, t=NFP, **kw):
    return [(v.rule, v.index) for v in check_program(prog(insns, **kw), MAPS, t)]


# a counter kept the NFP way: lookup, NULL check, atomic add
COUNTER = lookup("counts") + [jeq(0, 0, 2), mov(1, 1), atomic(8, 0, 0, 1), mov(0, 2), exit_()]


def test_atomic_counter_is_accepted_everywhere():
    for t in (NFP, NSIM, GENERIC):
        assert rules_broken(COUNTER, t) == []


def test_direct_store_into_map_value():
    insns = lookup("counts") + [jeq(0, 0, 1), st(8, 0, 0, 1), mov(0, 2), exit_()]
    # slots: st 0, lddw 1-2, mov 3, add 4, call 5, jeq 6, st 7
    assert rules_broken(insns) == [(R.MAP_VALUE_STORE, 7)]
    assert rules_broken(insns, NSIM) == []


def test_store_through_register_copy_and_offset():
    insns = lookup("counts") + [movr(6, 0), add(6, 4), mov(1, 7), stx(4, 6, 0, 1), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.MAP_VALUE_STORE, 9)]


def test_store_after_spill_and_reload():
    insns = lookup("counts") + [stx(8, 10, -16, 0), mov(0, 0), ldx(8, 3, 10, -16), st(4, 3, 0, 5),
                                mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.MAP_VALUE_STORE, 9)]


def test_overwritten_spill_slot_is_forgotten():
    insns = lookup("counts") + [stx(8, 10, -16, 0), st(4, 10, -12, 0), ldx(8, 3, 10, -16), st(4, 3, 0, 5),
                                mov(0, 2), exit_()]
    assert rules_broken(insns) == []


def test_global_data_is_a_map_value():
    insns = [lddw_data(1, ".bss", 8), st(8, 1, 0, 3), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.MAP_VALUE_STORE, 2)]


@pytest.mark.parametrize("op", [ADD | FETCH, XCHG, 0x40])
def test_only_plain_atomic_add(op):
    insns = lookup("counts") + [jeq(0, 0, 2), mov(1, 1), atomic(8, 0, 0, 1, op), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.ATOMIC_ADD_ONLY, 8)]


def test_atomic_add_on_the_stack():
    insns = [st(8, 10, -8, 0), mov(1, 1), atomic(8, 10, -8, 1), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.ATOMIC_ON_MAP_VALUE, 2)]
    assert rules_broken(insns, NSIM) == []


def test_helper_the_nic_lacks():
    insns = [call(uapi.BPF_FUNC_ktime_get_ns), mov(0, 2), exit_()]
    violations = check_program(prog(insns), MAPS, NFP)
    assert [(v.rule, v.index) for v in violations] == [(R.HELPERS, 0)]
    assert "bpf_ktime_get_ns" in violations[0].detail
    assert rules_broken(insns, NSIM) == []


@pytest.mark.parametrize("flags,ok", [(0xFFFFFFFF, True), (0, False), (3, False)])
def test_perf_event_output_needs_current_cpu(flags, ok):
    insns = [st(8, 10, -8, 7), lddw_map(2, "events"), lddw(3, flags), movr(4, 10), add(4, -8), mov(5, 8),
             call(uapi.BPF_FUNC_perf_event_output), mov(0, 2), exit_()]
    assert rules_broken(insns) == ([] if ok else [(R.PERF_CURRENT_CPU, 8)])


def test_perf_event_output_flags_unknown():
    insns = [ldx(4, 3, 1, 0), lddw_map(2, "events"), call(uapi.BPF_FUNC_perf_event_output), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.PERF_CURRENT_CPU, 3)]


def test_adjust_head_once():
    once = [movr(6, 1), mov(2, -4), call(uapi.BPF_FUNC_xdp_adjust_head), mov(0, 2), exit_()]
    assert rules_broken(once) == []
    twice = [movr(6, 1), mov(2, -4), call(uapi.BPF_FUNC_xdp_adjust_head), movr(1, 6), mov(2, 4),
             call(uapi.BPF_FUNC_xdp_adjust_head), mov(0, 2), exit_()]
    assert rules_broken(twice) == [(R.ADJUST_HEAD_ONCE, 5)]


def test_one_adjust_head_call_reached_twice_is_fine():
    # a loop back to the same call site is still one place
    insns = [movr(6, 1), mov(7, 0), movr(1, 6), mov(2, 0), call(uapi.BPF_FUNC_xdp_adjust_head),
             add(7, 1), jeq(7, 1, -5), mov(0, 2), exit_()]
    assert rules_broken(insns) == []


def test_variable_stack_offset():
    insns = [ldx(4, 3, 1, 0), movr(2, 10), addr(2, 3), st(1, 2, -8, 0), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.STACK_CONSTANT, 3)]
    assert rules_broken(insns, GENERIC) == []


def test_constant_offsets_from_different_paths_are_fine():
    insns = [ldx(4, 3, 1, 0), movr(2, 10), jeq(3, 0, 2), add(2, -8), ja(1), add(2, -16),
             st(8, 2, 0, 0), mov(0, 2), exit_()]
    assert rules_broken(insns) == []


def test_map_key_must_be_on_the_stack():
    insns = lookup("counts") + [jeq(0, 0, 3), movr(2, 0), lddw_map(1, "counts"), call(1), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.STACK_HELPER_ARGS, 10)]


def test_map_key_must_be_aligned():
    insns = [st(4, 10, -6, 0), lddw_map(1, "counts"), movr(2, 10), add(2, -6), call(1), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.STACK_HELPER_ARGS, 5)]


def test_update_value_must_be_on_the_stack_too():
    insns = [st(4, 10, -4, 0), lddw_data(3, ".data"), lddw_map(1, "counts"), movr(2, 10), add(2, -4),
             mov(4, 0), call(uapi.BPF_FUNC_map_update_elem), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.STACK_HELPER_ARGS, 8)]


@pytest.mark.parametrize("code,ok", [(2, True), (4, True), (5, True), (0, False), (1, False), (3, False), (7, False),
                                     (8, True)])
def test_tc_return_codes(code, ok):
    """nfp_bpf_check_exit: TC_ACT_SHOT (2), STOLEN (4), QUEUED (5) or above REDIRECT (7). A
    hand-copied table had QUEUED = 3 (that is TC_ACT_PIPE); the values now come from uapi."""
    insns = [mov(0, code), exit_()]
    assert rules_broken(insns, type_=TC) == ([] if ok else [(R.TC_RETURN, 1)])
    assert rules_broken(insns, type_=XDP) == []


def test_tc_return_code_not_constant():
    assert rules_broken([ldx(4, 0, 1, 0), exit_()], type_=TC) == [(R.TC_RETURN, 1)]


def test_subprogram_checked_with_callers_arguments():
    # main: r1 = map value; call sub; r0 = TC_ACT_SHOT; exit
    # sub (slot 10): *(u32 *)(r1 + 0) = 1; r0 = 0; exit   (its return is not the program's)
    # slots: 0 st, 1-2 lddw, 3 mov, 4 add, 5 call, 6 jeq, 7 mov, 8 call sub, 9 mov, 10 exit; sub at 11
    main = lookup("counts") + [jeq(0, 0, 2), movr(1, 0), call_sub(2), mov(0, 2), exit_()]
    sub = [st(4, 1, 0, 1), mov(0, 0), exit_()]
    assert rules_broken(main + sub, type_=TC) == [(R.MAP_VALUE_STORE, 11)]


def test_kfunc_call():
    insns = [kfunc(12345), mov(0, 2), exit_()]
    assert rules_broken(insns) == [(R.KFUNC, 0)]
    assert rules_broken(insns, NSIM) == []


def test_program_type_and_flags():
    v = check_program(prog([mov(0, 0), exit_()], type_=uapi.BPF_PROG_TYPE_KPROBE), MAPS, NSIM)
    assert [x.rule for x in v] == [R.PROG_TYPE]
    v = check_program(prog([mov(0, 2), exit_()], flags=1 << 5), MAPS, NSIM)
    assert [x.rule for x in v] == [R.PROG_FLAGS]


def test_map_rules():
    assert check_map(MAPS["events"], NFP) == []  # offload-neutral
    assert [v.rule for v in check_map(MAPS["rb"], NSIM)] == [R.MAP_TYPE]
    assert [v.rule for v in check_map(hash_map(flags=1), NFP)] == [R.MAP_FLAGS]
    assert [v.rule for v in check_map(hash_map(max_entries=3), NSIM)] == [R.MAX_ENTRIES]
    assert check_map(hash_map(max_entries=1024), NFP) == []
    bss = MapSpec(".bss", uapi.BPF_MAP_TYPE_ARRAY, 4, 16, 1, flags=1 << 10, data=bytearray(16))
    (v,) = check_map(bss, NFP)
    assert v.rule is R.MAP_FLAGS and "global data" in v.detail


def test_map_problem_names_the_instruction_that_uses_it():
    insns = [lddw_map(1, "rb"), mov(2, 8), mov(3, 0), call(uapi.BPF_FUNC_ringbuf_output), mov(0, 2), exit_()]
    v = [x for x in check_program(prog(insns), MAPS, NSIM) if x.rule is R.MAP_TYPE]
    assert len(v) == 1 and v[0].index == 0 and v[0].map == "rb"
    assert v[0].instruction.startswith("r1 = ")


def test_rejection_names_instruction_source_line_and_rule():
    li = [LineInfo(0, "count.bpf.c", "int k = 0;", 10, 2, 0, 0),
          LineInfo(7, "count.bpf.c", "    v->hits = 1;", 14, 5, 0, 0)]
    insns = lookup("counts") + [jeq(0, 0, 1), st(8, 0, 0, 1), mov(0, 2), exit_()]
    spec = ObjectSpec("count.bpf.o", programs={"count": prog(insns, line_info=li, name="count")},
                      maps={"counts": hash_map()})
    with pytest.raises(OffloadRejected) as err:
        check_object(spec, NFP)
    text = str(err.value)
    assert "cannot offload to nfp" in text
    assert "program 'count'" in text
    assert "insn 7 `*(u64 *)(r0 +0) = 1`" in text
    assert "count.bpf.c:14: `v->hits = 1;`" in text
    assert "rule: no direct stores into map values" in text
    assert "bpf_map_update_elem" in err.value.hint
    assert err.value.rule is R.MAP_VALUE_STORE


def test_check_object_reports_unreferenced_maps_and_counts_problems():
    spec = ObjectSpec("x.bpf.o", programs={"p": prog(COUNTER)},
                      maps={"counts": hash_map(), "rb": MAPS["rb"], "big": hash_map("big", max_entries=64)})
    with pytest.raises(OffloadRejected) as err:
        check_object(spec, NSIM)
    assert [v.map for v in err.value.violations] == ["rb", "big"]
    assert "(and 1 more problem)" in str(err.value)
    clean = ObjectSpec("y.bpf.o", programs={"p": prog(COUNTER)}, maps={"counts": hash_map()})
    assert check_object(clean, NFP) is None


def test_unknown_target():
    from xnf.core.errors import PluginError

    with pytest.raises(PluginError, match="known targets: generic, netdevsim, nfp"):
        target("acme")
