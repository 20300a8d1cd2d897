"""Maps of an offloaded program, read and written from Python like any other."""
import json

from xnf.core import uapi
from xnf.core.kernel.info import map_info

from vm_offload import load_bound, sh


def bpftool_dump(map_fd_owner):
    info = map_info(map_fd_owner.fd)
    out = sh("bpftool", "-j", "map", "dump", "id", str(info.id)).stdout
    return {int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little"):
            int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little") for e in json.loads(out)}


def test_maps_live_on_the_device_except_perf_arrays(nsim):
    with load_bound(nsim) as coll:
        assert map_info(coll.maps["ok_count"].fd).ifindex == nsim.ifindex
        assert map_info(coll.maps["ok_last_len"].fd).ifindex == nsim.ifindex
        events = map_info(coll.maps["ok_events"].fd)
        assert events.type == uapi.BPF_MAP_TYPE_PERF_EVENT_ARRAY and events.ifindex == 0


def test_offloaded_array_read_and_write(nsim):
    with load_bound(nsim) as coll:
        counts = coll.maps["ok_count"]
        assert counts[0] == 0 and counts[1] == 0
        counts[1] = 41
        counts[0] = 7
        assert counts[1] == 41
        assert sorted(counts.items()) == [(0, 7), (1, 41)]
        assert bpftool_dump(counts) == {0: 7, 1: 41}


def test_offloaded_hash_update_getnext_delete(nsim):
    with load_bound(nsim) as coll:
        last = coll.maps["ok_last_len"]
        assert list(last.keys()) == []
        last[3] = 1500
        last[9] = 60
        assert sorted(last.keys()) == [3, 9]
        assert bpftool_dump(last) == {3: 1500, 9: 60}
        del last[3]
        assert 3 not in last and last[9] == 60
        last.clear()
        assert len(last) == 0
