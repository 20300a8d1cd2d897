"""The simulator never spins at one instant: bad or unlucky input ends in an error or a result.

Open-loop sources whose arrivals come less than 1 ns apart on average are refused (their
gaps round to 0 ns).

A bulk source answers each of its packets that leaves or is dropped with a new one at
once. When the buffer cannot hold its window, the answer to a drop is dropped again at
the same instant, forever, and virtual time never advances. Each run below hung before
the engine learned to see that; a SIGALRM guard turns a hang into a test failure
(pytest-timeout is not installed here).
"""
import argparse
import io
import json
import signal
from contextlib import contextmanager

import pytest

from xnf.core.errors import ConfigError
from xnf.plugins.pifo_sched import cli
from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.scheduler import RankScheduler
from xnf.plugins.pifo_sched.sim.engine import Simulation
from xnf.plugins.pifo_sched.sim.runner import simulate

GUARD_S = 10  # each run below takes well under a second when it does not spin


class Hung(Exception):
    pass


@contextmanager
def no_hang(seconds=GUARD_S):
    def expired(signum, frame):
        raise Hung(f"the simulation ran for {seconds} s: it spins at one instant")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def bulk(flow, window, **extra):
    return dict({"kind": "bulk", "flow": flow, "window": window}, **extra)


@pytest.mark.parametrize("algorithm, config, traffic", [
    # the smallest: a one-packet buffer, one bulk flow with a window of two
    ("fifo", {"capacity": 1}, [bulk(0, 2)]),
    # capacity around the windows: two default bulk flows (window 32) into 40 packets
    ("fifo", {"capacity": 40}, [bulk(0, 32), bulk(1, 32)]),
    ("drr", {"capacity": 40, "weights": [1, 1]}, [bulk(0, 32), bulk(1, 32)]),
    ("wfq", {"capacity": 40, "weights": [1, 1]}, [bulk(0, 32), bulk(1, 32)]),
    # head drop: each answer pushes out the head of the fattest flow, the bulk flow itself
    ("fq_codel", {"capacity": 1}, [bulk(0, 2)]),
    # the buffer fills with open-loop overload before the bulk flow starts
    ("fifo", {"capacity": 50}, [{"kind": "cbr", "flow": 0, "rate": "20mbit", "size": 1000},
                                bulk(1, 8, start=0.1)]),
], ids=["fifo-smallest", "fifo-windows-over-capacity", "drr", "wfq", "fq_codel-head-drop",
        "fifo-late-bulk-into-full-buffer"])
def test_bulk_window_the_buffer_cannot_hold_is_refused(algorithm, config, traffic):
    with no_hang(), pytest.raises(SchedulerConfigError) as caught:
        simulate(algorithm, config, traffic, "10mbit", 0.5)
    message = str(caught.value)
    assert "bulk" in message and "window" in message and "capacity" in message
    assert isinstance(caught.value, ConfigError)


class Refuser(RankScheduler):
    """Refuses every packet without calling the drop hook (the engine's 'refused' path)."""

    def rank(self, pkt, now):
        return 0

    def enqueue(self, pkt, now):
        return False


def test_scheduler_refusing_every_bulk_packet_is_refused():
    with no_hang(), pytest.raises(SchedulerConfigError, match="bulk"):
        Simulation(Refuser(), [bulk(0, 4)], "10mbit", 0.1).run()


def test_cli_names_the_problem(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"scheduler": {"capacity": 1}, "traffic": [bulk(0, 2)], "duration": 0.1}))
    parser = argparse.ArgumentParser(prog="xnf")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["sched", "simulate", "fifo", "--config", str(config)])
    with no_hang(), pytest.raises(SchedulerConfigError, match="capacity"):
        args.func(args, out=io.StringIO())


def test_bulk_drops_that_the_buffer_absorbs_still_run():
    """CoDel drops bulk packets at dequeue; their answers fit, so the run ends with drops."""
    traffic = [bulk(0, 64, size=1500), bulk(1, 64, size=1500)]
    with no_hang():
        results, _ = simulate("fq_codel", {"ecn": False}, traffic, "10mbit", 1.0)
    assert sum(flow["drops"] for flow in results["flows"]) > 0


def test_bulk_window_that_fits_exactly_runs():
    with no_hang():
        results, _ = simulate("fifo", {"capacity": 64}, [bulk(0, 32), bulk(1, 32)], "10mbit", 0.5)
    assert sum(flow["drops"] for flow in results["flows"]) == 0


@pytest.mark.parametrize("source", [
    {"kind": "cbr", "flow": 0, "rate": "1000gbit", "size": 64},
    {"kind": "poisson", "flow": 0, "rate": "100000gbit", "size": 64},
    {"kind": "onoff", "flow": 0, "rate": "1000gbit", "size": 64},
    {"kind": "flows", "flow": 0, "load": "100000gbit", "flow_size": 64},
], ids=["cbr", "poisson", "onoff", "flows"])
def test_open_loop_arrivals_under_a_ns_apart_are_refused(source):
    """Gaps that round to 0 ns would keep virtual time at one instant (each spun forever)."""
    with no_hang(), pytest.raises(SchedulerConfigError, match="less than 1 ns apart"):
        simulate("fifo", {}, [source], "10mbit", 0.1)


def test_open_loop_arrivals_a_ns_apart_run():
    """64 bytes every ns is 512 Gbit/s: the fastest rate a 64-byte cbr source may ask for."""
    with no_hang():
        results, _ = simulate("fifo", {"capacity": 10}, [{"kind": "cbr", "flow": 0, "rate": "512gbit", "size": 64}],
                              "10gbit", 0.00001)
    assert results["flows"][0]["drops"] > 0
