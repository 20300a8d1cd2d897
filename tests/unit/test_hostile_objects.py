"""Crafted objects (issue 9): each declares something a compiler never emits, and each must
end in a typed error (or a cheap success), never MemoryError, RecursionError, TypeError,
KeyError or struct.error, and never a pin outside the pin root.

Every object is a committed fixture with one field changed (see elf_layout.py).
"""
import os
import tracemalloc

import pytest

from xnf.core.errors import BTFError, ELFError, LinkError, ObjectLimitError, PinError, XnfError
from xnf.core.kernel.loader import Loader
from xnf.core.object import btf as B
from xnf.core.object.elf import MAX_DATA_SECTION, load_spec
from xnf.core.object.spec import PIN_BY_NAME
import elf_layout as L

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fixture_bytes(name):
    with open(os.path.join(ROOT, "tests", "bpf", name + ".bpf.o"), "rb") as f:
        return bytearray(f.read())


def write(tmp_path, data, name="crafted.bpf.o"):
    p = tmp_path / name
    p.write_bytes(bytes(data))
    return str(p)


def one_line(err):
    text = str(err)
    assert text and "\n" not in text, repr(text)
    return text


def with_bss_size(size):
    data = fixture_bytes("global_data")
    bss = L.section(data, ".bss")
    return L.put(data, bss.header_at + 32, 8, size)        # sh_size


class _FakeMap:
    """What Loader._resolve needs of a live map: an fd number and the value size."""

    def __init__(self, spec):
        self.fd = 3
        self.value_size = spec.value_size


# --- a huge .bss ------------------------------------------------------------------------

def test_large_bss_is_not_materialised_at_open(tmp_path):
    """A 7.6 KB object declaring a 256 MiB .bss opens in little memory (it took 3 times the
    declared size before): NOBITS contents are zeros the kernel creates, not bytes we hold."""
    path = write(tmp_path, with_bss_size(256 << 20))
    tracemalloc.start()
    try:
        spec = load_spec(path)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the fixtures open in well under 1 MiB (tests/unit/test_fuzz_objects.py measures them);
    # 8 MiB leaves room for tracemalloc's own accounting and still excludes any 256 MiB buffer
    assert peak < 8 << 20, peak
    bss = spec.maps[".bss"]
    assert bss.value_size == 256 << 20 and len(bss.data) == 256 << 20
    assert spec.variables["bss_runs"] == 0
    assert bss.initial_value() is None                     # nothing to write: the kernel zero-fills


def test_written_bss_is_written_at_load():
    spec = load_spec(os.path.join(ROOT, "tests", "bpf", "global_data.bpf.o"))
    spec.variables["bss_runs"] = 7
    value = spec.maps[".bss"].initial_value()
    assert value is not None and len(value) == spec.maps[".bss"].value_size and any(value)


@pytest.mark.parametrize("size", [MAX_DATA_SECTION + 1, 1 << 30, 1 << 40, (1 << 63) + 5, (1 << 64) - 1])
def test_oversized_bss_is_refused_with_the_limit(tmp_path, size):
    """Sizes past the limit were MemoryError / OverflowError (or 3 GB of memory for 1 GiB)."""
    with pytest.raises(ObjectLimitError) as e:
        load_spec(write(tmp_path, with_bss_size(size)))
    msg = one_line(e.value)
    assert "'.bss'" in msg and str(size) in msg and "512 MiB" in msg and "map" in msg


# --- BTF map definitions ------------------------------------------------------------------

def _retarget_btf_type(data, type_id, new_target):
    """Point BTF type ``type_id`` (a PTR) at ``new_target``."""
    at = L.btf_type_offsets(data)[type_id - 1]
    return L.put(data, at + 8, 4, new_target)


def _map_in_map_ids(data, tmp_path):
    spec = load_spec(write(tmp_path, data, "good.bpf.o"))
    btf = spec.btf
    outer_struct = btf[btf.find("outer_arr", B.KIND_VAR)].type
    values = next(m for m in btf[outer_struct].members if m[0] == "values")
    arr = btf[values[1]]
    return outer_struct, arr.array[0], values[1]


def test_self_referencing_map_in_map_is_refused(tmp_path):
    """outer_arr's values point at outer_arr's own definition: was RecursionError."""
    data = fixture_bytes("map_in_map")
    outer_struct, ptr_id, _arr_id = _map_in_map_ids(data, tmp_path)
    with pytest.raises(ObjectLimitError) as e:
        load_spec(write(tmp_path, _retarget_btf_type(data, ptr_id, outer_struct)))
    assert "map-in-map" in one_line(e.value) and "outer_arr" in str(e.value)


def test_values_that_are_not_an_array_are_a_btf_error(tmp_path):
    """``values`` typed as a struct instead of an array of pointers: was TypeError."""
    data = fixture_bytes("map_in_map")
    outer_struct, _ptr_id, _arr_id = _map_in_map_ids(data, tmp_path)
    spec = load_spec(write(tmp_path, data, "good.bpf.o"))
    # the member record of 'values' in outer_arr's struct: make its type the struct itself
    at = L.btf_type_offsets(data)[outer_struct - 1]
    index = [m[0] for m in spec.btf[outer_struct].members].index("values")
    L.put(data, at + 12 + 12 * index + 4, 4, outer_struct)
    with pytest.raises(BTFError) as e:
        load_spec(write(tmp_path, data))
    assert "'values'" in one_line(e.value) and "outer_arr" in str(e.value)


def test_pointer_cycle_in_a_type_name_is_not_a_recursion_error(tmp_path):
    spec = load_spec(os.path.join(ROOT, "tests", "bpf", "map_in_map.bpf.o"))
    ptr = next(i for i, t in enumerate(spec.btf.types) if t.kind == B.KIND_PTR)
    spec.btf.types[ptr].type = ptr                          # a pointer to itself
    assert spec.btf.type_name(ptr).endswith("*")


# --- relocations and data ------------------------------------------------------------------

def test_variable_offset_beyond_32_bits_is_an_elf_error(tmp_path):
    """A .data variable's symbol at 2**32+8: the BTF encoder hit struct.error at load."""
    data = fixture_bytes("global_data")
    name, at, _shndx, _value = next(s for s in L.symbols(data) if s[0] == "counter")
    L.put(data, at + 8, 8, (1 << 32) + 8)                  # st_value
    with pytest.raises(ELFError) as e:
        load_spec(write(tmp_path, data))
    assert "'counter'" in one_line(e.value) and "past the section" in str(e.value)


def test_reference_into_a_section_without_data_is_refused_at_open(tmp_path):
    """.data.custom turned into a non-data section type: the loader's _resolve raised KeyError."""
    data = fixture_bytes("global_data")
    sec = L.section(data, ".data.custom")
    L.put(data, sec.header_at + 4, 4, 7)                    # sh_type = SHT_NOTE
    with pytest.raises(ELFError) as e:
        load_spec(write(tmp_path, data))
    assert "'.data.custom'" in one_line(e.value)


def test_loader_resolve_names_a_missing_data_map():
    """A spec edited so that a referenced data map is gone: LinkError, not KeyError."""
    spec = load_spec(os.path.join(ROOT, "tests", "bpf", "global_data.bpf.o"))
    loader = Loader(spec)
    loader.maps = {name: _FakeMap(m) for name, m in spec.maps.items() if name != ".bss"}
    with pytest.raises(LinkError) as e:
        loader.program_attr(spec.programs["global_data_prog"])
    assert "'.bss'" in one_line(e.value)


def test_spec_fields_that_overflow_the_kernel_are_refused_before_load():
    spec = load_spec(os.path.join(ROOT, "tests", "bpf", "xdp_counter.bpf.o"))
    spec.maps["proto_count"].max_entries = 1 << 32
    with pytest.raises(XnfError) as e:
        Loader(spec).prepare()
    assert "max_entries" in one_line(e.value) and "proto_count" in str(e.value)


# --- pin paths --------------------------------------------------------------------------------

def _legacy_pinned_as(name):
    """legacy_iproute2 with map 'ipr_count' renamed (in place) and pinned PIN_GLOBAL_NS."""
    data = fixture_bytes("legacy_iproute2")
    sym_name, at, _shndx, value = next(s for s in L.symbols(data) if s[0] == "ipr_count")
    assert len(name) <= len(sym_name)
    strtab = L.sections(data)[next(s for s in L.sections(data) if s.type == 2).link]
    name_off = int.from_bytes(data[at:at + 4], "little")
    start = strtab.offset + name_off
    data[start:start + len(sym_name)] = name.encode().ljust(len(sym_name), b"\0")
    maps = L.section(data, "maps")
    return L.put(data, maps.offset + value + 24, 4, 2)      # bpf_elf_map.pinning = PIN_GLOBAL_NS


def test_legacy_pin_by_name_is_under_tc_globals(tmp_path):
    spec = load_spec(write(tmp_path, _legacy_pinned_as("ipr_count")))
    assert spec.maps["ipr_count"].pin_path == "tc/globals/ipr_count"


@pytest.mark.parametrize("name", ["../evil", "a/../..", "..", "x/y"])
def test_legacy_map_name_that_leaves_the_pin_root_is_refused(tmp_path, name):
    """Was pinned at <pin_root>/tc/globals/../evil, outside tc/globals (or outside the root)."""
    with pytest.raises(ELFError) as e:
        load_spec(write(tmp_path, _legacy_pinned_as(name)))
    assert repr(name) in one_line(e.value) and "pin" in str(e.value)


@pytest.mark.parametrize("name", ["../escape", "a/b", "x\0y"])
def test_loader_refuses_pin_by_name_outside_the_root(name):
    """A spec whose pinned map got such a name: refused in prepare, before any kernel object."""
    spec = load_spec(os.path.join(ROOT, "tests", "bpf", "pin_by_name.bpf.o"))
    m = spec.maps.pop("xnf_pinned_cnt")
    m.name = name
    spec.maps[name] = m
    assert m.pinning == PIN_BY_NAME
    with pytest.raises(PinError) as e:
        Loader(spec, programs=[]).prepare()
    assert repr(name) in one_line(e.value)


def test_relative_pin_path_may_not_climb_out_of_the_root():
    spec = load_spec(os.path.join(ROOT, "tests", "bpf", "pin_by_name.bpf.o"))
    spec.maps["xnf_pinned_cnt"].pin_path = "sub/../../etc"
    with pytest.raises(PinError):
        Loader(spec, programs=[]).prepare()
    spec.maps["xnf_pinned_cnt"].pin_path = "sub/dir/cnt"                # relative, inside: fine
    Loader(spec, programs=[]).prepare()


# --- limits on what linking and strings may cost --------------------------------------------

def test_a_program_longer_than_the_kernel_loads_is_refused_before_it_is_built():
    from xnf.core.object import insn as I
    from xnf.core.object import link
    from xnf.core.object.spec import Function

    body = [I.Instruction(0xB7, 0, 0, 0, 0)] * 10 + [I.Instruction(I.EXIT)]
    functions = {"p": Function("p", "xdp", body, is_program=True)}
    assert len(link.flatten(functions, "p", max_slots=11)[0]) == 11
    with pytest.raises(ObjectLimitError) as e:
        link.flatten(functions, "p", max_slots=10)
    assert "'p'" in one_line(e.value) and "11" in str(e.value)


def test_linked_instructions_of_all_programs_are_bounded(monkeypatch):
    """Each program gets a copy of the subprograms it calls: the total is capped."""
    from xnf.core.object import elf

    path = os.path.join(ROOT, "tests", "bpf", "subprog.bpf.o")
    total = sum(len(p.instructions) for p in load_spec(path).programs.values())
    monkeypatch.setattr(elf, "MAX_LINKED_INSNS", total - 1)
    with pytest.raises(ObjectLimitError) as e:
        load_spec(path)
    assert "instructions in all" in one_line(e.value)


def test_kconfig_layout_is_bounded(monkeypatch):
    from xnf.core.object import elf

    monkeypatch.setattr(elf, "MAX_KCONFIG", 8)
    with pytest.raises(ObjectLimitError) as e:
        load_spec(os.path.join(ROOT, "tests", "bpf", "kconfig.bpf.o"))
    assert "__kconfig" in one_line(e.value)


def test_strings_cost_memory_in_proportion_to_their_table():
    """A thousand offsets into the middle of one long string would decode ~0.5 MB from a
    1 KB table; the reader stops at four times the table plus 64 KiB."""
    table = b"x" * 1000 + b"\0"
    read = B.StringReader(table, "test", limit=2000)
    read.budget = 4 * len(table)                       # as for a table of this size without the 64 KiB
    with pytest.raises(BTFError, match="overlap"):
        for off in range(1000):
            read(off)
    assert B.StringReader(table, "test", limit=2000)(0) == "x" * 1000
    with pytest.raises(BTFError, match="longer than 100"):
        B.StringReader(table, "test", limit=100)(0)
    with pytest.raises(BTFError, match="past the string table"):
        B.StringReader(table, "test")(5000)


def test_btf_member_count_is_checked_before_the_members_are_read():
    """vlen 65535 on the last type: refused from the section's size, not by reading on."""
    spec = load_spec(os.path.join(ROOT, "tests", "bpf", "xdp_counter.bpf.o"))
    raw = bytearray(spec.btf.encode())
    last_struct = max(i for i, t in enumerate(spec.btf.types) if t.kind == B.KIND_STRUCT)
    # find the record: re-encode only the types up to it to learn its offset
    prefix = B.BTF(spec.btf.types[:last_struct], spec.btf.strings).encode()
    at = 24 + (len(prefix) - 24 - int.from_bytes(prefix[20:24], "little"))
    assert int.from_bytes(raw[at + 4:at + 6], "little") == len(spec.btf[last_struct].members)
    L.put(raw, at + 4, 2, 0xFFFF)
    with pytest.raises(BTFError, match="members that end past"):
        B.parse(bytes(raw))


# --- found by the fuzzer (tests/unit/test_fuzz_objects.py, long run) ------------------------

def test_license_that_is_not_text_is_an_elf_error(tmp_path):
    """Mutant 19139: was ELFError '... is corrupt: UnicodeDecodeError' from the last-resort net."""
    data = fixture_bytes("xdp_counter")
    data[L.section(data, "license").offset] = 0xA0
    with pytest.raises(ELFError) as e:
        load_spec(write(tmp_path, data))
    assert "license section is not ASCII" in one_line(e.value)


def test_call_into_an_executable_section_without_code_names_the_file(tmp_path):
    """Mutant 27324: .text made SHT_NOBITS; was a LinkError naming neither file nor section."""
    data = fixture_bytes("subprog")
    L.put(data, L.section(data, ".text").header_at + 4, 4, 8)     # sh_type = SHT_NOBITS
    path = write(tmp_path, data)
    with pytest.raises(ELFError) as e:
        load_spec(path)
    assert path in one_line(e.value) and ".text" in str(e.value)


def test_lddw_cut_at_the_end_of_a_section_names_the_section(tmp_path):
    """Mutants 21038, 26602 and four more of a 120,000 run: the last instruction made an lddw,
    whose second half would lie past the section; was ELFError '... is corrupt: ValueError'
    from the last-resort net, naming no section."""
    data = fixture_bytes("xdp_counter")
    xdp = L.section(data, "xdp")
    data[xdp.offset + xdp.size - 8] = 0x18                         # the final exit becomes an lddw
    path = write(tmp_path, data)
    with pytest.raises(ELFError) as e:
        load_spec(path)
    text = one_line(e.value)
    assert path in text and "section 'xdp'" in text and "lddw" in text and "is corrupt" not in text
