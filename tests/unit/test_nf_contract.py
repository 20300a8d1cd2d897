"""The network-function contract: an attrs ``Config`` becomes CLI options by itself
(ints, floats, strings, bools as flags, enums and ``choices`` as choices), parsed
options become a validated config, bad values a ConfigError; modes are checked."""
import argparse
import enum
import os

import attrs
import pytest

from xnf import nf
from xnf.core.errors import ConfigError, XnfError


class Direction(enum.Enum):
    INGRESS = "ingress"
    EGRESS = "egress"


def _positive(_inst, attribute, value):
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


@attrs.define
class DemoConfig:
    rate: int = attrs.field(default=100, validator=_positive, metadata={"help": "packets per second"})
    ratio: float = 0.5
    label: str = "x"
    verbose: bool = False
    aggregate: bool = True
    direction: Direction = Direction.INGRESS
    fmt: str = attrs.field(default="text", metadata={"choices": ("text", "json")})
    ports: list = attrs.field(factory=list, metadata={"cli": False})
    out_file: str = attrs.field(default=None, metadata={"metavar": "PATH"})


class DemoNF(nf.NetworkFunction):
    name = "demo_nf"
    description = "a network function for tests"
    hooks = ("xdp",)
    modes = ("skb",)
    Config = DemoConfig


def parser_for(cls):
    p = argparse.ArgumentParser(prog="t", exit_on_error=False)
    cls.add_arguments(p)
    return p


def parse(argv, cls=DemoNF):
    return parser_for(cls).parse_args(argv)


def test_defaults_become_the_config():
    cfg = DemoNF.config_from_args(parse([]))
    assert cfg == DemoConfig()
    assert cfg.verbose is False and cfg.aggregate is True and cfg.direction == Direction.INGRESS


def test_every_field_is_an_option():
    cfg = DemoNF.config_from_args(parse(["--rate", "7", "--ratio", "0.25", "--label", "y", "--verbose",
                                         "--no-aggregate", "--fmt", "json", "--out-file", "/tmp/o"]))
    assert (cfg.rate, cfg.ratio, cfg.label, cfg.verbose, cfg.aggregate, cfg.fmt, cfg.out_file) == \
        (7, 0.25, "y", True, False, "json", "/tmp/o")
    assert isinstance(cfg.rate, int) and isinstance(cfg.ratio, float)


def test_help_lists_options_with_help_text_and_metavar():
    text = parser_for(DemoNF).format_help()
    for opt in ("--rate", "--ratio", "--label", "--verbose", "--no-aggregate", "--direction", "--fmt",
                "--out-file PATH", "packets per second"):
        assert opt in text, opt
    assert "--ports" not in text                                # metadata cli=False hides a field
    assert "{text,json}" in text and "{ingress,egress}" in text


def test_bad_choice_is_a_usage_error():
    with pytest.raises(argparse.ArgumentError):
        parse(["--fmt", "xml"])
    with pytest.raises(argparse.ArgumentError):
        parse(["--rate", "many"])


def test_enum_option_gives_the_enum_member():
    """The default is a Direction, so a parsed value must be one too: code comparing
    ``cfg.direction == Direction.EGRESS`` must not depend on where the value came from."""
    cfg = DemoNF.config_from_args(parse(["--direction", "egress"]))
    assert cfg.direction == Direction.EGRESS


def test_validator_errors_become_config_errors():
    with pytest.raises(ConfigError) as e:
        DemoNF.config_from_args(parse(["--rate", "-3"]))
    assert "rate must be positive" in str(e.value) and isinstance(e.value, XnfError)


def test_string_annotations():
    """``from __future__ import annotations`` gives type names as strings: still typed options."""
    ns = {}
    exec("from __future__ import annotations\nimport attrs\n"
         "@attrs.define\nclass C:\n    n: int = 1\n    on: bool = False\n    f: float = 1.0\n", ns)
    p = argparse.ArgumentParser()
    nf.add_config_arguments(p, ns["C"])
    args = p.parse_args(["--n", "3", "--on", "--f", "2.5"])
    cfg = nf.config_from_args(ns["C"], args)
    assert (cfg.n, cfg.on, cfg.f) == (3, True, 2.5)


def test_no_config():
    class Bare(nf.NetworkFunction):
        name = "bare"

    p = parser_for(Bare)
    assert Bare.config_from_args(p.parse_args([])) == nf.NoConfig()


def test_modes_are_checked():
    assert DemoNF("veth0").mode == "auto"
    assert DemoNF("veth0", mode="skb").mode == "skb"
    with pytest.raises(ConfigError, match="cannot run in native mode"):
        DemoNF("veth0", mode="native")
    with pytest.raises(ConfigError, match="unknown mode 'turbo'"):
        DemoNF("veth0", mode="turbo")


def test_base_behaviour():
    inst = DemoNF("veth0", netns="ns1")
    assert inst.config == DemoConfig()
    assert inst.status() == {"name": "demo_nf", "iface": "veth0", "netns": "ns1", "mode": "auto"}
    assert DemoNF.attached("veth0") is None
    with pytest.raises(NotImplementedError):
        inst.attach()
    with pytest.raises(NotImplementedError):
        inst.detach()
    sub = argparse.ArgumentParser().add_subparsers()
    assert DemoNF.register_cli(sub) is None


def test_run_returns_when_stopped():
    import io
    import threading

    stop = threading.Event()
    stop.set()
    DemoNF("veth0").run(io.StringIO(), stop)


def test_object_path_is_in_the_plugin_package():
    from xnf.plugins import pping  # a package shipping a BPF object

    class InPping(nf.NetworkFunction):
        name = "p"

    InPping.__module__ = "xnf.plugins.pping.nf"
    path = InPping.object_path("pping.bpf.o")
    assert path == os.path.join(os.path.dirname(pping.__file__), "pping.bpf.o")


def test_hooks_and_modes_vocabulary():
    assert set(DemoNF.hooks) <= set(nf.HOOKS) and set(DemoNF.modes) <= set(nf.MODES)


def test_registry_look_ups():
    from xnf import registry
    from xnf.core.errors import PluginError

    nfs = registry.network_functions()
    for name, cls in nfs.items():
        assert issubclass(cls, nf.NetworkFunction) and cls.name == name
        assert registry.network_function(name) is cls
    with pytest.raises(PluginError) as e:
        registry.network_function("no_such_nf")
    msg = str(e.value)
    assert "no network function named 'no_such_nf'" in msg and "\n" not in msg
    assert all(name in msg for name in nfs)
    assert registry.scheduler("fifo").__name__ == "Fifo"
    with pytest.raises(PluginError, match="no scheduler named"):
        registry.scheduler("no_such_sched")
