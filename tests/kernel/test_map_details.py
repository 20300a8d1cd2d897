"""Map details as libbpf does them (tests/bpf/map_details.bpf.c): ring buffers rounded up to a
power-of-two number of pages, no BTF key/value types for kinds whose kernel code refuses them
(decided from a table: one BPF_MAP_CREATE per map, no failed try), map_extra, inner-map
templates, and global data read and written through memory after load, as skeletons do."""
import mmap
import os

import pytest

import xnf
from xnf.core import uapi
from xnf.core.errors import ConfigError
from xnf.core.kernel import map_rules, syscall
from xnf.core.kernel.info import map_info

pytestmark = pytest.mark.root

BPF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bpf")
MAP_DETAILS = os.path.join(BPF_DIR, "map_details.bpf.o")
NO_BTF = ["socks", "sock_hash", "devs", "dev_hash", "cpus", "xsks", "queue"]
XDP_PASS, XDP_DROP = 2, 1


def test_ringbuf_size_rule():
    """libbpf's adjust_ringbuf_sz: a power-of-two multiple of the page size, at least the size asked."""
    page = mmap.PAGESIZE
    assert map_rules.ringbuf_size(0) == 0
    assert map_rules.ringbuf_size(5000) == 2 * page if page == 4096 else page
    assert map_rules.ringbuf_size(page) == page
    assert map_rules.ringbuf_size(3 * page) == 4 * page
    assert map_rules.ringbuf_size(256 * 1024) == 256 * 1024
    assert map_rules.ringbuf_size(0xFFFFFFFF) == 0xFFFFFFFF  # nothing fits 32 bits: the kernel decides


def test_maps_as_libbpf_creates_them(monkeypatch):
    calls = []
    real = syscall.map_create

    def counting(map_type, *args, **kwargs):
        calls.append((map_type, kwargs.get("btf_key_type_id", 0), kwargs.get("btf_value_type_id", 0)))
        return real(map_type, *args, **kwargs)

    monkeypatch.setattr(syscall, "map_create", counting)
    spec = xnf.open_object(MAP_DETAILS)
    with xnf.load(spec) as coll:
        ring = coll.maps["odd_ringbuf"]
        assert spec.maps["odd_ringbuf"].max_entries == 5000  # the spec keeps what the object says
        assert ring.max_entries == map_info(ring.fd).max_entries == map_rules.ringbuf_size(5000)
        for name in NO_BTF:
            info = map_info(coll.maps[name].fd)
            assert (info.btf_key_type_id, info.btf_value_type_id) == (0, 0), name
        assert map_info(coll.maps["bloom5"].fd).map_extra == 5
        assert map_info(coll.maps["bloom5"].fd).btf_value_type_id  # a kind that takes BTF keeps it
    assert len(calls) == len(spec.maps), "a map was created twice (a failed try with BTF, then without)"


def test_global_data_read_and_written_after_load():
    """coll.data[section] maps .bss/.data into this process: the program sees a write at its
    next run, and a read sees what it wrote, with no system call (as a skeleton's bss->x)."""
    with xnf.load(MAP_DETAILS) as coll:
        prog = coll.programs["map_details_prog"]
        bss, data = coll.data[".bss"], coll.data[".data"]
        assert (bss.md_runs, data.md_limit) == (0, 3)
        for _ in range(3):
            assert prog.test_run(bytes(64)).retval == XDP_PASS
        assert bss.md_runs == 3 and coll.variables["md_runs"] == 3
        assert prog.test_run(bytes(64)).retval == XDP_DROP  # 4 > md_limit
        data.md_limit = 10  # written in place: the next run reads it
        assert prog.test_run(bytes(64)).retval == XDP_PASS
        coll.variables["md_runs"] = 0
        assert coll.maps[".bss"][0].md_runs == 0  # the map itself holds the write
        assert set(coll.data) >= {".bss", ".data"}
        with pytest.raises(KeyError, match="no variable 'nope'"):
            bss["nope"]


def test_rodata_is_mapped_read_only():
    with xnf.load(os.path.join(BPF_DIR, "global_data.bpf.o")) as coll:
        assert coll.data[".rodata"].cfg_verdict == XDP_PASS
        with pytest.raises(ConfigError, match="frozen"):
            coll.data[".rodata"].cfg_verdict = XDP_DROP


def test_inner_map_template_first():
    """A map-in-map's inner template is created first (and closed once the outer holds its
    shape); the outer then takes maps of that shape."""
    with xnf.load(os.path.join(BPF_DIR, "map_in_map.bpf.o")) as coll:
        outer = map_info(coll.maps["outer_arr"].fd)
        assert outer.type == uapi.BPF_MAP_TYPE_ARRAY_OF_MAPS
        assert (outer.btf_key_type_id, outer.btf_value_type_id) == (0, 0)
        assert coll.maps["outer_arr"][0] == coll.maps["inner_a"].id
