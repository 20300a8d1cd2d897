import json

import pytest

from xnf.drivers.report import features_report, format_report

pytestmark = pytest.mark.root


def test_report_for_veth(veth):
    netns, a, _ = veth
    report = features_report(a, netns)
    json.dumps(report)  # JSON-ready for `xnf features --json`
    assert report["interface"] == a
    assert report["driver"]["name"] == "veth"
    assert report["profile"]["driver"] == "veth"
    assert report["modes"]["skb"]["supported"] is True
    assert report["offload"] == {"possible": False, "target": None}
    if report["xdp_features"] is not None:
        assert "basic" in report["xdp_features"]["xdp"]
    text = format_report(report)
    assert text.splitlines()[0].startswith(f"{a} (ifindex ")
    assert "driver:    veth" in text
    assert "offload:   no" in text
