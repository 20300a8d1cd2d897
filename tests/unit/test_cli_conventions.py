"""Every `xnf` command's options against the conventions of bpftool, xdp-loader and iproute2
(issue 12; the table is docs/cli.md): a command that prints state has ``-j/--json``; a
command that takes an interface has ``-n/--netns``; every option says what it does; a usage
error exits 2, a refused or failed command 1, ``--help`` 0. The parser is walked, so a new
command has to be classified below (and reviewed) before this passes."""
import argparse
import os
import subprocess
import sys

import pytest

from xnf.cli.main import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XNF = [sys.executable, "-m", "xnf.cli.main"]

PRINTS_STATE = {"list", "status", "features", "prog load", "prog show", "prog core", "map dump",
                "pping stats", "sched list", "sched simulate"}
"""Commands whose output is a state or a result a script reads: they have --json."""
STREAMS = {"run pping", "pping events", "pping read"}
"""Commands that stream events; their machine-readable form is ``-F json|jsonl``."""
ACTS = {"attach pping", "attach pifo_sched", "run pifo_sched", "detach", "demo pping", "demo pifo_sched",
        "pping plot"}
"""Commands that change something (or draw a file) and print a line saying so."""

GAPS = {}
"""Known departures, each with why; fixing one means deleting it here."""


def leaves(parser, path=()):
    """(command words, parser) of every command that takes no sub-command."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield " ".join(path), parser
        return
    for name, sub in subs[0].choices.items():
        yield from leaves(sub, path + (name,))


@pytest.fixture(scope="module")
def commands():
    return dict(leaves(build_parser(["attach"])))  # every command, every installed NF, no cache written


def options(parser):
    return {s for a in parser._actions for s in a.option_strings}


def test_every_command_is_classified(commands):
    assert set(commands) == PRINTS_STATE | STREAMS | ACTS


def test_state_commands_have_json(commands):
    for name in PRINTS_STATE:
        for opt in ("--json", "-j"):
            if (name, opt) in GAPS:
                assert opt not in options(commands[name]), f"{name} has {opt} now: remove it from GAPS"
                continue
            assert opt in options(commands[name]), f"`xnf {name}` prints state but has no {opt}"


def test_interface_commands_have_netns(commands):
    with_iface = [name for name, p in commands.items()
                  if any(a.metavar == "IFACE" for a in p._actions if not a.option_strings)]
    assert {"attach pping", "run pping", "detach", "status", "features", "pping stats"} <= set(with_iface)
    for name in with_iface:
        assert {"-n", "--netns"} <= options(commands[name]), f"`xnf {name}` takes IFACE but has no -n/--netns"


def test_xdp_mode_is_one_option(commands):
    """-m/--mode where an XDP hook is (only the modes the NF runs in), nothing else shown."""
    for name, p in commands.items():
        shown = {s for a in p._actions if a.help != argparse.SUPPRESS for s in a.option_strings}
        assert "--xdp-mode" not in shown, name
        if name in ("attach pping", "run pping"):
            mode = next(a for a in p._actions if "--mode" in a.option_strings)
            assert mode.option_strings == ["-m", "--mode"] and tuple(mode.choices) == ("auto", "skb", "native", "offload")
        if name in ("attach pifo_sched", "run pifo_sched"):
            assert "--mode" not in shown  # no XDP hook


def test_every_option_and_argument_says_what_it_does(commands):
    missing = [f"{name}: {(a.option_strings or [a.metavar or a.dest])[0]}" for name, p in commands.items()
               for a in p._actions if not a.help and not isinstance(a, argparse._HelpAction)]
    assert missing == []


def xnf(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(XNF + list(args), capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_exit_codes(commands, tmp_path):
    for name in sorted(commands):  # a usage error in any command: 2, one line naming its --help
        with pytest.raises(SystemExit) as exit_:
            build_parser(name.split()).parse_args(name.split() + ["--no-such-option"])
        assert exit_.value.code == 2, name
    r = xnf("status", "--no-such-option")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "(see `xnf status --help`)" in r.stderr
    r = xnf("attach", "pping", "lo", "--bogus")  # named by the command that did not take it
    assert r.returncode == 2 and "unrecognized arguments: --bogus (see `xnf attach pping --help`)" in r.stderr
    r = xnf("attach", "pifo_sched", "lo", "--mode", "native")  # a mode the NF does not run in: usage
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = xnf("pping", "read", str(tmp_path / "missing.pcap"))  # understood, and failed: 1
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and r.stderr.startswith("xnf: error: ")
    r = xnf("pping", "read", str(tmp_path / "missing.pcap"), "--rtt-type", "smoothed")  # contradiction: 1
    assert r.returncode == 1 and "--rtt-rate" in r.stderr
    assert xnf("list", "--help").returncode == 0
