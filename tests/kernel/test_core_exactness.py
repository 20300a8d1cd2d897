"""CO-RE against the running kernel: relocated programs load, read the right fields, and the
kernel holds exactly the instructions it holds when libbpf loads the same program.

The oracle is libbpf itself (libbpf.so, the library bpftool is built on, driven through
ctypes in core_oracle.py, one program at a time so that a refusal is attributed to the
program that caused it) and ``bpftool prog loadall`` for the fixtures. Instructions are
compared as the kernel reports them (``BPF_OBJ_GET_INFO_BY_FD`` xlated), map ids replaced
by map names; a difference fails with the first differing instruction. The relocation
decisions themselves (new value or poisoning, and the target type path matched) are also
compared with libbpf's debug log, which covers programs the kernel then refuses.

The corpus is every BPF object embedded in Debian's libbpf-tools (extracted by
tools/extract-bpf-objects into a temporary directory).
"""
import collections
import os
import shutil
import subprocess
import sys
import threading
import uuid

import pytest

import xnf
from xnf.core.kernel import syscall
from xnf.core.object import btf as B
from xnf.core.object import core_reloc as C

sys.path.insert(0, os.path.dirname(__file__))

import core_oracle as O  # noqa: E402

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "tests", "bpf")
EXTRACT = os.path.join(ROOT, "tools", "extract-bpf-objects")
FIXTURES = ["core_kinds", "core_poison", "core_relo"]
OTHER_FIXTURES = ["externs", "map_details", "bpf_cc", "usdt_args"]  # ksyms, kfuncs, weak externs, .kconfig; map rules;
# struct_ops; __hidden subprograms loaded static (usdt.bpf.h)
RAW_TP_CTX = bytes(8)  # sys_enter's raw_tp arguments; the programs do not read them


def obj(name):
    return os.path.join(BPF_DIR, name + ".bpf.o")


def run_raw_tp(prog):
    """BPF_PROG_TEST_RUN of a raw_tp program, in this thread (the kernel wants repeat 0 and no
    context out for this program type, which Program.test_run does not send)."""
    return syscall.prog_test_run(int(prog.fd), repeat=0, ctx_in=RAW_TP_CTX)[0]


@pytest.fixture(scope="module")
def libbpf():
    try:
        return O.Libbpf()
    except OSError as e:
        pytest.fail(f"libbpf.so.1 is the oracle of these tests: install libbpf1 (tools/install) ({e})")


# --- the fixtures ----------------------------------------------------------------------------

def test_core_kinds_read_the_calling_task():
    """Every relocation kind of core_kinds resolved against this kernel gives the values the
    kernel really has: the program reads its caller (this thread) through relocated offsets."""
    vmlinux = B.load_vmlinux()
    task_id = vmlinux.find("task_struct", B.KIND_STRUCT)
    task = vmlinux[task_id]
    offsets = {m[0]: m[2] // 8 for m in task.members}
    spec = xnf.open_object(obj("core_kinds"))
    with xnf.load(spec) as coll:
        assert run_raw_tp(coll.programs["core_kinds"]) == 0
        bss = coll.maps[".bss"][0]
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "rb") as f:
        comm = f.read().strip()
    assert bss.core_pid == threading.get_native_id()
    assert bss.core_tgid == os.getpid()
    assert bss.core_parent_tgid == os.getppid()
    assert bss.core_comm.rstrip(b"\0") == comm
    assert bss.core_in_execve == 0  # not inside execve while running a test
    assert bss.core_pid_offset == offsets["pid"]
    assert (bss.core_comm_size, bss.core_pid_signed, bss.core_pid_exists) == (16, 1, 1)
    assert (bss.core_missing_exists, bss.core_missing_value) == (0, 0)
    assert (bss.core_type_exists, bss.core_missing_type_exists) == (1, 0)
    assert bss.core_type_size == task.size
    assert bss.core_local_id == spec.btf.find("task_struct___xnf", B.KIND_STRUCT)
    assert bss.core_kernel_id == task_id
    assert bss.core_ringbuf_exists == 1
    assert bss.core_ringbuf_value == vmlinux.enum_values("bpf_map_type")["BPF_MAP_TYPE_RINGBUF"]
    assert bss.core_missing_enum_exists == 0


def test_guarded_poison_loads_and_unguarded_poison_names_the_relocation():
    spec = xnf.open_object(obj("core_poison"))
    with xnf.load(spec, programs=["core_guarded"]) as coll:
        run_raw_tp(coll.programs["core_guarded"])
        assert coll.maps[".bss"][0].poison_out == threading.get_native_id()
    with pytest.raises(C.PoisonedInstructionError) as info:
        xnf.load(spec, programs=["core_unguarded"])
    err = info.value
    text = str(err)
    assert "'core_unguarded'" in text and "instruction 1 " in text
    file, line, _col, src = spec.programs["core_unguarded"].source_line(1)  # clang's line info for insn 1
    assert f"{file}:{line}: {src}" in text and file.endswith("core_poison.bpf.c")
    assert "struct task_struct___gone.xnf_field_removed_long_ago" in text
    assert "invalid func unknown#195896080" in err.log
    assert err.resolution.poisoned and err.resolution.insn == 1


@pytest.mark.parametrize("name", FIXTURES + OTHER_FIXTURES)
def test_fixture_xlated_equals_libbpf(libbpf, name):
    path = obj(name)
    for prog in libbpf.programs(path):
        want, why = libbpf.load_program(path, prog)
        got, xwhy = O.xnf_load_program(path, prog)
        if want is None:
            assert got is None, f"{prog}: libbpf refuses ({why}) but xnf loads it"
            continue
        assert got is not None, f"{prog}: libbpf loads it, xnf refuses: {xwhy}"
        assert_same(prog, want, got)


def test_fixture_xlated_equals_bpftool_loadall():
    """bpftool prog loadall (every program of core_kinds at once) against xnf.load."""
    if shutil.which("bpftool") is None:
        pytest.fail("bpftool not found: install it (tools/install)")
    pin_dir = f"/sys/fs/bpf/xnf-core-{uuid.uuid4().hex[:12]}"
    try:
        out = subprocess.run(["bpftool", "prog", "loadall", obj("core_kinds"), pin_dir],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        with xnf.load(obj("core_kinds")) as coll:
            for name, prog in coll.programs.items():
                pinned = xnf.Program.from_pin(os.path.join(pin_dir, name))
                try:
                    assert_same(name, O.masked_xlated(int(pinned.fd)), O.masked_xlated(int(prog.fd)))
                finally:
                    pinned.close()
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)


def assert_same(prog, want, got):
    diff = O.first_difference(want, got)
    assert diff is None, (f"{prog}: xlated instructions differ at slot {diff[0]}: libbpf {diff[1]}, xnf {diff[2]} "
                          f"({len(want)} vs {len(got)} slots)")


# --- the libbpf-tools corpus -----------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not os.path.exists("/usr/sbin/execsnoop"):
        pytest.skip("the libbpf-tools package is not installed (apt-get install libbpf-tools)")
    out = tmp_path_factory.mktemp("libbpf-tools")
    run = subprocess.run([sys.executable, EXTRACT, str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return sorted(str(p) for p in out.glob("*.bpf.o"))


def test_corpus_xlated_equals_libbpf(libbpf, corpus):
    """Every program of every libbpf-tools object, loaded alone by libbpf and by xnf.

    Both must agree on whether the kernel takes it; where both load it, the kernel's
    instructions must be identical. xnf may refuse only for a feature outside CO-RE
    (recorded with the reason); a refusal caused by CO-RE itself fails the test.
    """
    outcome = collections.Counter()
    with_core = 0
    blocked = collections.Counter()  # why xnf refuses what libbpf loads
    refused = collections.Counter()  # what the kernel (libbpf and xnf alike) refuses
    failures = []
    per_object = {}  # tool -> outcomes of its programs
    for path in corpus:
        tool = os.path.basename(path)[:-len(".bpf.o")]
        names = libbpf.programs(path)
        assert names is not None, f"libbpf cannot open {path}"
        core_progs = _core_programs(path)
        for name in names:
            want, why = libbpf.load_program(path, name)
            got, xwhy = O.xnf_load_program(path, name)
            label = f"{tool}/{name}"
            per_object.setdefault(tool, []).append(want is not None and got is not None)
            if want is not None and got is not None:
                diff = O.first_difference(want, got)
                if diff is not None:
                    failures.append(f"{label}: xlated differs at slot {diff[0]}: libbpf {diff[1]}, xnf {diff[2]}")
                    outcome["different"] += 1
                else:
                    outcome["identical"] += 1
                    with_core += name in core_progs
            elif want is not None:
                outcome["xnf refuses, libbpf loads"] += 1
                blocked[_short(xwhy)] += 1
                if "CoreRelocation" in xwhy or "Poisoned" in xwhy:
                    failures.append(f"{label}: libbpf loads it, xnf's CO-RE refuses it: {xwhy}")
            elif got is not None:
                outcome["xnf loads, libbpf refuses"] += 1
                failures.append(f"{label}: libbpf refuses ({why}) but xnf loads it")
            else:
                outcome["both refuse"] += 1
                refused[_short(xwhy)] += 1
                if f"unknown#{C.POISON_HELPER_ID}" in why and "PoisonedInstructionError" not in xwhy:
                    failures.append(f"{label}: the verifier reached a poisoned relocation but xnf says {xwhy}")
    whole = sum(all(v) for v in per_object.values())
    none = sorted(t for t, v in per_object.items() if not any(v))
    report = [f"libbpf-tools corpus: {len(corpus)} objects, {sum(outcome.values())} programs: {dict(outcome)}; "
              f"identical with CO-RE relocations: {with_core}",
              f"  objects with every program identical: {whole}; with some: {len(per_object) - whole - len(none)}; "
              f"with none (refused): {len(none)} {none}"]
    report += [f"  xnf refuses ({n}): {why}" for why, n in blocked.most_common()]
    report += [f"  both refuse ({n}): {why}" for why, n in refused.most_common()]
    print("\n".join(report))
    assert not failures, "\n".join(failures[:20] + report)
    assert outcome["identical"] and with_core


def test_corpus_relocations_equal_libbpf_decisions(libbpf, corpus):
    """Each CO-RE relocation of the corpus decided as libbpf decides it (its debug log: new
    value or poisoning, and the target path it matched, type id and access string included).

    libbpf relocates before it loads a program, so this covers the programs the kernel then
    refuses (fentry with EPERM, ...) too; only objects whose maps libbpf cannot create are
    never relocated by it.
    """
    relocations, compared, not_relocated, failures = compare_decisions(libbpf, corpus)
    print(f"CO-RE decisions equal to libbpf's: {relocations} relocations in {compared} programs; "
          f"not relocated by libbpf (its maps fail first): {len(not_relocated)}")
    assert not failures, "\n".join(failures[:20])
    assert relocations


def test_fixture_relocations_equal_libbpf_decisions(libbpf):
    relocations, compared, not_relocated, failures = compare_decisions(libbpf, [obj(n) for n in FIXTURES])
    assert not failures, "\n".join(failures)
    assert compared == 4 and not not_relocated and relocations  # core_kinds, core_guarded, core_unguarded, core_prog


def compare_decisions(libbpf, paths):
    """(relocations equal, programs compared, programs libbpf never relocated, failures)."""
    compared = relocations = 0
    not_relocated, failures = [], []
    for path in paths:
        tool = os.path.basename(path)[:-len(".bpf.o")]
        for name in libbpf.programs(path):
            try:
                ours = O.xnf_core_decisions(path, name)
            except xnf.core.errors.XnfError:
                continue  # xnf cannot open the object (counted by test_corpus_xlated_equals_libbpf)
            if not ours:
                continue
            theirs = libbpf.core_log(path, name)
            if not theirs:
                not_relocated.append(f"{tool}/{name}")
                continue
            compared += 1
            for key, r in sorted(ours.items()):
                e = theirs.get(key)
                where = f"{tool}/{name} {key[0]} insn {key[1]}: {r.describe()}"
                if e is None:
                    failures.append(f"{where}: libbpf logged no decision")
                elif e["poisoned"] != r.poisoned:
                    failures.append(f"{where}: libbpf {'poisons' if e['poisoned'] else 'patches'} it")
                elif not r.poisoned and e["new"] != r.new & (1 << 64) - 1:
                    failures.append(f"{where}: libbpf's new value is {e['new']}")
                elif not r.poisoned and e["target"] and not (r.target or "").endswith(" " + e["target"]):
                    failures.append(f"{where}: libbpf matched {e['target']}")
                else:
                    relocations += 1
            missing = [k for k in theirs if k[0] == name and k not in ours]
            failures += [f"{tool}/{name} insn {k[1]}: libbpf relocates it, xnf does not" for k in missing]
    return relocations, compared, not_relocated, failures


def _core_programs(path):
    try:
        return {n for n, p in xnf.open_object(path).programs.items() if p.core_relos}
    except xnf.core.errors.XnfError:
        return set()


def _short(reason):
    """A refusal reason without the names that make every instance unique."""
    import re

    reason = reason.splitlines()[0] if reason else ""
    if reason.startswith("PoisonedInstructionError"):
        return "PoisonedInstructionError: the verifier reaches a CO-RE relocation this kernel cannot satisfy"
    reason = re.sub(r"'[^']*'", "'…'", reason)
    reason = re.sub(r"\((fentry|fexit)/[^)]*\)", r"(\1/…)", reason)
    reason = re.sub(r"\] \(.*", "]", reason)  # the generic hint after the errno
    return reason[:160]
