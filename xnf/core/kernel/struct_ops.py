"""struct_ops maps: a kernel struct of function pointers (``tcp_congestion_ops``, ...) whose
pointers are BPF programs, registered with the kernel subsystem that owns the struct.

As libbpf does (``bpf_map__init_kern_struct_ops``, ``bpf_map__attach_struct_ops``):

* prepare: the kernel's struct (vmlinux BTF, by the local type's name without
  ``___flavour``) and its map value type ``bpf_struct_ops_<name>``; each program pointed to
  gets ``attach_btf_id`` = the struct's BTF id and ``expected_attach_type`` = the index of
  its member in the kernel's struct;
* create: ``BPF_MAP_TYPE_STRUCT_OPS`` with ``btf_vmlinux_value_type_id``, the value's size;
  ``BPF_F_LINK`` for ``.struct_ops.link`` variables;
* register (:meth:`StructOpsMap.register`): the value written (the kernel struct, data
  members copied from the object's initializer by name, each program's fd in its member's
  slot), then a ``BPF_LINK_CREATE`` for link maps; a legacy map registers at the write.
  Unregistering closes the link (legacy: deletes the element).
"""
import attrs

from xnf.core import uapi
from xnf.core.errors import BPFError, ConfigError, NotSupportedError, XnfError
from xnf.core.kernel import syscall
from xnf.core.kernel.maps import Map
from xnf.core.object import btf as B
from xnf.core.object import sections

VALUE_PREFIX = "bpf_struct_ops_"


@attrs.define
class Layout:
    """Where the object's struct goes in the kernel's map value."""

    type_id: int
    """The kernel struct (``tcp_congestion_ops``)."""
    value_type_id: int
    """The map value type (``bpf_struct_ops_tcp_congestion_ops``)."""
    value_size: int
    data: bytes
    """The value with the data members filled in, programs not yet."""
    slots: dict
    """Value offset of each function pointer -> program name."""


def prepare(spec, vmlinux):
    """A :class:`Layout` per struct_ops map; sets each program's attach BTF id and member index."""
    layouts = {}
    owner = {}
    for m in spec.maps.values():
        ops = m.struct_ops
        if ops is None:
            continue
        kid = vmlinux.find(ops.type_name, B.KIND_STRUCT)
        vid = vmlinux.find(VALUE_PREFIX + ops.type_name, B.KIND_STRUCT)
        if kid is None or vid is None:
            raise NotSupportedError(f"struct_ops {ops.type_name!r} (map {m.name!r}): not in the kernel's BTF")
        kstruct, value = vmlinux[kid], vmlinux[vid]
        base = next((bit_off // 8 for name, _t, bit_off, _bf in value.members if name == "data"), None)
        if base is None:
            raise NotSupportedError(f"struct_ops value type {value.name!r} without a 'data' member")
        kmembers = {name: (i, tid, bit_off // 8, bf) for i, (name, tid, bit_off, bf) in enumerate(kstruct.members)}
        out = bytearray(value.size)
        slots = {}
        for name, ltype, bit_off, bf in spec.btf[ops.type_id].members:
            where = f"struct_ops {m.name!r} member {name!r}"
            if name not in kmembers:
                raise ConfigError(f"{where}: the kernel's struct {ops.type_name} has no such member",
                                  "declare the struct as this kernel does")
            index, ktype, koff, kbf = kmembers[name]
            if bf or kbf:
                raise NotSupportedError(f"{where}: a bitfield in a struct_ops struct")
            if _is_func_ptr(spec.btf, ltype):
                if not _is_func_ptr(vmlinux, ktype):
                    raise ConfigError(f"{where}: a function pointer here, not in the kernel's struct")
                prog_name = ops.programs.get(name)
                if prog_name is None:
                    continue  # NULL: the kernel's default, or not implemented
                prog = spec.programs.get(prog_name)
                if prog is None or prog.target_kind != sections.TARGET_STRUCT_OPS:
                    raise ConfigError(f"{where} points at {prog_name!r}, which is no struct_ops program",
                                      'put the function in SEC("struct_ops/...")')
                previous = owner.setdefault(prog_name, (kid, index))
                if previous != (kid, index):
                    raise ConfigError(f"program {prog_name!r} is used for two struct_ops members",
                                      "give each member its own program")
                prog.attach_btf_id, prog.expected_attach_type = kid, index
                slots[base + koff] = prog_name
                continue
            size, ksize = spec.btf.size_of(ltype), vmlinux.size_of(ktype)
            if size != ksize:
                raise ConfigError(f"{where} is {size} bytes; the kernel's is {ksize}")
            local = bit_off // 8
            out[base + koff:base + koff + size] = ops.data[local:local + size]
        layouts[m.name] = Layout(kid, vid, value.size, bytes(out), slots)
    for name, p in spec.programs.items():
        if p.target_kind == sections.TARGET_STRUCT_OPS and name not in owner:
            raise ConfigError(f"struct_ops program {name!r} is in no struct_ops variable",
                              'point a member of a SEC(".struct_ops.link") variable at it')
    return layouts


def create_map(m, layout, kernel_name, btf_fd):
    """The kernel wants the object's BTF too (``btf_fd``), though the value type is its own."""
    if btf_fd is None:
        raise NotSupportedError(f"struct_ops map {m.name!r} without the object's BTF (the kernel refused it)")
    fd = syscall.map_create(m.type, 4, layout.value_size, 1, flags=m.flags, name=kernel_name,
                            btf_fd=int(btf_fd), btf_vmlinux_value_type_id=layout.value_type_id)
    return StructOpsMap(fd, m.name, m.type, 4, layout.value_size, 1, m.flags, layout=layout)


def _is_func_ptr(btf, type_id):
    _, t = btf.resolve(type_id)
    return t.kind == B.KIND_PTR and btf.resolve(t.type)[1].kind == B.KIND_FUNC_PROTO


class StructOpsMap(Map):
    """A struct_ops map: :meth:`register` hands the struct to its kernel subsystem."""

    def __init__(self, *args, layout, **kwargs):
        super().__init__(*args, **kwargs)
        self.layout = layout
        self.programs = {}
        self._registrations = []

    @property
    def is_link(self):
        return bool(self.flags & uapi.BPF_F_LINK)

    def kernel_value(self):
        """The map value: the kernel struct with each program's fd in its member's slot."""
        value = bytearray(self.layout.data)
        for off, name in self.layout.slots.items():
            prog = self.programs.get(name)
            if prog is None:
                raise ConfigError(f"struct_ops {self.name!r} needs program {name!r}, which was not loaded",
                                  "load every program of the object (programs=None)")
            value[off:off + 8] = int(prog.fd).to_bytes(8, "little")
        return bytes(value)

    def register(self):
        """Register the struct (a TCP congestion control becomes selectable by its name);
        returns a :class:`Registration` whose ``close()`` unregisters it."""
        try:
            self.update(0, self.kernel_value())
        except BPFError as e:
            raise BPFError(e.command, e.errno, f"cannot register struct_ops {self.name!r}: {e.strerror}",
                           "the kernel refuses the struct: a required member missing, or its name taken "
                           "(see dmesg)") from None
        link = None
        if self.is_link:
            try:
                link = syscall.link_create(int(self.fd), 0, uapi.BPF_STRUCT_OPS)
            except BPFError as e:
                raise BPFError(e.command, e.errno, f"cannot register struct_ops {self.name!r}: {e.strerror}",
                               "the kernel refuses the struct (a name already registered?)") from None
        reg = Registration(self, link)
        self._registrations.append(reg)
        return reg

    def close(self):
        for reg in list(self._registrations):
            reg.close()
        super().close()


class Registration:
    """A registered struct_ops map: a BPF link, or (legacy maps) the map's element itself."""

    def __init__(self, ops_map, link_fd):
        self.map = ops_map
        self.link_fd = link_fd

    @property
    def registered(self):
        return self in self.map._registrations

    def close(self):
        """Unregister (idempotent)."""
        if not self.registered:
            return
        self.map._registrations.remove(self)
        if self.link_fd is not None:
            self.link_fd.close()  # the last reference to the link: the kernel unregisters
        else:
            try:
                del self.map[0]
            except (BPFError, KeyError) as e:
                raise XnfError(f"cannot unregister struct_ops {self.map.name!r}: {e}") from None

    unregister = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
