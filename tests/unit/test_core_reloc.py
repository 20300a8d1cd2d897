"""CO-RE relocation without the kernel: hand-made local and target BTF for each rule of
libbpf's relo_core.c (flavours, field matching, bitfields, enums, type matches, poisoning,
ambiguity, instruction patching), the fixtures against /sys/kernel/btf/vmlinux (readable
unprivileged), BTF files and split (module) BTF, and ``xnf prog core``.
"""
import os
import struct
import subprocess
import sys

import pytest

import xnf
from xnf.core.errors import VerifierError
from xnf.core.object import btf as B
from xnf.core.object import core_reloc as C
from xnf.core.object import insn as I
from xnf.core.object.btf import CoreRelo
from xnf.core.object.spec import ProgramSpec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VMLINUX = "/sys/kernel/btf/vmlinux"


def obj(name):
    return os.path.join(ROOT, "tests", "bpf", name + ".bpf.o")


# --- building BTF by hand --------------------------------------------------------------------

def INT(name="int", size=4, signed=True):
    return B.Type(B.KIND_INT, name, size=size, int_encoding=B.INT_SIGNED if signed else 0, int_bits=size * 8)


def STRUCT(name, size, *members, union=False):
    """members: (name, type id, bit offset[, bitfield size])."""
    kflag = any(len(m) > 3 and m[3] for m in members)
    return B.Type(B.KIND_UNION if union else B.KIND_STRUCT, name, size=size, kind_flag=kflag,
                  members=[(m[0], m[1], m[2], m[3] if len(m) > 3 else 0) for m in members])


def ARRAY(elem, n):
    return B.Type(B.KIND_ARRAY, array=(elem, 1, n))


def ENUM(name, *values, size=4, signed=False):
    return B.Type(B.KIND_ENUM, name, size=size, kind_flag=signed, members=list(values))


def PTR(to):
    return B.Type(B.KIND_PTR, type=to)


def btf(*types):
    return B.BTF([B.VOID, *types])


def resolve(local, target, type_id, access, kind):
    return C.Relocator(local, target).resolve(CoreRelo(0, type_id, access, kind))


def value(local, target, type_id, access, kind):
    r = resolve(local, target, type_id, access, kind).result
    return "poison" if r.poison else r.new_val


def program(*insns, relos=()):
    return ProgramSpec(name="p", section="raw_tp/x", type=17, instructions=list(insns), core_relos=list(relos))


# --- names -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,essential", [
    ("task_struct", "task_struct"), ("task_struct___v2", "task_struct"), ("a___b___c", "a___b"),
    ("foo___", "foo___"), ("___foo", "___foo"), ("foo____bar", "foo____bar"), ("x___1", "x"), ("", ""),
])
def test_essential_name(name, essential):
    assert C.essential_name(name) == essential


# --- fields ------------------------------------------------------------------------------------

LOCAL = btf(INT(), INT("unsigned int", signed=False),
            STRUCT("foo___mine", 8, ("a", 1, 0), ("b", 1, 32)))          # [3]
TARGET = btf(INT(), INT("long", 8), STRUCT("foo", 16, ("pad", 2, 0), ("b", 1, 64), ("a", 1, 96)))


def test_field_offset_follows_the_field_by_name_across_flavours():
    assert value(LOCAL, TARGET, 3, "0:1", C.FIELD_BYTE_OFFSET) == 8
    assert value(LOCAL, TARGET, 3, "0:0", C.FIELD_BYTE_OFFSET) == 12
    assert value(LOCAL, TARGET, 3, "0:1", C.FIELD_BYTE_SIZE) == 4
    assert value(LOCAL, TARGET, 3, "0:1", C.FIELD_EXISTS) == 1
    assert value(LOCAL, TARGET, 3, "0:1", C.FIELD_SIGNED) == 1
    res = resolve(LOCAL, TARGET, 3, "0:1", C.FIELD_BYTE_OFFSET)
    assert res.target.describe() == "[3] struct foo.b (0:1 @ offset 8)"
    assert res.local.describe() == "[3] struct foo___mine.b (0:1 @ offset 4)"


def test_missing_field_poisons_reads_and_exists_is_zero():
    target = btf(INT(), STRUCT("foo", 4, ("a", 1, 0)))
    assert value(LOCAL, target, 3, "0:1", C.FIELD_EXISTS) == 0
    res = resolve(LOCAL, target, 3, "0:1", C.FIELD_BYTE_OFFSET)
    assert res.result.poison and "no struct foo in the target has a compatible field .b" in res.reason
    assert "the target has no struct foo" in resolve(LOCAL, btf(INT()), 3, "0:1", C.FIELD_BYTE_OFFSET).reason


def test_field_of_incompatible_kind_does_not_match():
    target = btf(INT(), STRUCT("foo", 16, ("a", 1, 0), ("b", 3, 64)), STRUCT("bar", 4, ("x", 1, 0)))
    assert value(LOCAL, target, 3, "0:1", C.FIELD_EXISTS) == 0  # int against a struct


def test_anonymous_members_are_searched():
    local = btf(INT(), STRUCT("foo", 4, ("y", 1, 0)))
    target = btf(INT(), STRUCT("", 4, ("y", 1, 0), union=True), STRUCT("foo", 8, ("x", 1, 0), ("", 2, 32)))
    res = resolve(local, target, 2, "0:0", C.FIELD_BYTE_OFFSET)
    assert res.result.new_val == 4 and res.target.raw == [0, 1, 0]


def test_array_index_bounds_and_flexible_arrays():
    local = btf(INT(), ARRAY(1, 4), STRUCT("foo", 16, ("arr", 2, 0)))
    assert value(local, btf(INT(), ARRAY(1, 4), STRUCT("foo", 20, ("pad", 1, 0), ("arr", 2, 32))),
                 3, "0:0:2", C.FIELD_BYTE_OFFSET) == 12
    short = btf(INT(), ARRAY(1, 2), STRUCT("foo", 8, ("arr", 2, 0)))
    assert value(local, short, 3, "0:0:2", C.FIELD_BYTE_OFFSET) == "poison"
    flex = btf(INT(), ARRAY(1, 0), STRUCT("foo", 4, ("n", 1, 0), ("arr", 2, 32)))
    assert value(local, flex, 3, "0:0:2", C.FIELD_BYTE_OFFSET) == 12
    assert value(local, flex, 3, "0:0:2", C.FIELD_BYTE_SIZE) == 4


@pytest.mark.parametrize("bit_off,sizes", [
    (37, dict(off=4, size=4, lshift=56, rshift=61)),    # within one u32
    (30, dict(off=0, size=8, lshift=31, rshift=61)),    # straddles a u32 boundary: a u64 load
])
def test_bitfield_load_size_and_shifts(bit_off, sizes):
    local = btf(INT("unsigned int", signed=False), STRUCT("bf", 4, ("f", 1, 5, 3)))
    target = btf(INT("unsigned int", signed=False), STRUCT("bf", 8, ("f", 1, bit_off, 3)))
    got = {k: value(local, target, 2, "0:0", kind) for k, kind in (
        ("off", C.FIELD_BYTE_OFFSET), ("size", C.FIELD_BYTE_SIZE), ("lshift", C.FIELD_LSHIFT_U64),
        ("rshift", C.FIELD_RSHIFT_U64))}
    assert got == sizes
    assert value(local, target, 2, "0:0", C.FIELD_SIGNED) == 0
    assert not resolve(local, target, 2, "0:0", C.FIELD_BYTE_OFFSET).result.validate  # bitfields: no check


def test_bitfield_beyond_a_u64_load_is_an_error():
    local = btf(INT("unsigned long", 8, signed=False), STRUCT("bf", 8, ("f", 1, 0, 3)))
    target = btf(INT("unsigned long", 8, signed=False), STRUCT("bf", 16, ("f", 1, 62, 3)))
    with pytest.raises(C.CoreRelocationError, match="64-bit load"):
        resolve(local, target, 2, "0:0", C.FIELD_BYTE_OFFSET)


def test_flavours_that_agree_are_fine_and_disagreeing_ones_are_ambiguous():
    same = btf(INT(), STRUCT("foo", 8, ("a", 1, 0), ("b", 1, 32)), STRUCT("foo___2", 8, ("b", 1, 32)))
    assert value(LOCAL, same, 3, "0:1", C.FIELD_BYTE_OFFSET) == 4
    differ = btf(INT(), STRUCT("foo", 8, ("b", 1, 0)), STRUCT("foo___2", 8, ("b", 1, 32)))
    with pytest.raises(C.CoreRelocationError, match="field offset ambiguity"):
        resolve(LOCAL, differ, 3, "0:1", C.FIELD_BYTE_OFFSET)
    sizes = btf(INT(), INT("long", 8), STRUCT("foo", 8, ("b", 1, 0)), STRUCT("foo___2", 8, ("b", 2, 0)))
    with pytest.raises(C.CoreRelocationError, match="decision ambiguity"):
        resolve(LOCAL, sizes, 3, "0:1", C.FIELD_BYTE_SIZE)


def test_candidates_narrow_as_relocations_match():
    """A candidate that failed one relocation of a type is not considered for the next (libbpf's cache)."""
    target = btf(INT(), STRUCT("foo", 8, ("a", 1, 0), ("b", 1, 32)), STRUCT("foo___2", 4, ("a", 1, 0)))
    r = C.Relocator(LOCAL, target)
    assert r.resolve(CoreRelo(0, 3, "0:1", C.FIELD_BYTE_OFFSET)).result.new_val == 4
    assert [i for _t, i in r.candidates(3)] == [2]


# --- enums and types ---------------------------------------------------------------------------

ENUM_LOCAL = btf(ENUM("e___mine", ("A___mine", 5), ("B___mine", 6), ("GONE___mine", 7)))
ENUM_TARGET = btf(ENUM("e", ("B", 20), ("A", 10), ("NEG", -1 & 0xFFFFFFFF)))


def test_enum_values_by_name():
    assert value(ENUM_LOCAL, ENUM_TARGET, 1, "0", C.ENUMVAL_VALUE) == 10
    assert value(ENUM_LOCAL, ENUM_TARGET, 1, "1", C.ENUMVAL_VALUE) == 20
    assert value(ENUM_LOCAL, ENUM_TARGET, 1, "2", C.ENUMVAL_EXISTS) == 0
    assert value(ENUM_LOCAL, ENUM_TARGET, 1, "2", C.ENUMVAL_VALUE) == "poison"


def test_enum_value_is_widened_with_its_sign_like_libbpf():
    local = btf(ENUM("e", ("NEG", 3)))
    assert value(local, ENUM_TARGET, 1, "0", C.ENUMVAL_VALUE) == (1 << 64) - 1


def test_type_relocations():
    local = btf(INT(), STRUCT("foo___mine", 8, ("a", 1, 0)), STRUCT("nowhere", 4, ("a", 1, 0)))
    assert value(local, TARGET, 2, "0", C.TYPE_EXISTS) == 1
    assert value(local, TARGET, 2, "0", C.TYPE_SIZE) == 16
    assert value(local, TARGET, 2, "0", C.TYPE_ID_TARGET) == 3
    assert value(local, TARGET, 2, "0", C.TYPE_ID_LOCAL) == 2
    for kind in (C.TYPE_EXISTS, C.TYPE_SIZE, C.TYPE_ID_TARGET, C.TYPE_MATCHES):
        assert value(local, TARGET, 3, "0", kind) == 0  # a missing type reads as 0, never poisoned


@pytest.mark.parametrize("target,matches", [
    (btf(INT(), INT("long", 8), STRUCT("foo", 16, ("a", 1, 0), ("z", 2, 64))), 1),  # extra target members ok
    (btf(INT("unsigned int", signed=False), STRUCT("foo", 4, ("a", 1, 0))), 0),     # signedness differs
    (btf(INT(), STRUCT("foo", 4, ("b", 1, 0))), 0),                                   # member name differs
    (btf(INT(), STRUCT("foo", 4, ("a", 1, 0)), ), 1),
])
def test_type_matches(target, matches):
    local = btf(INT(), STRUCT("foo___x", 4, ("a", 1, 0)))
    assert value(local, target, 2, "0", C.TYPE_MATCHES) == matches


def test_type_matches_behind_pointers_and_enums():
    fwd = B.Type(B.KIND_FWD, "baz")
    local = btf(INT(), STRUCT("baz", 4, ("q", 1, 0)), PTR(2), STRUCT("bar", 8, ("p", 3, 0)),
                ENUM("col", ("RED", 0)))
    target = btf(fwd, PTR(1), STRUCT("bar", 8, ("p", 2, 0)), ENUM("col", ("BLUE", 1), ("RED", 9)))
    assert value(local, target, 4, "0", C.TYPE_MATCHES) == 1   # struct baz * matches a forward-declared baz *
    assert value(local, target, 5, "0", C.TYPE_MATCHES) == 1   # enum: names, not values
    assert value(local, btf(ENUM("col", ("RED", 0), size=8)), 5, "0", C.TYPE_MATCHES) == 0  # size


# --- bad records -------------------------------------------------------------------------------

@pytest.mark.parametrize("type_id,access,kind", [
    (3, "", C.FIELD_BYTE_OFFSET), (3, ":0", C.FIELD_BYTE_OFFSET), (3, "0:x", C.FIELD_BYTE_OFFSET),
    (3, "0:9", C.FIELD_BYTE_OFFSET), (3, "1", C.TYPE_EXISTS), (3, "0:0:1", C.FIELD_BYTE_OFFSET),
    (3, "0", 99),
])
def test_malformed_records_are_errors(type_id, access, kind):
    with pytest.raises(C.CoreRelocationError, match="cannot parse"):
        resolve(LOCAL, TARGET, type_id, access, kind)


def test_anonymous_local_type_is_an_error():
    local = btf(INT(), STRUCT("", 4, ("a", 1, 0)))
    with pytest.raises(C.CoreRelocationError, match="anonymous"):
        resolve(local, TARGET, 2, "0:0", C.FIELD_BYTE_OFFSET)


# --- patching instructions ---------------------------------------------------------------------

def ldx(off, size=I.BPF_W):
    return I.Instruction(I.BPF_LDX | I.BPF_MEM | size, 0, 1, off, 0)


def relocated(local, target, *insns, relos):
    return C.relocate_program(C.Relocator(local, target), program(*insns, relos=relos))


def test_ldx_offset_patched():
    insns, [res] = relocated(LOCAL, TARGET, ldx(4), I.Instruction(I.EXIT),
                             relos=[CoreRelo(0, 3, "0:1", C.FIELD_BYTE_OFFSET)])
    assert (insns[0].off, insns[0].code) == (8, ldx(0).code)
    assert (res.old, res.new, res.poisoned) == (4, 8, False)


def test_ldx_size_follows_an_unsigned_field_but_a_signed_one_is_poisoned():
    local = btf(INT("unsigned int", signed=False), INT(), STRUCT("s", 8, ("u", 1, 0), ("i", 2, 32)))
    target = btf(INT("unsigned long", 8, signed=False), INT("long", 8), STRUCT("s", 16, ("u", 1, 0), ("i", 2, 64)))
    insns, [res] = relocated(local, target, ldx(0), relos=[CoreRelo(0, 3, "0:0", C.FIELD_BYTE_OFFSET)])
    assert insns[0].code == ldx(0, I.BPF_DW).code and not res.poisoned
    insns, [res] = relocated(local, target, ldx(4), relos=[CoreRelo(0, 3, "0:1", C.FIELD_BYTE_OFFSET)])
    assert (insns[0].code, insns[0].imm) == (I.CALL, C.POISON_HELPER_ID)
    assert res.poisoned and "4 to 8 bytes" in res.reason


def test_ldimm64_is_poisoned_in_both_slots():
    lddw = I.Instruction(I.LDDW, 1, 0, 0, 5)
    insns, [res] = relocated(ENUM_LOCAL, ENUM_TARGET, lddw, I.Instruction(I.EXIT),
                             relos=[CoreRelo(0, 1, "2", C.ENUMVAL_VALUE)])
    assert [(i.code, i.imm) for i in insns] == [(I.CALL, C.POISON_HELPER_ID)] * 2 + [(I.EXIT, 0)]
    assert I.slot_count(insns) == 3 and res.poisoned


@pytest.mark.parametrize("ins,message", [
    (I.Instruction(I.BPF_ALU64 | I.BPF_MOV | I.BPF_K, 1, 0, 0, 7), "unexpected value"),   # clang wrote 4, not 7
    (I.Instruction(I.BPF_ALU64 | I.BPF_MOV | I.BPF_X, 1, 2, 0, 0), "register"),
    (I.Instruction(I.BPF_JMP | 0x10, 1, 0, 0, 4), "cannot relocate"),
    (ldx(5), "unexpected offset"),
])
def test_unpatchable_instructions_are_errors_naming_program_and_instruction(ins, message):
    with pytest.raises(C.CoreRelocationError, match=message) as info:
        relocated(LOCAL, TARGET, ins, relos=[CoreRelo(0, 3, "0:1", C.FIELD_BYTE_OFFSET)])
    assert "program 'p' instruction 0" in str(info.value)


def test_offset_beyond_16_bits_is_an_error():
    target = btf(INT(), STRUCT("foo", 0x10000, ("b", 1, 0x8000 * 8)))
    with pytest.raises(C.CoreRelocationError, match="does not fit"):
        relocated(LOCAL, target, ldx(4), relos=[CoreRelo(0, 3, "0:1", C.FIELD_BYTE_OFFSET)])


def test_explain_collects_errors_instead_of_raising():
    _insns, [res] = C.relocate_program(C.Relocator(LOCAL, TARGET), program(
        I.Instruction(I.BPF_ALU64 | I.BPF_MOV | I.BPF_X, 1, 2, 0, 0),
        relos=[CoreRelo(0, 3, "0:1", C.FIELD_BYTE_OFFSET)]), collect_errors=True)
    assert res.error and "register" in res.reason and "ERROR" in res.describe()


# --- the verifier's complaint, mapped back -------------------------------------------------------

def test_verifier_rejection_on_a_poison_call_names_the_relocation():
    target = btf(INT(), STRUCT("foo", 4, ("a", 1, 0)))
    spec = C.RelocatedProgramSpec(name="p", section="raw_tp/x", type=17)
    _insns, spec.core_resolutions = relocated(LOCAL, target, I.Instruction(I.EXIT), ldx(4),
                                              relos=[CoreRelo(1, 3, "0:1", C.FIELD_BYTE_OFFSET)])
    log = "0: (05) goto pc+0\n1: (85) call unknown#195896080\ninvalid func unknown#195896080\n"
    err = C.explain_rejection(VerifierError("p", 22, log), spec)
    assert isinstance(err, C.PoisonedInstructionError) and isinstance(err, VerifierError)
    assert "program 'p' reaches instruction 1" in str(err) and "struct foo___mine.b" in str(err)
    assert err.log == log and err.errno == 22
    other = VerifierError("p", 13, "R1 invalid mem access 'scalar'\n")
    assert C.explain_rejection(other, spec) is other


# --- whole objects -------------------------------------------------------------------------------

def test_relocate_spec_leaves_the_spec_loadable_again():
    spec = xnf.open_object(obj("core_relo"))
    before = [str(i) for i in spec.programs["core_prog"].instructions]
    target = btf(INT(), STRUCT("task_struct", 64, ("x", 1, 0), ("pid", 1, 320)))
    out = C.relocate_spec(spec, target_btf=target)
    assert out is not spec and [str(i) for i in spec.programs["core_prog"].instructions] == before
    assert "r1 = 40" in [str(i) for i in out.programs["core_prog"].instructions]
    plain = xnf.open_object(obj("xdp_counter"))
    assert C.relocate_spec(plain) is plain


def test_relocating_an_object_against_its_own_btf_changes_no_offset():
    """The object is an ELF with .BTF, usable as a target file: each type is its own candidate."""
    for r in C.explain(xnf.open_object(obj("core_kinds")), target_btf=obj("core_kinds")):
        assert not r.error and not r.poisoned, r.describe()
        if r.kind in (C.FIELD_BYTE_OFFSET, C.FIELD_BYTE_SIZE, C.TYPE_SIZE, C.ENUMVAL_VALUE):
            assert r.old == r.new, r.describe()


def test_target_btf_file(tmp_path):
    path = tmp_path / "target.btf"
    path.write_bytes(btf(INT(), STRUCT("task_struct", 64, ("pid", 1, 96))).encode())
    [res] = C.explain(xnf.open_object(obj("core_relo")), target_btf=str(path))
    assert (res.old, res.new, res.target) == (0, 12, f"{path} [2] struct task_struct.pid (0:0 @ offset 12)")
    with pytest.raises(B.BTFError, match="cannot read BTF file"):
        C.explain(xnf.open_object(obj("core_relo")), target_btf=str(tmp_path / "missing"))


needs_vmlinux = pytest.mark.skipif(not os.access(VMLINUX, os.R_OK),
                                   reason="the kernel exposes no BTF (CONFIG_DEBUG_INFO_BTF)")


@needs_vmlinux
def test_fixtures_against_the_running_kernel():
    vmlinux = B.load_vmlinux()
    task_id = vmlinux.find("task_struct", B.KIND_STRUCT)
    pid_off = {m[0]: m[2] for m in vmlinux[task_id].members}["pid"] // 8
    results = {(r.program, r.insn): r for r in C.explain(xnf.open_object(obj("core_kinds")))}
    assert results and not any(r.error for r in results.values())
    by_kind = {}
    for r in results.values():
        by_kind.setdefault(r.kind, []).append(r)
    assert {r.new for r in by_kind[C.TYPE_ID_TARGET]} == {task_id}
    assert {r.new for r in by_kind[C.TYPE_SIZE]} == {vmlinux[task_id].size}
    assert {r.new for r in by_kind[C.ENUMVAL_VALUE]} == {vmlinux.enum_values("bpf_map_type")["BPF_MAP_TYPE_RINGBUF"]}
    assert pid_off in {r.new for r in by_kind[C.FIELD_BYTE_OFFSET]}
    poisoned = [r for r in results.values() if r.poisoned]
    assert len(poisoned) == 1 and "xnf_no_such_field" in poisoned[0].local  # the guarded read only
    assert set(by_kind) == set(range(13)) - {C.TYPE_MATCHES}  # every kind clang 14 can emit


# --- module BTF ----------------------------------------------------------------------------------

def split_btf(base, types_blob, strings):
    """A split BTF blob on top of ``base``: string offsets start after the base's strings."""
    hdr = struct.pack("<HBBIIIII", B.BTF_MAGIC, 1, 0, 24, 0, len(types_blob), len(types_blob), len(strings))
    return hdr + types_blob + strings


def test_module_types_are_candidates_only_when_vmlinux_has_none(tmp_path):
    base = btf(INT(), STRUCT("in_both", 4, ("x", 1, 0)))
    raw_base = base.encode()
    base = B.parse(raw_base)
    s0 = len(base.strings)
    strings = b"modonly\0y\0in_both\0x\0"
    name, y, both, x = s0, s0 + 8, s0 + 10, s0 + 18
    types = (struct.pack("<III", name, (B.KIND_STRUCT << 24) | 1, 8) + struct.pack("<III", y, 1, 32)
             + struct.pack("<III", both, (B.KIND_STRUCT << 24) | 1, 8) + struct.pack("<III", x, 1, 32))
    (tmp_path / "vmlinux").write_bytes(raw_base)
    (tmp_path / "xnfmod").write_bytes(split_btf(base, types, strings))
    local = btf(INT(), STRUCT("modonly___l", 4, ("y", 1, 0)), STRUCT("in_both", 4, ("x", 1, 0)))

    def reloc(type_id):
        r = C.Relocator(local, kernel_btf_dir=str(tmp_path))
        return r.resolve(CoreRelo(0, type_id, "0:0", C.FIELD_BYTE_OFFSET))

    found = reloc(2)
    assert (found.result.new_val, found.target_name, found.target.root_type_id) == (4, "xnfmod", len(base.types))
    assert reloc(3).target_name == "vmlinux" and reloc(3).result.new_val == 0  # the module's copy is not seen


def test_module_btf_cache_is_per_vmlinux_object_not_per_id(tmp_path):
    """A module's BTF parsed on top of one vmlinux is never reused for another, even one given
    the id() of a freed first one: each vmlinux here is made right after the last is freed, so
    CPython hands it the same address. The module file stays the same throughout."""
    import gc

    anonymous_struct = struct.pack("<III", 0, B.KIND_STRUCT << 24, 0)
    (tmp_path / "xnfmod").write_bytes(split_btf(None, anonymous_struct, b""))
    cached, ids = len(C._MODULES), set()
    base = btf(INT())
    for size in range(1, 21):
        (target,) = C.kernel_module_targets(base, str(tmp_path))
        assert (target.start_id, len(target.btf.types)) == (size + 1, size + 2)  # void, the ints, the struct
        ids.add(id(base))
        types = [B.VOID, *[INT(f"i{i}") for i in range(size + 1)]]
        del base, target
        gc.collect()
        assert len(C._MODULES) == cached  # the cache went with its vmlinux
        base = B.BTF(types)
    assert len(ids) < 20  # an address was reused: the case this guards against happened


# --- the command line ----------------------------------------------------------------------------

def xnf_cli(*args):
    return subprocess.run([sys.executable, "-m", "xnf.cli.main", *args], capture_output=True, text=True)


def test_cli_prog_core(tmp_path):
    path = tmp_path / "t.btf"
    path.write_bytes(btf(INT(), STRUCT("task_struct___gone", 16, ("pid", 1, 64))).encode())
    res = xnf_cli("prog", "core", obj("core_poison"), "--target-btf", str(path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert any("core_unguarded insn 1 (core_poison.bpf.c:" in ln and "POISONED" in ln for ln in lines)
    assert any("core_guarded insn 12" in ln and "0 -> 8" in ln for ln in lines)
    assert lines[-1] == "4 relocations: 2 resolved, 2 poisoned (fail only if reached), 0 errors"
    res = xnf_cli("prog", "core", obj("xdp_counter"))
    assert res.returncode == 0 and "no CO-RE relocations" in res.stdout
    res = xnf_cli("prog", "core", obj("core_relo"), "--target-btf", str(tmp_path / "nope"))
    assert res.returncode != 0 and res.stderr.strip().startswith("xnf: error: cannot read BTF file")
    assert len(res.stderr.strip().splitlines()) == 1


def test_malformed_btf_gives_a_typed_error():
    local = btf(STRUCT("z", 0), STRUCT("bf", 4, ("f", 1, 0, 3)))  # a bitfield whose type is an empty struct
    with pytest.raises(C.CoreRelocationError, match="integer type"):
        resolve(local, btf(STRUCT("z", 0), STRUCT("bf", 4, ("f", 1, 0, 3))), 2, "0:0", C.FIELD_LSHIFT_U64)
    dangling = btf(STRUCT("foo", 4, ("a", 9, 0)))  # member type [9] does not exist
    with pytest.raises(C.CoreRelocationError):
        resolve(dangling, dangling, 1, "0:0", C.FIELD_BYTE_OFFSET)


# --- the corpus extractor --------------------------------------------------------------------------

def test_extract_bpf_objects_finds_embedded_images(tmp_path):
    """BPF ELF images inside a host binary are cut out by their own header's size; the host's
    ELF header (not EM_BPF) and stray magic bytes are skipped; an alias is named after its target."""
    with open(obj("core_relo"), "rb") as f:
        first = f.read()
    with open(obj("core_kinds"), "rb") as f:
        second = f.read()
    with open(sys.executable, "rb") as f:
        host = f.read(4096)  # an x86-64 ELF header first, as in a real tool
    tool = tmp_path / "bin" / "mytool"
    tool.parent.mkdir()
    tool.write_bytes(host + b"\x7fELF junk" + first + bytes(13) + second + b"trailer")
    (tmp_path / "bin" / "alias").symlink_to("mytool")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "extract-bpf-objects"), str(out),
                          str(tool.parent)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(out)) == ["mytool.2.bpf.o", "mytool.bpf.o"]
    assert (out / "mytool.bpf.o").read_bytes() == first and (out / "mytool.2.bpf.o").read_bytes() == second
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "extract-bpf-objects"), str(out),
                          sys.executable], capture_output=True, text=True)
    assert res.returncode == 1 and "no BPF object" in res.stderr


def test_kernel_without_btf_is_a_clear_error(tmp_path):
    r = C.Relocator(LOCAL, kernel_btf_dir=str(tmp_path))
    with pytest.raises(C.CoreRelocationError, match="need the kernel's BTF") as info:
        r.resolve(CoreRelo(0, 3, "0:1", C.FIELD_BYTE_OFFSET))
    assert "target_btf=" in str(info.value)
