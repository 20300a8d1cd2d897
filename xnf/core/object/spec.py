"""Specs: what an object file asks for, parsed and editable, owning no file descriptors.

``xnf.core.object.elf.load_spec`` builds an :class:`ObjectSpec`; the loader turns it into live
objects. Edit a spec before loading: map sizes, pin paths, ``.rodata`` constants,
the device to bind to for offload.
"""
import copy

import attrs

from xnf.core import uapi
from xnf.core.errors import ConfigError
from xnf.core.object.codec import codec_for

PIN_NONE, PIN_BY_NAME = 0, 1
DEFAULT_PIN_ROOT = "/sys/fs/bpf"


class ZeroData:
    """The initial contents of a NOBITS section (``.bss``): all zeros, allocated only when a
    variable is written. An object declares a ``.bss`` size it does not store, so opening
    it must not cost that much memory; the kernel creates the map zero-filled anyway."""

    __slots__ = ("size", "_buf")

    def __init__(self, size):
        self.size = size
        self._buf = None

    @property
    def written(self):
        return self._buf is not None

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        if self._buf is not None:
            return self._buf[index]
        if isinstance(index, slice):
            return bytes(len(range(*index.indices(self.size))))
        if not -self.size <= index < self.size:
            raise IndexError("ZeroData index out of range")
        return 0

    def __setitem__(self, index, value):
        if self._buf is None:
            self._buf = bytearray(self.size)
        self._buf[index] = value

    def __bytes__(self):
        return bytes(self._buf) if self._buf is not None else bytes(self.size)

    def __repr__(self):
        return f"ZeroData({self.size}{', written' if self.written else ''})"


def _kernel_enum(enum_cls):
    """An attrs converter: a known number becomes its kernel-named IntEnum member (equal to
    the number, printed as ``BPF_PROG_TYPE_XDP``); a number this kernel's table lacks stays an int."""
    def convert(value):
        try:
            return enum_cls(value)
        except ValueError:
            return value
    return convert


@attrs.define(eq=False)
class MapSpec:
    name: str
    type: int = attrs.field(converter=_kernel_enum(uapi.MapType))
    """A :class:`~xnf.core.uapi.MapType` (an int)."""
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    ifindex: int = 0
    """Bind to this device (hardware offload); 0 for the host."""
    pinning: int = PIN_NONE
    pin_path: str = None
    """Explicit pin path. With ``pinning == PIN_BY_NAME`` and no path: ``<pin_root>/<name>``."""
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    inner: "MapSpec" = None
    """Template of the inner map for ARRAY_OF_MAPS / HASH_OF_MAPS."""
    contents: list = attrs.Factory(list)
    """Initial (key, value) pairs; for prog arrays and map-in-map, values are program / map names."""
    data: bytearray = None
    """Initial contents of a global-data map (.data, .rodata, .kconfig); a :class:`ZeroData`
    for NOBITS sections (.bss)."""
    section: str = ".maps"
    freeze: bool = False
    extra: bytes = b""
    """Trailing bytes of a legacy map definition (iproute2's bpf_elf_map fields)."""
    struct_ops: "StructOpsSpec" = None
    """For a ``.struct_ops`` / ``.struct_ops.link`` variable: its type, initializer and programs."""

    @property
    def type_name(self):
        return uapi.MAP_TYPE_NAMES.get(self.type, str(self.type))

    @property
    def is_data(self):
        return self.data is not None

    def initial_value(self):
        """The bytes to write into a global-data map at load, or None when the zero-filled
        map the kernel creates already holds them (a ``.bss`` nobody wrote to)."""
        if self.data is None or (isinstance(self.data, ZeroData) and not self.data.written):
            return None
        return bytes(self.data)

    def copy(self):
        return copy.deepcopy(self)


@attrs.define(eq=False)
class ProgramSpec:
    name: str
    section: str
    type: int = attrs.field(converter=_kernel_enum(uapi.ProgType))
    """A :class:`~xnf.core.uapi.ProgType` (an int)."""
    expected_attach_type: int = 0
    attach_to: str = ""
    """What the section names after its prefix: a kernel function, iterator, or tracepoint."""
    target_kind: int = 0
    flags: int = 0
    license: str = ""
    kern_version: int = 0
    ifindex: int = 0
    """Bind to this device (hardware offload); 0 for the host."""
    instructions: list = attrs.Factory(list)
    """The program's own instructions (references not yet resolved; see xnf.core.object.link)."""
    func_info: list = attrs.Factory(list)
    line_info: list = attrs.Factory(list)
    core_relos: list = attrs.Factory(list)
    attach_prog_fd: int = 0
    attach_btf_id: int = 0

    @property
    def type_name(self):
        return uapi.PROG_TYPE_NAMES.get(self.type, str(self.type))

    def source_line(self, index):
        """``(file, line, col, text)`` for instruction ``index`` of the linked program, or None."""
        best = None
        for li in self.line_info:
            if li.insn_off <= index:
                best = li
            else:
                break
        return (best.file, best.line, best.col, best.line_text.strip()) if best else None


@attrs.define(eq=False)
class Function:
    """A function of the object (program entry or subprogram) before linking."""

    name: str
    section: str
    instructions: list
    func_info: list = attrs.Factory(list)
    line_info: list = attrs.Factory(list)
    core_relos: list = attrs.Factory(list)
    is_program: bool = False


@attrs.define(eq=False)
class StructOpsSpec:
    """A struct_ops variable as the object declares it: the kernel fills in the rest."""

    type_name: str
    """The local struct's name (``tcp_congestion_ops``; a ``___flavour`` suffix is dropped)."""
    type_id: int
    """The local struct in the object's BTF."""
    data: bytes
    """The initializer, in the local struct's layout."""
    programs: dict = attrs.Factory(dict)
    """Function-pointer member -> program name."""
    link: bool = False
    """Declared in ``.struct_ops.link``: registered through a BPF link."""

    def set_member(self, btf, member, raw):
        """Write ``raw`` into data member ``member``, zero-padded to its size: a name the
        kernel registers machine-wide (a congestion control's ``name``, a qdisc's ``id``)
        made unique per instance before load."""
        found = next(((t, bit_off) for name, t, bit_off, _bf in btf[self.type_id].members if name == member), None)
        if found is None:
            raise ConfigError(f"struct {self.type_name} has no member {member!r}",
                              "name a data member of the object's struct_ops type")
        size = btf.size_of(found[0])
        if len(raw) > size:
            raise ConfigError(f"{len(raw)} bytes do not fit {self.type_name}.{member} ({size} bytes)",
                              f"give at most {size} bytes")
        offset = found[1] // 8
        data = bytearray(self.data)
        data[offset:offset + size] = raw.ljust(size, b"\0")
        self.data = bytes(data)


@attrs.define(eq=False)
class Extern:
    """A symbol the object leaves to the loader: ``__kconfig`` values, ``__ksym`` variables
    (typed: a BTF VAR of the kernel; untyped, ``const void``: a kallsyms address) and kfuncs."""

    name: str
    section: str
    """``.kconfig`` or ``.ksyms``."""
    btf_id: int
    """The object's BTF VAR (or FUNC, for a kfunc)."""
    type_id: int = 0
    """The variable's type or the kfunc's FUNC_PROTO, modifiers skipped; 0 for an untyped ksym."""
    weak: bool = False
    is_func: bool = False


@attrs.define(eq=False)
class ObjectSpec:
    path: str
    programs: dict = attrs.Factory(dict)
    maps: dict = attrs.Factory(dict)
    functions: dict = attrs.Factory(dict)
    """Every function, including subprograms, by name (the linker's input)."""
    btf: object = None
    btf_ext: object = None
    license: str = ""
    kern_version: int = 0
    pin_root: str = DEFAULT_PIN_ROOT
    kconfig: dict = attrs.Factory(dict)
    """``.kconfig`` externs: name -> (offset, size, btf type id)."""
    externs: dict = attrs.Factory(dict)
    """Every extern (``__kconfig`` and ``__ksym``) by name: :class:`Extern`."""

    @property
    def variables(self):
        """Global variables of every data section, readable and writable before load."""
        return DataView(self, lambda sec: True)

    @property
    def rodata(self):
        """``const volatile`` globals (``.rodata*``): the configuration a program is loaded with."""
        return DataView(self, lambda sec: sec.startswith(".rodata"))

    def copy(self):
        return copy.deepcopy(self)


class DataView:
    """Dict-like access to global variables by name, encoded through their BTF types."""

    def __init__(self, spec, section_filter):
        self._spec = spec
        self._filter = section_filter

    def _locate(self, name):
        btf = self._spec.btf
        for m in self._spec.maps.values():
            if not m.is_data or not self._filter(m.section) or btf is None:
                continue
            sec_id = btf.find(m.section)
            if sec_id is None:
                continue
            entry = btf.datasec_var(sec_id, name)
            if entry is not None:
                var = btf[entry[0]]
                return m, entry[1], entry[2], codec_for(btf, var.type)
        raise KeyError(f"no global variable {name!r} in {self._spec.path}")

    def __getitem__(self, name):
        m, off, size, codec = self._locate(name)
        return codec.decode(bytes(m.data[off:off + size]))

    def __setitem__(self, name, value):
        m, off, size, codec = self._locate(name)
        raw = codec.encode(value)
        if len(raw) != size:
            raise ConfigError(f"value for {name!r} encodes to {len(raw)} bytes, the variable has {size}")
        m.data[off:off + size] = raw

    def __contains__(self, name):
        try:
            self._locate(name)
            return True
        except KeyError:
            return False

    def keys(self):
        btf = self._spec.btf
        out = []
        for m in self._spec.maps.values():
            if m.is_data and self._filter(m.section) and btf is not None:
                sec_id = btf.find(m.section)
                if sec_id is not None:
                    out.extend(btf[e[0]].name for e in btf[sec_id].members)
        return out

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def items(self):
        return [(name, self[name]) for name in self.keys()]

    def values(self):
        return [self[name] for name in self.keys()]

    def __repr__(self):
        body = ", ".join(f"{name}={value!r}" for name, value in self.items())
        return f"DataView({body})"
