"""A live BPF map as a Python mapping, with keys and values coded from BTF.

Single-element operations reuse one key buffer, one value buffer and one prepared
``bpf_attr`` per map, so each costs one syscall and one (de)serialisation.
"""
import ctypes
import functools
import os
import struct
import threading

from xnf.core import uapi
from xnf.core.errors import BPFError, MapTypeError, NotSupportedError, PinError, ValueEncodeError, XnfError
from xnf.core.kernel import syscall
from xnf.core.kernel.fd import FD
from xnf.core.kernel.info import map_info
from xnf.core.kernel.pin import open_pinned, pin_object, unpin
from xnf.core.object import btf as B
from xnf.core.object.codec import IntCodec, codec_for, in_map

_PERCPU = {uapi.BPF_MAP_TYPE_PERCPU_ARRAY, uapi.BPF_MAP_TYPE_PERCPU_HASH,
           uapi.BPF_MAP_TYPE_LRU_PERCPU_HASH, uapi.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE}
_ARRAYS = {uapi.BPF_MAP_TYPE_ARRAY, uapi.BPF_MAP_TYPE_PERCPU_ARRAY, uapi.BPF_MAP_TYPE_PROG_ARRAY,
           uapi.BPF_MAP_TYPE_ARRAY_OF_MAPS, uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY, uapi.BPF_MAP_TYPE_CGROUP_ARRAY}
_NO_VALUE_READ = {uapi.BPF_MAP_TYPE_PROG_ARRAY, uapi.BPF_MAP_TYPE_ARRAY_OF_MAPS,
                  uapi.BPF_MAP_TYPE_HASH_OF_MAPS, uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY}
_FD_VALUES = {uapi.BPF_MAP_TYPE_PROG_ARRAY, uapi.BPF_MAP_TYPE_ARRAY_OF_MAPS, uapi.BPF_MAP_TYPE_HASH_OF_MAPS}
assert _FD_VALUES <= _NO_VALUE_READ  # so m[k] = prog goes through the general path, which reads .fd
ENOENT = 2
EINVAL = 22
ENOTSUPP = 524  # the kernel's own "no such operation for this map type"


def possible_cpus():
    """Number of possible CPUs: per-CPU values have one slot for each."""
    global _POSSIBLE
    if _POSSIBLE is None:
        with open("/sys/devices/system/cpu/possible") as f:
            n = 0
            for part in f.read().strip().split(","):
                lo, _, hi = part.partition("-")
                n = max(n, int(hi or lo) + 1)
        _POSSIBLE = n
    return _POSSIBLE


_POSSIBLE = None


class Map:
    """A map that owns its fd. Dict-like; per-CPU maps give a list of values, one per CPU."""

    def __init__(self, fd, name, type, key_size, value_size, max_entries, flags=0, btf=None,
                 btf_key_type_id=0, btf_value_type_id=0, pinned_at=None):
        self.fd = fd if isinstance(fd, FD) else FD(fd)
        self.name = name
        self.type = type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self.pinned_at = pinned_at
        self.percpu = type in _PERCPU
        self._btf = (btf, btf_key_type_id, btf_value_type_id)
        self._stride = (value_size + 7) & ~7
        self._value_len = self._stride * possible_cpus() if self.percpu else value_size
        self._lock = threading.Lock()

    # Codecs and buffers are made on first use: loading many maps stays cheap.

    @functools.cached_property
    def key_codec(self):
        return codec_for(self._btf[0], self._btf[1], self.key_size)

    @functools.cached_property
    def value_codec(self):
        return codec_for(self._btf[0], self._btf[2], self.value_size)

    @functools.cached_property
    def _kbuf(self):
        return ctypes.create_string_buffer(max(self.key_size, 1))

    @functools.cached_property
    def _nbuf(self):
        return ctypes.create_string_buffer(max(self.key_size, 1))

    @functools.cached_property
    def _vbuf(self):
        return ctypes.create_string_buffer(max(self._value_len, 1))

    @functools.cached_property
    def _attr(self):
        """A prepared attr for single-element commands: (attr, its address, its size)."""
        attr = syscall.MapElemAttr(map_fd=int(self.fd), key=ctypes.addressof(self._kbuf),
                                   value=ctypes.addressof(self._vbuf))
        return attr, ctypes.addressof(attr), ctypes.sizeof(attr)

    @functools.cached_property
    def _element_ops(self):
        """``m[k]`` and ``m[k] = v`` as closures over all they touch (buffers, the prepared
        attr, the struct codecs, the syscall entry), so that an element costs one syscall and
        one pack or unpack, without attribute look-ups or nested calls (bench/map_ops.py).
        Keys and values other than plain ints take the general path, with its checks.
        None for per-CPU maps and maps of fds, which always take the general path."""
        if self.percpu or self.type in _NO_VALUE_READ:
            return None
        lock, kbuf, vbuf = self._lock, self._kbuf, self._vbuf
        _attr, address, size = self._attr
        key_struct = self.key_codec._struct if isinstance(self.key_codec, IntCodec) else None
        value_struct = self.value_codec._struct if isinstance(self.value_codec, IntCodec) else None
        kpack = key_struct.pack_into if key_struct else _not_packed
        vpack = value_struct.pack_into if value_struct else _not_packed
        vunpack = value_struct.unpack_from if value_struct else None
        decode_from = self.value_codec.decode_from
        call, nr, get_errno = syscall._syscall, syscall._NR, ctypes.get_errno
        lookup, update = syscall.BPF_MAP_LOOKUP_ELEM, syscall.BPF_MAP_UPDATE_ELEM
        set_key, slow_update = self._set_key, self.update

        def failed(cmd, key):
            """After a failed call: retry on EINTR, else raise what the kernel said."""
            err = get_errno()
            if err == ENOENT and cmd == lookup:
                raise KeyError(key)
            if err != 4:
                raise BPFError(syscall._COMMAND_NAMES[cmd], err)

        def getitem(key):
            with lock:
                try:
                    kpack(kbuf, 0, key)
                except (struct.error, TypeError):  # not a plain int in range: the general path says why
                    set_key(key, kbuf)
                while call(nr, lookup, address, size) < 0:
                    failed(lookup, key)
                return vunpack(vbuf)[0] if vunpack is not None else decode_from(vbuf)

        def setitem(key, value):
            with lock:
                try:
                    kpack(kbuf, 0, key)
                    vpack(vbuf, 0, value)
                except (struct.error, TypeError):
                    pass  # not plain ints in range: the general path below says why
                else:
                    while call(nr, update, address, size) < 0:
                        failed(update, key)
                    return
            slow_update(key, value)

        return getitem, setitem

    # --- constructors --------------------------------------------------------------

    @classmethod
    def from_fd(cls, fd, name=None, pinned_at=None):
        """Wrap an fd we own (from a pin or an id), with BTF types from the kernel when it has them."""
        fd = fd if isinstance(fd, FD) else FD(fd)
        info = map_info(fd)
        btf = btf_by_id(info.btf_id) if info.btf_id else None
        return cls(fd, name or info.name, info.type, info.key_size, info.value_size, info.max_entries,
                   info.flags, btf, info.btf_key_type_id, info.btf_value_type_id, pinned_at)

    @classmethod
    def from_id(cls, map_id):
        return cls.from_fd(syscall.fd_by_id("map", map_id))

    @classmethod
    def from_pin(cls, path):
        if os.path.isdir(path):
            raise _directory_error(path)
        return cls.from_fd(open_pinned(path, "map"), pinned_at=path)

    # --- coding --------------------------------------------------------------------

    def _no_elements(self):
        kind = uapi.MAP_TYPE_NAMES.get(self.type, str(self.type))
        if self.type in (uapi.BPF_MAP_TYPE_RINGBUF, uapi.BPF_MAP_TYPE_USER_RINGBUF):
            how = "read its records with xnf.RingBuffer(map)"
        else:
            how = "it is used from BPF programs (push, pop, peek), not as a dict"
        return MapTypeError(f"map {self.name!r} is a {kind} map: it has no keys to look up", how)

    def _set_key(self, key, buf):
        if not self.key_size:
            raise self._no_elements()
        if isinstance(key, (bytes, bytearray)) and len(key) == self.key_size:
            ctypes.memmove(buf, bytes(key), self.key_size)
        else:
            try:
                self.key_codec.encode_into(buf, key)
            except ValueEncodeError as e:
                raise in_map(e, self.name, "key") from None

    def _encode_key(self, key):
        if isinstance(key, (bytes, bytearray)):
            return bytes(key)
        try:
            return self.key_codec.encode(key)
        except ValueEncodeError as e:
            raise in_map(e, self.name, "key") from None

    def _encode_value(self, value):
        if isinstance(value, (bytes, bytearray)) and len(value) == self._value_len:
            return bytes(value)
        try:
            if self.percpu:
                values = list(value) if isinstance(value, (list, tuple)) else [value] * possible_cpus()
                if len(values) != possible_cpus():
                    raise XnfError(f"map {self.name!r} is per-CPU: give {possible_cpus()} values, one per possible CPU")
                return b"".join(self.value_codec.encode(v).ljust(self._stride, b"\0") for v in values)
            return self.value_codec.encode(value)
        except ValueEncodeError as e:
            raise in_map(e, self.name, "value") from None

    def _decode_value(self, raw):
        if self.percpu:
            s, n = self._stride, self.value_size
            return [self.value_codec.decode(raw[i * s:i * s + n]) for i in range(possible_cpus())]
        return self.value_codec.decode(raw)

    # --- single elements -------------------------------------------------------------

    def _op(self, cmd, flags=0):
        attr, address, size = self._attr
        if not flags:
            syscall.bpf_at(cmd, address, size)
            return
        attr.flags = flags
        try:
            syscall.bpf_at(cmd, address, size)
        finally:
            attr.flags = 0  # the prepared attr's flags stay zero between calls (_element_ops)

    def _lookup(self, key, cmd=syscall.BPF_MAP_LOOKUP_ELEM):
        """Look ``key`` up into the value buffer; False when absent. Call with the lock held."""
        self._set_key(key, self._kbuf)
        try:
            self._op(cmd)
        except BPFError as e:
            if e.errno == ENOENT:
                return False
            raise
        return True

    def _value_from_buffer(self):
        if self.type in _NO_VALUE_READ:
            return int.from_bytes(self._vbuf.raw[:4], "little")
        if self.percpu:
            return self._decode_value(self._vbuf.raw[:self._value_len])
        return self.value_codec.decode_from(self._vbuf)

    def lookup_raw(self, key):
        """Value bytes for ``key``, or None when absent."""
        with self._lock:
            return self._vbuf.raw[:self._value_len] if self._lookup(key) else None

    def __getitem__(self, key):
        ops = self._element_ops
        if ops is not None:
            return ops[0](key)
        with self._lock:
            if not self._lookup(key):
                raise KeyError(key)
            return self._value_from_buffer()

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def update(self, key, value, flags=syscall.BPF_ANY):
        direct = not self.percpu and not isinstance(value, (bytes, bytearray))
        raw = None if direct else self._encode_value(value)
        with self._lock:
            self._set_key(key, self._kbuf)
            if direct:
                try:
                    self.value_codec.encode_into(self._vbuf, value)
                except ValueEncodeError as e:
                    raise in_map(e, self.name, "value") from None
            else:
                ctypes.memmove(self._vbuf, raw, len(raw))
            self._op(syscall.BPF_MAP_UPDATE_ELEM, flags)

    def __setitem__(self, key, value):
        ops = self._element_ops
        if ops is not None:
            return ops[1](key, value)
        if hasattr(value, "fd") and self.type in _FD_VALUES:
            value = int(value.fd).to_bytes(4, "little")
        self.update(key, value)

    def __delitem__(self, key):
        with self._lock:
            self._set_key(key, self._kbuf)
            attr = self._attr[0]
            attr.value = 0  # the kernel wants every field after the key zero for a delete
            try:
                self._op(syscall.BPF_MAP_DELETE_ELEM)
            except BPFError as e:
                if e.errno == ENOENT:
                    raise KeyError(key) from None
                raise
            finally:
                attr.value = ctypes.addressof(self._vbuf)

    def pop(self, key, *default):
        """Look up and delete in one step (BPF_MAP_LOOKUP_AND_DELETE_ELEM, hash maps since Linux 5.14)."""
        with self._lock:
            if self._lookup(key, syscall.BPF_MAP_LOOKUP_AND_DELETE_ELEM):
                return self._value_from_buffer()
        if default:
            return default[0]
        raise KeyError(key)

    def __contains__(self, key):
        return self.lookup_raw(key) is not None

    # --- iteration -------------------------------------------------------------------

    def _raw_keys(self):
        if not self.key_size:
            raise self._no_elements()
        if self.type in _ARRAYS:
            for i in range(self.max_entries):
                yield i.to_bytes(self.key_size, "little")
            return
        first = True
        while True:
            try:
                with self._lock:
                    syscall.map_get_next_key(int(self.fd), None if first else self._kbuf, self._nbuf)
                    raw = self._nbuf.raw[:self.key_size]
                    ctypes.memmove(self._kbuf, raw, self.key_size)
            except BPFError as e:
                if e.errno == ENOENT:
                    return
                raise
            first = False
            yield raw

    def keys(self):
        return (self.key_codec.decode(k) for k in self._raw_keys())

    __iter__ = keys

    def items(self):
        for k in self._raw_keys():
            raw = self.lookup_raw(k)
            if raw is not None:
                yield self.key_codec.decode(k), self._decode_value(raw) if self.type not in _NO_VALUE_READ \
                    else int.from_bytes(raw[:4], "little")

    def values(self):
        return (v for _, v in self.items())

    def __len__(self):
        return sum(1 for _ in self._raw_keys())

    def clear(self):
        """Remove every element; array elements (which cannot be deleted) are zeroed."""
        if self.type in _ARRAYS:
            zero = bytes(self._value_len)
            for k in self._raw_keys():
                self.update(k, zero)
            return
        for k in list(self._raw_keys()):
            try:
                del self[k]
            except KeyError:
                pass

    # --- batches ---------------------------------------------------------------------

    def lookup_batch(self, chunk=16384):
        """All (key, value) pairs through BPF_MAP_LOOKUP_BATCH, ``chunk`` elements per call."""
        return self._decoded_batches(syscall.BPF_MAP_LOOKUP_BATCH, chunk)

    def lookup_and_delete_batch(self, chunk=16384):
        """Drain the map: all (key, value) pairs through BPF_MAP_LOOKUP_AND_DELETE_BATCH,
        each chunk removed as it is read (hash maps; arrays cannot delete)."""
        return self._decoded_batches(syscall.BPF_MAP_LOOKUP_AND_DELETE_BATCH, chunk)

    def delete_batch(self, keys, chunk=16384):
        """Delete many keys with BPF_MAP_DELETE_BATCH, ``chunk`` per call; returns how many.

        A missing key raises KeyError naming it; the keys before it are deleted, as a loop of
        ``del m[k]`` would leave them."""
        if not self.key_size:
            raise self._no_elements()
        keys = list(keys)
        step = max(1, chunk)
        for start in range(0, len(keys), step):
            part = keys[start:start + step]
            kraw = b"".join(self._encode_key(k) for k in part)
            buf = ctypes.create_string_buffer(kraw, len(kraw))
            attr = syscall.MapBatchAttr(keys=syscall.addr(buf), count=len(part), map_fd=int(self.fd))
            try:
                syscall.bpf(uapi.BPF_MAP_DELETE_BATCH, attr)
            except BPFError as e:
                if e.errno == ENOENT and attr.count < len(part):  # the kernel counts what it deleted
                    raise KeyError(part[attr.count]) from None
                raise self._batch_refused(e, "BPF_MAP_DELETE_BATCH") from None
        return len(keys)

    def _batch_refused(self, e, command):
        """NotSupportedError for a map type the kernel has no batch operation for; else ``e``."""
        if e.errno == ENOTSUPP or (e.errno == EINVAL and self.type in _ARRAYS):
            kind = uapi.MAP_TYPE_NAMES.get(self.type, str(self.type))
            return NotSupportedError(f"{command} on {kind} map {self.name!r}",
                                     hint="batch deletes work on hash maps; for arrays write the values instead")
        return e

    def _decoded_batches(self, cmd, chunk):
        out = []
        for keys, values, n in self._batches(chunk, cmd):
            decoded_keys = self.key_codec.decode_many(keys, n)
            if self.percpu:
                vs = self._value_len
                decoded_values = [self._decode_value(values[i * vs:(i + 1) * vs]) for i in range(n)]
            else:
                decoded_values = self.value_codec.decode_many(values, n)
            out.extend(zip(decoded_keys, decoded_values))
        return out

    def lookup_batch_raw(self, chunk=16384):
        """Like :meth:`lookup_batch`, with keys and values as bytes."""
        ks, vs = self.key_size, self._value_len
        out = []
        for keys, values, n in self._batches(chunk):
            out.extend((keys[i * ks:(i + 1) * ks], values[i * vs:(i + 1) * vs]) for i in range(n))
        return out

    def _batches(self, chunk, cmd=syscall.BPF_MAP_LOOKUP_BATCH):
        """(keys bytes, values bytes, count) for each batch read (``cmd``) until the map is read."""
        if not self.key_size:
            raise self._no_elements()
        ks, vs = self.key_size, self._value_len
        chunk = max(1, min(chunk, self.max_entries or chunk))
        keys = ctypes.create_string_buffer(ks * chunk)
        values = ctypes.create_string_buffer(vs * chunk)
        tok_size = max(ks, 8)
        in_tok, out_tok = ctypes.create_string_buffer(tok_size), ctypes.create_string_buffer(tok_size)
        first = True
        while True:
            try:
                n, done = syscall.map_batch(cmd, int(self.fd), None if first else in_tok,
                                            out_tok, keys, values, chunk)
            except BPFError as e:
                if cmd == syscall.BPF_MAP_LOOKUP_BATCH:
                    raise
                raise self._batch_refused(e, uapi.BPF_CMD_NAMES[cmd]) from None
            if n:
                yield ctypes.string_at(keys, n * ks), ctypes.string_at(values, n * vs), n  # one copy each
            if done:
                return
            ctypes.memmove(in_tok, out_tok, tok_size)
            first = False

    def update_batch(self, items, flags=0):
        """Write many (key, value) pairs with one BPF_MAP_UPDATE_BATCH call."""
        items = list(items.items() if hasattr(items, "items") else items)
        if not items:
            return 0
        kraw = b"".join(self._encode_key(k) for k, _ in items)
        vraw = b"".join(self._encode_value(v) for _, v in items)
        keys = ctypes.create_string_buffer(kraw, len(kraw))
        values = ctypes.create_string_buffer(vraw, len(vraw))
        n, _ = syscall.map_batch(syscall.BPF_MAP_UPDATE_BATCH, int(self.fd), None, None, keys, values,
                                 len(items), flags)
        return n

    # --- lifetime --------------------------------------------------------------------

    def freeze(self):
        syscall.map_freeze(int(self.fd))

    def pin(self, path):
        pin_object(self.fd, path)
        self.pinned_at = path

    def unpin(self):
        """Remove the pin this map was opened from or pinned to; the map lives on while open."""
        if self.pinned_at is None:
            raise PinError(f"map {self.name!r} is not pinned by this handle",
                           "pin it first with map.pin(PATH), or open it with Map.from_pin(PATH)")
        unpin(self.pinned_at)
        self.pinned_at = None

    @property
    def id(self):
        return map_info(self.fd).id

    def close(self):
        self.fd.close()
        self.__dict__.pop("_attr", None)  # it holds the fd number, which the kernel may reuse
        self.__dict__.pop("_element_ops", None)  # and so do these

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"Map({self.name!r}, type={uapi.MAP_TYPE_NAMES.get(self.type, self.type)}, "
                f"key_size={self.key_size}, value_size={self.value_size}, max_entries={self.max_entries})")



def _not_packed(buf, offset, value):
    """The packer of a codec without a plain struct format: always the general path."""
    raise TypeError


def _directory_error(path):
    """bpf(2) answers EACCES for a directory, which reads as a permission problem: say what it is."""
    return PinError(f"{path} is a directory, not a pinned map",
                    f"give the path of a map pinned in it, such as {os.path.join(path, 'NAME')} "
                    f"(`ls {path}` lists them), or a map id")


class _btf_info(ctypes.Structure):
    _fields_ = [("btf", ctypes.c_uint64), ("btf_size", ctypes.c_uint32), ("id", ctypes.c_uint32),
                ("name", ctypes.c_uint64), ("name_len", ctypes.c_uint32), ("kernel_btf", ctypes.c_uint32)]


def btf_by_id(btf_id):
    """The BTF object the kernel holds under ``btf_id``, parsed (for decoding pinned maps)."""
    fd = syscall.fd_by_id("btf", btf_id)
    try:
        info = _btf_info()
        syscall.obj_get_info_by_fd(int(fd), info)
        buf = ctypes.create_string_buffer(info.btf_size)
        info = _btf_info(btf=ctypes.addressof(buf), btf_size=info.btf_size)
        syscall.obj_get_info_by_fd(int(fd), info)
        return B.parse(buf.raw)
    finally:
        fd.close()
