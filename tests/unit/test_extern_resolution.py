"""Extern resolution without root: kfuncs and ksyms of a kernel module (their BTF fd in
fd_array, its index in the call's off, the fd in an ldimm64's second half), kallsyms
parsing, .kconfig rules, against the kernel's BTF file (readable by anyone)."""
import os

import pytest

import xnf
from xnf.core.kernel import externs as X
from xnf.core.object import btf as B
from xnf.core.object import insn as I

VMLINUX = "/sys/kernel/btf/vmlinux"
BPF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bpf")
EXTERNS = os.path.join(BPF_DIR, "externs.bpf.o")
needs_vmlinux = pytest.mark.skipif(not os.access(VMLINUX, os.R_OK),
                                   reason="no kernel BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF)")


class FakeFD:
    def __init__(self, n):
        self.n, self.closed = n, False

    def __int__(self):
        return self.n

    def close(self):
        self.closed = True


@needs_vmlinux
def test_module_kfunc_goes_through_fd_array(monkeypatch, tmp_path):
    """A kfunc found in a module's BTF: the call's off is the module BTF's index in fd_array
    (index 0 unused, as libbpf leaves it), the array holds its fd, which is closed after load."""
    vmlinux = B.load_vmlinux()
    real = X._find_btf

    def find(kernel, name, kind, with_modules):
        if name == "bpf_cast_to_kern_ctx":  # pretend a module "xnf_mod" provides it
            return "xnf_mod", kernel, kernel.find(name, kind)
        return real(kernel, name, kind, with_modules)

    fds = []
    monkeypatch.setattr(X, "_find_btf", find)
    monkeypatch.setattr(X, "_module_btf_fd", lambda module: fds.append(FakeFD(42)) or fds[-1])
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text("ffffffff81000000 T bpf_prog_put\n")
    spec = xnf.open_object(EXTERNS)
    res = X.resolve(spec, kernel_btf=vmlinux, kallsyms=str(kallsyms), config={"CONFIG_BPF_JIT": "y"})
    kid = vmlinux.find("bpf_cast_to_kern_ctx", B.KIND_FUNC)
    assert res.kfuncs["bpf_cast_to_kern_ctx"] == (kid, 1)
    assert res.ksyms["bpf_cast_to_kern_ctx"] == ("btf", kid, 42)  # its address: the module's fd in the 2nd imm
    assert list(res.fd_array_buffer()) == [0, 42]
    call = I.Instruction(I.CALL, src=I.BPF_PSEUDO_KFUNC_CALL, imm=-1)
    res.patch(call, ("kfunc", "bpf_cast_to_kern_ctx"))
    assert (call.src, call.imm, call.off) == (I.BPF_PSEUDO_KFUNC_CALL, kid, 1)
    addr = I.Instruction(I.LDDW)
    res.patch(addr, ("ksym", "bpf_cast_to_kern_ctx"))
    assert (addr.src, addr.imm) == (I.BPF_PSEUDO_BTF_ID, kid | 42 << 32)
    assert res.ksyms["bpf_prog_put"] == ("addr", 0xffffffff81000000)
    assert res.ksyms["xnf_no_such_symbol"] == ("addr", 0)
    res.close()
    assert len(fds) == 1 and fds[0].closed  # one fd per module, closed with the resolution


def test_kallsyms_ambiguous_and_restricted(tmp_path):
    path = tmp_path / "kallsyms"
    path.write_text("ffffffff81000000 t dup\nffffffff82000000 t dup\n")
    with pytest.raises(X.ExternError, match="ambiguous"):
        X.read_kallsyms({"dup"}, str(path))
    path.write_text("0000000000000000 T f\n")
    with pytest.raises(X.ExternError, match="kptr_restrict"):
        X.read_kallsyms({"f"}, str(path))


@needs_vmlinux
def test_incompatible_kfunc_prototype_is_refused(monkeypatch, tmp_path):
    """libbpf checks a kfunc declaration against the kernel's prototype."""
    vmlinux = B.load_vmlinux()
    real = X._find_btf

    def find(kernel, name, kind, with_modules):
        if name == "bpf_cast_to_kern_ctx":  # a FUNC with another number of arguments
            return None, kernel, kernel.find("bpf_obj_drop_impl", B.KIND_FUNC)
        return real(kernel, name, kind, with_modules)

    monkeypatch.setattr(X, "_find_btf", find)
    spec = xnf.open_object(EXTERNS)
    kallsyms = tmp_path / "kallsyms"
    kallsyms.write_text("ffffffff81000000 T bpf_prog_put\n")
    with pytest.raises(X.ExternError, match="'bpf_cast_to_kern_ctx'.*does not match"):
        X.resolve(spec, kernel_btf=vmlinux, kallsyms=str(kallsyms), config={"CONFIG_BPF_JIT": "y"})


def test_kernel_version_rule(monkeypatch):
    monkeypatch.setattr(X.os, "uname", lambda: os.uname_result(("Linux", "h", "6.18.300-x", "", "x86_64")))
    monkeypatch.setattr(X, "open", lambda *a, **k: (_ for _ in ()).throw(OSError()), raising=False)
    assert X.kernel_version() == (6 << 16) + (18 << 8) + 255  # the patch level saturates at 255
