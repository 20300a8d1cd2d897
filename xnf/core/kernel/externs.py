"""Values of an object's externs from the running kernel, by libbpf's rules
(``bpf_object__resolve_externs``, ``bpf_object__read_kconfig_file``, ``find_ksym_btf_id``).

* ``__kconfig``: ``CONFIG_*`` from ``/boot/config-$(uname -r)`` or ``/proc/config.gz``;
  ``LINUX_KERNEL_VERSION``, ``LINUX_HAS_BPF_COOKIE`` and ``LINUX_HAS_SYSCALL_WRAPPER``
  computed; any other weak ``LINUX_*`` is 0.
* typed ``__ksym`` variables: a BTF VAR of vmlinux or of a module (its BTF fd rides in the
  second half of the ``ldimm64``);
* untyped (``const void``) ``__ksym`` variables: an address from ``/proc/kallsyms``;
* kfuncs: a BTF FUNC of vmlinux or of a module (the module's BTF fd goes in the program's
  ``fd_array``, its index in the call's ``off``).

A weak extern the kernel does not have is 0 (a weak kfunc's call is poisoned, as libbpf
does: the verifier refuses it only if it can be reached); a strong one is an
:class:`ExternError` naming it.
"""
import ctypes
import gzip
import os
import re

from xnf.core import uapi
from xnf.core.errors import BPFError, ConfigError, NotSupportedError, VerifierError, XnfError
from xnf.core.kernel import syscall
from xnf.core.kernel.fd import FD
from xnf.core.object import btf as B
from xnf.core.object import externs as E
from xnf.core.object import insn as I
from xnf.core.object.core_reloc import kernel_module_targets, types_are_compat

POISON_CALL_KFUNC_BASE = 2002000000
"""A weak kfunc the kernel lacks becomes ``call 2002000000 + extern index``, libbpf's value."""
KALLSYMS = "/proc/kallsyms"


class ExternError(ConfigError):
    """An extern the running kernel cannot give a value: the name and what was looked up."""


class MissingKfuncError(VerifierError):
    """The verifier reached a call to a weak kfunc this kernel lacks (libbpf's poisoned call)."""

    def __init__(self, error, kfunc):
        super().__init__(error.program, error.errno, error.log)
        self.kfunc = kfunc
        XnfError.__init__(self, f"program {error.program!r} calls kfunc {kfunc!r}, which this kernel lacks "
                                "(declared __weak, so the object loads only if the call cannot be reached)",
                          f"guard the call: if (bpf_ksym_exists({kfunc})) ...")


class Resolution:
    """What each ksym and kfunc resolved to, and the module BTF fds the programs refer to.

    ``ksyms``: name -> ``("btf", type id, btf fd)`` or ``("addr", address)``;
    ``kfuncs``: name -> ``(btf id, fd_array index)`` or ``("poison", imm)``.
    """

    def __init__(self):
        self.ksyms = {}
        self.kfuncs = {}
        self.fd_array = []  # index 0 stays unused, as libbpf leaves it
        self._module_fds = {}

    def patch(self, ins, reference):
        """Rewrite ``ins`` (a copy), which refers to a ksym or kfunc: ``reference`` is its
        ``("ksym" | "kfunc", name)``."""
        kind, name = reference
        if kind == "kfunc":
            value = self.kfuncs[name]
            if value[0] == "poison":
                ins.src, ins.dst, ins.off, ins.imm = 0, 0, 0, value[1]
            else:
                ins.src, ins.imm, ins.off = I.BPF_PSEUDO_KFUNC_CALL, value[0], value[1]
            return
        value = self.ksyms[name]
        if value[0] == "btf":
            ins.src, ins.imm = I.BPF_PSEUDO_BTF_ID, value[1] | (value[2] << 32)
        else:
            ins.src, ins.imm = 0, value[1]

    def explain(self, error):
        """A :class:`MissingKfuncError` when ``error``'s log shows a poisoned kfunc call, else ``error``."""
        if not isinstance(error, VerifierError):
            return error
        for name, value in self.kfuncs.items():
            if value[0] == "poison" and f"invalid func unknown#{value[1]}" in (error.log or ""):
                return MissingKfuncError(error, name)
        return error

    def fd_array_buffer(self):
        """The int array BPF_PROG_LOAD's ``fd_array`` points at, or None."""
        if not self.fd_array:
            return None
        fds = [0] + [int(fd) for fd in self.fd_array]
        return (ctypes.c_int * len(fds))(*fds)

    def close(self):
        for fd in self._module_fds.values():
            fd.close()
        self._module_fds = {}

    def module_fd(self, module):
        fd = self._module_fds.get(module)
        if fd is None:
            fd = self._module_fds[module] = _module_btf_fd(module)
        return fd


def resolve(spec, kernel_btf=None, kallsyms=KALLSYMS, config=None):
    """Fill ``.kconfig`` in ``spec`` (a copy the loader owns) and resolve every ksym and kfunc.

    ``kernel_btf`` replaces vmlinux BTF (tests); ``config`` a ``{CONFIG_X: "value"}`` dict.
    """
    res = Resolution()
    if not spec.externs:
        return res
    try:
        if spec.kconfig:
            fill_kconfig(spec, config)
        ksyms = [e for e in spec.externs.values() if e.section == ".ksyms"]
        untyped = {e.name for e in ksyms if not e.is_func and not e.type_id}
        addresses = read_kallsyms(untyped, kallsyms) if untyped else {}
        vmlinux = kernel_btf
        for index, ext in enumerate(spec.externs.values()):
            if ext.section != ".ksyms":
                continue
            if ext.name in untyped:
                addr = addresses.get(ext.name)
                if addr is None and not ext.weak:
                    raise ExternError(f"extern {ext.name!r} (__ksym) is not in {kallsyms}",
                                      "the kernel has no such symbol; declare it __weak to load anyway")
                res.ksyms[ext.name] = ("addr", addr or 0)
                continue
            if vmlinux is None:
                vmlinux = B.load_vmlinux()
            found = _find_btf(vmlinux, ext.name, B.KIND_FUNC if ext.is_func else B.KIND_VAR,
                              kernel_btf is None)
            if found is None:
                if not ext.weak:
                    what = "kernel function" if ext.is_func else "kernel variable"
                    raise ExternError(f"extern {ext.name!r} (__ksym) names no {what} in the kernel's or its "
                                      "modules' BTF", "the kernel lacks it; declare it __weak to load anyway")
                res.ksyms[ext.name] = ("addr", 0)
                if ext.is_func:
                    res.kfuncs[ext.name] = ("poison", POISON_CALL_KFUNC_BASE + index)
                continue
            module, kbtf, type_id = found
            _check_compatible(spec, ext, kbtf, type_id)
            fd = res.module_fd(module) if module else None
            res.ksyms[ext.name] = ("btf", type_id, int(fd) if fd is not None else 0)
            if ext.is_func:
                slot = 0
                if fd is not None:
                    if fd not in res.fd_array:
                        res.fd_array.append(fd)
                    slot = res.fd_array.index(fd) + 1
                res.kfuncs[ext.name] = (type_id, slot)
    except BaseException:
        res.close()
        raise
    return res


def _find_btf(vmlinux, name, kind, with_modules):
    """(module name or None, BTF, type id) of ``name`` in vmlinux, then in each module."""
    type_id = vmlinux.find(name, kind)
    if type_id is not None:
        return None, vmlinux, type_id
    if with_modules:
        for target in kernel_module_targets(vmlinux):
            type_id = target.btf.find(name, kind)
            if type_id is not None and type_id >= target.start_id:
                return target.name, target.btf, type_id
    return None


def _check_compatible(spec, ext, kbtf, type_id):
    """libbpf refuses a typed ksym or kfunc whose declaration does not match the kernel's."""
    target = kbtf[type_id].type
    if ext.is_func:
        ok = types_are_compat(spec.btf, ext.type_id, kbtf, target)
    else:
        ok = types_are_compat(spec.btf, ext.type_id, kbtf, kbtf.resolve(target)[0])
    if ok <= 0:
        what = "function prototype" if ext.is_func else "type"
        raise ExternError(f"extern {ext.name!r} (__ksym): its {what} {spec.btf.type_name(ext.type_id)!r} does not "
                          f"match the kernel's {kbtf.type_name(target)!r}", "declare it as the kernel does")


# --- kallsyms ----------------------------------------------------------------------------

def read_kallsyms(names, path=KALLSYMS):
    """Addresses of ``names`` in kallsyms; two different addresses for one name is an error."""
    found = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3 or parts[2] not in names:
                    continue
                addr = int(parts[0], 16)
                if parts[2] in found and found[parts[2]] != addr:
                    raise ExternError(f"extern {parts[2]!r} (__ksym) is ambiguous in {path}: "
                                      f"{found[parts[2]]:#x} and {addr:#x}", "give it a type (it then comes from BTF)")
                found[parts[2]] = addr
    except OSError as e:
        raise NotSupportedError(f"reading {path} for __ksym externs ({e.strerror})") from None
    if found and not any(found.values()):
        raise ExternError(f"{path} shows every address as 0 (kptr_restrict)",
                          "load as root (CAP_SYSLOG) or set kernel.kptr_restrict=0")
    return found


# --- kconfig -----------------------------------------------------------------------------

def kernel_config():
    """``{CONFIG_X: value}`` of the running kernel as libbpf reads it (``/boot/config-$(uname -r)``
    first, then ``/proc/config.gz``), or None when neither is readable."""
    release = os.uname().release
    for path, opener in ((f"/boot/config-{release}", open), ("/proc/config.gz", gzip.open)):
        try:
            with opener(path, "rt") as f:
                text = f.read()
        except OSError:
            continue
        conf = {}
        for line in text.splitlines():
            if line.startswith("CONFIG_") and "=" in line:
                k, _, v = line.partition("=")
                conf[k] = v.strip()
        return conf
    return None


def kernel_version():
    """LINUX_KERNEL_VERSION as libbpf computes it: KERNEL_VERSION(a, b, min(c, 255)) of uname,
    or Ubuntu's /proc/version_signature when there is one."""
    try:
        with open("/proc/version_signature") as f:
            nums = re.findall(r"\d+", f.read().split()[-1])[:3]
    except (OSError, IndexError):
        nums = re.findall(r"\d+", os.uname().release)[:3]
    a, b, c = [int(x) for x in nums] + [0] * (3 - len(nums))
    return (a << 16) + (b << 8) + min(c, 255)


def has_bpf_cookie():
    """libbpf's FEAT_BPF_COOKIE: a kprobe program may call bpf_get_attach_cookie."""
    from xnf.core.kernel.features import have_helper  # probes are loaded only when asked

    try:
        return int(have_helper("kprobe", uapi.BPF_FUNC_get_attach_cookie))
    except (BPFError, ValueError):
        return 0


def has_syscall_wrapper():
    """libbpf's FEAT_SYSCALL_WRAPPER: syscalls enter through ``__<arch>_sys_*`` wrappers."""
    prefix = {"x86_64": "x64", "aarch64": "arm64", "s390x": "s390", "riscv64": "riscv"}.get(os.uname().machine)
    if prefix is None:
        return 0
    name = f"__{prefix}_sys_bpf"
    try:
        with open(KALLSYMS) as f:
            return int(any(line.split()[2:3] == [name] for line in f))
    except OSError:
        return 0


_VIRTUAL = {"LINUX_KERNEL_VERSION": kernel_version, "LINUX_HAS_BPF_COOKIE": has_bpf_cookie,
            "LINUX_HAS_SYSCALL_WRAPPER": has_syscall_wrapper}


def fill_kconfig(spec, config=None):
    """Write the value of every ``__kconfig`` extern into the ``.kconfig`` map's data."""
    data = spec.maps[".kconfig"].data
    conf = config
    for name, (off, size, type_id) in spec.kconfig.items():
        ext = spec.externs.get(name)
        weak = ext is not None and ext.weak
        kind, signed = E.kcfg_type(spec.btf, type_id)
        if kind == E.KCFG_UNKNOWN:
            raise ExternError(f"__kconfig extern {name!r} has a type libbpf cannot fill "
                              f"({spec.btf.type_name(type_id)})", "use bool, char, an integer, a char array "
                              "or enum libbpf_tristate")
        if name.startswith("LINUX_"):
            compute = _VIRTUAL.get(name)
            if compute is None:
                if not weak:
                    raise ExternError(f"__kconfig extern {name!r} is no value libbpf or xnf knows "
                                      f"(known: {', '.join(sorted(_VIRTUAL))})",
                                      "declare it __weak to read 0 where it is unknown")
                value = 0
            else:
                value = compute()
            _put_num(data, off, size, kind, signed, name, value)
            continue
        if not name.startswith("CONFIG_"):
            raise ExternError(f"__kconfig extern {name!r} is neither CONFIG_* nor LINUX_*",
                              "only kernel config options and libbpf's LINUX_* values are __kconfig")
        if conf is None:
            conf = kernel_config()
            if conf is None:
                raise NotSupportedError("reading the kernel configuration for __kconfig externs",
                                        hint="needs /boot/config-$(uname -r) or /proc/config.gz (CONFIG_IKCONFIG_PROC)")
        raw = conf.get(name)
        if raw is None:
            if not weak:
                raise ExternError(f"__kconfig extern {name!r} is not set in this kernel's configuration",
                                  "declare it __weak to read 0 when the option is not set")
            data[off:off + size] = bytes(size)
            continue
        _put_value(data, off, size, kind, signed, name, raw)


def _put_value(data, off, size, kind, signed, name, raw):
    if raw[:1] in ("y", "n", "m"):
        ch = raw[0]
        if kind == E.KCFG_BOOL:
            if ch == "m":
                raise ExternError(f"__kconfig {name}=m (a module) does not fit a bool extern",
                                  "declare it enum libbpf_tristate")
            value = int(ch == "y")
        elif kind == E.KCFG_TRISTATE:
            value = {"y": 1, "n": 0, "m": 2}[ch]
        elif kind == E.KCFG_CHAR:
            value = ord(ch)
        else:
            raise ExternError(f"__kconfig {name}={raw} is a tristate; the extern is "
                              "neither bool, char nor enum libbpf_tristate", "change the extern's type")
        data[off:off + size] = value.to_bytes(size, "little")
    elif raw.startswith('"'):
        if kind != E.KCFG_CHAR_ARR:
            raise ExternError(f"__kconfig {name}={raw} is a string; the extern is no char array",
                              "declare it char NAME[N]")
        text = raw.strip('"').encode()
        data[off:off + size] = text[:size - 1].ljust(size, b"\0")
    else:
        try:
            value = int(raw, 0)
        except ValueError:
            raise ExternError(f"__kconfig {name}={raw!r} is not a valid integer") from None
        _put_num(data, off, size, kind, signed, name, value)


def _put_num(data, off, size, kind, signed, name, value):
    if kind not in (E.KCFG_INT, E.KCFG_CHAR, E.KCFG_BOOL):
        raise ExternError(f"__kconfig {name}={value} is a number; the extern is no integer")
    if kind == E.KCFG_BOOL and value not in (0, 1):
        raise ExternError(f"__kconfig {name}={value} does not fit a bool")
    bits = 8 * size
    if size < 8 and not (-(1 << (bits - 1)) <= value < (1 << (bits - 1)) if signed else 0 <= value < (1 << bits)):
        raise ExternError(f"__kconfig {name}={value} does not fit the extern's {size} bytes")
    data[off:off + size] = (value & ((1 << bits) - 1)).to_bytes(size, "little")


# --- module BTF --------------------------------------------------------------------------

class _BtfInfo(ctypes.Structure):
    _fields_ = [("btf", ctypes.c_uint64), ("btf_size", ctypes.c_uint32), ("id", ctypes.c_uint32),
                ("name", ctypes.c_uint64), ("name_len", ctypes.c_uint32), ("kernel_btf", ctypes.c_uint32)]


def _module_btf_fd(module):
    """An fd of the kernel's BTF object for ``module`` (found by name among the loaded BTFs)."""
    for btf_id in syscall.iter_ids("btf"):
        try:
            fd = syscall.fd_by_id("btf", btf_id)
        except BPFError:
            continue  # gone since listed
        name = ctypes.create_string_buffer(64)
        info = _BtfInfo(name=ctypes.addressof(name), name_len=len(name))
        syscall.obj_get_info_by_fd(int(fd), info)
        if info.kernel_btf and name.value.decode() == module:
            return fd if isinstance(fd, FD) else FD(fd)
        fd.close()
    raise ExternError(f"kernel module {module!r} has BTF in /sys/kernel/btf but no BTF object to refer to",
                      "the module was unloaded while loading; retry")
