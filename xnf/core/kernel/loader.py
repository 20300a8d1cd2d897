"""Loading an :class:`ObjectSpec` into the kernel, in libbpf's phases, with rollback.

``prepare`` (checks, kconfig values, attach targets) -> ``load_btf`` -> ``create_maps``
(inner templates first, pinned maps reused when compatible, global data written and
``.rodata`` frozen) -> ``load_programs`` (references resolved to fds, verifier log on
rejection) -> ``init_contents`` (prog arrays, map-in-map slots). Any failure closes every
fd created so far and removes every pin this load made, then re-raises.
"""
import ctypes
import errno
import os
import re
import struct

from xnf.core import uapi
from xnf.core.errors import (BPFError, ConfigError, LicenseError, LinkError, MapIncompatibleError,
                             NotSupportedError, PinError, VerifierError, XnfError)
from xnf.core.kernel import externs, map_rules, struct_ops, syscall
from xnf.core.kernel.collection import Collection
from xnf.core.kernel.maps import Map, possible_cpus
from xnf.core.kernel.netns import entered
from xnf.core.kernel.pin import DEFAULT_BPFFS, ensure_bpffs, require_bpffs
from xnf.core.kernel.program import Program
from xnf.core.object import btf as B
from xnf.core.object import insn as I
from xnf.core.object import sections
from xnf.core.object.core_reloc import explain_rejection, relocate_spec
from xnf.core.object.elf import load_spec
from xnf.core.object.spec import PIN_BY_NAME, ObjectSpec

LOG_SIZE_START = 1 << 20
LOG_SIZE_MAX = (1 << 30) - 1
_COMPAT_FIELDS = ("type", "key_size", "value_size", "max_entries", "flags")
_U32_FIELDS = ("type", "key_size", "value_size", "max_entries", "flags", "numa_node", "ifindex")


def load_collection(path_or_spec, programs=None, pin_root=None, log_level=0, netns=None, target_btf=None):
    """Load every map and program (or only ``programs``, by name) of an object or spec.

    ``target_btf`` (a BTF file, or a parsed :class:`~xnf.core.object.btf.BTF`) replaces the running
    kernel's BTF as the target of CO-RE relocations (see :mod:`xnf.core.object.core_reloc`).

    ``netns`` names the network namespace of the device that programs and maps are bound
    to (``ifindex`` in the spec, for offload): bpf(2) resolves it in the calling thread's.
    """
    if isinstance(path_or_spec, ObjectSpec):
        spec = path_or_spec
    else:
        spec = load_spec(os.fspath(path_or_spec))
    if pin_root:
        spec.pin_root = pin_root

    with entered(netns):  # a no-op for netns=None
        return Loader(spec, programs, log_level, target_btf).load()


class Loader:
    def __init__(self, spec, programs=None, log_level=0, target_btf=None):
        self.spec = spec
        self.target_btf = target_btf
        wanted = list(spec.programs) if programs is None else list(programs)
        unknown = [p for p in wanted if p not in spec.programs]
        if unknown:
            raise ConfigError(f"{spec.path} has no program(s) {unknown}; it has {sorted(spec.programs)}")
        self.wanted = wanted
        self.log_level = log_level
        self.btf_fd = None
        self.externs = None
        self.struct_ops = {}
        self.maps = {}
        self.programs = {}
        self.new_pins = []

    def load(self):
        try:
            self.prepare()
            self.load_btf()
            self.create_maps()
            self.load_programs()
            self.init_contents()
        except BaseException:
            self.rollback()
            raise
        finally:
            if self.btf_fd is not None:
                self.btf_fd.close()
            if self.externs is not None:
                self.externs.close()  # module BTF fds: the programs hold their own references
        return Collection(self.spec, self.programs, self.maps)

    def rollback(self):
        for obj in list(self.programs.values()) + list(self.maps.values()):
            obj.close()
        for path in self.new_pins:
            try:
                os.unlink(path)
            except OSError:
                pass
        self.programs, self.maps = {}, {}

    # --- prepare -------------------------------------------------------------------

    def prepare(self):
        for m in self.spec.maps.values():
            _check_map_fields(m)
            if m.inner is not None:
                _check_map_fields(m.inner)
            self._pin_path(m)  # a pin path that would leave the pin root is refused here
        for name in self.wanted:
            p = self.spec.programs[name]
            if p.target_kind == sections.TARGET_PROG and not p.attach_prog_fd:
                raise ConfigError(f"freplace program {name!r} needs a target",
                                  "set spec.programs[name].attach_prog_fd to the fd of the program it replaces")
            if p.target_kind in (sections.TARGET_KFUNC, sections.TARGET_ITER, sections.TARGET_TP_BTF) \
                    and not p.attach_btf_id:
                p.attach_btf_id = _vmlinux_target(p)

        if any(m.struct_ops is not None for m in self.spec.maps.values()) or any(
                p.target_kind == sections.TARGET_STRUCT_OPS for p in self.spec.programs.values()):
            self.struct_ops = struct_ops.prepare(self.spec, B.load_vmlinux())  # attach ids of their programs
        self.spec = relocate_spec(self.spec, self.wanted, self.target_btf)  # a relocated copy if CO-RE is used
        self.externs = externs.resolve(self.spec)  # .kconfig values, ksyms and kfuncs

    # --- BTF -----------------------------------------------------------------------

    def load_btf(self):
        if self.spec.btf is None:
            return
        raw = self.spec.btf.encode()
        try:
            self.btf_fd, _ = syscall.btf_load(raw)
        except BPFError as e:
            if e.errno == errno.EPERM:
                raise
            # Like libbpf, go on without BTF: maps and programs load, only less typed.
            self.btf_fd = None

    # --- maps ----------------------------------------------------------------------

    def create_maps(self):
        specs = self.spec.maps
        # map-in-map outers last: their initial slots refer to other maps
        order = sorted(specs, key=lambda n: specs[n].type in (uapi.BPF_MAP_TYPE_ARRAY_OF_MAPS,
                                                              uapi.BPF_MAP_TYPE_HASH_OF_MAPS))
        for name in order:
            self.maps[name] = self._create_map(specs[name])

    def _pin_path(self, m):
        """Where map ``m`` is pinned: an absolute ``pin_path`` as given (the caller chose it);
        otherwise under the pin root, which a name or relative path may not leave."""
        if m.pin_path and os.path.isabs(m.pin_path):
            return m.pin_path
        if m.pin_path:
            parts = m.pin_path.split("/")
            if "\0" in m.pin_path or ".." in parts:
                raise PinError(f"map {m.name!r}: pin path {m.pin_path!r} would leave the pin root "
                               f"{self.spec.pin_root}", "use a path without '..' or an absolute one")
            return os.path.join(self.spec.pin_root, m.pin_path)
        if m.pinning == PIN_BY_NAME:
            if not m.name or "/" in m.name or ".." in m.name or "\0" in m.name:
                raise PinError(f"map name {m.name!r} cannot be pinned by name under {self.spec.pin_root} "
                               "(it contains '/', '..' or NUL)", "rename the map, or set its pin_path")
            return os.path.join(self.spec.pin_root, m.name)
        return None

    def _create_map(self, m):
        if m.struct_ops is not None:  # the kernel's value type, found in prepare
            try:
                live = struct_ops.create_map(m, self.struct_ops[m.name], _kernel_name(self.spec, m), self.btf_fd)
            except BPFError as e:
                raise _map_error(m, e) from None
            self.maps[m.name] = live
            return live
        path = self._pin_path(m)
        if path is not None:
            if self.spec.pin_root == DEFAULT_BPFFS:
                ensure_bpffs(DEFAULT_BPFFS)  # mount the standard bpffs if the system has none
            require_bpffs(path)  # never mount over a directory the caller chose
            if os.path.exists(path):
                return self._reuse_pinned(m, path)
        max_entries = map_rules.max_entries(m.type, m.max_entries)
        if m.type == uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY and not max_entries:
            max_entries = possible_cpus()
        inner_fd = None
        try:
            if m.inner is not None:
                inner_fd = self._raw_create(m.inner, map_rules.max_entries(m.inner.type, m.inner.max_entries))
            fd = self._raw_create(m, max_entries, inner_fd)
        finally:
            if inner_fd is not None:
                inner_fd.close()
        key_id, value_id = map_rules.btf_types(m.type, m.btf_key_type_id, m.btf_value_type_id)
        live = Map(fd, m.name, m.type, m.key_size, m.value_size, max_entries, m.flags,
                   self.spec.btf if (key_id or value_id) else None, key_id, value_id)
        self.maps[m.name] = live  # owned by the loader from here on, for rollback
        if m.is_data:
            value = m.initial_value()
            if value is not None:  # else the kernel's zero-filled map already holds it
                live.update(0, value)
            if m.freeze:
                live.freeze()
        if path is not None:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            live.pin(path)
            self.new_pins.append(path)
        return live

    def _raw_create(self, m, max_entries, inner_fd=None):
        name = _kernel_name(self.spec, m)
        args = dict(flags=m.flags, name=name, inner_map_fd=int(inner_fd) if inner_fd is not None else 0,
                    numa_node=m.numa_node, ifindex=m.ifindex, map_extra=m.map_extra)
        key_id, value_id = map_rules.btf_types(m.type, m.btf_key_type_id, m.btf_value_type_id)
        if self.btf_fd is not None and (key_id or value_id) and not m.ifindex:
            try:
                return syscall.map_create(m.type, m.key_size, m.value_size, max_entries,
                                          btf_fd=int(self.btf_fd), btf_key_type_id=key_id,
                                          btf_value_type_id=value_id, **args)
            except BPFError as e:
                if map_rules.is_known_kind(m.type) or e.errno in (errno.EPERM, errno.ENOMEM, errno.E2BIG):
                    raise _map_error(m, e) from None
                # a kind newer than map_rules' table: libbpf's last resort, a retry without BTF
        try:
            return syscall.map_create(m.type, m.key_size, m.value_size, max_entries, **args)
        except BPFError as e:
            raise _map_error(m, e) from None

    def _reuse_pinned(self, m, path):
        live = Map.from_pin(path)
        self.maps[m.name] = live
        want = {"type": m.type, "key_size": m.key_size, "value_size": m.value_size,
                "max_entries": map_rules.max_entries(m.type, m.max_entries) or live.max_entries, "flags": m.flags}
        diff = [f"{k} {getattr(live, k)} != {v}" for k, v in want.items() if getattr(live, k) != v]
        if diff:
            raise MapIncompatibleError(
                f"map {m.name!r} pinned at {path} does not match the object ({', '.join(diff)})",
                f"remove the old pin (rm {path}) or change the map's pinning")
        live.name = m.name
        return live

    # --- programs ------------------------------------------------------------------

    def load_programs(self):
        for name in self.wanted:
            try:
                self.programs[name] = self._load_program(self.spec.programs[name])
            except VerifierError as e:  # a poisoned CO-RE relocation is named with its C line and type path
                raise self.externs.explain(explain_rejection(e, self.spec.programs[name])) from None

    def _resolve(self, p):
        out = []
        for ins in p.instructions:
            ref = ins.reference
            if ref is not None:
                kind = ref[0]
                ins = I.Instruction(ins.code, ins.dst, ins.src, ins.off, ins.imm)
                if kind in ("ksym", "kfunc"):
                    self.externs.patch(ins, ref)
                    out.append(ins)
                    continue
                live = self.maps.get(ref[1]) if kind in ("map", "data") else None
                if live is None:
                    raise LinkError(f"program {p.name!r} refers to {kind} {ref[1]!r}, which is not in the object",
                                    "keep every map the program uses in spec.maps")
                if kind == "map":
                    ins.src, ins.imm = I.BPF_PSEUDO_MAP_FD, int(live.fd)
                else:
                    if not 0 <= ref[2] < live.value_size:
                        raise LinkError(f"program {p.name!r} refers to {ref[1]}+{ref[2]}, past its "
                                        f"{live.value_size} bytes")
                    ins.src, ins.imm = I.BPF_PSEUDO_MAP_VALUE, int(live.fd) | (ref[2] << 32)
            out.append(ins)
        return I.encode(out)

    def _load_program(self, p):
        attr = self.program_attr(p)
        if self.log_level:
            return Program(self._load_with_log(p, attr, self.log_level), p.name, p.type, p)
        try:
            return Program(syscall.prog_load(attr), p.name, p.type, p)
        except BPFError as e:
            first_error = e  # reload with a log to say why
        try:
            return Program(self._load_with_log(p, attr, 1), p.name, p.type, p)
        except VerifierError:
            raise
        except BPFError:
            first_error.args = (f"cannot load program {p.name!r} ({p.section}): {first_error.args[0]}",)
            raise first_error from None

    def program_attr(self, p):
        """The BPF_PROG_LOAD attributes of program spec ``p``, its references resolved to the fds
        of the maps created so far: everything short of the system call."""
        code = self._resolve(p)
        insns = ctypes.create_string_buffer(code, len(code))
        lic = ctypes.create_string_buffer((p.license or "").encode())
        attr = syscall.ProgLoadAttr(
            prog_type=p.type, insn_cnt=len(code) // 8, insns=ctypes.addressof(insns),
            license=ctypes.addressof(lic), kern_version=p.kern_version, prog_flags=p.flags,
            prog_name=_sanitize(p.name)[:15].encode(), prog_ifindex=p.ifindex,
            expected_attach_type=p.expected_attach_type, attach_btf_id=p.attach_btf_id,
            attach_prog_fd=p.attach_prog_fd)
        attr.keep(insns, lic)  # the attributes point into these buffers
        fd_array = self.externs.fd_array_buffer() if self.externs is not None else None
        if fd_array is not None:  # module kfuncs: their BTF fds, by the index in the call's off
            attr.keep(fd_array)
            attr.fd_array = ctypes.addressof(fd_array)
        if self.btf_fd is not None and p.func_info:
            fi = b"".join(struct.pack("<II", r.insn_off, r.type_id) for r in p.func_info)
            li = b"".join(struct.pack("<IIII", r.insn_off, r.file_off, r.line_off, (r.line << 10) | r.col)
                          for r in p.line_info)
            fib = ctypes.create_string_buffer(fi, len(fi))
            lib = ctypes.create_string_buffer(li, max(len(li), 1))
            attr.keep(fib, lib)
            attr.prog_btf_fd = int(self.btf_fd)
            attr.func_info_rec_size, attr.func_info, attr.func_info_cnt = 8, ctypes.addressof(fib), len(p.func_info)
            if p.line_info:
                attr.line_info_rec_size, attr.line_info = 16, ctypes.addressof(lib)
                attr.line_info_cnt = len(p.line_info)
        return attr

    def _load_with_log(self, p, attr, level):
        size = LOG_SIZE_START
        while True:
            log = ctypes.create_string_buffer(size)
            attr.log_level, attr.log_size, attr.log_buf = level, size, ctypes.addressof(log)
            try:
                fd = syscall.prog_load(attr)
                return fd
            except BPFError as e:
                text = log.value.decode(errors="replace")
                if e.errno == errno.ENOSPC and size < LOG_SIZE_MAX:
                    size = min(max(size * 4, attr.log_true_size), LOG_SIZE_MAX)
                    continue
                if not text:
                    raise
                if "GPL" in text and "non-GPL" in text:
                    raise LicenseError(p.name, e.errno, text, p.license) from None
                raise VerifierError(p.name, e.errno, text) from None
            finally:
                attr.log_level, attr.log_size, attr.log_buf = 0, 0, 0

    # --- initial contents ----------------------------------------------------------

    def init_contents(self):
        for name in self.struct_ops:  # their values are written when they are registered
            self.maps[name].programs = self.programs
        for name, m in self.spec.maps.items():
            if not m.contents:
                continue
            live = self.maps[name]
            if live.pinned_at and live.pinned_at not in self.new_pins:
                continue  # a reused pin keeps its contents
            for key, value in m.contents:
                if m.type == uapi.BPF_MAP_TYPE_PROG_ARRAY:
                    target = self.programs.get(value)
                    if target is None:
                        continue  # that program was not selected for loading
                elif m.type in (uapi.BPF_MAP_TYPE_ARRAY_OF_MAPS, uapi.BPF_MAP_TYPE_HASH_OF_MAPS):
                    target = self.maps.get(value)
                    if target is None:
                        raise XnfError(f"map {name!r} slot {key} refers to unknown map {value!r}")
                else:
                    live[key] = value
                    continue
                live.update(key, int(target.fd).to_bytes(4, "little"))


def _check_map_fields(m):
    """bpf(2) takes these as 32-bit fields (map_extra 64): an edited spec that overflows one
    would otherwise be truncated silently by ctypes."""
    for field in _U32_FIELDS:
        value = getattr(m, field)
        if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
            raise ConfigError(f"map {m.name!r}: {field} {value!r} does not fit the kernel's 32-bit field")
    if not isinstance(m.map_extra, int) or not 0 <= m.map_extra < 1 << 64:
        raise ConfigError(f"map {m.name!r}: map_extra {m.map_extra!r} does not fit 64 bits")
    if m.is_data and len(m.data) != m.value_size:
        raise ConfigError(f"map {m.name!r}: its data is {len(m.data)} bytes but value_size is {m.value_size}",
                          "change the data in place (spec.variables[...]) rather than replacing it")


def _map_error(m, e):
    if e.errno == errno.EINVAL:
        return BPFError("BPF_MAP_CREATE", e.errno,
                        f"cannot create map {m.name!r} ({m.type_name}, key {m.key_size} B, value {m.value_size} B, "
                        f"{m.max_entries} entries, flags {m.flags:#x}): {e.strerror}",
                        "the kernel rejects this combination; check the map definition")
    e.args = (f"cannot create map {m.name!r}: {e.args[0]}",)
    return e


def _sanitize(name):
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


def _kernel_name(spec, m):
    """Kernel map names: 15 characters; data maps are named like libbpf's (object prefix + section)."""
    if m.is_data:
        prefix = _sanitize(os.path.basename(spec.path).split(".")[0])[:max(0, 15 - len(m.section))][:8]
        return _sanitize(prefix + m.section)[:15].encode()
    return _sanitize(m.name)[:15].encode()


def _vmlinux_target(p):
    vmlinux = B.load_vmlinux()
    if p.target_kind == sections.TARGET_ITER:
        name, kind = "bpf_iter_" + p.attach_to, B.KIND_FUNC
    elif p.target_kind == sections.TARGET_TP_BTF:
        name, kind = "btf_trace_" + p.attach_to, B.KIND_TYPEDEF
    else:
        name, kind = p.attach_to, B.KIND_FUNC
    type_id = vmlinux.find(name, kind)
    if type_id is None:
        raise NotSupportedError(f"attach target {name!r} of program {p.name!r} (not in the kernel's BTF)")
    return type_id
