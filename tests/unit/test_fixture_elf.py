"""ELF-level sanity of the committed test fixtures, read with pyelftools only.

Cheap checks that the objects are what the loader tests assume: BPF relocatable ELF,
programs in the expected sections, maps and global data where the tests look for them,
BTF present, CO-RE relocations only where intended, no build paths inside.
"""
import io
import os
import struct

import pytest
from elftools.elf.elffile import ELFFile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "tests", "bpf")
EM_BPF = "EM_BPF"

# fixture -> programs {name: section}, maps {name: section}, other sections expected
FIXTURES = {
    "xdp_counter": dict(programs={"xdp_count": "xdp"},
                        maps={"pkt_count": ".maps", "proto_count": ".maps"}),
    "tc_counter": dict(programs={"tc_count": "tc", "set_priority": "tc", "set_classid": "tc",
                                 "tcx_ingress_count": "tcx/ingress",
                                 "tcx_egress_count": "tcx/egress", "cls_count": "classifier"},
                       maps={"tc_hits": ".maps", "class_cfg": ".maps"}),
    "global_data": dict(programs={"global_data_prog": "xdp"}, maps={},
                        variables={"cfg_verdict": ".rodata", "cfg_scale": ".rodata",
                                   "counter": ".data", "data_array": ".data",
                                   "bss_result": ".bss", "bss_verdict": ".bss",
                                   "bss_runs": ".bss", "custom_data": ".data.custom",
                                   "custom_ro": ".rodata.custom"}),
    "subprog": dict(programs={"sub_a": "xdp", "sub_b": "xdp", "sub_loop": "xdp", "sub_tc": "tc"},
                    maps={"sub_calls": ".maps"},
                    functions={"global_mul": ".text", "static_add": ".text", "bump": ".text",
                               "loop_step": ".text"},
                    variables={"res_add": ".bss", "res_mul": ".bss", "res_b": ".bss",
                               "res_tc": ".bss", "res_loop": ".bss", "loop_calls": ".bss",
                               "sub_stats": ".bss"}),
    "map_in_map": dict(programs={"mim_lookup": "xdp"},
                       maps={n: ".maps" for n in ("inner_a", "inner_b", "outer_arr",
                                                  "outer_hash", "mim_result")}),
    "map_defs": dict(programs={"mapdef_prog": "xdp"},
                     maps={n: ".maps" for n in ("bloom", "sized_map", "lru_map", "mapdef_result")}),
    "tail_call": dict(programs={"tail_entry": "xdp", "tail_drop": "xdp", "tail_tx": "xdp"},
                      maps={"jmp_table": ".maps", "tail_cfg": ".maps", "tail_hits": ".maps"}),
    "many_progs": dict(programs={**{f"lookup_{m}_{i}": "sk_lookup" for m in ("map", "hash") for i in range(6)},
                                 **{f"xdp_leaf_{v}": "xdp" for v in ("drop", "pass", "tx")},
                                 **{f"xdp_entry_{i}": "xdp" for i in range(3)},
                                 **{f"tc_{t}_{d}": "tc" for t in ("ipip", "ip6tnl", "gre") for d in ("in", "out")},
                                 "skb_verdict": "sk_skb/stream_verdict", "msg_verdict": "sk_msg"},
                       maps={n: ".maps" for n in ("redir_map", "redir_hash", "run_count", "tail_cfg", "jmp_table")}),
    "legacy_maps": dict(programs={"legacy_xdp": "xdp"},
                        maps={"legacy_count": "maps", "legacy_proto": "maps"}, legacy=20),
    "legacy_iproute2": dict(programs={"ipr_cls": "classifier"},
                            maps={"ipr_count": "maps", "ipr_len": "maps"}, legacy=36),
    "pin_by_name": dict(programs={"pin_count": "xdp"}, maps={"xnf_pinned_cnt": ".maps"}),
    "pin_by_name_incompat": dict(programs={"pin_count_incompat": "xdp"},
                                 maps={"xnf_pinned_cnt": ".maps"}),
    "ringbuf": dict(programs={"rb_submit": "xdp", "perf_submit": "xdp"},
                    maps={"rb": ".maps", "perf_events": ".maps"},
                    variables={"rb_seq": ".bss", "perf_seq": ".bss", "rb_dropped": ".bss"}),
    "percpu": dict(programs={"percpu_count": "xdp"},
                   maps={"pcpu_count": ".maps", "pcpu_stats": ".maps"}),
    "kconfig": dict(programs={"kconfig_prog": "xdp"}, maps={},
                    variables={"kc_version": ".bss", "kc_hz": ".bss", "kc_bpf_syscall": ".bss",
                               "kc_missing": ".data"},
                    externs={"LINUX_KERNEL_VERSION", "CONFIG_HZ", "CONFIG_BPF_SYSCALL",
                             "CONFIG_XNF_NO_SUCH_OPTION"}),
    "externs": dict(programs={"extern_prog": "xdp", "extern_typed_var": "xdp", "extern_unguarded": "xdp"},
                    maps={}, variables={"ext_put_addr": ".bss", "ext_missing_addr": ".data"},
                    externs={"bpf_prog_active", "bpf_prog_put", "xnf_no_such_symbol", "bpf_cast_to_kern_ctx",
                             "xnf_no_such_kfunc", "LINUX_HAS_SYSCALL_WRAPPER", "LINUX_HAS_BPF_COOKIE",
                             "LINUX_XNF_NO_SUCH_VALUE", "CONFIG_BPF_JIT", "CONFIG_XNF_NO_SUCH_OPTION"}),
    "bpf_cc": dict(programs={"xnf_reno_init": "struct_ops/xnf_reno_init",
                             "xnf_reno_ssthresh": "struct_ops/xnf_reno_ssthresh",
                             "xnf_reno_cong_avoid": "struct_ops/xnf_reno_cong_avoid",
                             "xnf_reno_undo_cwnd": "struct_ops/xnf_reno_undo_cwnd"},
                   maps={"xnf_reno": ".struct_ops.link", "xnf_reno_legacy": ".struct_ops"},
                   variables={"cc_acks": ".bss"}, externs={"tcp_slow_start", "tcp_cong_avoid_ai"}, core_relo=True),
    "map_details": dict(programs={"map_details_prog": "xdp"},
                        maps={n: ".maps" for n in ("odd_ringbuf", "socks", "sock_hash", "devs", "dev_hash",
                                                   "cpus", "xsks", "queue", "bloom5")},
                        variables={"md_runs": ".bss", "md_limit": ".data"}),
    "externs_strong_missing": dict(programs={"strong_missing": "xdp"}, maps={}, externs={"xnf_no_such_kfunc"}),
    "btf_types": dict(programs={"btf_socket": "socket"},
                      maps={"flows": ".maps", "matrices": ".maps"}),
    "sections": dict(programs={"sec_xdp": "xdp", "sec_xdp_frags": "xdp.frags", "sec_tc": "tc",
                               "sec_classifier": "classifier",
                               "sec_tcx_ingress": "tcx/ingress", "sec_tcx_egress": "tcx/egress",
                               "sec_socket": "socket", "sec_iter_map": "iter/bpf_map",
                               "sec_tracepoint": "tracepoint/syscalls/sys_enter_getpid",
                               "sec_raw_tp": "raw_tp/sys_enter"},
                     maps={}, sections={"version"}),
    "sections_fentry": dict(programs={"sec_fentry": "fentry/bpf_fentry_test1"}, maps={}),
    "sections_parse_only": dict(programs={"sec_freplace": "freplace/xnf_target_func",
                                          "sec_struct_ops": "struct_ops/xnf_test_op"}, maps={}),
    "unknown_section": dict(programs={"bogus_prog": "bogus/foo"}, maps={}),
    "no_license_gpl_helper": dict(programs={"no_license_prog": "xdp"}, maps={"nl_map": ".maps"},
                                  license=None),
    "verifier_reject": dict(programs={"verifier_reject_prog": "xdp"}, maps={"vr_map": ".maps"}),
    "core_relo": dict(programs={"core_prog": "raw_tp/sys_enter"}, maps={},
                      variables={"core_pid": ".bss"}, core_relo=True),
    "core_kinds": dict(programs={"core_kinds": "raw_tp/sys_enter"}, maps={},
                       variables={"core_pid": ".bss", "core_comm": ".bss", "core_ringbuf_value": ".bss"},
                       core_relo=True),
    "core_poison": dict(programs={"core_guarded": "raw_tp/sys_enter", "core_unguarded": "raw_tp/sys_enter"},
                        maps={}, variables={"poison_out": ".bss"}, core_relo=True),
    "links": dict(programs={'l_tracepoint': 'tracepoint/syscalls/sys_enter_getpid', 'l_raw_tp': 'raw_tp/sys_enter', 'l_tp_btf': 'tp_btf/sys_enter', 'l_fentry': 'fentry/__task_pid_nr_ns', 'l_kprobe': 'kprobe/__x64_sys_getpid', 'l_kretprobe': 'kretprobe/__x64_sys_getpid', 'l_ksyscall': 'ksyscall/getpid', 'l_kprobe_multi': 'kprobe.multi/__x64_sys_getpid', 'l_uprobe': 'uprobe', 'l_uretprobe': 'uretprobe', 'l_uprobe_s': 'uprobe.s', 'l_uprobe_multi': 'uprobe.multi', 'l_usdt': 'usdt', 'l_cgroup_skb': 'cgroup_skb/egress', 'l_cgroup_sock': 'cgroup/sock_create', 'l_cgroup_connect4': 'cgroup/connect4', 'l_sk_lookup': 'sk_lookup', 'l_sk_msg': 'sk_msg', 'l_sk_skb': 'sk_skb/stream_verdict', 'l_iter_task': 'iter/task'},
                  maps={"hits": ".maps", "socks": ".maps"}, core_relo=True),
    "usdt_args": dict(programs={"usdt_args": "usdt", "kprobe_cookie": "kprobe"},
                      functions={"bpf_usdt_arg": ".text", "bpf_usdt_arg_cnt": ".text", "bpf_usdt_cookie": ".text"},
                      maps={"seen": ".maps", "__bpf_usdt_specs": ".maps", "__bpf_usdt_ip_to_spec_id": ".maps"},
                      externs={"LINUX_HAS_BPF_COOKIE"}),
}


def obj_path(name):
    return os.path.join(BPF_DIR, name + ".bpf.o")


@pytest.fixture(params=sorted(FIXTURES), scope="module")
def fixture(request):
    with open(obj_path(request.param), "rb") as f:
        data = f.read()
    elf = ELFFile(io.BytesIO(data))
    return request.param, FIXTURES[request.param], elf, data


def symbols(elf):
    """{name: (type, bind, section name or None)} of the symbol table."""
    symtab = elf.get_section_by_name(".symtab")
    out = {}
    for sym in symtab.iter_symbols():
        shndx = sym["st_shndx"]
        sec = elf.get_section(shndx).name if isinstance(shndx, int) and shndx else None
        out[sym.name] = (sym["st_info"]["type"], sym["st_info"]["bind"], sec)
    return out


def test_every_source_has_a_fixture_entry():
    sources = {f[: -len(".bpf.c")] for f in os.listdir(BPF_DIR) if f.endswith(".bpf.c")}
    assert sources == set(FIXTURES), "update FIXTURES and tests/bpf/README.md with new fixtures"


def test_bpf_relocatable_elf(fixture):
    name, _, elf, _ = fixture
    assert elf.elfclass == 64 and elf.little_endian, name
    assert elf["e_machine"] == EM_BPF, name
    assert elf["e_type"] == "ET_REL", name


def test_programs_in_expected_sections(fixture):
    name, spec, elf, _ = fixture
    syms = symbols(elf)
    for prog, section in spec["programs"].items():
        assert prog in syms, f"{name}: program {prog} missing"
        kind, bind, sec = syms[prog]
        assert (kind, bind, sec) == ("STT_FUNC", "STB_GLOBAL", section), (name, prog)
        flags = elf.get_section_by_name(section)["sh_flags"]
        assert flags & 0x4, f"{name}: section {section} is not executable"  # SHF_EXECINSTR


def test_subprograms_and_variables(fixture):
    name, spec, elf, _ = fixture
    syms = symbols(elf)
    for what in ("functions", "variables"):
        for sym, section in spec.get(what, {}).items():
            assert sym in syms and syms[sym][2] == section, (name, sym, syms.get(sym))


def test_maps(fixture):
    name, spec, elf, _ = fixture
    syms = symbols(elf)
    for m, section in spec["maps"].items():
        assert syms.get(m, (None, None, None))[2] == section, (name, m)
    if spec.get("legacy"):
        sec = elf.get_section_by_name("maps")
        assert sec.data_size == spec["legacy"] * len(spec["maps"]), name


def test_license(fixture):
    name, spec, elf, _ = fixture
    sec = elf.get_section_by_name("license")
    if "license" in spec and spec["license"] is None:
        assert sec is None, name
    else:
        assert sec is not None and sec.data().rstrip(b"\0") == b"GPL", name


def test_other_sections(fixture):
    name, spec, elf, _ = fixture
    for section in spec.get("sections", ()):
        assert elf.get_section_by_name(section) is not None, (name, section)


def test_kconfig_externs_are_undefined(fixture):
    name, spec, elf, _ = fixture
    syms = symbols(elf)
    for ext in spec.get("externs", ()):
        assert ext in syms and syms[ext][2] is None, (name, ext)


def test_btf_and_core_relocations(fixture):
    """Only the fixtures marked core_relo carry CO-RE relocations (resolved by xnf.core.object.core_reloc)."""
    name, spec, elf, _ = fixture
    assert elf.get_section_by_name(".BTF") is not None, name
    ext = elf.get_section_by_name(".BTF.ext").data()
    magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", ext)
    assert magic == 0xEB9F, name
    func_len, line_len = struct.unpack_from("<4xI4xI", ext, 8)
    assert func_len > 0 and line_len > 0, f"{name}: no func/line info"
    core_len = struct.unpack_from("<4xI", ext, 24)[0] if hdr_len >= 32 else 0
    assert (core_len > 0) == bool(spec.get("core_relo")), name


def test_no_build_paths_inside(fixture):
    name, _, _, data = fixture
    assert ROOT.encode() not in data, f"{name}: build path leaked; build with tools/build-bpf"


def test_bench_object():
    with open(os.path.join(ROOT, "bench", "bpf", "many.bpf.o"), "rb") as f:
        elf = ELFFile(f)
        syms = symbols(elf)
    progs = [n for n, (t, b, s) in syms.items() if t == "STT_FUNC" and s in ("xdp", "tc")]
    maps = [n for n, (t, b, s) in syms.items() if s == ".maps"]
    assert len(progs) == 20 and len(maps) == 20
