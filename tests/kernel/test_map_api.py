"""Map API beyond the dict: unpin, batch deletes and draining batches, on the real kernel.

bpftool is the independent view of what the kernel holds after each call.
"""
import json
import os
import subprocess
import sys

import pytest

import xnf
from xnf.core.errors import NotSupportedError, PinError
from xnf.core.kernel.maps import Map

pytestmark = pytest.mark.root

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def obj(name):
    return os.path.join(ROOT, "tests", "bpf", name + ".bpf.o")


def bpftool_entries(map_id):
    out = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(map_id)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def big_hash(n):
    spec = xnf.open_object(obj("xdp_counter"))
    spec.maps["proto_count"].max_entries = max(n, 1) + 100
    return spec


def test_unpin_removes_the_pin_and_keeps_the_map(bpffs):
    with xnf.load(obj("xdp_counter")) as coll:
        h = coll.maps["proto_count"]
        h[5] = 50
        path = os.path.join(bpffs, "proto")
        h.pin(path)
        with Map.from_pin(path) as opened:
            opened.unpin()
            assert not os.path.lexists(path) and opened.pinned_at is None
            assert opened[5] == 50  # the map lives on while an fd holds it
            with pytest.raises(PinError, match="'proto_count' is not pinned"):
                opened.unpin()
        with pytest.raises(PinError, match=f"nothing is pinned at {path}"):
            h.unpin()  # h still remembers the path another handle removed


def test_delete_batch_in_chunks_and_missing_key():
    with xnf.load(big_hash(3000)) as coll:
        h = coll.maps["proto_count"]
        h.update_batch({k: k for k in range(3000)})
        assert h.delete_batch(range(0, 3000, 2), chunk=700) == 1500
        assert sorted(h.keys()) == list(range(1, 3000, 2))
        assert len(bpftool_entries(h.id)) == 1500
        with pytest.raises(KeyError) as e:
            h.delete_batch([1, 3, 4, 5])  # 4 was deleted above
        assert e.value.args == (4,)
        assert 1 not in h and 3 not in h and 5 in h  # like a loop of `del`: stops at the missing key
        assert h.delete_batch([]) == 0


def test_lookup_and_delete_batch_drains_the_map():
    with xnf.load(big_hash(2500)) as coll:
        h = coll.maps["proto_count"]
        data = {k: 7 * k for k in range(2500)}
        h.update_batch(data)
        got = h.lookup_and_delete_batch(chunk=600)
        assert dict(got) == data and len(got) == 2500
        assert len(h) == 0 and bpftool_entries(h.id) == []
        assert h.lookup_and_delete_batch() == []  # an empty map drains to nothing


def test_batch_deletes_on_an_array_are_not_supported():
    with xnf.load(obj("xdp_counter")) as coll:
        a = coll.maps["pkt_count"]
        for op in (lambda: a.delete_batch([0]), a.lookup_and_delete_batch):
            with pytest.raises(NotSupportedError) as e:
                op()
            assert "'pkt_count'" in str(e.value) and "array" in str(e.value).lower(), str(e.value)


def xnf_map_dump_json(map_id):
    r = subprocess.run([sys.executable, "-m", "xnf.cli.main", "map", "dump", str(map_id), "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_map_dump_json_shows_char_arrays_as_bpftool_does():
    """core_kinds' .bss holds ``char core_comm[16]``: a string in both dumps; bytes that are
    not printable text stay hex (bpftool then prints the chars one by one)."""
    with xnf.load(obj("core_kinds")) as coll:
        bss = coll.maps[".bss"]
        value = dict(bss[0])
        value["core_comm"], value["core_pid"] = b"ksoftirqd/0", 42
        bss[0] = value
        ours = xnf_map_dump_json(bss.id)
        theirs = bpftool_entries(bss.id)
        assert len(ours) == len(theirs) == 1
        formatted = {k: v for var in theirs[0]["formatted"]["value"][".bss"] for k, v in var.items()}
        assert ours[0]["key"] == 0 and ours[0]["value"] == formatted
        assert ours[0]["value"]["core_comm"] == "ksoftirqd/0" and ours[0]["value"]["core_pid"] == 42

        value["core_comm"] = b"\x01\xff" + bytes(14)
        bss[0] = value
        assert xnf_map_dump_json(bss.id)[0]["value"]["core_comm"] == "01ff" + "00" * 14
        value["core_comm"] = b"\0ab" + bytes(13)  # data after a leading NUL is not an empty string
        bss[0] = value
        assert xnf_map_dump_json(bss.id)[0]["value"]["core_comm"] == "006162" + "00" * 13
        value["core_comm"] = bytes(16)
        bss[0] = value
        assert xnf_map_dump_json(bss.id)[0]["value"]["core_comm"] == ""
