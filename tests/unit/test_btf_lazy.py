"""BTF read lazily (vmlinux, :func:`xnf.core.object.btf.parse_lazy`) gives the types, names
and look-ups an eager :func:`~xnf.core.object.btf.parse` gives, and the same refusals."""
import os

import pytest

from xnf.core.errors import BTFError
from xnf.core.object import btf as B
from xnf.core.object import core_reloc as C

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VMLINUX = "/sys/kernel/btf/vmlinux"


def _object_btf(name):
    from xnf.core.object import elf

    path = os.path.join(ROOT, "tests", "bpf", name)
    reader = elf._Reader(path, open(path, "rb").read())
    reader._open()
    return reader._raw(next(s for s in reader.sections if s.name == ".BTF"))


def _same(lazy, eager):
    assert len(lazy.types) == len(eager.types) and lazy.strings == eager.strings
    assert list(lazy.types) == eager.types
    assert list(lazy.named()) == list(eager.named())


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
def test_vmlinux_read_lazily_is_the_eager_parse():
    raw = open(VMLINUX, "rb").read()
    lazy, eager = B.parse_lazy(raw), B.parse(raw)
    probe = [1, 2, len(eager.types) // 2, len(eager.types) - 1, -1]
    assert [lazy.types[i] for i in probe] == [eager.types[i] for i in probe]  # before and after the rest
    assert lazy.types[3:9] == eager.types[3:9]
    for name, kind in [("task_struct", B.KIND_STRUCT), ("bpf_map_lookup_elem", None), ("bpf_prog_type", B.KIND_ENUM),
                       ("no such type", None)]:
        assert lazy.find(name, kind) == eager.find(name, kind)
    assert C._name_index(lazy, 1) == C._name_index(eager, 1)
    _same(lazy, eager)
    assert isinstance(B.load_vmlinux().types, B.LazyTypes)


@pytest.mark.parametrize("obj", ["xdp_counter.bpf.o", "core_relo.bpf.o", "map_in_map.bpf.o"])
def test_object_btf_read_lazily_is_the_eager_parse(obj):
    raw = _object_btf(obj)
    _same(B.parse_lazy(raw), B.parse(raw))


def test_a_cut_blob_is_refused_as_the_eager_parse_refuses_it():
    raw = _object_btf("core_relo.bpf.o")
    for cut in range(0, len(raw), 7):
        blob = raw[:cut]
        try:
            eager = B.parse(blob)
        except BTFError:
            with pytest.raises(BTFError):
                list(B.parse_lazy(blob).types)  # refused on reading the index, or on parsing a type
        else:
            _same(B.parse_lazy(blob), eager)


def test_an_unknown_kind_is_refused():
    raw = bytearray(_object_btf("xdp_counter.bpf.o"))
    hdr_len, type_off = B._HDR.unpack_from(raw)[3:5]
    info_at = hdr_len + type_off + 4  # the first type's info word
    raw[info_at + 3] = (raw[info_at + 3] & 0xE0) | 25  # kind 25: none yet
    with pytest.raises(BTFError, match="unknown BTF kind 25"):
        B.parse(bytes(raw))
    with pytest.raises(BTFError, match="unknown BTF kind 25"):
        B.parse_lazy(bytes(raw))


def test_the_record_index_is_cached_and_a_bad_cache_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    raw = _object_btf("core_relo.bpf.o")
    eager = B.parse(raw)
    _same(B.parse_lazy(raw, cache=True), eager)  # writes the index
    path = B._index_path(raw)
    written = open(path, "rb").read()
    assert B._read_index(path) is not None
    _same(B.parse_lazy(raw, cache=True), eager)  # reads it
    for at in (0, len(written) // 2, len(written) - 1):  # magic, offsets or names damaged: the CRC tells
        bad = bytearray(written)
        bad[at] ^= 0xFF
        open(path, "wb").write(bad)
        assert B._read_index(path) is None
        _same(B.parse_lazy(raw, cache=True), eager)
        assert open(path, "rb").read() == written  # read again and written again
    open(path, "wb").write(written[:20])  # cut short
    _same(B.parse_lazy(raw, cache=True), eager)
    os.chmod(path, 0o666)  # writable by others: not trusted
    assert B._read_index(path) is None
    os.chmod(path, 0o644)
    assert B._read_index(path) is not None
    assert B._index_path(raw[:-1] + b"x") != path  # another BTF: another file


def test_an_unwritable_cache_only_means_reading_the_records(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "file"))  # a file where the directory should be
    raw = _object_btf("core_relo.bpf.o")
    _same(B.parse_lazy(raw, cache=True), B.parse(raw))


@pytest.mark.skipif(not os.path.exists(VMLINUX), reason="no /sys/kernel/btf/vmlinux (CONFIG_DEBUG_INFO_BTF)")
def test_relocating_a_co_re_object_parses_a_few_of_vmlinux_types():
    """The guard on the lazy read, as a count: relocating core_relo against vmlinux parses
    its candidates and what they refer to (a few hundred types), not the 125k."""
    import xnf

    target = B.parse_lazy(open(VMLINUX, "rb").read())
    spec = xnf.open_object(os.path.join(ROOT, "tests", "bpf", "core_relo.bpf.o"))
    relocated = C.relocate_spec(spec, target_btf=target)
    assert relocated is not spec  # it had relocations to make
    parsed = sum(t is not None for t in target.types._parsed)
    assert 1 < parsed < len(target.types) // 100, parsed
