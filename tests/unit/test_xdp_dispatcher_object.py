"""xnf's XDP dispatcher object keeps the shape libxdp relies on (protocol version 2,
xdp-tools lib/libxdp/protocol.org), and the run order and config packing match libxdp's.
No kernel needed: the object is read, not loaded."""
import xnf
from xnf.core.attach import dispatcher as D
from xnf.core.object import btf as B


def spec():
    return xnf.open_object(D.OBJECT)


def test_programs_map_and_metadata_are_what_libxdp_checks():
    s = spec()
    assert set(s.programs) == {"xdp_dispatcher", "xdp_pass"}  # libxdp: name "xdp_dispatcher"
    assert list(s.maps) == [".rodata"]  # libxdp: exactly one map
    rodata = s.maps[".rodata"]
    assert (rodata.key_size, rodata.value_size, rodata.max_entries) == (4, D.CONFIG.size, 1) == (4, 124, 1)
    assert rodata.flags & D.BPF_F_RDONLY_PROG
    btf = s.btf
    sec = btf.find("xdp_metadata", B.KIND_DATASEC)
    var = btf[btf.datasec_var(sec, "dispatcher_version")[0]]
    _, ptr = btf.resolve(var.type)
    assert btf[ptr.type].array[2] == D.VERSION == 2


def test_slots_are_global_functions_taking_xdp_md():
    btf = spec().btf
    for name in [f"prog{i}" for i in range(D.MAX_PROGS)] + ["compat_test", "xdp_dispatcher"]:
        func = btf[btf.find(name, B.KIND_FUNC)]
        assert func.linkage == 1, name  # global: static functions cannot be replaced
        proto = btf[func.type]
        assert btf.type_name(proto.type) == "int"
        (_, arg), = proto.members
        assert btf.type_name(arg) == "struct xdp_md *", name


def test_config_layout():
    packed = D.CONFIG.pack(D.MAGIC, D.VERSION, 2, 0, *([0] * 10), *([0] * 10), *([0] * 10))
    assert len(packed) == 124 and packed[:3] == bytes([236, 2, 2])
    assert D.action_mask(["XDP_PASS", "XDP_DROP"]) == 0b110
    assert D.action_names(0b110 | 1 << D.RETVAL) == ("XDP_DROP", "XDP_PASS")


def test_run_order_is_libxdps():
    """cmp_xdp_programs: priority, then name (strcmp), then tag."""
    def c(name, prio, tag):
        return (D.Component(slot=-1, prog_id=0, name=name, priority=prio, actions=D.DEFAULT_ACTIONS, tag=tag), None)

    members = [c("zeta", 50, "01"), c("alpha", 50, "ff"), c("xdpfilt_alw_all", 10, "00"), c("alpha", 50, "00"),
               c("Beta", 50, "00")]
    order = [(m.name, m.tag) for m, _ in D._order(members)]
    assert order == [("xdpfilt_alw_all", "00"), ("Beta", "00"), ("alpha", "00"), ("alpha", "ff"), ("zeta", "01")]
