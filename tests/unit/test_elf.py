"""xnf's ELF reader on every committed fixture: programs, maps, global data, ``.kconfig``
layout, resolved relocations (maps, data at an offset, calls, callbacks), line info;
and bad input (truncated, not BPF, not ELF, empty, unknown section, corrupt BTF), each a
typed error with a one-line message. No privileges: nothing is loaded.
"""
import glob
import os
import shutil
import struct

import pytest
from elftools.elf.elffile import ELFFile

import xnf
from xnf.core import uapi as u
from xnf.core.errors import BTFError, ELFError, NotSupportedError, SectionError, XnfError
from xnf.core.object import insn as I
from xnf.core.object.elf import load_spec
from xnf.core.object.spec import PIN_BY_NAME

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "tests", "bpf")
ALL = sorted(glob.glob(os.path.join(BPF_DIR, "*.bpf.o")))
REFUSED_AT_PARSE = {"unknown_section"}


def obj(name):
    return os.path.join(BPF_DIR, name + ".bpf.o")


def one_line(err):
    text = str(err)
    assert text and "\n" not in text, repr(text)
    return text


# --- every fixture --------------------------------------------------------------------

@pytest.mark.parametrize("path", ALL, ids=os.path.basename)
def test_every_fixture_parses(path):
    name = os.path.basename(path)[:-len(".bpf.o")]
    if name in REFUSED_AT_PARSE:
        with pytest.raises(SectionError):
            load_spec(path)
        return
    spec = load_spec(path)
    assert spec.programs, name
    for prog in spec.programs.values():
        assert prog.instructions and prog.instructions[-1].is_exit or any(i.is_exit for i in prog.instructions)
        # every reference is resolved to a map or a data section of the object; calls are linked
        for ins in prog.instructions:
            ref = ins.reference
            if ref is None:
                continue
            if ref[0] in ("ksym", "kfunc"):  # left to the loader: resolved from the running kernel
                assert ref[1] in spec.externs and ins.is_call == (ref[0] == "kfunc"), (name, prog.name, ref)
                continue
            assert ref[0] in ("map", "data"), (name, prog.name, ref)
            assert ins.is_lddw
            assert ref[1] in spec.maps, (name, prog.name, ref)
            if ref[0] == "data":
                assert 0 <= ref[2] < spec.maps[ref[1]].value_size
        _check_calls_land_on_functions(prog)
        for m in spec.maps.values():
            assert m.key_size >= 0 and m.value_size >= 0


def _check_calls_land_on_functions(prog):
    """bpf-to-bpf calls and callback loads point at the first slot of a function (func_info)."""
    starts = {fi.insn_off for fi in prog.func_info}
    assert 0 in starts
    slot = 0
    for ins in prog.instructions:
        if ins.is_bpf_to_bpf_call or (ins.is_lddw and ins.src == I.BPF_PSEUDO_FUNC):
            target = slot + 1 + (ins.imm if not ins.is_lddw else _s32(ins.imm))
            assert target in starts, (prog.name, slot, str(ins))
        slot += ins.slots


def _s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def test_license_and_version():
    assert load_spec(obj("xdp_counter")).license == "GPL"
    assert load_spec(obj("no_license_gpl_helper")).license == ""
    assert load_spec(obj("sections")).kern_version == 1
    spec = load_spec(obj("xdp_counter"))
    assert all(p.license == "GPL" for p in spec.programs.values())


def test_several_programs_per_section():
    spec = load_spec(obj("tc_counter"))
    assert [n for n, p in spec.programs.items() if p.section == "tc"] == ["tc_count", "set_priority", "set_classid"]
    assert spec.programs["tcx_ingress_count"].expected_attach_type == u.BPF_TCX_INGRESS
    assert spec.programs["cls_count"].type == u.BPF_PROG_TYPE_SCHED_CLS


def test_btf_maps():
    spec = load_spec(obj("xdp_counter"))
    pkt, proto = spec.maps["pkt_count"], spec.maps["proto_count"]
    assert (pkt.type, pkt.key_size, pkt.value_size, pkt.max_entries) == (u.BPF_MAP_TYPE_ARRAY, 4, 8, 1)
    assert (proto.type, proto.max_entries) == (u.BPF_MAP_TYPE_HASH, 256)
    assert spec.btf.type_name(pkt.btf_key_type_id) in ("__u32", "u32", "unsigned int")
    assert spec.btf.size_of(pkt.btf_value_type_id) == 8


def test_map_definition_fields():
    spec = load_spec(obj("map_defs"))
    bloom, sized, lru = spec.maps["bloom"], spec.maps["sized_map"], spec.maps["lru_map"]
    assert (bloom.type, bloom.key_size, bloom.value_size, bloom.map_extra) == (u.BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 3)
    assert (sized.key_size, sized.value_size, sized.flags, sized.numa_node) == (4, 8, 0x5, 0)
    assert not sized.btf_key_type_id and not sized.btf_value_type_id  # sizes, not types
    assert (lru.type, lru.flags) == (u.BPF_MAP_TYPE_LRU_HASH, 0x2)


def test_pinning_attribute():
    m = load_spec(obj("pin_by_name")).maps["xnf_pinned_cnt"]
    assert m.pinning == PIN_BY_NAME and m.pin_path is None
    assert load_spec(obj("pin_by_name_incompat")).maps["xnf_pinned_cnt"].value_size == 4


def test_map_in_map_and_prog_array_values():
    spec = load_spec(obj("map_in_map"))
    outer, outer_h = spec.maps["outer_arr"], spec.maps["outer_hash"]
    assert outer.type == u.BPF_MAP_TYPE_ARRAY_OF_MAPS and outer.value_size == 4
    assert outer.contents == [(0, "inner_a"), (1, "inner_b")]
    assert outer_h.contents == [(1, "inner_b")]
    assert (outer.inner.type, outer.inner.key_size, outer.inner.value_size) == (u.BPF_MAP_TYPE_ARRAY, 4, 4)
    tail = load_spec(obj("tail_call")).maps["jmp_table"]
    assert tail.type == u.BPF_MAP_TYPE_PROG_ARRAY and tail.inner is None
    assert tail.contents == [(0, "tail_drop"), (2, "tail_tx")]


def test_legacy_maps():
    spec = load_spec(obj("legacy_maps"))
    m = spec.maps["legacy_proto"]
    assert (m.section, m.type, m.key_size, m.value_size, m.max_entries, m.flags) == \
        ("maps", u.BPF_MAP_TYPE_HASH, 4, 8, 64, 1)
    spec = load_spec(obj("legacy_iproute2"))
    m = spec.maps["ipr_len"]
    assert (m.type, m.max_entries, len(m.extra)) == (u.BPF_MAP_TYPE_HASH, 32, 16)


def test_global_data_sections():
    spec = load_spec(obj("global_data"))
    assert {".rodata", ".data", ".bss", ".data.custom", ".rodata.custom"} <= set(spec.maps)
    ro, data, bss = spec.maps[".rodata"], spec.maps[".data"], spec.maps[".bss"]
    assert ro.freeze and ro.flags & 0x80 and not data.freeze       # BPF_F_RDONLY_PROG
    assert data.flags & 0x400                                        # BPF_F_MMAPABLE
    assert bytes(bss.data) == bytes(bss.value_size)
    assert spec.variables["counter"] == 100 and spec.variables["data_array"] == [1, 2, 3, 4]
    assert spec.rodata["cfg_verdict"] == 2 and spec.rodata["cfg_scale"] == 1
    assert spec.variables["custom_data"] == 7 and spec.rodata["custom_ro"] == 11
    assert "counter" not in spec.rodata and "counter" in spec.variables
    assert set(spec.rodata.keys()) == {"cfg_verdict", "cfg_scale", "custom_ro"}
    with pytest.raises(KeyError):
        spec.rodata["no_such_var"]


def test_rodata_edit_changes_the_bytes():
    spec = load_spec(obj("global_data"))
    before = bytes(spec.maps[".rodata"].data)
    spec.rodata["cfg_verdict"] = 1
    spec.rodata["cfg_scale"] = 2**40
    assert spec.rodata["cfg_verdict"] == 1 and spec.rodata["cfg_scale"] == 2**40
    after = bytes(spec.maps[".rodata"].data)
    assert after != before and len(after) == len(before)
    with pytest.raises(XnfError, match="does not fit"):
        spec.rodata["cfg_verdict"] = 2**33


def test_data_references_at_an_offset():
    spec = load_spec(obj("subprog"))
    with open(obj("subprog"), "rb") as f:
        elf = ELFFile(f)
        offsets = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()
                   if s["st_info"]["type"] == "STT_OBJECT" and elf.get_section(s["st_shndx"]).name == ".bss"}
    refs = {ins.reference[2] for p in spec.programs.values() for ins in p.instructions
            if ins.reference and ins.reference[0] == "data"}
    assert {offsets["res_add"], offsets["res_mul"], offsets["res_b"]} <= refs
    assert offsets["sub_stats"] in refs and offsets["res_mul"] != 0    # not at the section start


def test_subprograms_and_callback():
    spec = load_spec(obj("subprog"))
    assert {"global_mul", "static_add", "bump", "loop_step"} <= set(spec.functions)
    assert not spec.functions["global_mul"].is_program and spec.functions["sub_a"].is_program
    loop = spec.programs["sub_loop"]
    callbacks = [i for i in loop.instructions if i.is_lddw and i.src == I.BPF_PSEUDO_FUNC]
    assert len(callbacks) == 1
    assert any(i.is_helper_call and i.imm == u.BPF_FUNC_loop for i in loop.instructions)
    funcs = {spec.btf[fi.type_id].name for fi in loop.func_info}
    assert {"sub_loop", "loop_step"} <= funcs
    # a subprogram shared by programs of two sections is appended to each
    assert "bump" in {spec.btf[fi.type_id].name for fi in spec.programs["sub_tc"].func_info}
    assert "bump" in {spec.btf[fi.type_id].name for fi in spec.programs["sub_a"].func_info}


def test_kconfig_layout():
    spec = load_spec(obj("kconfig"))
    assert set(spec.kconfig) == {"LINUX_KERNEL_VERSION", "CONFIG_HZ", "CONFIG_BPF_SYSCALL",
                                 "CONFIG_XNF_NO_SUCH_OPTION"}
    slots = sorted((off, size) for off, size, _ in spec.kconfig.values())
    for (off, size) in slots:
        assert off % min(size, 8) == 0
    for (a, sa), (b, _) in zip(slots, slots[1:]):
        assert a + sa <= b                                        # no overlap
    kc = spec.maps[".kconfig"]
    assert kc.freeze and kc.value_size >= slots[-1][0] + slots[-1][1]
    refs = [i.reference for p in spec.programs.values() for i in p.instructions
            if i.reference and i.reference[1] == ".kconfig"]
    assert {r[2] for r in refs} <= {off for off, _ in slots}


def test_source_line():
    spec = load_spec(obj("verifier_reject"))
    prog = spec.programs["verifier_reject_prog"]
    lines = [prog.source_line(i) for i in range(len(prog.instructions))]
    assert all(line is not None for line in lines)
    file, _line, _col, _text = lines[0]
    assert file.endswith("verifier_reject.bpf.c") and not file.startswith("/")
    assert any("ip->daddr" in text for _f, _l, _c, text in lines)
    assert prog.source_line(-1) is None


def test_spec_owns_no_fds_and_copies_deeply():
    spec = load_spec(obj("global_data"))
    copy = spec.copy()
    copy.rodata["cfg_verdict"] = 1
    assert spec.rodata["cfg_verdict"] == 2
    m = spec.maps[".data"].copy()
    m.max_entries = 9
    assert spec.maps[".data"].max_entries == 1


def test_open_object_is_load_spec():
    assert set(xnf.open_object(obj("xdp_counter")).programs) == {"xdp_count"}


# --- bad input ------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(ELFError, match="cannot read"):
        load_spec(str(tmp_path / "nope.bpf.o"))


def test_empty_file(tmp_path):
    p = tmp_path / "empty.o"
    p.write_bytes(b"")
    with pytest.raises(ELFError) as e:
        load_spec(str(p))
    assert "not an ELF" in one_line(e.value)


def test_text_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, this is not an object\n" * 10)
    with pytest.raises(ELFError) as e:
        load_spec(str(p))
    assert "not an ELF" in one_line(e.value)


def test_host_executable():
    exe = shutil.which("true") or "/bin/true"
    with pytest.raises(ELFError) as e:
        load_spec(exe)
    msg = one_line(e.value)
    assert "not BPF" in msg and "clang -target bpf" in msg


@pytest.mark.parametrize("cut", [4, 16, 63, 64, 200, 1000, -200, -1])
def test_truncated(tmp_path, cut):
    data = open(obj("xdp_counter"), "rb").read()
    p = tmp_path / "cut.bpf.o"
    p.write_bytes(data[:cut])
    with pytest.raises(ELFError) as e:
        load_spec(str(p))
    one_line(e.value)


def test_unknown_section():
    with pytest.raises(SectionError) as e:
        load_spec(obj("unknown_section"))
    assert "'bogus/foo'" in one_line(e.value)


def _section_offset(data, name):
    import io

    elf = ELFFile(io.BytesIO(data))
    s = elf.get_section_by_name(name)
    return s["sh_offset"], s["sh_size"]


def test_corrupt_btf_section_is_a_typed_error(tmp_path):
    data = bytearray(open(obj("xdp_counter"), "rb").read())
    off, size = _section_offset(bytes(data), ".BTF")
    struct.pack_into("<I", data, off + 8, 0x7FFFFFF)              # type_off far past the end
    p = tmp_path / "badbtf.bpf.o"
    p.write_bytes(bytes(data))
    with pytest.raises((BTFError, ELFError)) as e:
        load_spec(str(p))
    one_line(e.value)


def test_stripped_object_is_refused(tmp_path):
    """No symbol table: nothing names programs or maps."""
    objcopy = shutil.which("llvm-objcopy") or shutil.which("llvm-objcopy-14")
    if objcopy is None:
        pytest.skip("llvm-objcopy not installed (needed to strip the fixture)")
    import subprocess

    p = tmp_path / "stripped.bpf.o"
    subprocess.run([objcopy, "--strip-all", obj("xdp_counter"), str(p)], check=True)
    with pytest.raises(ELFError) as e:
        load_spec(str(p))
    one_line(e.value)


def test_core_relocations_are_kept_for_the_loader_to_refuse():
    spec = load_spec(obj("core_relo"))
    assert spec.programs["core_prog"].core_relos


def test_errors_are_xnf_errors():
    for cls in (ELFError, SectionError, BTFError, NotSupportedError):
        assert issubclass(cls, XnfError)


# --- fuzzing ---------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FUZZ_BASES = {name: open(obj(name), "rb").read() for name in ("xdp_counter", "subprog", "global_data")}


def _structural_ranges(data):
    """Byte ranges that describe the object (headers, symbols, relocations, BTF, map
    definitions) rather than code: corruption there exercises the reader's checks."""
    import io

    elf = ELFFile(io.BytesIO(data))
    ranges = [(0, 64), (elf["e_shoff"], elf["e_shoff"] + elf["e_shnum"] * elf["e_shentsize"])]
    for sec in elf.iter_sections():
        if sec["sh_type"] in ("SHT_SYMTAB", "SHT_REL", "SHT_STRTAB") or sec.name in (".BTF", ".BTF.ext", ".maps"):
            ranges.append((sec["sh_offset"], sec["sh_offset"] + sec["sh_size"]))
    return [(a, b) for a, b in ranges if b > a]


_FUZZ_RANGES = {name: _structural_ranges(data) for name, data in _FUZZ_BASES.items()}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(_FUZZ_BASES)), st.data())
def test_corrupted_objects_raise_typed_errors_only(tmp_path_factory, name, data):
    """Any corruption of a good object either still parses or raises an XnfError with a
    one-line message: never an IndexError, KeyError, struct.error or other internal
    exception (which the CLI would report as an internal error)."""
    raw = bytearray(_FUZZ_BASES[name])
    for _ in range(data.draw(st.integers(1, 6), label="flips")):
        lo, hi = data.draw(st.sampled_from(_FUZZ_RANGES[name] + [(0, len(raw))]), label="range")
        pos = data.draw(st.integers(lo, hi - 1), label="pos")
        raw[pos] = data.draw(st.integers(0, 255), label="byte")
    p = tmp_path_factory.mktemp("fuzz") / "f.bpf.o"
    p.write_bytes(bytes(raw))
    try:
        load_spec(str(p))
    except XnfError as e:
        one_line(e)


def test_btf_type_cycle_is_an_error_not_a_hang(tmp_path):
    """A typedef that names itself (a corrupt object) must raise, not loop forever."""
    import subprocess
    import sys

    data = bytearray(open(obj("xdp_counter"), "rb").read())
    off, size = _section_offset(bytes(data), ".BTF")
    record = struct.pack("<II", 8 << 24, 9)          # TYPEDEF __u32 -> [9] unsigned int, type id 8
    at = bytes(data).find(record, off, off + size)
    assert at > 0
    struct.pack_into("<I", data, at + 4, 8)          # now __u32 -> [8] itself
    p = tmp_path / "cycle.bpf.o"
    p.write_bytes(bytes(data))
    code = ("import sys\nfrom xnf.core.object.elf import load_spec\nfrom xnf.core.errors import XnfError\n"
            f"try:\n    load_spec({str(p)!r})\nexcept XnfError as e:\n    print(type(e).__name__, e)\n    sys.exit(3)\n")
    try:
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, PYTHONPATH=ROOT))
    except subprocess.TimeoutExpired:
        pytest.fail("load_spec did not return within 30 s on a BTF type cycle")
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr[-500:])
