"""``xnf sched`` through an argparse parser built the way the lead's main does."""
import argparse
import io
import json
import sys
import textwrap

import pytest

from xnf.plugins.pifo_sched import cli, registry
from xnf.plugins.pifo_sched.errors import SchedulerConfigError, UnknownSchedulerError
from xnf.plugins.pifo_sched.packet import Packet
from xnf.plugins.pifo_sched.sim.runner import simulate, write_events

from support.distribution import write_distribution


def run(argv):
    parser = argparse.ArgumentParser(prog="xnf")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    out = io.StringIO()
    code = args.func(args, out=out)
    return code, out.getvalue()


def test_list_names_every_builtin():
    code, out = run(["sched", "list"])
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == sorted(["fifo", "strict_priority", "drr", "stfq", "wfq", "wf2q", "srpt", "lstf",
                            "hpfq", "tbf", "edt", "sp_pifo", "fq_codel"])


def test_simulate_json_shares_follow_weights(tmp_path):
    code, out = run(["sched", "simulate", "wfq", "--weights", "1,2,3", "--duration", "5", "--json", "-"])
    assert code == 0
    data = json.loads(out)
    assert [round(f["share"], 2) for f in data["flows"]] == [0.17, 0.33, 0.5]
    assert [f["configured_share"] for f in data["flows"]] == [0.166667, 0.333333, 0.5]
    plot = tmp_path / "p.png"
    code, out = run(["sched", "simulate", "stfq", "--weights", "1,3", "--duration", "1", "--plot", str(plot),
                     "--json", str(tmp_path / "r.json")])
    assert plot.read_bytes()[:4] == b"\x89PNG" and "share" in out
    assert json.loads((tmp_path / "r.json").read_text())["scheduler"] == "stfq"


def test_simulate_from_config_file(tmp_path):
    config = tmp_path / "h.json"
    config.write_text(json.dumps({
        "scheduler": {"tree": {"children": [{"weight": 3, "children": [{"flow": 0}]},
                                            {"weight": 1, "children": [{"flow": 1}]}]}},
        "traffic": [{"kind": "bulk", "flow": 0}, {"kind": "bulk", "flow": 1}],
        "duration": 2, "link_rate": "5mbit"}))
    code, out = run(["sched", "simulate", "hpfq", "--config", str(config), "--json", "-"])
    data = json.loads(out)
    assert data["link_rate_bps"] == 5_000_000 and [round(f["share"], 2) for f in data["flows"]] == [0.75, 0.25]
    toml = tmp_path / "t.toml"
    toml.write_text(textwrap.dedent("""
        duration = 1
        [scheduler]
        quantum = 3000
    """))
    assert run(["sched", "simulate", "drr", "--config", str(toml), "--flows", "2"])[0] == 0


def test_cli_errors_are_typed(tmp_path):
    with pytest.raises(UnknownSchedulerError):
        run(["sched", "simulate", "nope"])
    with pytest.raises(SchedulerConfigError, match="--weights"):
        run(["sched", "simulate", "wfq", "--weights", "1,x"])
    bad = tmp_path / "bad.json"
    bad.write_text('{"sched": {}}')
    with pytest.raises(SchedulerConfigError, match="keys"):
        run(["sched", "simulate", "wfq", "--config", str(bad)])
    with pytest.raises(SchedulerConfigError, match="cannot read"):
        run(["sched", "simulate", "wfq", "--config", str(tmp_path / "missing.json")])


def test_third_party_scheduler_plugin_is_listed_and_simulated(tmp_path, monkeypatch):
    """A package registering in xnf.schedulers works like a built-in one."""
    (tmp_path / "lifo_sched.py").write_text(textwrap.dedent('''
        from xnf.plugins.pifo_sched.pifo import BucketedPifo
        from xnf.plugins.pifo_sched.scheduler import Scheduler

        class Lifo(Scheduler):
            """Last in, first out (third-party example)."""
            def __init__(self, config=None):
                super().__init__(config)
                self.pifo, self.next_rank = BucketedPifo(1 << 20), (1 << 20) - 1
            def __len__(self):
                return len(self.pifo)
            def enqueue(self, pkt, now):
                self.pifo.enqueue(pkt, self.next_rank)
                self.next_rank -= 1
                return True
            def dequeue(self, now):
                return self.pifo.dequeue()[1] if self.pifo else None
    '''))
    write_distribution(tmp_path, "lifo-sched", "1.0", {"xnf.schedulers": {"lifo": "lifo_sched:Lifo"}})
    monkeypatch.syspath_prepend(str(tmp_path))
    from stevedore import ExtensionManager

    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})  # stevedore caches per process
    assert "lifo" in registry.available()
    code, out = run(["sched", "list"])
    assert "lifo  " in out and "third-party" in out
    code, out = run(["sched", "simulate", "lifo", "--flows", "2", "--duration", "1", "--json", "-"])
    assert code == 0 and json.loads(out)["packets"] > 100
    sys.modules.pop("lifo_sched", None)


def test_lstf_overload_from_the_command_line_runs():
    """Issue 9 item 6: this stopped with a rank-range error naming `rank_range`, an option
    lstf does not have; the one option that sizes its window is named when it matters."""
    code, out = run(["sched", "simulate", "lstf", "--traffic", "poisson", "--rate", "6mbit", "--flows", "2"])
    assert code == 0 and "lstf:" in out
    with pytest.raises(SchedulerConfigError, match="slack 2000000000 ns") as err:
        registry.create("lstf", {"default_slack_ns": 2_000_000_000}).enqueue(Packet(0, 100), 0)
    assert "resolution_ns" in err.value.hint


def test_same_instant_arrivals_give_the_same_departures_from_cli_api_and_hooks(tmp_path):
    """The Bennett-Zhang trace (11 packets of weight 0.5 and ten of 0.05, all at t=0):
    the CLI, the simulate() API and a loop driving the hooks by hand (all arrivals of an
    instant queued before the first choice) send the packets in the same order."""
    weights = [0.5] + [0.05] * 10
    rows = [(0, 0)] * 11 + [(0, flow) for flow in range(1, 11)]
    trace = tmp_path / "bz.csv"
    trace.write_text("time_ns,flow,size\n" + "".join(f"{t},{flow},1000\n" for t, flow in rows))
    cli_events = tmp_path / "cli.csv"
    code, _ = run(["sched", "simulate", "wf2q", "--trace", str(trace), "--weights", ",".join(map(str, weights)),
                   "--events", str(cli_events)])
    assert code == 0
    _, metrics = simulate("wf2q", {"weights": weights}, (), "10mbit", 10, trace=str(trace), record_events=True)
    api_events = tmp_path / "api.csv"
    write_events(metrics, api_events)
    assert cli_events.read_bytes() == api_events.read_bytes()
    sched = registry.create("wf2q", {"weights": weights})
    for seq, (_, flow) in enumerate(rows):
        sched.enqueue(Packet(flow, 1000, 0, seq), 0)
    by_hand = [pkt.flow for pkt in iter(lambda: sched.dequeue(0), None)]
    simulated = [int(line.split(",")[2]) for line in api_events.read_text().splitlines() if ",deq," in line]
    assert simulated == by_hand and by_hand[:2] == [0, 1]
