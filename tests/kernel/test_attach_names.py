"""Names the attach layer parses and builds (tc handles, XDP modes, pin paths): no root needed."""
import sys

import pytest

from xnf.core.attach.pinroot import PinRoot
from xnf.core.attach.tc import format_handle, parse_handle
from xnf.core.attach.xdp import canonical_mode
from xnf.core.errors import AttachError, ModeNotSupportedError, PinError


@pytest.mark.parametrize("text,value", [
    ("1:", 0x10000), ("1:0", 0x10000), ("1:10", 0x10010), ("ffff:fff2", 0xFFFFFFF2), (":5", 5),
    ("ingress", 0xFFFFFFF2), ("egress", 0xFFFFFFF3), ("root", 0xFFFFFFFF), (0x20000, 0x20000),
    ("0x30000", 0x30000),
])
def test_parse_handle(text, value):
    assert parse_handle(text) == value


def test_format_handle_round_trips():
    for value in (0x10000, 0x10010, 0xABCD0001, 0xFFFFFFF2, 0xFFFFFFF3, 0xFFFFFFFF):
        assert parse_handle(format_handle(value)) == value
    assert format_handle(0x10010) == "1:10"


@pytest.mark.parametrize("bad", ["x:y", "1:2:3:g", "banana"])
def test_bad_handles(bad):
    with pytest.raises(AttachError, match="bad tc handle"):
        parse_handle(bad)


def test_xdp_modes():
    assert [canonical_mode(m) for m in ("generic", "skb", "drv", "native", "hw", "offload", "auto")] == \
        ["skb", "skb", "native", "native", "offload", "offload", "auto"]
    with pytest.raises(ModeNotSupportedError, match="unknown XDP mode 'turbo'"):
        canonical_mode("turbo")


def test_pin_root_paths():
    assert PinRoot("eth0", "pping", root="/sys/fs/bpf/xnf").path == "/sys/fs/bpf/xnf/eth0/pping"
    assert PinRoot("veth0", "pping", "blue", root="/r").attachment_path("xdp") == "/r/veth0@blue/pping/xdp"
    assert PinRoot("eth0.100", "nf", "n%1", root="/r").path == "/r/eth0%2e100@n%251/nf"
    with pytest.raises(PinError, match="refuses dots"):
        PinRoot("eth0", "my.nf", root="/r")


def test_import_xnf_core_attach_does_not_import_pyroute2():
    import subprocess

    code = ("import sys, xnf.core.attach, xnf.core.kernel.pin, xnf.core.kernel.features, xnf.core.kernel.netns; "
            "sys.exit('pyroute2' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
