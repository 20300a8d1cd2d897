"""`xnf pping read|plot`, pping's options and the contradictions they refuse."""

import argparse
import json
import subprocess
import sys

import pytest

from xnf.plugins.pping import cli
from xnf.plugins.pping.config import ConfigError, PpingConfig, parse_listen_address
from xnf.plugins.pping.pcap import write_pcap, write_pcapng
from xnf.testing.frames import Endpoints

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
E = Endpoints()


def capture(path, n=20):
    frames = []
    for i in range(n):
        t = T0 + i * 200 * MS
        frames.append((t, E.c2s(ts=(100 + i, 1), payload=b"a" * 10)))
        frames.append((t + 5 * MS, E.s2c(ts=(7, 100 + i))))
    write_pcap(path, frames)
    return path


def parse(argv):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def run_module(*argv):
    return subprocess.run([sys.executable, "-m", "xnf.plugins.pping.cli", *argv],
                          capture_output=True, text=True)


def test_read_jsonl(tmp_path, capsys):
    args = parse(["pping", "read", str(capture(tmp_path / "c.pcap")), "--format", "jsonl"])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    lines = [json.loads(line) for line in out.splitlines()]
    rtts = [d for d in lines if "rtt" in d]
    assert len(rtts) == 19 and {d["rtt"] for d in rtts} == {5 * MS}
    assert "19 RTT events" in err


def test_read_with_epping_short_options_and_write(tmp_path):
    out = tmp_path / "out.json"
    args = parse(["pping", "read", str(capture(tmp_path / "c.pcap")), "-F", "json", "-w", str(out),
                  "-r", "500", "-s", "--include-SYN"])
    assert args.func(args) == 0
    assert len([d for d in json.loads(out.read_text()) if "rtt" in d]) == 7  # 200 ms, then every 600 ms (>= 500)


def test_read_aggregate(tmp_path, capsys):
    args = parse(["pping", "read", str(capture(tmp_path / "c.pcap")), "-a", "1", "--aggregate-subnets-v4", "16"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(": 10.0.0.0/16 -> rxpkts=" in line and "rtt-count=" in line for line in lines)


def test_read_local_addresses_sets_direction(tmp_path, capsys):
    args = parse(["pping", "read", str(capture(tmp_path / "c.pcap")), "--format", "jsonl",
                  "--local-addresses", E.server])
    args.func(args)
    rtts = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rtts and all(d["match_on_egress"] for d in rtts if "rtt" in d)


def test_read_pcapng(tmp_path, capsys):
    path = tmp_path / "c.pcapng"
    write_pcapng(path, [(T0, E.c2s(ts=(1, 1), payload=b"a"), None),
                        (T0 + 200 * MS, E.c2s(ts=(2, 1), payload=b"a"), None),
                        (T0 + 209 * MS, E.s2c(ts=(1, 2)), None)])
    args = parse(["pping", "read", str(path)])
    args.func(args)
    assert " 9 ms 9 ms TCP 10.0.1.2:5201+10.0.0.1:40000" in capsys.readouterr().out


@pytest.mark.parametrize("content,message", [
    (b"", "not a capture file: empty"),
    (b"hello world, not a capture", "not a pcap or pcapng file"),
    (None, "truncated"),
])
def test_bad_pcap_is_a_one_line_error(tmp_path, content, message):
    path = tmp_path / "bad.pcap"
    if content is None:
        capture(path)
        path.write_bytes(path.read_bytes()[:-7])
    else:
        path.write_bytes(content)
    r = run_module("pping", "read", str(path))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("xnf: error: ") and message in r.stderr
    assert str(path) in r.stderr


@pytest.mark.parametrize("argv,message", [
    (["--rtt-type", "smoothed"], "--rtt-type smoothed only applies with --rtt-rate"),
    (["--aggregate", "1", "--format", "ppviz"], "--aggregate has no ppviz output"),
    (["--aggregate-reverse"], "only apply with --aggregate"),
    (["--rate-limit", "-1"], "--rate-limit must be in"),
    (["--aggregate-subnets-v4", "33", "-a", "1"], "--aggregate-subnets-v4 must be in [0, 32]"),
    (["--local-addresses", "not-an-ip"], "is not an IP address"),
])
def test_contradictions_are_one_line_errors(tmp_path, argv, message):
    r = run_module("pping", "read", str(capture(tmp_path / "c.pcap")), *argv)
    assert r.returncode == 1, r.stderr
    assert r.stderr.count("\n") == 1 and message in r.stderr


def test_config_contradictions_for_live_runs():
    with pytest.raises(ConfigError, match="needs --ingress-hook xdp"):
        PpingConfig(xdp_mode="native")
    with pytest.raises(ConfigError, match="only applies to --read"):
        PpingConfig(local_addresses="10.0.0.1")
    with pytest.raises(ConfigError, match="--prometheus serves live metrics"):
        PpingConfig(read="x.pcap", prometheus="127.0.0.1:9100")
    with pytest.raises(ConfigError, match="--ingress-hook does not apply to --read"):
        PpingConfig(read="x.pcap", ingress_hook="xdp")
    with pytest.raises(ConfigError, match="expected ADDR:PORT"):
        PpingConfig(prometheus="127.0.0.1")
    assert parse_listen_address("[::1]:9100") == ("::1", 9100)
    # --rate-limit and --rtt-rate together are fine: the former applies until an RTT is known
    assert PpingConfig(rate_limit=10, rtt_rate=1.5).rtt_rate_fixed == 98304


def test_default_protocol_is_tcp():
    assert PpingConfig().track_tcp
    assert not PpingConfig(icmp=True).track_tcp
    assert PpingConfig(icmp=True, seq_ack=True).track_tcp


def test_add_options_live_has_epping_names():
    parser = cli.add_options(argparse.ArgumentParser())
    args = parser.parse_args(["-T", "-C", "--seq-ack", "--dns", "--quic", "-I", "xdp", "-x", "native",
                              "-c", "2", "-R", "1.5", "-t", "smoothed", "-l", "--prometheus", "127.0.0.1:9100",
                              "--aggregate", "5", "--aggregate-subnets-v6", "56", "--aggregate-timeout", "60"])
    cfg = cli.config_from_args(args)
    assert (cfg.tcp, cfg.icmp, cfg.seq_ack, cfg.dns, cfg.quic, cfg.ingress_hook, cfg.xdp_mode) == (
        True, True, True, True, True, "xdp", "native")
    assert (cfg.cleanup_interval, cfg.rtt_rate, cfg.rtt_type, cfg.include_local) == (2.0, 1.5, "smoothed", True)
    assert (cfg.aggregate, cfg.aggregate_subnets_v6, cfg.aggregate_timeout) == (5, 56, 60)
    with pytest.raises(SystemExit):
        parser.parse_args(["--format", "xml"])
    assert cli.config_from_args(parser.parse_args([])) == PpingConfig()


def test_plot_command(tmp_path, capsys):
    results = tmp_path / "r.jsonl"
    args = parse(["pping", "read", str(capture(tmp_path / "c.pcap")), "-F", "jsonl", "-w", str(results)])
    args.func(args)
    args = parse(["pping", "plot", str(results), "-o", str(tmp_path / "p.png")])
    assert args.func(args) == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "19 RTT samples of 1 flows" in capsys.readouterr().err


def test_plot_errors_are_one_line(tmp_path):
    bad = tmp_path / "r.txt"
    bad.write_text("16:00:46.147705205 5.42544 ms 5.42544 ms TCP 10.11.1.1:5201+10.11.1.2:59528\n")
    r = run_module("pping", "plot", str(bad), "-o", str(tmp_path / "p.png"))
    assert r.returncode == 1 and "line 1 is not json" in r.stderr and r.stderr.count("\n") == 1


def test_read_from_standard_input(tmp_path):
    data = capture(tmp_path / "c.pcap").read_bytes()
    r = subprocess.run([sys.executable, "-m", "xnf.plugins.pping.cli", "pping", "read", "-", "-F", "ppviz"],
                       input=data, capture_output=True)
    assert r.returncode == 0
    assert len(r.stdout.decode().splitlines()) == 19


# --- `xnf run pping IFACE --read FILE`: offline through the reference, nothing attached ---

def xnf(*argv):
    return subprocess.run([sys.executable, "-m", "xnf.cli.main", *argv], capture_output=True, text=True)


def test_run_with_read_streams_the_capture_and_needs_no_interface_or_root(tmp_path):
    path = str(capture(tmp_path / "c.pcap", n=5))
    res = xnf("run", "pping", "no-such-if0", "--read", path, "--format", "jsonl", "--rate-limit", "0")
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    rtts = [e["rtt"] for e in events if "rtt" in e]
    # the flow is seen mid-stream: its first TSval is not timestamped (ePPing's rule)
    assert len(rtts) == 4 and all(r == 5 * MS for r in rtts)


def test_attach_with_read_is_refused_in_one_line(tmp_path):
    path = str(capture(tmp_path / "c.pcap", n=5))
    res = xnf("attach", "pping", "lo", "--read", path)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and "xnf run pping" in res.stderr, res.stderr
