import re
import subprocess

import pytest

from xnf.core.errors import ConfigError, InterfaceNotFoundError, NotSupportedError
from xnf.drivers.ethtool_features import features, set_feature

pytestmark = pytest.mark.root


def ethtool_k(netns, ifname):
    """{kernel feature name: (on, fixed)} from `ethtool -k` (the oracle)."""
    out = subprocess.run(["ip", "netns", "exec", netns, "ethtool", "-k", ifname], check=True,
                         capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"\s*([\w-]+): (on|off)( \[fixed\])?", line)
        if m:
            found[m.group(1)] = (m.group(2) == "on", bool(m.group(3)))
    return found


def test_features_agree_with_ethtool(veth):
    netns, a, _ = veth
    ours = features(a, netns)
    theirs = ethtool_k(netns, a)
    common = set(ours) & set(theirs)
    assert {"hw-tc-offload", "rx-gro-hw", "tx-checksum-ip-generic"} <= common
    for name in common:
        assert (ours[name].active, not ours[name].changeable) == theirs[name], name


def test_set_feature_round_trip(veth):
    netns, a, _ = veth
    before = features(a, netns)["tx-checksum-ip-generic"]
    assert before.changeable
    after = set_feature(a, "tx-checksum-ip-generic", not before.active, netns)
    assert after.active is (not before.active)
    assert ethtool_k(netns, a)["tx-checksum-ip-generic"][0] is after.active
    set_feature(a, "tx-checksum-ip-generic", before.active, netns)
    assert ethtool_k(netns, a)["tx-checksum-ip-generic"][0] is before.active


def test_fixed_feature_is_refused(veth):
    netns, a, _ = veth
    with pytest.raises(NotSupportedError, match="changing hw-tc-offload on .* fixes it off"):
        set_feature(a, "hw-tc-offload", True, netns)


def test_unknown_feature_and_interface(veth):
    netns, a, _ = veth
    with pytest.raises(ConfigError, match="has no feature 'warp-drive'"):
        set_feature(a, "warp-drive", True, netns)
    with pytest.raises(InterfaceNotFoundError):
        features("xnfnope0", netns)
