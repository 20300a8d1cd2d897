"""Load every BPF fixture of tests/bpf with xnf, run its programs with PROG_TEST_RUN and
check the results; bad objects must raise the typed error and leave nothing behind.

The fixtures and the names used here are listed in tests/bpf/README.md. Parsing tests
need no privileges; everything that loads is marked ``root``.
"""
import gzip
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import time
import uuid

import pytest
from elftools.elf.elffile import ELFFile
from netenv import fd_ids, still_there

import xnf
from xnf.core import errors, uapi
from xnf.testing import frames

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "tests", "bpf")

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX = 0, 1, 2, 3
TC_ACT_OK = 0
IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP = 1, 6, 17


def obj(name):
    return os.path.join(BPF_DIR, name + ".bpf.o")


# --- helpers -------------------------------------------------------------------------

def ipv4_frame(proto=IPPROTO_UDP, payload=b"xnf-test" * 4):
    """An Ethernet + IPv4 (+ UDP when proto is UDP) frame, valid enough for any parser."""
    if proto == IPPROTO_UDP:
        payload = frames.udp(4000, 5000, payload)
    return frames.ether(frames.ipv4("10.0.0.1", "10.0.0.2", proto, payload))


def arp_frame():
    return bytes.fromhex("ffffffffffff" "020000000001" "0806") + bytes(28)


def possible_cpus():
    with open("/sys/devices/system/cpu/possible") as f:
        count = 0
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            count += int(hi or lo) - int(lo) + 1
    return count


def elf_symbol(path, name):
    """(section name, offset, size) of a data symbol, read from the object independently."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for sym in elf.get_section_by_name(".symtab").iter_symbols():
            if sym.name == name and sym["st_info"]["type"] == "STT_OBJECT":
                return elf.get_section(sym["st_shndx"]).name, sym["st_value"], sym["st_size"]
    raise LookupError(f"{name} not in {path}")


def datasec_map(coll, section):
    """The internal map xnf made for a global-data section (named as libbpf does or not)."""
    found = [m for name, m in coll.maps.items() if name == section or name.endswith(section)]
    assert len(found) == 1, f"no single map for {section} in {sorted(coll.maps)}"
    return found[0]


def read_var(coll, path, name, fmt="<Q"):
    """A global variable's value: decoded by xnf from BTF, or cut out of raw bytes."""
    section, offset, _ = elf_symbol(path, name)
    value = datasec_map(coll, section)[0]
    many = struct.calcsize(fmt) > struct.calcsize("<" + fmt[-1])
    if isinstance(value, (bytes, bytearray, memoryview)):
        got = struct.unpack_from(fmt, bytes(value), offset)
        return list(got) if many else got[0]
    got = getattr(value, name) if hasattr(value, name) else value[name]
    return list(got) if many else got


def bpftool_json(*args):
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def live(kind):
    """{id: name} of every loaded program or map (bpftool as an independent view)."""
    return {o["id"]: o.get("name", "") for o in bpftool_json(kind, "show")}


def held(kind):
    """Ids of the programs or maps (``kind``) this process holds a file descriptor of: what a
    load made and did not release. Only this test's own objects, unlike names, which another
    run or a bench loading the same fixture shares."""
    return {i for k, i in fd_ids() if k == kind}


def assert_nothing_held(kind, before):
    """A failed load released every program or map it made: this process holds no fd of one
    it did not hold ``before`` (nothing else refers to them: a failed load pins nothing and
    attaches nothing; the pin tests check their bpffs)."""
    left = held(kind) - before
    assert not left, f"{kind}s left open by the failed load: {left}"


def assert_ids_gone(kind, ids, timeout=3.0):
    left = still_there(lambda: set(ids) & set(live(kind)), timeout)
    assert not left, f"{kind} ids {sorted(left)} still loaded after close()"


def kernel_config():
    with gzip.open("/proc/config.gz", "rt") as f:
        return dict(line.strip().split("=", 1) for line in f if line.startswith("CONFIG_"))


root = pytest.mark.root
PRELOADED_PINS = {"maps.debug", "progs.debug"}  # iterators the kernel puts in every bpffs

# --- parsing (no privileges) -----------------------------------------------------------

GOOD = {
    "xdp_counter": ({"xdp_count"}, {"pkt_count", "proto_count"}),
    "tc_counter": ({"tc_count", "tcx_ingress_count", "tcx_egress_count", "cls_count",
                    "set_priority", "set_classid"}, {"tc_hits", "class_cfg"}),
    "global_data": ({"global_data_prog"}, set()),
    "subprog": ({"sub_a", "sub_b", "sub_loop", "sub_tc"}, {"sub_calls"}),
    "map_in_map": ({"mim_lookup"}, {"inner_a", "inner_b", "outer_arr", "outer_hash", "mim_result"}),
    "map_defs": ({"mapdef_prog"}, {"bloom", "sized_map", "lru_map", "mapdef_result"}),
    "tail_call": ({"tail_entry", "tail_drop", "tail_tx"}, {"jmp_table", "tail_cfg", "tail_hits"}),
    "legacy_maps": ({"legacy_xdp"}, {"legacy_count", "legacy_proto"}),
    "legacy_iproute2": ({"ipr_cls"}, {"ipr_count", "ipr_len"}),
    "pin_by_name": ({"pin_count"}, {"xnf_pinned_cnt"}),
    "pin_by_name_incompat": ({"pin_count_incompat"}, {"xnf_pinned_cnt"}),
    "ringbuf": ({"rb_submit", "perf_submit"}, {"rb", "perf_events"}),
    "percpu": ({"percpu_count"}, {"pcpu_count", "pcpu_stats"}),
    "kconfig": ({"kconfig_prog"}, set()),
    "btf_types": ({"btf_socket"}, {"flows", "matrices"}),
    "sections": ({"sec_xdp", "sec_xdp_frags", "sec_tc", "sec_classifier", "sec_tcx_ingress",
                  "sec_tcx_egress", "sec_socket", "sec_iter_map", "sec_tracepoint", "sec_raw_tp"},
                 set()),
    "sections_fentry": ({"sec_fentry"}, set()),
    "sections_parse_only": ({"sec_freplace", "sec_struct_ops"}, set()),
    "verifier_reject": ({"verifier_reject_prog"}, {"vr_map"}),
    "no_license_gpl_helper": ({"no_license_prog"}, {"nl_map"}),
    "core_relo": ({"core_prog"}, set()),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_parse_names(name):
    """Every fixture that is valid ELF parses into a spec with its programs and maps."""
    programs, maps = GOOD[name]
    spec = xnf.open_object(obj(name))
    assert set(spec.programs) == programs
    assert maps <= set(spec.maps)


SECTION_TYPES = {
    "sec_xdp": (uapi.BPF_PROG_TYPE_XDP, {0, uapi.BPF_XDP}),
    "sec_xdp_frags": (uapi.BPF_PROG_TYPE_XDP, {uapi.BPF_XDP}),
    "sec_tc": (uapi.BPF_PROG_TYPE_SCHED_CLS, {0}),
    "sec_classifier": (uapi.BPF_PROG_TYPE_SCHED_CLS, {0}),
    "sec_tcx_ingress": (uapi.BPF_PROG_TYPE_SCHED_CLS, {uapi.BPF_TCX_INGRESS}),
    "sec_tcx_egress": (uapi.BPF_PROG_TYPE_SCHED_CLS, {uapi.BPF_TCX_EGRESS}),
    "sec_socket": (uapi.BPF_PROG_TYPE_SOCKET_FILTER, {0}),
    "sec_iter_map": (uapi.BPF_PROG_TYPE_TRACING, {uapi.BPF_TRACE_ITER}),
    "sec_tracepoint": (uapi.BPF_PROG_TYPE_TRACEPOINT, {0}),
    "sec_raw_tp": (uapi.BPF_PROG_TYPE_RAW_TRACEPOINT, {0}),
    "sec_fentry": (uapi.BPF_PROG_TYPE_TRACING, {uapi.BPF_TRACE_FENTRY}),
    "sec_freplace": (uapi.BPF_PROG_TYPE_EXT, {0}),
    "sec_struct_ops": (uapi.BPF_PROG_TYPE_STRUCT_OPS, {0}),
}


@pytest.mark.parametrize("prog", sorted(SECTION_TYPES))
def test_section_name_gives_type(prog):
    fixture = {"sec_freplace": "sections_parse_only", "sec_struct_ops": "sections_parse_only",
               "sec_fentry": "sections_fentry"}.get(prog, "sections")
    spec = xnf.open_object(obj(fixture)).programs[prog]
    prog_type, attach_types = SECTION_TYPES[prog]
    assert int(spec.type) == prog_type
    assert int(spec.expected_attach_type) in attach_types


def test_xdp_frags_flag():
    spec = xnf.open_object(obj("sections"))
    BPF_F_XDP_HAS_FRAGS = 1 << 5
    assert spec.programs["sec_xdp_frags"].flags & BPF_F_XDP_HAS_FRAGS
    assert not spec.programs["sec_xdp"].flags & BPF_F_XDP_HAS_FRAGS


M = uapi
MAP_SPECS = {  # (fixture, map): (type, key_size, value_size, max_entries, flags, pinning)
    ("xdp_counter", "pkt_count"): (M.BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0, 0),
    ("xdp_counter", "proto_count"): (M.BPF_MAP_TYPE_HASH, 4, 8, 256, 0, 0),
    ("map_in_map", "outer_arr"): (M.BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 2, 0, 0),
    ("map_in_map", "outer_hash"): (M.BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 4, 0, 0),
    ("tail_call", "jmp_table"): (M.BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, 0, 0),
    ("map_defs", "bloom"): (M.BPF_MAP_TYPE_BLOOM_FILTER, 0, 4, 64, 0, 0),
    ("map_defs", "sized_map"): (M.BPF_MAP_TYPE_HASH, 4, 8, 8, 4 | 1, 0),  # NUMA_NODE|NO_PREALLOC
    ("map_defs", "lru_map"): (M.BPF_MAP_TYPE_LRU_HASH, 4, 4, 16, 2, 0),  # BPF_F_NO_COMMON_LRU
    ("legacy_maps", "legacy_count"): (M.BPF_MAP_TYPE_ARRAY, 4, 8, 2, 0, 0),
    ("legacy_maps", "legacy_proto"): (M.BPF_MAP_TYPE_HASH, 4, 8, 64, 1, 0),  # BPF_F_NO_PREALLOC
    ("legacy_iproute2", "ipr_count"): (M.BPF_MAP_TYPE_ARRAY, 4, 8, 2, 0, 0),
    ("legacy_iproute2", "ipr_len"): (M.BPF_MAP_TYPE_HASH, 4, 8, 32, 0, 0),
    ("pin_by_name", "xnf_pinned_cnt"): (M.BPF_MAP_TYPE_HASH, 4, 8, 16, 0, 1),
    ("pin_by_name_incompat", "xnf_pinned_cnt"): (M.BPF_MAP_TYPE_HASH, 4, 4, 16, 0, 1),
    ("ringbuf", "rb"): (M.BPF_MAP_TYPE_RINGBUF, 0, 0, 256 * 1024, 0, 0),
    ("percpu", "pcpu_stats"): (M.BPF_MAP_TYPE_PERCPU_HASH, 4, 16, 64, 0, 0),
    ("btf_types", "flows"): (M.BPF_MAP_TYPE_HASH, 36, 40, 16, 0, 0),
    ("btf_types", "matrices"): (M.BPF_MAP_TYPE_ARRAY, 4, 28, 2, 0, 0),
}


@pytest.mark.parametrize("fixture,name", sorted(MAP_SPECS))
def test_map_spec(fixture, name):
    m = xnf.open_object(obj(fixture)).maps[name]
    assert (m.type, m.key_size, m.value_size, m.max_entries, m.flags, m.pinning) == \
        MAP_SPECS[fixture, name]


def test_map_extra_and_numa_node():
    maps = xnf.open_object(obj("map_defs")).maps
    assert maps["bloom"].map_extra == 3
    assert maps["sized_map"].numa_node == 0


def test_static_map_values():
    mim = xnf.open_object(obj("map_in_map")).maps
    assert sorted(mim["outer_arr"].contents) == [(0, "inner_a"), (1, "inner_b")]
    assert sorted(mim["outer_hash"].contents) == [(1, "inner_b")]
    tail = xnf.open_object(obj("tail_call")).maps
    assert sorted(tail["jmp_table"].contents) == [(0, "tail_drop"), (2, "tail_tx")]


def test_global_data_in_spec():
    spec = xnf.open_object(obj("global_data"))
    assert spec.rodata["cfg_verdict"] == XDP_PASS and spec.rodata["cfg_scale"] == 1
    assert spec.variables["counter"] == 100 and spec.variables["custom_ro"] == 11
    assert list(spec.variables["data_array"]) == [1, 2, 3, 4]
    assert "counter" not in spec.rodata, ".data is not configuration"
    with pytest.raises(errors.ConfigError):
        spec.rodata["cfg_verdict"] = 1 << 40
    spec.rodata["cfg_verdict"] = XDP_DROP
    assert spec.rodata["cfg_verdict"] == XDP_DROP
    assert xnf.open_object(obj("global_data")).rodata["cfg_verdict"] == XDP_PASS


def test_license_version_kconfig_in_spec():
    assert xnf.open_object(obj("xdp_counter")).license == "GPL"
    assert xnf.open_object(obj("no_license_gpl_helper")).license == ""
    assert xnf.open_object(obj("sections")).kern_version == 1
    assert set(xnf.open_object(obj("kconfig")).kconfig) == {
        "LINUX_KERNEL_VERSION", "CONFIG_HZ", "CONFIG_BPF_SYSCALL", "CONFIG_XNF_NO_SUCH_OPTION"}


def test_core_relocations_are_seen_at_parse():
    spec = xnf.open_object(obj("core_relo"))
    assert spec.programs["core_prog"].core_relos
    assert not any(p.core_relos for p in xnf.open_object(obj("xdp_counter")).programs.values())


def test_unknown_section_is_refused_by_name():
    with pytest.raises(errors.SectionError, match="bogus/foo"):
        xnf.open_object(obj("unknown_section"))


def test_truncated_object(tmp_path):
    with open(obj("xdp_counter"), "rb") as f:
        data = f.read()
    for size in (0, 16, 63, len(data) // 2, len(data) - 1):
        path = tmp_path / f"trunc{size}.bpf.o"
        path.write_bytes(data[:size])
        with pytest.raises(errors.ELFError):
            xnf.open_object(str(path))


def test_non_bpf_elf():
    with pytest.raises(errors.ELFError, match="(?i)bpf"):
        xnf.open_object(shutil.which("true") or "/bin/true")


def test_not_elf(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not an ELF file\n")
    with pytest.raises(errors.ELFError):
        xnf.open_object(str(path))


def test_missing_file(tmp_path):
    with pytest.raises((errors.ELFError, FileNotFoundError)):
        xnf.open_object(str(tmp_path / "nope.bpf.o"))


# --- loading and running ---------------------------------------------------------------

@root
def test_xdp_counter():
    frame = ipv4_frame(IPPROTO_UDP)
    with xnf.load(obj("xdp_counter")) as coll:
        res = coll.programs["xdp_count"].test_run(frame, repeat=7)
        assert res.retval == XDP_PASS
        assert res.data == frame
        assert res.duration_ns >= 0
        coll.programs["xdp_count"].test_run(ipv4_frame(IPPROTO_TCP), repeat=2)
        coll.programs["xdp_count"].test_run(arp_frame())
        assert coll.maps["pkt_count"][0] == 10
        counts = coll.maps["proto_count"]
        assert dict(counts.items()) == {IPPROTO_UDP: 7, IPPROTO_TCP: 2}
        assert IPPROTO_ICMP not in counts and counts.get(IPPROTO_ICMP) is None


@root
def test_map_size_edited_before_load():
    spec = xnf.open_object(obj("xdp_counter"))
    spec.maps["proto_count"].max_entries = 4096
    with xnf.load(spec) as coll:
        assert coll.maps["proto_count"].max_entries == 4096
        info = bpftool_json("map", "show", "id", str(_map_id(coll, "xdp_count", "proto_count")))
        assert info["max_entries"] == 4096


@root
def test_failed_map_creation_rolls_back():
    """The second map fails to create: the first one and the BTF must not survive."""
    spec = xnf.open_object(obj("xdp_counter"))
    spec.maps["proto_count"].max_entries = 0  # the kernel refuses an empty hash map
    before = held("map")
    with pytest.raises(errors.XnfError, match="proto_count"):
        xnf.load(spec)
    assert_nothing_held("map", before)


@root
def test_close_releases_everything():
    coll = xnf.load(obj("xdp_counter"))
    prog_id = coll.programs["xdp_count"].id
    map_ids = bpftool_json("prog", "show", "id", str(prog_id))["map_ids"]
    assert len(map_ids) == 2
    coll.close()
    assert_ids_gone("prog", [prog_id])
    assert_ids_gone("map", map_ids)


@root
def test_tc_counter():
    frame = ipv4_frame()
    with xnf.load(obj("tc_counter")) as coll:
        for slot, prog in enumerate(("tc_count", "tcx_ingress_count", "tcx_egress_count",
                                     "cls_count")):
            res = coll.programs[prog].test_run(frame, repeat=slot + 1)
            assert res.retval == TC_ACT_OK, prog
        assert [coll.maps["tc_hits"][i] for i in range(4)] == [1, 2, 3, 4]

        cfg = coll.maps["class_cfg"]
        cfg[0] = 0x00010002  # HTB class 1:2
        assert coll.programs["set_priority"].test_run(frame).retval == TC_ACT_OK
        assert cfg[1] == 0x00010002
        assert coll.programs["set_classid"].test_run(frame).retval == TC_ACT_OK
        assert cfg[2] == 0x00010002


@root
def test_global_data_defaults():
    path = obj("global_data")
    with xnf.load(path) as coll:
        assert read_var(coll, path, "counter") == 100
        assert read_var(coll, path, "data_array", "<4I") == [1, 2, 3, 4]
        assert read_var(coll, path, "custom_data") == 7
        assert read_var(coll, path, "custom_ro") == 11
        assert read_var(coll, path, "bss_result") == 0

        prog = coll.programs["global_data_prog"]
        assert prog.test_run(ipv4_frame()).retval == XDP_PASS
        assert read_var(coll, path, "bss_result") == 101 + 3 + 7 + 11
        assert read_var(coll, path, "bss_verdict", "<I") == XDP_PASS
        assert read_var(coll, path, "counter") == 101
        assert read_var(coll, path, "custom_data") == 8
        assert read_var(coll, path, "bss_runs") == 1
        prog.test_run(ipv4_frame())
        assert read_var(coll, path, "bss_result") == 102 + 3 + 8 + 11
        assert read_var(coll, path, "bss_runs") == 2


@root
def test_global_data_rodata_set_before_load():
    path = obj("global_data")
    spec = xnf.open_object(path)
    spec.rodata["cfg_verdict"] = XDP_DROP
    spec.rodata["cfg_scale"] = 10
    with xnf.load(spec) as coll:
        assert coll.programs["global_data_prog"].test_run(ipv4_frame()).retval == XDP_DROP
        assert read_var(coll, path, "bss_result") == 101 * 10 + 3 + 7 + 11
        assert read_var(coll, path, "bss_verdict", "<I") == XDP_DROP
        assert read_var(coll, path, "cfg_scale") == 10

        rodata = datasec_map(coll, ".rodata")
        with pytest.raises(errors.BPFError):  # frozen: user space cannot write it any more
            rodata[0] = bytes(rodata.value_size)


@root
def test_subprograms_and_bpf_loop():
    path = obj("subprog")
    with xnf.load(path) as coll:
        frame = ipv4_frame()
        assert coll.programs["sub_a"].test_run(frame).retval == XDP_PASS
        assert read_var(coll, path, "res_add") == 5
        assert read_var(coll, path, "res_mul") == 42
        assert coll.programs["sub_b"].test_run(frame).retval == XDP_PASS
        assert read_var(coll, path, "res_b") == 30
        assert coll.programs["sub_loop"].test_run(frame, repeat=2).retval == XDP_PASS
        assert read_var(coll, path, "res_loop") == 45
        assert read_var(coll, path, "loop_calls") == 20
        assert coll.programs["sub_tc"].test_run(frame).retval == TC_ACT_OK
        assert read_var(coll, path, "res_tc") == 15
        # bump() is shared by all four programs: 1 + 1 + 2 + 1 runs
        assert coll.maps["sub_calls"][0] == 5
        assert read_var(coll, path, "sub_stats", "<4Q") == [0, 0, 5, 0]


@root
def test_map_in_map():
    with xnf.load(obj("map_in_map")) as coll:
        coll.maps["inner_a"][0] = XDP_DROP
        coll.maps["inner_b"][0] = 77
        assert coll.programs["mim_lookup"].test_run(ipv4_frame()).retval == XDP_DROP
        assert coll.maps["mim_result"][0] == XDP_DROP
        assert coll.maps["mim_result"][1] == 77
        outer_hash = coll.maps["outer_hash"]
        assert 1 in outer_hash and 0 not in outer_hash
        assert 0 in coll.maps["outer_arr"] and 1 in coll.maps["outer_arr"]


@root
def test_map_definition_fields():
    with xnf.load(obj("map_defs")) as coll:
        assert coll.programs["mapdef_prog"].test_run(ipv4_frame(), repeat=3).retval == XDP_PASS
        assert coll.maps["mapdef_result"][0] == 1, "42 pushed into the bloom filter was not found"
        assert coll.maps["sized_map"][7] == 3
        assert coll.maps["lru_map"][7] == 42
        info = bpftool_json("map", "show", "id", str(_map_id(coll, "mapdef_prog", "bloom")))
        assert (info["type"], info["max_entries"]) == ("bloom_filter", 64)


def _map_id(coll, prog, name):
    """A map's kernel id, from a program that uses it (bpftool as an independent view)."""
    prog_id = coll.programs[prog].id
    for map_id in bpftool_json("prog", "show", "id", str(prog_id))["map_ids"]:
        if bpftool_json("map", "show", "id", str(map_id))["name"] == name:
            return map_id
    raise LookupError(name)


@root
def test_tail_calls():
    frame = ipv4_frame()
    with xnf.load(obj("tail_call")) as coll:
        entry, cfg, hits = coll.programs["tail_entry"], coll.maps["tail_cfg"], coll.maps["tail_hits"]
        jmp = coll.maps["jmp_table"]
        assert 0 in jmp and 2 in jmp and 1 not in jmp and 3 not in jmp
        cfg[0] = 0
        assert entry.test_run(frame).retval == XDP_DROP
        cfg[0] = 2
        assert entry.test_run(frame, repeat=2).retval == XDP_TX
        cfg[0] = 1  # empty slot: the tail call falls through
        assert entry.test_run(frame, repeat=3).retval == XDP_PASS
        assert [hits[i] for i in range(3)] == [1, 3, 2]


@root
def test_legacy_bpf_map_def():
    with xnf.load(obj("legacy_maps")) as coll:
        count, proto = coll.maps["legacy_count"], coll.maps["legacy_proto"]
        assert (count.type, count.key_size, count.value_size, count.max_entries) == \
            (uapi.BPF_MAP_TYPE_ARRAY, 4, 8, 2)
        assert (proto.type, proto.key_size, proto.value_size, proto.max_entries) == \
            (uapi.BPF_MAP_TYPE_HASH, 4, 8, 64)
        assert coll.programs["legacy_xdp"].test_run(ipv4_frame(), repeat=5).retval == XDP_PASS
        assert count[0] == 5
        assert proto[IPPROTO_UDP] == 5


@root
def test_legacy_iproute2_bpf_elf_map():
    frame = ipv4_frame()
    with xnf.load(obj("legacy_iproute2")) as coll:
        count, lengths = coll.maps["ipr_count"], coll.maps["ipr_len"]
        assert (count.type, count.key_size, count.value_size, count.max_entries) == \
            (uapi.BPF_MAP_TYPE_ARRAY, 4, 8, 2)
        assert (lengths.type, lengths.max_entries) == (uapi.BPF_MAP_TYPE_HASH, 32)
        assert coll.programs["ipr_cls"].test_run(frame, repeat=4).retval == TC_ACT_OK
        assert count[0] == 4
        assert dict(lengths.items()) == {len(frame): 4}


@root
def test_pin_by_name_reuse_and_incompatible(bpffs):
    """In a private bpffs (tests/kernel/conftest.py), gone with its pins at the end."""
    pin = os.path.join(bpffs, "xnf_pinned_cnt")

    def load(name):
        spec = xnf.open_object(obj(name))
        spec.maps["xnf_pinned_cnt"].pin_path = pin
        return xnf.load(spec)

    with load("pin_by_name") as coll:
        coll.programs["pin_count"].test_run(ipv4_frame(), repeat=3)
        assert coll.maps["xnf_pinned_cnt"][0] == 3
    assert os.path.exists(pin), "a LIBBPF_PIN_BY_NAME map must stay pinned after close()"

    with load("pin_by_name") as coll:
        assert coll.maps["xnf_pinned_cnt"][0] == 3, "the existing pin was not reused"
        coll.programs["pin_count"].test_run(ipv4_frame())
        assert coll.maps["xnf_pinned_cnt"][0] == 4

    before, before_maps = held("prog"), held("map")
    with pytest.raises(errors.MapIncompatibleError, match="xnf_pinned_cnt"):
        load("pin_by_name_incompat")
    assert_nothing_held("prog", before)
    assert_nothing_held("map", before_maps)
    assert set(os.listdir(bpffs)) - PRELOADED_PINS == {"xnf_pinned_cnt"}
    with load("pin_by_name") as coll:
        assert coll.maps["xnf_pinned_cnt"][0] == 4, "the incompatible load touched the pin"


def _collect(make_reader, want, timeout=5.0):
    """Records (bytes) handed to a reader's callback, polling until ``want`` or timeout."""
    got = []
    reader = make_reader(got.append)
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        reader.poll(200)
    return reader, got


EVENT = struct.Struct("<QIHBBQ")
EVENT_MAGIC = 0x786E662D65767400


def decode_events(records):
    return [EVENT.unpack(bytes(r[:EVENT.size])) for r in records]


@root
def test_ringbuf_callback():
    from xnf.core.kernel.ringbuf import RingBuffer

    frame = ipv4_frame()
    path = obj("ringbuf")
    with xnf.load(path) as coll:
        prog = coll.programs["rb_submit"]
        assert prog.test_run(frame, repeat=100).retval == XDP_PASS
        reader, records = _collect(lambda cb: RingBuffer(coll.maps["rb"], callback=cb), 100)
        reader.close()
        events = decode_events(records)
        assert [e[0] for e in events] == list(range(100))
        assert {e[1:] for e in events} == {(len(frame), IPPROTO_UDP, 1, 0, EVENT_MAGIC)}
        assert read_var(coll, path, "rb_dropped") == 0


@root
def test_ringbuf_iterator():
    import itertools
    import threading

    from xnf.core.kernel.ringbuf import RingBuffer

    with xnf.load(obj("ringbuf")) as coll:
        stop = threading.Event()
        timer = threading.Timer(5.0, stop.set)  # ends the iteration if records go missing
        timer.start()
        try:
            with RingBuffer(coll.maps["rb"]) as rb:
                coll.programs["rb_submit"].test_run(ipv4_frame(IPPROTO_TCP), repeat=30)
                records = list(itertools.islice(rb.iterate(stop), 30))
        finally:
            timer.cancel()
        assert all(isinstance(r, bytes) for r in records)
        assert [e[0] for e in decode_events(records)] == list(range(30))


@root
def test_perf_event_array():
    from xnf.core.kernel.perfbuf import PerfBuffer

    frame = ipv4_frame(IPPROTO_TCP)
    with xnf.load(obj("ringbuf")) as coll:
        # the per-CPU perf events must exist before the program outputs into them
        records, cpus = [], set()

        def on_sample(cpu, data):
            cpus.add(cpu)
            records.append(data)

        reader = PerfBuffer(coll.maps["perf_events"], callback=on_sample)
        try:
            assert coll.programs["perf_submit"].test_run(frame, repeat=10).retval == XDP_PASS
            deadline = time.monotonic() + 5
            while len(records) < 10 and time.monotonic() < deadline:
                reader.poll(200)
        finally:
            reader.close()
        events = decode_events(records)
        assert [e[0] for e in events] == list(range(10))
        assert {e[1:] for e in events} == {(len(frame), IPPROTO_TCP, 2, 0, EVENT_MAGIC)}
        assert cpus and cpus <= set(range(possible_cpus()))


@root
def test_percpu_maps():
    frame = ipv4_frame()
    with xnf.load(obj("percpu")) as coll:
        assert coll.programs["percpu_count"].test_run(frame, repeat=50).retval == XDP_PASS
        counts = coll.maps["pcpu_count"][0]
        assert isinstance(counts, list) and len(counts) == possible_cpus()
        assert sum(counts) == 50
        stats = coll.maps["pcpu_stats"][IPPROTO_UDP]
        assert len(stats) == possible_cpus()
        assert sum(s.packets for s in stats) == 50
        assert sum(s.bytes for s in stats) == 50 * len(frame)


@root
def test_kconfig():
    path = obj("kconfig")
    major, minor, patch = map(int, re.match(r"(\d+)\.(\d+)(?:\.(\d+))?",
                                            platform.release()).groups(default="0"))
    config = kernel_config()
    with xnf.load(path) as coll:
        assert read_var(coll, path, "kc_missing") == 12345
        assert coll.programs["kconfig_prog"].test_run(ipv4_frame()).retval == XDP_PASS
        assert read_var(coll, path, "kc_version") == (major << 16) + (minor << 8) + min(patch, 255)
        assert read_var(coll, path, "kc_hz") == int(config["CONFIG_HZ"])
        assert read_var(coll, path, "kc_bpf_syscall") == (config.get("CONFIG_BPF_SYSCALL") == "y")
        assert read_var(coll, path, "kc_missing") == 0


@root
def test_btf_decoded_keys_and_values():
    frame = ipv4_frame()
    with xnf.load(obj("btf_types")) as coll:
        l3_len = len(frame) - 14  # a socket filter's skb starts after the Ethernet header
        assert coll.programs["btf_socket"].test_run(frame, repeat=2).retval == l3_len
        flows = coll.maps["flows"]
        [(key, val)] = list(flows.items())
        assert (key.ifindex, key.color, key.pt.x, key.pt.y) == (1, 7, 3, 4)
        assert list(key.mac) == [0x02, 0, 0, 0, 0, 0x5E]
        assert key.addr.v4 == 0x0A000001
        assert (val.packets, val.bytes, val.delta) == (2, 2 * l3_len, -5)
        assert [(p.x, p.y) for p in val.last] == [(1, 2), (5, 6)]
        name = val.name  # char[8]: a list of ints (arrays decode to lists) or bytes
        assert bytes(name).rstrip(b"\0") == b"xnf"

        raw_key = struct.pack("<IIHH6B2xI12x", 1, 7, 3, 4, 2, 0, 0, 0, 0, 0x5E, 0x0A000001)
        assert flows[raw_key].packets == 2, "raw bytes keys must be accepted"
        flows[key] = val  # decoded objects encode back
        assert flows[raw_key].bytes == 2 * l3_len

        m = coll.maps["matrices"][1]
        assert [list(r) for r in m.rows] == [[0, 0, 0], [0, 0, 9]]
        assert (m.origin.x, m.origin.y) == (7, 0)


@root
def test_sections_load():
    with xnf.load(obj("sections")) as coll:
        assert set(coll.programs) == {p for p in SECTION_TYPES
                                      if p not in ("sec_freplace", "sec_struct_ops", "sec_fentry")}
        for name, prog in coll.programs.items():
            assert int(prog.fd) >= 0 and int(prog.type) == SECTION_TYPES[name][0], name
        frame = ipv4_frame()
        assert coll.programs["sec_xdp"].test_run(frame).retval == XDP_PASS
        assert coll.programs["sec_xdp_frags"].test_run(frame).retval == XDP_PASS
        assert coll.programs["sec_tcx_ingress"].test_run(frame).retval == TC_ACT_OK
        assert coll.programs["sec_socket"].test_run(frame).retval == 0


def bpftool_loads(path, bpffs):
    """Whether bpftool (libbpf) can load ``path`` on this kernel: the feature oracle."""
    pin_dir = os.path.join(bpffs, f"xnf-test-{uuid.uuid4().hex[:12]}")
    try:
        return subprocess.run(["bpftool", "prog", "loadall", path, pin_dir],
                              capture_output=True).returncode == 0
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)


@root
def test_fentry_load(bpffs):
    path = obj("sections_fentry")
    if not bpftool_loads(path, bpffs):
        pytest.skip("this kernel refuses fentry programs (BPF_PROG_LOAD fails for bpftool too)")
    with xnf.load(path) as coll:
        prog = coll.programs["sec_fentry"]
        assert int(prog.type) == uapi.BPF_PROG_TYPE_TRACING


# --- bad input: typed error, nothing left behind ----------------------------------------------

@root
def test_missing_license_for_gpl_helper():
    before = held("map")
    with pytest.raises(errors.LicenseError, match="(?i)licen[cs]e"):
        xnf.load(obj("no_license_gpl_helper"))
    assert_nothing_held("map", before)


@root
def test_verifier_rejection_shows_source_line():
    before = held("map")
    with pytest.raises(errors.VerifierError) as info:
        xnf.load(obj("verifier_reject"))
    err = info.value
    assert "invalid access to packet" in err.log
    assert "ip->daddr" in err.log, "line info missing: the log must show the C source line"
    assert "verifier_reject_prog" in str(err)
    assert_nothing_held("map", before)


@root
def test_core_relocations_resolved():
    """core_prog reads task->pid through a CO-RE relocation: run here, it finds this thread."""
    import threading

    from xnf.core.kernel import syscall

    with xnf.load(obj("core_relo")) as coll:
        syscall.prog_test_run(int(coll.programs["core_prog"].fd), repeat=0, ctx_in=bytes(8))  # raw_tp: repeat 0
        assert coll.maps[".bss"][0].core_pid == threading.get_native_id()


@root
def test_parse_only_sections_refused_at_load():
    before = held("prog")
    with pytest.raises(errors.XnfError):
        xnf.load(obj("sections_parse_only"))
    assert_nothing_held("prog", before)


@root
def test_unknown_section_refused_at_load():
    with pytest.raises(errors.SectionError, match="bogus/foo"):
        xnf.load(obj("unknown_section"))


# --- the same bad input through the CLI: one line, non-zero exit, nothing pinned ---------------

def xnf_cli(*args):
    return subprocess.run([sys.executable, "-m", "xnf.cli.main", *args], capture_output=True,
                          text=True)


def bad_input(name, tmp_path):
    if name == "truncated":
        with open(obj("xdp_counter"), "rb") as f:
            data = f.read()
        path = tmp_path / "truncated.bpf.o"
        path.write_bytes(data[: len(data) // 2])
        return str(path)
    if name == "not_bpf":
        return shutil.which("true") or "/bin/true"
    return obj(name)


@root
@pytest.mark.parametrize("name", ["truncated", "not_bpf", "unknown_section", "no_license_gpl_helper",
                                  "verifier_reject", "core_poison", "sections_parse_only"])
def test_cli_prog_load_bad_input(name, tmp_path, bpffs):
    pin_dir = os.path.join(bpffs, "xnf-cli-test")
    res = xnf_cli("prog", "load", bad_input(name, tmp_path), "--pin", pin_dir)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    # one error line; a verifier rejection adds the C source line it stopped in, indented
    assert lines[0].startswith("xnf: error:"), res.stderr
    assert len(lines) == (2 if name == "verifier_reject" else 1) and all(l.startswith("  ") for l in lines[1:]), \
        res.stderr
    assert not os.path.exists(pin_dir) or not os.listdir(pin_dir), "a failed load left pins"


@root
def test_cli_prog_load_pins_and_reports(bpffs):
    pin_dir = os.path.join(bpffs, "xnf-cli-test")
    res = xnf_cli("prog", "load", obj("tail_call"), "--pin", pin_dir)
    assert res.returncode == 0, res.stderr
    for name in ("tail_entry", "tail_drop", "tail_tx", "jmp_table", "tail_cfg", "tail_hits"):
        assert name in res.stdout
    pins = {f: os.path.join(d, f) for d, _, files in os.walk(pin_dir) for f in files}
    assert {"tail_entry", "jmp_table"} <= set(pins)
    pinned = bpftool_json("prog", "show", "pinned", pins["tail_entry"])
    assert pinned["name"] == "tail_entry", "the pinned program outlives the command"
