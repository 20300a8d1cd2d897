"""A load that fails in any phase leaves nothing behind: no new maps, programs or BTF in
the kernel, no bpf file descriptors in the process, no new pins; pins that existed
before the load stay as they were.

Three independent views: the kernel's id lists (``syscall.iter_ids``, filtered by the
names this test gave its objects, since other tests may load things concurrently),
``/proc/self/fd`` and the bpffs directory.
"""
import os
import shutil
import time
import uuid

import pytest
from netenv import bpf_fds

import xnf
from xnf.core import errors
from xnf.core.kernel import info, syscall
from xnf.core.kernel.maps import Map
from xnf.core.object.insn import Instruction
from xnf.core.object.spec import PIN_BY_NAME

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "tests", "bpf")
EXIT_WITHOUT_R0 = [Instruction(0x95)]      # the verifier refuses: R0 !read_ok


def kernel_names(kind):
    """{id: name} of every program or map in the kernel."""
    out = {}
    for obj_id in syscall.iter_ids(kind):
        try:
            fd = syscall.fd_by_id(kind, obj_id)
        except errors.BPFError:
            continue  # freed since listed
        try:
            out[obj_id] = (info.prog_info(fd) if kind == "prog" else info.map_info(fd)).name
        finally:
            fd.close()
    return out


def pins(path):
    out = []
    for dirpath, _dirs, files in os.walk(path):
        out += [os.path.relpath(os.path.join(dirpath, f), path) for f in files if not f.endswith(".debug")]
    return sorted(out)


class Snapshot:
    """What exists before a load; ``assert_nothing_new(names)`` checks after a failed one."""

    def __init__(self, bpffs=None):
        self.fds = bpf_fds()
        self.maps = set(syscall.iter_ids("map"))
        self.progs = set(syscall.iter_ids("prog"))
        self.bpffs = bpffs
        self.pins = pins(bpffs) if bpffs else None

    def assert_nothing_new(self, map_names=(), prog_names=(), timeout=3.0):
        assert bpf_fds() <= self.fds, "bpf file descriptors left open in the process"
        if self.bpffs:
            assert pins(self.bpffs) == self.pins
        map_names = {n[:15] for n in map_names}
        prog_names = {n[:15] for n in prog_names}
        deadline = time.monotonic() + timeout  # maps are freed after an RCU grace period
        while True:
            new_maps = {i: n for i, n in kernel_names("map").items() if i not in self.maps and n in map_names}
            new_progs = {i: n for i, n in kernel_names("prog").items() if i not in self.progs and n in prog_names}
            if not (new_maps or new_progs) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert not new_maps, f"maps left behind: {new_maps}"
        assert not new_progs, f"programs left behind: {new_progs}"


def unique_spec(tmp_path, name):
    """The fixture, copied under a unique file name (so its data maps get unique kernel
    names), with every program renamed uniquely; returns (spec, tag)."""
    tag = uuid.uuid4().hex[:6]
    path = tmp_path / f"r{tag}.bpf.o"
    shutil.copy(os.path.join(BPF_DIR, name + ".bpf.o"), path)
    spec = xnf.open_object(str(path))
    for i, p in enumerate(spec.programs.values()):
        p.name = f"r{tag}_{i}"
    return spec, tag


def prog_names(spec):
    return [p.name for p in spec.programs.values()]


def kernel_map_names(spec, tag):
    """Kernel names of the spec's maps, as the loader gives them (data maps: "r<tag>.bss"...)."""
    from xnf.core.kernel.loader import _kernel_name

    return [_kernel_name(spec, m).decode() for m in spec.maps.values()]


# --- failures in the programs phase ------------------------------------------------------

def test_verifier_rejection_leaves_nothing(tmp_path):
    spec, tag = unique_spec(tmp_path, "verifier_reject")
    before = Snapshot()
    with pytest.raises(errors.VerifierError) as e:
        xnf.load(spec)
    assert "ip->daddr" in e.value.log
    before.assert_nothing_new(kernel_map_names(spec, tag), prog_names(spec))


def test_license_error_leaves_nothing(tmp_path):
    spec, tag = unique_spec(tmp_path, "no_license_gpl_helper")
    before = Snapshot()
    with pytest.raises(errors.LicenseError):
        xnf.load(spec)
    before.assert_nothing_new(kernel_map_names(spec, tag), prog_names(spec))


def test_later_program_failing_unloads_the_earlier_ones(tmp_path):
    """tc_counter has six programs: the last one is broken, the first five loaded first."""
    spec, tag = unique_spec(tmp_path, "tc_counter")
    last = list(spec.programs.values())[-1]
    last.instructions = EXIT_WITHOUT_R0
    last.func_info, last.line_info = [], []
    before = Snapshot()
    with pytest.raises(errors.VerifierError) as e:
        xnf.load(spec)
    assert repr(last.name) in str(e.value)
    before.assert_nothing_new(kernel_map_names(spec, tag), prog_names(spec))


def test_programs_phase_failure_removes_new_pins(tmp_path, bpffs):
    """The map was created and pinned by name before the program failed: the pin goes too."""
    spec, tag = unique_spec(tmp_path, "pin_by_name")
    prog = spec.programs["pin_count"]
    prog.instructions, prog.func_info, prog.line_info = EXIT_WITHOUT_R0, [], []
    before = Snapshot(bpffs)
    with pytest.raises(errors.VerifierError):
        xnf.load(spec, pin_root=bpffs)
    before.assert_nothing_new(kernel_map_names(spec, tag), prog_names(spec))
    assert not os.path.exists(os.path.join(bpffs, "xnf_pinned_cnt"))


def test_failure_keeps_a_pin_that_existed_before(tmp_path, bpffs):
    with xnf.load(os.path.join(BPF_DIR, "pin_by_name.bpf.o"), pin_root=bpffs) as coll:
        coll.maps["xnf_pinned_cnt"][0] = 99
        map_id = coll.maps["xnf_pinned_cnt"].id
    spec, tag = unique_spec(tmp_path, "pin_by_name")
    prog = spec.programs["pin_count"]
    prog.instructions, prog.func_info, prog.line_info = EXIT_WITHOUT_R0, [], []
    before = Snapshot(bpffs)
    with pytest.raises(errors.VerifierError):
        xnf.load(spec, pin_root=bpffs)
    before.assert_nothing_new(prog_names=prog_names(spec))
    with Map.from_pin(os.path.join(bpffs, "xnf_pinned_cnt")) as m:
        assert m.id == map_id and m[0] == 99


# --- failures in the maps phase --------------------------------------------------------------

def test_map_creation_failure_closes_the_maps_made_before(tmp_path, bpffs):
    """pkt_count (pinned) is created, then proto_count is refused by the kernel."""
    spec, tag = unique_spec(tmp_path, "xdp_counter")
    spec.maps["pkt_count"].pinning = PIN_BY_NAME
    spec.maps["proto_count"].max_entries = 0          # EINVAL from BPF_MAP_CREATE
    before = Snapshot(bpffs)
    with pytest.raises(errors.BPFError) as e:
        xnf.load(spec, pin_root=bpffs)
    assert "proto_count" in str(e.value) and "\n" not in str(e.value)
    before.assert_nothing_new(kernel_map_names(spec, tag), prog_names(spec))


def test_incompatible_pin_in_the_maps_phase(tmp_path, bpffs):
    with xnf.load(os.path.join(BPF_DIR, "pin_by_name.bpf.o"), pin_root=bpffs):
        pass
    spec, tag = unique_spec(tmp_path, "pin_by_name_incompat")
    before = Snapshot(bpffs)
    with pytest.raises(errors.MapIncompatibleError):
        xnf.load(spec, pin_root=bpffs)
    before.assert_nothing_new(prog_names=prog_names(spec))


def test_global_data_maps_are_rolled_back(tmp_path):
    """.rodata/.data/.bss maps (written and frozen during the maps phase) go too."""
    spec, tag = unique_spec(tmp_path, "global_data")
    prog = spec.programs["global_data_prog"]
    prog.instructions, prog.func_info, prog.line_info = EXIT_WITHOUT_R0, [], []
    before = Snapshot()
    with pytest.raises(errors.VerifierError):
        xnf.load(spec)
    names = kernel_map_names(spec, tag)
    assert f"r{tag}.rodata" in names
    before.assert_nothing_new(names, prog_names(spec))


# --- failures before anything is created -----------------------------------------------------

def test_unknown_program_name_creates_nothing(tmp_path):
    spec, tag = unique_spec(tmp_path, "xdp_counter")
    before = Snapshot()
    with pytest.raises(errors.ConfigError, match="no program"):
        xnf.load(spec, programs=["nope"])
    before.assert_nothing_new(kernel_map_names(spec, tag), prog_names(spec))


def test_ambiguous_core_relocation_refused_before_anything_is_created(tmp_path):
    """Two target flavours of task_struct with pid at different offsets: CO-RE cannot choose."""
    from xnf.core.object import btf as B
    from xnf.core.object.core_reloc import CoreRelocationError

    spec, tag = unique_spec(tmp_path, "core_relo")
    int_t = B.Type(B.KIND_INT, "int", size=4, int_encoding=B.INT_SIGNED, int_bits=32)
    target = B.BTF([B.VOID, int_t, B.Type(B.KIND_STRUCT, "task_struct", size=8, members=[("pid", 1, 0, 0)]),
                    B.Type(B.KIND_STRUCT, "task_struct___2", size=8, members=[("pid", 1, 32, 0)])])
    before = Snapshot()
    with pytest.raises(CoreRelocationError, match="ambiguity"):
        xnf.load(spec, target_btf=target)
    before.assert_nothing_new(kernel_map_names(spec, tag), prog_names(spec))


def test_a_good_load_after_a_failed_one(tmp_path):
    """The spec is not damaged by a failed load: fix it and load again."""
    spec, tag = unique_spec(tmp_path, "xdp_counter")
    spec.maps["proto_count"].max_entries = 0
    with pytest.raises(errors.BPFError):
        xnf.load(spec)
    spec.maps["proto_count"].max_entries = 16
    with xnf.load(spec) as coll:
        assert coll.programs["xdp_count"].test_run(bytes(64)).retval == 2
