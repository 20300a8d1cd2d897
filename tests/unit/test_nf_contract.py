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


# --- every network function xnf ships, and the docs' example, satisfy the contract ------------

EXAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "plugin_example")


def _example_nf():
    import sys

    if EXAMPLE_DIR not in sys.path:
        sys.path.insert(0, EXAMPLE_DIR)
    from xnf_example_nf import ExampleNF

    return ExampleNF


def _shipped():
    from xnf import registry

    return dict(registry.network_functions(), example=_example_nf())


SHIPPED = ("pping", "pifo_sched", "example")


def test_the_built_ins_are_registered():
    from xnf import registry

    assert {"pping", "pifo_sched"} <= set(registry.network_functions())


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_network_function_satisfies_the_contract(name):
    cls = _shipped()[name]
    assert cls.name == name
    assert nf.contract_problems(cls) == []


def test_contract_problems_names_what_is_missing():
    class Half(nf.NetworkFunction):
        name = "half"
        hooks = ("xdp", "wormhole")
        objects = ("missing.bpf.o",)

        @classmethod
        def add_demo_arguments(cls, parser):
            pass

    problems = "\n".join(nf.contract_problems(Half))
    for text in ("description is not set", "hooks ('xdp', 'wormhole')", "object 'missing.bpf.o'",
                 "attach() is not implemented", "attached() is not implemented",
                 "add_demo_arguments() without demo()"):
        assert text in problems, text


# The functions of xnf.core.attach that attach at each hook.
HOOK_FUNCTIONS = {"attach_xdp": "xdp", "attach_tc": "tc", "attach_tcx": "tc", "attach_cls_bpf": "qdisc"}


def _hooks_used(package_dir):
    """Hooks the package's code attaches at: calls that name an attach function (called,
    or handed to NetworkFunction.building's ``attach``), tc ones with their direction."""
    import ast

    used = set()
    for base, _dirs, files in os.walk(package_dir):
        for fname in files:
            if not fname.endswith(".py"):
                continue
            with open(os.path.join(base, fname)) as f:
                tree = ast.parse(f.read())
            for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
                parts = [call.func, *call.args, *(k.value for k in call.keywords)]
                names = {getattr(p, "id", getattr(p, "attr", None)) for p in parts}
                for fn in names & set(HOOK_FUNCTIONS):
                    hook = HOOK_FUNCTIONS[fn]
                    if hook == "tc":
                        strings = {p.value for p in parts if isinstance(p, ast.Constant)}
                        used |= {f"tc-{d}" for d in ("ingress", "egress") if d in strings}
                    else:
                        used.add(hook)
    return used


@pytest.mark.parametrize("name", SHIPPED)
def test_declared_hooks_are_the_hooks_used(name):
    """pifo_sched declared a "qdisc" hook it never attached at (issue 13)."""
    import sys

    cls = _shipped()[name]
    package_dir = os.path.dirname(sys.modules[cls.__module__].__file__)
    assert _hooks_used(package_dir) == set(cls.hooks)


@pytest.mark.parametrize("name", SHIPPED)
def test_explain_is_part_of_the_contract(name):
    cls = _shipped()[name]
    assert isinstance(cls("lo").explain(), str)


def test_explain_defaults_to_nothing():
    assert DemoNF("veth0").explain() == ""


@pytest.mark.parametrize("name", SHIPPED)
def test_cli_hooks_build_options_and_commands(name):
    """add_arguments/config_from_args give the default config; register_cli and the demo
    hooks build their parsers (what `xnf` calls for every installed network function)."""
    cls = _shipped()[name]
    p = argparse.ArgumentParser(exit_on_error=False)
    cls.add_arguments(p)
    assert cls.config_from_args(p.parse_args([])) == cls.Config()
    sub = argparse.ArgumentParser().add_subparsers()
    cls.register_cli(sub)
    if cls.demo is not None:
        cls.add_demo_arguments(argparse.ArgumentParser())


def test_pping_cli_lives_in_its_cli_module():
    """pping's command group, live commands included, is built in pping/cli.py (issue 13)."""
    from xnf.plugins.pping import cli as pping_cli
    from xnf.plugins.pping.nf import Pping

    sub = argparse.ArgumentParser().add_subparsers()
    group = pping_cli.register(sub, Pping)
    assert set(group.choices) == {"read", "plot", "events", "stats"}
    assert group.choices["stats"].get_default("func") is pping_cli.cmd_stats
    import xnf.plugins.pping.nf as pping_nf

    assert not [n for n in vars(pping_nf) if n.endswith("_main") or n == "add_live_commands"]


@pytest.mark.parametrize("name", SHIPPED)
def test_pins_and_pin_root_name_the_same_directory(name, tmp_path):
    cls = _shipped()[name]
    inst = cls("veth0", netns="ns1")
    assert inst.pin_root("veth0", "ns1").path == inst.pin_dir == inst.pins.path
    assert inst.pin_dir.endswith(f"/veth0@ns1/{name}")
