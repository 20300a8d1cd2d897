"""The fast path of ``m[k]`` and ``m[k] = v`` (Map._element_ops): a stable counter for CI,
one bpf(2) call per element and nothing else, and the strict checks kept on it (a key or
value of the wrong kind or out of range is a ValueEncodeError, never a silent write)."""
import os

import pytest

import xnf
from xnf.core.errors import BPFError, ValueEncodeError
from xnf.core.kernel import syscall

pytestmark = pytest.mark.root

OBJ = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bpf", "xdp_counter.bpf.o")


@pytest.fixture
def counted(monkeypatch):
    """proto_count (HASH u32 -> u64, BTF) with every bpf(2) call of its element ops counted."""
    calls = []
    real = syscall._syscall

    def counting(nr, cmd, addr, size):
        calls.append(cmd)
        return real(nr, cmd, addr, size)

    monkeypatch.setattr(syscall, "_syscall", counting)  # before the map's ops bind it
    with xnf.load(xnf.open_object(OBJ)) as coll:
        yield coll.maps["proto_count"], calls


def test_one_syscall_per_element(counted):
    m, calls = counted
    m[1] = 10
    m[2] = 20
    del calls[:]
    for k in range(1, 101):
        m[k % 2 + 1] = k
        assert m[k % 2 + 1] == k
    assert calls.count(syscall.BPF_MAP_UPDATE_ELEM) == 100 and calls.count(syscall.BPF_MAP_LOOKUP_ELEM) == 100
    assert len(calls) == 200
    del calls[:]
    with pytest.raises(KeyError):
        m[3]
    assert calls == [syscall.BPF_MAP_LOOKUP_ELEM]


@pytest.mark.parametrize("key, value", [(1, 1.5), (1, "1"), (1, None), (1, -1), (1, 1 << 64), ("1", 1),
                                        (-1, 1), (1 << 32, 1), (1.0, 1), (b"\x01", 1)])
def test_wrong_kind_or_range_is_a_value_encode_error(counted, key, value):
    m, calls = counted
    m[1] = 7
    del calls[:]
    with pytest.raises(ValueEncodeError):
        m[key] = value
    assert calls == [] and m[1] == 7  # nothing reached the kernel


def test_other_accepted_forms_still_work(counted):
    m, _ = counted
    m[b"\x05\x00\x00\x00"] = (9).to_bytes(8, "little")
    assert m[5] == 9 and m[b"\x05\x00\x00\x00"] == 9
    m[True] = 3  # an int subclass, as before the fast path
    assert m[1] == 3


def test_update_flags_do_not_leak_into_later_lookups(counted):
    m, _ = counted
    m.update(1, 1, flags=syscall.BPF_NOEXIST)
    with pytest.raises(BPFError):
        m.update(1, 2, flags=syscall.BPF_NOEXIST)
    assert m[1] == 1
    m[1] = 4
    assert m[1] == 4
