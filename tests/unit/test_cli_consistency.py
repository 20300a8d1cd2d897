"""CLI consistency points of issue 12 item 3 that need no root: `--json` alone means standard
output for `xnf sched simulate` as for every other command, help texts carry no reST
markup, and hints keep `--netns` when it was given."""
import argparse
import io
import json
import re

import pytest

from xnf.cli.main import build_parser, main
from xnf.plugins.pifo_sched import cli as sched_cli

REST = re.compile(r"``|:[a-z]+:`")


def _simulate(argv):
    parser = argparse.ArgumentParser(prog="xnf")
    sched_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sched", "simulate", "fifo", "--duration", "0.2", *argv])
    out = io.StringIO()
    assert args.func(args, out=out) == 0
    return out.getvalue()


def test_sched_simulate_json_alone_writes_json_to_stdout():
    data = json.loads(_simulate(["--json"]))
    assert data["scheduler"] == "fifo" and "flows" in data


def test_sched_simulate_json_dash_and_file_still_work(tmp_path):
    assert json.loads(_simulate(["--json", "-"]))["scheduler"] == "fifo"
    path = tmp_path / "r.json"
    text = _simulate(["--json", str(path)])
    assert text.startswith("fifo: ")  # the table still goes to stdout
    assert json.loads(path.read_text())["scheduler"] == "fifo"


def _all_parsers(parser, path=("xnf",)):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _all_parsers(sub, path + (name,))


def test_no_help_text_shows_rest_markup():
    """`sched --help` printed the module docstring with ``literals`` and :mod:`roles`."""
    bad = []
    for name, parser in _all_parsers(build_parser([])):
        text = parser.format_help()
        if REST.search(text):
            bad.append(f"{name}: {REST.search(text).group(0)!r}")
    assert bad == []


def test_detach_not_attached_hint_keeps_netns(capsys, monkeypatch):
    from xnf.nf import NetworkFunction

    class Nothing(NetworkFunction):
        name = "pping"

        @classmethod
        def clear(cls, iface, netns=None):
            return False

    from xnf import registry

    monkeypatch.setattr(registry, "network_function", lambda name: Nothing)
    assert main(["detach", "pping", "veth9", "--netns", "blue"]) == 1
    err = capsys.readouterr().err
    assert "pping is not attached to veth9 in netns blue" in err
    assert "`xnf status --netns blue`" in err


def test_pping_live_commands_not_attached_hint_keeps_netns(capsys, monkeypatch):
    from xnf.plugins.pping.nf import Pping

    monkeypatch.setattr(Pping, "attached", classmethod(lambda cls, iface, netns=None: None))
    assert main(["pping", "stats", "veth9", "--netns", "blue"]) == 1
    err = capsys.readouterr().err
    assert "pping is not attached to veth9 in netns blue" in err
    assert "`xnf attach pping veth9 --netns blue`" in err


@pytest.mark.parametrize("ns,command", [(None, "xnf detach pping veth9"),
                                           ("blue", "xnf detach pping veth9 --netns blue")])
def test_already_attached_hint_keeps_netns(ns, command, tmp_path):
    """The refusal of a second attach names the detach command with --netns when there is one."""
    from xnf.core.attach.pinroot import AlreadyAttachedError, PinRoot

    root = PinRoot("veth9", "pping", netns=ns, root=str(tmp_path))
    (tmp_path / root.path[len(str(tmp_path)) + 1:]).mkdir(parents=True)
    with pytest.raises(AlreadyAttachedError) as e:
        root.refuse_if_present()
    assert f"`{command}`" in e.value.hint
