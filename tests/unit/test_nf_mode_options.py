"""The XDP mode options a network function offers (issue 12 item 3): ``-m/--mode`` with only
``auto`` and the modes it declares, none without an XDP hook; xdp-loader's and ip's names
accepted; pping's constructor refuses a mode and a config that disagree instead of picking one."""
import argparse

import pytest

from xnf.core.errors import ConfigError
from xnf.nf import NetworkFunction
from xnf.plugins.pifo_sched.nf import PifoSched
from xnf.plugins.pping.config import PpingConfig
from xnf.plugins.pping.nf import Pping


class XdpOnly(NetworkFunction):
    name, hooks, modes = "xdponly", ("xdp",), ("skb", "native")


def parser_of(cls):
    p = argparse.ArgumentParser(exit_on_error=False)
    cls.add_hook_arguments(p)
    return p


def test_only_declared_modes_are_offered():
    assert XdpOnly.xdp_modes() == ("auto", "skb", "native")
    assert Pping.xdp_modes() == ("auto", "skb", "native", "offload")
    assert PifoSched.xdp_modes() == ()  # no XDP hook: no mode
    with pytest.raises(argparse.ArgumentError, match="invalid choice: 'offload'"):
        parser_of(XdpOnly).parse_args(["--mode", "offload"])
    with pytest.raises(argparse.ArgumentError, match="invalid choice: 'offload'"):
        parser_of(XdpOnly).parse_args(["-m", "hw"])  # xdp-loader's name for offload, still not offered


@pytest.mark.parametrize("given, mode", [([], "auto"), (["-m", "native"], "native"), (["--mode", "skb"], "skb"),
                                         (["-m", "generic"], "skb"), (["-m", "drv"], "native"),
                                         (["-m", "unspecified"], "auto")])
def test_mode_names_and_aliases(given, mode):
    assert XdpOnly.mode_from_args(parser_of(XdpOnly).parse_args(given)) == mode


def test_hidden_mode_auto_of_a_network_function_without_xdp_warns(capsys):
    args = parser_of(PifoSched).parse_args(["--mode", "auto"])
    assert PifoSched.mode_from_args(args) == "auto"
    assert "xnf: warning: --mode is deprecated for pifo_sched" in capsys.readouterr().err
    assert "--mode" not in parser_of(PifoSched).format_help()


def test_pping_mode_and_config_must_agree():
    with pytest.raises(ConfigError, match="mode 'native' and xdp_mode 'generic' ask for different XDP modes"):
        Pping("lo", PpingConfig(ingress_hook="xdp", xdp_mode="generic"), mode="native")
    with pytest.raises(ConfigError, match="mode 'skb' is an XDP mode but the ingress hook is 'tc'"):
        Pping("lo", PpingConfig(), mode="skb")
    with pytest.raises(ConfigError, match="xdp_mode 'native' does not apply"):
        Pping("lo", PpingConfig(ingress_hook="xdp", xdp_mode="native"), mode="offload")
    nf = Pping("lo", PpingConfig(ingress_hook="xdp"), mode="skb")
    assert (nf.mode, nf.config.xdp_mode) == ("skb", "generic")
    nf = Pping("lo", PpingConfig(ingress_hook="xdp", xdp_mode="generic"))  # auto: the config names it
    assert (nf.mode, nf.config.xdp_mode) == ("skb", "generic")


def test_pping_cli_mode_implies_the_xdp_hook_and_x_is_deprecated(capsys):
    p = argparse.ArgumentParser()
    Pping.add_hook_arguments(p)
    Pping.add_arguments(p)
    args = p.parse_args(["--mode", "native"])
    assert Pping.config_from_args(args).ingress_hook == "xdp" and Pping.mode_from_args(args) == "native"
    args = p.parse_args(["-x", "generic"])
    assert Pping.config_from_args(args).ingress_hook == "xdp" and Pping.mode_from_args(args) == "skb"
    assert "-x/--xdp-mode is deprecated: use -m/--mode skb" in capsys.readouterr().err
    assert "--xdp-mode" not in p.format_help()  # the one option shown is -m/--mode
    assert Pping.config_from_args(p.parse_args([])).ingress_hook == "tc"  # the default hook stays tc
    with pytest.raises(ConfigError, match="--xdp-mode native and --mode skb ask for different XDP modes"):
        Pping.config_from_args(p.parse_args(["-x", "native", "-m", "skb"]))
    with pytest.raises(ConfigError, match="--mode skb runs pping's ingress at XDP, but --ingress-hook tc"):
        Pping.config_from_args(p.parse_args(["-I", "tc", "-m", "skb"]))
