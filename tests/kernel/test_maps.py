"""Maps from Python, end to end on the real kernel: every dict operation on hash and
array maps, per-CPU values, BTF-coded struct keys and values, raw bytes, batches,
errors (KeyError, a full map), spec edits before load (``.rodata``, ``max_entries``)
and pinning by name (reuse, and a typed refusal that leaves nothing behind).

bpftool is the independent view where one is needed.
"""
import errno
import json
import os
import struct
import subprocess
import uuid

import pytest

import xnf
from xnf.core import errors, uapi
from xnf.core.errors import BPFError, MapIncompatibleError, XnfError
from xnf.core.kernel import syscall
from xnf.core.kernel.maps import Map, possible_cpus

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPF_DIR = os.path.join(ROOT, "tests", "bpf")
XDP_DROP, XDP_PASS = 1, 2
IPPROTO_UDP = 17


def obj(name):
    return os.path.join(BPF_DIR, name + ".bpf.o")


def udp_frame(payload=b"xnf-maps" * 4):
    udp = struct.pack("!HHHH", 4000, 5000, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, IPPROTO_UDP, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    return bytes.fromhex("020000000002" "020000000001" "0800") + ip + udp


def bpftool(*args):
    r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


@pytest.fixture
def counter():
    """xdp_counter loaded: ``pkt_count`` ARRAY[1] u32->u64, ``proto_count`` HASH[256] u32->u64."""
    with xnf.load(obj("xdp_counter")) as coll:
        yield coll


# --- hash maps ---------------------------------------------------------------------------

def test_hash_dict_operations(counter):
    h = counter.maps["proto_count"]
    assert len(h) == 0 and list(h.keys()) == [] and list(h.items()) == []
    h[1] = 10
    h[2] = 20
    assert h[1] == 10 and h[2] == 20
    assert 1 in h and 3 not in h
    assert h.get(1) == 10 and h.get(3) is None and h.get(3, "none") == "none"
    assert sorted(h.keys()) == [1, 2] and sorted(h) == [1, 2]
    assert sorted(h.items()) == [(1, 10), (2, 20)] and sorted(h.values()) == [10, 20]
    assert len(h) == 2
    h[1] = 11                                                   # overwrite
    assert h[1] == 11
    with pytest.raises(KeyError):
        h[3]
    assert h.pop(2) == 20 and 2 not in h
    assert h.pop(2, "gone") == "gone"
    with pytest.raises(KeyError):
        h.pop(2)


def test_hash_delete(counter):
    h = counter.maps["proto_count"]
    h[1] = 10
    h[2] = 20
    del h[1]
    assert 1 not in h and list(h.keys()) == [2]
    with pytest.raises(KeyError):
        del h[1]


def test_hash_clear(counter):
    h = counter.maps["proto_count"]
    for k in range(50):
        h[k] = k
    h.clear()
    assert len(h) == 0 and bpftool("map", "dump", "id", str(h.id)) == []


def test_raw_bytes_keys_and_values(counter):
    h = counter.maps["proto_count"]
    h[b"\x07\0\0\0"] = struct.pack("<Q", 77)
    assert h[7] == 77
    assert h.lookup_raw(7) == struct.pack("<Q", 77) and h.lookup_raw(8) is None
    h[8] = bytearray(struct.pack("<Q", 5))
    assert h[b"\x08\0\0\0"] == 5
    with pytest.raises(XnfError, match="expected 8 bytes"):
        h[9] = b"\x01\x02"


def test_python_writes_are_what_the_kernel_sees(counter):
    """bpftool reads the values written from Python, and the program reads them too."""
    h = counter.maps["proto_count"]
    h[IPPROTO_UDP] = 1000
    dump = bpftool("map", "dump", "id", str(h.id))
    assert [(e["key"], e["value"]) for e in dump] == [(IPPROTO_UDP, 1000)] or \
        [(bytes(int(b, 16) for b in e["key"]), bytes(int(b, 16) for b in e["value"])) for e in dump] == \
        [(struct.pack("<I", IPPROTO_UDP), struct.pack("<Q", 1000))]
    counter.programs["xdp_count"].test_run(udp_frame(), repeat=5)
    assert h[IPPROTO_UDP] == 1005 and counter.maps["pkt_count"][0] == 5


def test_update_flags(counter):
    h = counter.maps["proto_count"]
    h.update(1, 1, flags=syscall.BPF_NOEXIST)
    with pytest.raises(BPFError) as e:
        h.update(1, 2, flags=syscall.BPF_NOEXIST)
    assert e.value.errno == errno.EEXIST and h[1] == 1
    with pytest.raises(BPFError) as e:
        h.update(2, 2, flags=syscall.BPF_EXIST)
    assert e.value.errno == errno.ENOENT


def test_full_hash_map_is_a_typed_error_with_a_hint():
    spec = xnf.open_object(obj("xdp_counter"))
    spec.maps["proto_count"].max_entries = 4
    with xnf.load(spec) as coll:
        h = coll.maps["proto_count"]
        for k in range(4):
            h[k] = k
        with pytest.raises(BPFError) as e:
            h[4] = 4
        assert e.value.errno == errno.E2BIG
        msg = str(e.value)
        assert "\n" not in msg and "full" in msg and "max_entries" in msg, msg
        assert len(h) == 4 and 4 not in h


def test_bad_key_and_value_types(counter):
    h = counter.maps["proto_count"]
    with pytest.raises(XnfError):
        h[2**40] = 1                                             # key does not fit u32
    with pytest.raises(XnfError):
        h[1] = -1                                                # value is unsigned
    assert len(h) == 0


# --- array maps ----------------------------------------------------------------------------

def test_array_dict_operations():
    with xnf.load(obj("tc_counter")) as coll:
        a = coll.maps["tc_hits"]                                 # ARRAY[4] u64
        assert len(a) == 4 and list(a.keys()) == [0, 1, 2, 3]
        assert list(a.items()) == [(0, 0), (1, 0), (2, 0), (3, 0)]
        a[2] = 5
        assert a[2] == 5 and a.get(2) == 5 and 2 in a
        assert 4 not in a and a.get(4) is None
        with pytest.raises(KeyError):
            a[4]
        with pytest.raises(BPFError) as e:
            a[4] = 1                                             # past max_entries
        assert "\n" not in str(e.value)
        with pytest.raises(BPFError):
            del a[0]                                             # array elements cannot be deleted
        a.update_batch([(0, 1), (1, 2), (3, 4)])
        assert list(a.values()) == [1, 2, 5, 4]
        assert sorted(a.lookup_batch()) == [(0, 1), (1, 2), (2, 5), (3, 4)]
        a.clear()                                                # zeroes every element
        assert list(a.values()) == [0, 0, 0, 0] and len(a) == 4


# --- per-CPU maps ----------------------------------------------------------------------------

def test_percpu_values_are_lists():
    ncpu = possible_cpus()
    with xnf.load(obj("percpu")) as coll:
        count, stats = coll.maps["pcpu_count"], coll.maps["pcpu_stats"]
        assert count[0] == [0] * ncpu
        coll.programs["percpu_count"].test_run(udp_frame(), repeat=20)
        assert sum(count[0]) == 20 and len(count[0]) == ncpu
        per_cpu = stats[IPPROTO_UDP]
        assert sum(s.packets for s in per_cpu) == 20
        assert sum(s.bytes for s in per_cpu) == 20 * len(udp_frame())
        count[0] = list(range(ncpu))
        assert count[0] == list(range(ncpu))
        count[0] = 7                                             # one value for every CPU
        assert count[0] == [7] * ncpu
        with pytest.raises(XnfError, match="per-CPU"):
            count[0] = [1] * (ncpu + 1)
        stats[99] = [{"packets": i, "bytes": 10 * i} for i in range(ncpu)]
        assert [s.packets for s in stats[99]] == list(range(ncpu))
        assert dict(stats.lookup_batch())[99][ncpu - 1].bytes == 10 * (ncpu - 1)
        assert sorted(k for k, _ in stats.items()) == [IPPROTO_UDP, 99]
        del stats[99]
        assert 99 not in stats


# --- BTF-coded keys and values ----------------------------------------------------------------

def test_btf_struct_keys_and_values():
    """btf_socket writes flows[{1, BLUE, {3,4}, mac, v4 10.0.0.1}] = {1, len, [{1,2},{5,6}], -5, "xnf"}."""
    with xnf.load(obj("btf_types")) as coll:
        flows, matrices = coll.maps["flows"], coll.maps["matrices"]
        coll.programs["btf_socket"].test_run(udp_frame())
        ((key, value),) = list(flows.items())
        assert (key.ifindex, key.color, key.pt.x, key.pt.y) == (1, 7, 3, 4)
        assert key.mac == bytes.fromhex("02000000005e") and key.addr.v4 == 0x0A000001
        assert (value.packets, value.delta) == (1, -5)
        assert value.name == b"xnf\0\0\0\0\0"                       # char[N] is bytes
        assert [(p.x, p.y) for p in value.last] == [(1, 2), (5, 6)]
        assert flows[key] == value                               # a decoded key looks itself up
        # write from Python with dicts, read back as objects
        new_key = {"ifindex": 2, "color": 7, "pt": {"x": 9, "y": 8}, "mac": b"\x02\0\0\0\0\x01",
                   "addr": {"v4": 0x0A000002}}
        flows[new_key] = {"packets": 3, "bytes": 300, "last": [{"x": 1, "y": 1}], "delta": -1, "name": "py"}
        got = flows[new_key]
        assert (got.packets, got.bytes, got.delta, got.name) == (3, 300, -1, b"py\0\0\0\0\0\0")
        assert [(p.x, p.y) for p in got.last] == [(1, 1), (0, 0)]
        assert len(flows) == 2
        # raw bytes are always accepted, for keys and values
        raw_key = flows.key_codec.encode(new_key)
        assert flows[raw_key].bytes == 300
        # nested arrays
        coll.programs["btf_socket"].test_run(udp_frame())
        m = matrices[1]
        assert m.rows[1][2] == 9 and m.origin.x == 7
        matrices[0] = {"rows": [[1, 2, 3], [4, 5, 6]], "origin": {"x": 1, "y": 2}}
        assert matrices[0].rows == [[1, 2, 3], [4, 5, 6]]


def test_struct_keys_are_hashable():
    """``dict(m.items())`` works for struct-keyed maps too, and its keys look elements up."""
    with xnf.load(obj("btf_types")) as coll:
        flows = coll.maps["flows"]
        coll.programs["btf_socket"].test_run(udp_frame())
        as_dict = dict(flows.items())
        ((key, value),) = as_dict.items()
        assert flows[key] == value and key in {key} and as_dict == dict(flows.lookup_batch())


def test_struct_value_read_modify_write():
    """A value holding a union, read and written back unchanged, stays the same."""
    with xnf.load(obj("btf_types")) as coll:
        flows = coll.maps["flows"]
        coll.programs["btf_socket"].test_run(udp_frame())
        ((key, value),) = list(flows.items())
        value.packets += 1
        flows[key] = value
        assert flows[key].packets == 2
        assert list(flows.keys()) == [key]                       # the union key survived the write


def test_map_from_id_and_pin_decode_with_kernel_btf(bpffs):
    with xnf.load(obj("btf_types")) as coll:
        coll.programs["btf_socket"].test_run(udp_frame())
        flows = coll.maps["flows"]
        expected = list(flows.items())
        with Map.from_id(flows.id) as again:
            assert list(again.items()) == expected and again.name == "flows"
        path = os.path.join(bpffs, "flows")
        flows.pin(path)
        with Map.from_pin(path) as pinned:
            assert list(pinned.items()) == expected and pinned.pinned_at == path


# --- maps of programs and of maps ---------------------------------------------------------------

def test_prog_array_written_from_python():
    """Slots take a Program; reading a slot gives the program's id; the tail call follows."""
    with xnf.load(obj("tail_call")) as coll:
        jmp, cfg, drop = coll.maps["jmp_table"], coll.maps["tail_cfg"], coll.programs["tail_drop"]
        assert dict(jmp.items()) == {0: drop.id, 2: coll.programs["tail_tx"].id}
        jmp[1] = drop
        assert jmp[1] == drop.id
        cfg[0] = 1
        assert coll.programs["tail_entry"].test_run(udp_frame()).retval == XDP_DROP
        del jmp[1]
        assert 1 not in jmp
        assert coll.programs["tail_entry"].test_run(udp_frame()).retval == XDP_PASS


def test_map_in_map_written_from_python():
    with xnf.load(obj("map_in_map")) as coll:
        outer, outer_h = coll.maps["outer_arr"], coll.maps["outer_hash"]
        inner_a, inner_b = coll.maps["inner_a"], coll.maps["inner_b"]
        assert dict(outer.items()) == {0: inner_a.id, 1: inner_b.id}
        inner_a[0], inner_b[0] = XDP_PASS, XDP_DROP
        outer[0] = inner_b                                       # the program now reads inner_b via slot 0
        assert outer[0] == inner_b.id
        assert coll.programs["mim_lookup"].test_run(udp_frame()).retval == XDP_DROP
        outer_h[3] = inner_a
        assert dict(outer_h.items()) == {1: inner_b.id, 3: inner_a.id}


def test_frozen_map_refuses_writes_with_a_hint(counter):
    m = counter.maps["proto_count"]
    m[1] = 1
    m.freeze()
    with pytest.raises(BPFError) as e:
        m[2] = 2
    assert e.value.errno == errno.EPERM and "frozen" in str(e.value), str(e.value)
    assert m[1] == 1 and 2 not in m                             # still readable


# --- map types the dict API does not fit --------------------------------------------------------

def test_maps_without_elements_refuse_with_a_typed_error():
    """A ring buffer has no elements to look up; a bloom filter has no keys. Element access
    raises MapTypeError (a TypeError) naming the map and what to use instead, never a
    bare TypeError from inside the codec or a BPFError with an unnamed errno."""
    with xnf.load(obj("ringbuf")) as coll:
        rb = coll.maps["rb"]
        for op in (lambda: rb[0], lambda: 0 in rb, lambda: len(rb), lambda: list(rb.items())):
            with pytest.raises(errors.MapTypeError) as e:
                op()
            assert "'rb'" in str(e.value) and "RingBuffer" in str(e.value), str(e.value)
    with xnf.load(obj("map_defs")) as coll:
        with pytest.raises(errors.MapTypeError) as e:
            42 in coll.maps["bloom"]
        assert "'bloom'" in str(e.value)


def test_unsupported_operation_names_the_errno():
    """The kernel's ENOTSUPP (524, not in libc's table) is named, with a hint, not "Unknown error 524"."""
    with xnf.load(obj("tail_call")) as coll:
        with pytest.raises(BPFError) as e:
            coll.maps["jmp_table"].lookup_batch()
    msg = str(e.value)
    assert "Unknown error" not in msg and ("ENOTSUPP" in msg or "not supported" in msg), msg


# --- batches --------------------------------------------------------------------------------

def test_batch_update_and_lookup_in_chunks():
    spec = xnf.open_object(obj("xdp_counter"))
    spec.maps["proto_count"].max_entries = 5000
    with xnf.load(spec) as coll:
        h = coll.maps["proto_count"]
        data = {k: k * 3 for k in range(4000)}
        assert h.update_batch(data) == 4000
        assert len(h) == 4000
        for chunk in (7, 1000, 4096):
            assert dict(h.lookup_batch(chunk=chunk)) == data
        raw = h.lookup_batch_raw()
        assert len(raw) == 4000 and all(len(k) == 4 and len(v) == 8 for k, v in raw)
        assert {struct.unpack("<I", k)[0]: struct.unpack("<Q", v)[0] for k, v in raw} == data
        assert h.update_batch([]) == 0
        assert h.update_batch([(b"\x01\0\0\0", struct.pack("<Q", 9))]) == 1 and h[1] == 9


def test_batch_lookup_of_an_empty_map(counter):
    assert counter.maps["proto_count"].lookup_batch() == []


# --- spec edits before load ---------------------------------------------------------------------

def test_rodata_edit_changes_behaviour():
    spec = xnf.open_object(obj("global_data"))
    with xnf.load(spec) as coll:
        assert coll.programs["global_data_prog"].test_run(udp_frame()).retval == XDP_PASS
    spec = xnf.open_object(obj("global_data"))
    spec.rodata["cfg_verdict"] = XDP_DROP
    spec.rodata["cfg_scale"] = 3
    with xnf.load(spec) as coll:
        assert coll.programs["global_data_prog"].test_run(udp_frame()).retval == XDP_DROP
        bss = coll.maps[".bss"][0]
        assert bss.bss_result == 101 * 3 + 3 + 7 + 11    # counter is 101 once the program ran
        ro = coll.maps[".rodata"]
        with pytest.raises(BPFError):                            # frozen: read-only from user space too
            ro[0] = bytes(ro.value_size)


def test_max_entries_edit_reaches_the_kernel():
    spec = xnf.open_object(obj("xdp_counter"))
    spec.maps["proto_count"].max_entries = 8
    with xnf.load(spec) as coll:
        m = coll.maps["proto_count"]
        assert m.max_entries == 8
        assert bpftool("map", "show", "id", str(m.id))["max_entries"] == 8


# --- pinning by name --------------------------------------------------------------------------

def pins(bpffs):
    """What is pinned in a bpffs, without the kernel's own ``*.debug`` iterator files."""
    return sorted(n for n in os.listdir(bpffs) if not n.endswith(".debug"))


def _prog_ids_named(name):
    return {p["id"] for p in bpftool("prog", "show") if p.get("name") == name[:15]}


def test_pin_by_name_reused_across_loads(bpffs):
    path = os.path.join(bpffs, "xnf_pinned_cnt")
    with xnf.load(obj("pin_by_name"), pin_root=bpffs) as first:
        m = first.maps["xnf_pinned_cnt"]
        assert m.pinned_at == path and os.path.exists(path)
        map_id = m.id
        first.programs["pin_count"].test_run(udp_frame(), repeat=3)
        assert m[0] == 3
    # the pin keeps the map alive; a second load reuses it with its contents
    with xnf.load(obj("pin_by_name"), pin_root=bpffs) as second:
        m = second.maps["xnf_pinned_cnt"]
        assert m.id == map_id and m[0] == 3
        second.programs["pin_count"].test_run(udp_frame())
        assert m[0] == 4
    assert pins(bpffs) == ["xnf_pinned_cnt"]


def test_incompatible_pin_is_refused_and_nothing_is_left(bpffs):
    path = os.path.join(bpffs, "xnf_pinned_cnt")
    with xnf.load(obj("pin_by_name"), pin_root=bpffs) as first:
        first.programs["pin_count"].test_run(udp_frame(), repeat=2)
        map_id = first.maps["xnf_pinned_cnt"].id
    spec = xnf.open_object(obj("pin_by_name_incompat"))
    prog_name = "inc" + uuid.uuid4().hex[:10]
    spec.programs["pin_count_incompat"].name = prog_name
    with pytest.raises(MapIncompatibleError) as e:
        xnf.load(spec, pin_root=bpffs)
    msg = str(e.value)
    assert "\n" not in msg and path in msg and "value_size 8 != 4" in msg and "rm " in msg
    assert not _prog_ids_named(prog_name)                        # no program was loaded
    assert pins(bpffs) == ["xnf_pinned_cnt"]                     # the pin is untouched ...
    with Map.from_pin(path) as m:
        assert m.id == map_id and m.value_size == 8 and m[0] == 2  # ... with its contents


def test_explicit_pin_path_and_pin_root(bpffs):
    spec = xnf.open_object(obj("xdp_counter"))
    spec.maps["pkt_count"].pin_path = "sub/dir/pkts"
    with xnf.load(spec, pin_root=bpffs) as coll:
        assert coll.maps["pkt_count"].pinned_at == os.path.join(bpffs, "sub", "dir", "pkts")
        coll.maps["pkt_count"][0] = 41
    with Map.from_pin(os.path.join(bpffs, "sub", "dir", "pkts")) as m:
        assert m[0] == 41


def _mounts_at(path):
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if line.split()[4] == path]


def test_pin_root_outside_bpffs_is_refused_not_mounted_over(tmp_path):
    """A pin root that is an ordinary directory is an error (PinError naming the fix); the
    loader must not mount a bpffs over it, hiding its files, and leave that mount behind."""
    root = tmp_path / "pins"
    root.mkdir()
    (root / "keep.txt").write_text("mine")
    try:
        with pytest.raises(errors.PinError) as e:
            xnf.load(obj("pin_by_name"), pin_root=str(root))
        assert "bpf" in str(e.value) and "\n" not in str(e.value)
        assert not _mounts_at(str(root))
        assert (root / "keep.txt").read_text() == "mine"
    finally:
        while _mounts_at(str(root)):
            subprocess.run(["umount", str(root)], check=False)


# --- lifetime ----------------------------------------------------------------------------------

def test_close_releases_the_map():
    coll = xnf.load(obj("xdp_counter"))
    m = coll.maps["proto_count"]
    map_id = m.id
    coll.close()
    assert m.fd.closed
    import time

    deadline = time.monotonic() + 3
    while map_id in set(syscall.iter_ids("map")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert map_id not in set(syscall.iter_ids("map"))


def test_a_closed_map_never_reaches_another_map():
    """After close() the fd number is free and the next map may get it: operations on the
    closed Map must fail, not read or write whatever map now has that number."""
    first = xnf.load(obj("xdp_counter"))
    old = first.maps["pkt_count"]
    old[0] = 1                                                   # prepares the reusable bpf_attr
    number = int(old.fd)
    first.close()
    with xnf.load(obj("xdp_counter")) as second:
        assert number in (int(second.maps["pkt_count"].fd), int(second.maps["proto_count"].fd))
        with pytest.raises((XnfError, ValueError)):
            old[0] = 99
        with pytest.raises((XnfError, ValueError)):
            old[0]
        assert second.maps["pkt_count"][0] == 0 and len(second.maps["proto_count"]) == 0


def test_repr_and_attributes(counter):
    m = counter.maps["proto_count"]
    assert (m.type, m.key_size, m.value_size, m.max_entries) == (uapi.BPF_MAP_TYPE_HASH, 4, 8, 256)
    assert repr(m) == "Map('proto_count', type=hash, key_size=4, value_size=8, max_entries=256)"
    assert isinstance(m.id, int) and m.id > 0
    assert issubclass(errors.BPFError, OSError)


# --- values that do not fit the map's BTF type (issue 9: stored as all-zero structs) ----------

@pytest.mark.parametrize("value", [5, 1 << 70, "hello"], ids=["int", "huge-int", "str"])
def test_struct_value_of_the_wrong_kind_is_refused_and_nothing_is_stored(value):
    """``m[k] = 5`` on maps whose value is a BTF struct raises a ValueEncodeError (a
    TypeError) naming the map and the struct's fields; the element is not written. Three
    code paths: a precompiled struct (pcpu_stats, per-CPU hash), a nested one with arrays
    (matrices, array map), and the same struct in a plain hash map."""
    spec = xnf.open_object(obj("percpu"))
    spec.maps["pcpu_stats"].type = uapi.BPF_MAP_TYPE_HASH
    with xnf.load(obj("btf_types")) as coll, xnf.load(obj("percpu")) as pc, xnf.load(spec) as plain:
        matrices, stats, hashed = coll.maps["matrices"], pc.maps["pcpu_stats"], plain.maps["pcpu_stats"]
        matrices[1] = {"rows": [[1, 2, 3], [4, 5, 6]], "origin": {"x": 7, "y": 8}}
        for m, key, fields in ((matrices, 1, "['rows', 'origin']"), (stats, 1, "['packets', 'bytes']"),
                               (hashed, 3, "['packets', 'bytes']")):
            with pytest.raises(errors.ValueEncodeError) as e:
                m[key] = value
            msg = str(e.value)
            assert isinstance(e.value, TypeError) and f"map {m.name!r} value" in msg and fields in msg, msg
            assert e.value.map == m.name
        assert matrices[1].rows == [[1, 2, 3], [4, 5, 6]]            # unchanged
        assert 1 not in stats and 3 not in hashed and len(hashed) == 0


def test_out_of_range_field_is_refused_naming_map_and_field():
    with xnf.load(obj("btf_types")) as coll, xnf.load(obj("percpu")) as pc:
        matrices, stats = coll.maps["matrices"], pc.maps["pcpu_stats"]
        for m, key, value, field in (
                (matrices, 0, {"origin": {"x": 1 << 70}}, "origin.x"),
                (matrices, 0, {"rows": [[1, 2, 3], [4, "x", 6]]}, "rows[1][1]"),
                (stats, 2, {"packets": 1, "bytes": -1}, "bytes"),
                (stats, 2, [{"packets": 1}] * (possible_cpus() - 1) + [{"packets": 1 << 64}], "packets")):
            with pytest.raises(errors.ValueEncodeError) as e:
                m[key] = value
            assert e.value.field == field, str(e.value)
            assert str(e.value).startswith(f"map {m.name!r} value, field {field!r}: "), str(e.value)
        assert matrices[0].origin.x == 0 and 2 not in stats
        with pytest.raises(errors.ValueEncodeError, match="map 'matrices' key: expected an integer"):
            matrices["zero"] = {}
        with pytest.raises(errors.ValueEncodeError, match="map 'pcpu_stats' key: .* does not fit"):
            stats.update_batch([(1 << 40, {"packets": 1})])
