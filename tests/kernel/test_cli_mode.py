"""`-m/--mode` (issue 12 item 3): one option says which XDP mode, ``skb``/``native`` put
pping's ingress hook at XDP without ``--ingress-hook xdp``, xdp-loader's and ip's names work,
the deprecated ``-x/--xdp-mode`` still works with a warning, and contradictions are one
line with exit code 1 before anything is attached. `ip -d link show` is the oracle."""
import pytest

from tests.kernel.netenv import sh
from tests.kernel.test_cli import xnf
from tests.kernel.test_cli_status import ip_xdp_mode, ip_xdp_mode_absent

pytestmark = pytest.mark.root


@pytest.mark.parametrize("argv, in_force, warning", [
    (["--mode", "skb"], "skb", None),                     # implies --ingress-hook xdp
    (["-m", "generic"], "skb", None),                     # ip's name for skb mode
    (["-I", "xdp", "-m", "unspecified"], "native", None),  # xdp-loader's name for auto: veth runs native
    (["-x", "generic"], "skb", "-x/--xdp-mode is deprecated: use -m/--mode skb"),
    (["-I", "xdp", "--xdp-mode", "generic", "--mode", "skb"], "skb", "deprecated"),  # agreeing: fine
])
def test_mode_puts_the_ingress_hook_at_xdp_in_that_mode(netns_pair, argv, in_force, warning):
    ns, dev = netns_pair.ns_b, netns_pair.if_b
    r = xnf("attach", "pping", dev, "-n", ns, *argv)
    assert r.returncode == 0, r.stderr
    try:
        assert ip_xdp_mode(ns, dev) == in_force
        if warning:
            assert r.stderr.startswith("xnf: warning: ") and warning in r.stderr, r.stderr
        else:
            assert r.stderr == ""
    finally:
        assert xnf("detach", "pping", dev, "-n", ns).returncode == 0
    assert ip_xdp_mode_absent(ns, dev)


@pytest.mark.parametrize("argv, message", [
    (["--xdp-mode", "generic", "--mode", "native"], "--xdp-mode generic and --mode native ask for different XDP modes"),
    (["-I", "tc", "--mode", "native"], "--mode native runs pping's ingress at XDP, but --ingress-hook tc asks for tc"),
    (["-I", "tc", "--mode", "offload"], "--mode offload runs pping's ingress on the NIC"),
])
def test_contradicting_modes_are_one_line_and_attach_nothing(netns_pair, argv, message):
    ns, dev = netns_pair.ns_b, netns_pair.if_b
    r = xnf("attach", "pping", dev, "-n", ns, *argv)
    assert r.returncode == 1, (r.returncode, r.stderr)
    errors = [line for line in r.stderr.splitlines() if not line.startswith("xnf: warning: ")]
    assert len(errors) == 1 and errors[0].startswith("xnf: error: ") and message in errors[0], r.stderr
    assert ip_xdp_mode_absent(ns, dev)
    assert "clsact" not in sh("tc", "-n", ns, "qdisc", "show", "dev", dev)  # no tc hook either
    assert "no network functions attached" in xnf("status", "-n", ns).stdout


def test_a_network_function_without_xdp_offers_no_mode():
    r = xnf("attach", "pifo_sched", "--help")
    assert r.returncode == 0 and "--mode" not in r.stdout
    r = xnf("attach", "pifo_sched", "lo", "--mode", "native")
    assert r.returncode == 2 and "invalid choice: 'native'" in r.stderr
