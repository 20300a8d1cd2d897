"""Externs resolved from the running kernel as libbpf resolves them (tests/bpf/externs.bpf.c):
untyped ksyms from /proc/kallsyms, typed ksyms and kfuncs from vmlinux BTF, weak ones the
kernel lacks as 0 (a weak kfunc's call poisoned), libbpf's virtual __kconfig values; and
the kernel's instructions equal those it holds when libbpf loads the same program."""
import os
import sys

import pytest

import xnf
from xnf.core.kernel import externs as X
from xnf.core.object import btf as B
from xnf.core.object import insn as I

sys.path.insert(0, os.path.dirname(__file__))

import core_oracle as O  # noqa: E402

pytestmark = pytest.mark.root

BPF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bpf")
EXTERNS = os.path.join(BPF_DIR, "externs.bpf.o")
XDP_PASS = 2


def kallsyms(name):
    with open("/proc/kallsyms") as f:
        for line in f:
            parts = line.split()
            if parts[2] == name:
                return int(parts[0], 16)
    return None


def kernel_config():
    conf = X.kernel_config()
    if conf is None:
        pytest.skip("no kernel configuration (/proc/config.gz or /boot/config-*) for __kconfig externs")
    return conf


def test_ksyms_kfuncs_and_kconfig_values():
    conf = kernel_config()
    with xnf.load(EXTERNS, programs=["extern_prog"]) as coll:
        assert coll.programs["extern_prog"].test_run(bytes(64)).retval == XDP_PASS
        bss, data = coll.maps[".bss"][0], coll.maps[".data"][0]
    assert bss.ext_put_addr == kallsyms("bpf_prog_put")  # untyped: the kallsyms address
    assert data.ext_missing_addr == 0  # weak, not in kallsyms: 0
    assert bss.ext_kern_ctx == 1  # the kfunc was called and returned the kernel's xdp_buff
    assert bss.ext_kfunc_exists == 1  # a kfunc's address (BPF_PSEUDO_BTF_ID of a FUNC) is not 0
    assert data.ext_kfunc_missing == 0  # a weak kfunc the kernel lacks: address 0, call not reached
    assert data.ext_syscall_wrapper == int(kallsyms("__x64_sys_bpf") is not None)
    assert data.ext_bpf_cookie == 1  # bpf_get_attach_cookie exists since 5.15
    assert data.ext_linux_missing == 0  # a weak LINUX_* libbpf does not know: 0
    assert data.ext_bpf_jit == {"y": 1, "m": 2}.get(conf.get("CONFIG_BPF_JIT"), 0)  # enum libbpf_tristate
    assert data.ext_config_missing == 0  # weak, not in the configuration


def test_kfunc_call_and_typed_ksym_instructions():
    """The kfunc call carries BPF_PSEUDO_KFUNC_CALL and the kernel's BTF id of the FUNC; the
    typed ksym an ldimm64 BPF_PSEUDO_BTF_ID with the id of the VAR (second imm: 0, vmlinux)."""
    vmlinux = B.load_vmlinux()
    spec = xnf.open_object(EXTERNS)
    res = X.resolve(spec.copy())
    try:
        assert res.kfuncs["bpf_cast_to_kern_ctx"] == (vmlinux.find("bpf_cast_to_kern_ctx", B.KIND_FUNC), 0)
        assert res.ksyms["bpf_prog_active"] == ("btf", vmlinux.find("bpf_prog_active", B.KIND_VAR), 0)
        assert res.ksyms["bpf_prog_put"] == ("addr", kallsyms("bpf_prog_put"))
        index = list(spec.externs).index("xnf_no_such_kfunc")
        assert res.kfuncs["xnf_no_such_kfunc"] == ("poison", X.POISON_CALL_KFUNC_BASE + index)
        call = next(i for i in spec.programs["extern_prog"].instructions if i.reference == ("kfunc", "bpf_cast_to_kern_ctx"))
        patched = I.Instruction(call.code, call.dst, call.src, call.off, call.imm)
        res.patch(patched, call.reference)
        assert (patched.src, patched.imm, patched.off) == (I.BPF_PSEUDO_KFUNC_CALL, res.kfuncs["bpf_cast_to_kern_ctx"][0], 0)
    finally:
        res.close()


def test_typed_ksym_needs_its_address_in_kallsyms():
    """The kernel wants the address of a typed ksym variable from kallsyms: a kernel without
    CONFIG_KALLSYMS_ALL refuses it (libbpf's load fails the same way)."""
    if kallsyms("bpf_prog_active") is None:
        with pytest.raises(xnf.core.errors.VerifierError, match="failed to find the address for kernel symbol "
                                                                  "'bpf_prog_active'"):
            xnf.load(EXTERNS, programs=["extern_typed_var"])
        return
    with xnf.load(EXTERNS, programs=["extern_typed_var"]) as coll:
        assert coll.programs["extern_typed_var"].test_run(bytes(64)).retval == XDP_PASS
        assert coll.maps[".data"][0].ext_prog_active == 0  # nothing else runs BPF on this CPU meanwhile


def test_unguarded_weak_kfunc_is_refused_naming_it():
    with pytest.raises(X.MissingKfuncError) as info:
        xnf.load(EXTERNS, programs=["extern_unguarded"])
    assert info.value.kfunc == "xnf_no_such_kfunc"
    assert "bpf_ksym_exists(xnf_no_such_kfunc)" in info.value.hint
    assert f"invalid func unknown#{X.POISON_CALL_KFUNC_BASE + list(xnf.open_object(EXTERNS).externs).index('xnf_no_such_kfunc')}" in info.value.log


def test_strong_missing_extern_fails_before_any_kernel_object():
    with pytest.raises(X.ExternError, match="'xnf_no_such_kfunc'.*declare it __weak"):
        xnf.load(os.path.join(BPF_DIR, "externs_strong_missing.bpf.o"))


def test_kconfig_rules():
    """libbpf's rules for values: a tristate 'm' does not fit a bool, strings only char arrays,
    numbers must fit the extern; a strong option that is not set is an error."""
    spec = xnf.open_object(os.path.join(BPF_DIR, "kconfig.bpf.o"))
    good = {"CONFIG_HZ": "250", "CONFIG_BPF_SYSCALL": "y"}
    X.fill_kconfig(spec, good)
    data = spec.maps[".kconfig"].data
    off = spec.kconfig["CONFIG_HZ"][0]
    assert int.from_bytes(data[off:off + 4], "little") == 250
    off = spec.kconfig["CONFIG_XNF_NO_SUCH_OPTION"][0]
    assert data[off:off + 4] == bytes(4)  # weak and not set: 0
    with pytest.raises(X.ExternError, match="CONFIG_BPF_SYSCALL=m"):
        X.fill_kconfig(spec, dict(good, CONFIG_BPF_SYSCALL="m"))
    with pytest.raises(X.ExternError, match="CONFIG_HZ.*not a valid integer"):
        X.fill_kconfig(spec, dict(good, CONFIG_HZ="fast"))
    with pytest.raises(X.ExternError, match="CONFIG_HZ.*string"):
        X.fill_kconfig(spec, dict(good, CONFIG_HZ='"250"'))
    with pytest.raises(X.ExternError, match="CONFIG_HZ.*not set"):
        X.fill_kconfig(spec, {"CONFIG_BPF_SYSCALL": "y"})


@pytest.fixture(scope="module")
def libbpf():
    try:
        return O.Libbpf()
    except OSError as e:
        pytest.fail(f"libbpf.so.1 is the oracle of these tests: install libbpf1 (tools/install) ({e})")


def test_xlated_equals_libbpf(libbpf):
    """The kernel holds the same instructions after xnf and after libbpf loaded extern_prog
    (kfunc ids, kallsyms addresses, .kconfig offsets), map references masked."""
    want, why = libbpf.load_program(EXTERNS, "extern_prog")
    assert want is not None, f"libbpf cannot load extern_prog: {why}"
    got, xwhy = O.xnf_load_program(EXTERNS, "extern_prog")
    assert got is not None, xwhy
    diff = O.first_difference(want, got)
    assert diff is None, f"xlated differs at slot {diff[0]}: libbpf {diff[1]}, xnf {diff[2]}"
