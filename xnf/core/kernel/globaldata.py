"""Global variables of a loaded object, read and written in place, as skeletons do.

``.data``, ``.bss``, ``.rodata`` and ``.kconfig`` are created ``BPF_F_MMAPABLE`` (as libbpf
does), so their one value is mapped into this process: a read sees what the programs
wrote last, a write is seen by their next run, with no system call. ``.rodata`` and
``.kconfig`` are frozen after load, so they are mapped read-only.
"""
import mmap

from xnf.core import uapi
from xnf.core.errors import ConfigError, MapTypeError
from xnf.core.object.codec import codec_for


class MappedData:
    """One global-data map, mapped: ``d["counter"]``, ``d.counter``, ``d["counter"] = 5``."""

    def __init__(self, live, section, btf):
        if not live.flags & uapi.BPF_F_MMAPABLE:
            raise MapTypeError(f"map {live.name!r} ({section}) was not created BPF_F_MMAPABLE, so it cannot be mapped",
                               "read it with coll.maps[name][0] instead")
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_btf", btf)
        object.__setattr__(self, "_readonly", section.startswith(".rodata") or section == ".kconfig")
        size = (live.value_size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
        prot = mmap.PROT_READ if self._readonly else mmap.PROT_READ | mmap.PROT_WRITE
        object.__setattr__(self, "_mem", mmap.mmap(int(live.fd), size, mmap.MAP_SHARED, prot))
        object.__setattr__(self, "_size", live.value_size)
        object.__setattr__(self, "_vars", _variables(btf, section))

    def _locate(self, name):
        try:
            return self._vars[name]
        except KeyError:
            raise KeyError(f"no variable {name!r} in {self._section} (it has {sorted(self._vars)})") from None

    def __getitem__(self, name):
        off, size, type_id = self._locate(name)
        return codec_for(self._btf, type_id).decode(self._mem[off:off + size])

    def __setitem__(self, name, value):
        off, size, type_id = self._locate(name)
        if self._readonly:
            raise ConfigError(f"{self._section} is frozen after load: {name!r} cannot change",
                              "set it in the spec before loading (spec.rodata[name] = value)")
        raw = codec_for(self._btf, type_id).encode(value)
        if len(raw) != size:
            raise ConfigError(f"value for {name!r} encodes to {len(raw)} bytes, the variable has {size}")
        self._mem[off:off + size] = raw

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __contains__(self, name):
        return name in self._vars

    def keys(self):
        return list(self._vars)

    def raw(self):
        """The section's bytes as they are now."""
        return bytes(self._mem[:self._size])

    def close(self):
        self._mem.close()

    def __repr__(self):
        return f"MappedData({self._section}, {sorted(self._vars)})"


def _variables(btf, section):
    """name -> (offset, size, type id) of the variables of one data section."""
    if btf is None:
        return {}
    sec_id = btf.find(section)
    if sec_id is None:
        return {}
    return {btf[var_id].name: (off, size, btf[var_id].type) for var_id, off, size in btf[sec_id].members}


class Variables:
    """Every global variable of a collection by name, whatever its section."""

    def __init__(self, data):
        self._data = data  # section -> MappedData, made on first use

    def _find(self, name):
        for section in self._data:
            d = self._data[section]
            if name in d:
                return d
        raise KeyError(f"no global variable {name!r}")

    def __getitem__(self, name):
        return self._find(name)[name]

    def __setitem__(self, name, value):
        self._find(name)[name] = value

    def __contains__(self, name):
        try:
            self._find(name)
            return True
        except KeyError:
            return False


class DataSections:
    """Section name -> :class:`MappedData`, each mapped when first used."""

    def __init__(self, spec, maps):
        self._spec = spec
        self._maps = maps
        self._mapped = {}

    def _names(self):
        return [n for n, m in self._spec.maps.items() if m.is_data and n in self._maps]

    def __getitem__(self, section):
        d = self._mapped.get(section)
        if d is None:
            if section not in self._names():
                raise KeyError(f"no global-data section {section!r} (there are {self._names()})")
            d = self._mapped[section] = MappedData(self._maps[section], section, self._spec.btf)
        return d

    def __iter__(self):
        return iter(self._names())

    def __contains__(self, section):
        return section in self._names()

    def keys(self):
        return self._names()

    def close(self):
        for d in self._mapped.values():
            d.close()
        self._mapped = {}
