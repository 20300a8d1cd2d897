"""The ``xnf sched`` command group and ``xnf demo pifo_sched``.

``xnf sched list`` names every registered scheduler; ``xnf sched simulate ALGO``
runs it on the reference runtime. A ``--config`` file (JSON, or TOML) may hold
``scheduler`` (the scheduler's options), ``traffic`` (a list of source specs, see
:mod:`.sim.traffic`), ``link_rate``, ``duration`` and ``seed``; options given on the
command line win.
"""
import json
import sys

from xnf.plugins.pifo_sched.errors import SchedulerConfigError

FILE_KEYS = {"scheduler", "traffic", "link_rate", "duration", "seed"}

DESCRIPTION = ("`xnf sched list` names every registered scheduler; `xnf sched simulate ALGO` runs it on the "
               "reference runtime. A --config file (JSON, or TOML) may hold scheduler (the scheduler's options), "
               "traffic (a list of source specs, see docs/pifo_sched.md), link_rate, duration and seed; options "
               "given on the command line win.")
"""``sched --help``: the module docstring's second paragraph, as plain text (no reST roles)."""


def register(subparsers):
    """Add the ``sched`` group to the ``xnf`` argument parser."""
    parser = subparsers.add_parser("sched", help="programmable packet scheduling: list and simulate schedulers",
                                   description=DESCRIPTION)
    commands = parser.add_subparsers(dest="sched_command", metavar="COMMAND")
    commands.required = True
    listing = commands.add_parser("list", help="list the schedulers registered in xnf.schedulers")
    listing.add_argument("-j", "--json", action="store_true",
                         help="the listing as JSON: each scheduler's summary, and broken plugins with their error")
    listing.set_defaults(func=cmd_list)
    sim = commands.add_parser("simulate", help="run a scheduler on the reference runtime")
    sim.add_argument("algorithm", metavar="ALGO", help="scheduler name (see `xnf sched list`)")
    sim.add_argument("--config", metavar="FILE", help="JSON or TOML: scheduler, traffic, link_rate, duration, seed")
    sim.add_argument("--weights", metavar="W1,W2,..", help="per-flow weights; one bulk flow each unless traffic is given")
    sim.add_argument("--trace", metavar="FILE", help="replay packets from a CSV or pcap trace")
    sim.add_argument("--traffic", choices=("bulk", "cbr", "poisson", "onoff", "flows", "reno", "cubic"),
                     help="generator for each flow (default bulk)")
    sim.add_argument("--flows", type=int, metavar="N", help="number of flows (default: one per weight, else 3)")
    sim.add_argument("--size", metavar="SPEC", help="packet sizes: bytes, mixed, imix, uniform:LO:HI, ... (default mixed)")
    sim.add_argument("--rate", metavar="RATE", help="per-flow rate for cbr/poisson/onoff, load for flows (default 5mbit)")
    sim.add_argument("--rank", metavar="SPEC", help="give packets random ranks from SPEC (e.g. uniform:0:99, exp:10)")
    sim.add_argument("--link-rate", metavar="RATE", help="link rate (default 10mbit)")
    sim.add_argument("--duration", type=float, metavar="S", help="simulated seconds (default 10)")
    sim.add_argument("--seed", type=int, metavar="N", help="random seed (default 1)")
    sim.add_argument("-j", "--json", nargs="?", const="-", metavar="FILE",
                     help="write results as JSON to FILE; alone (or -), to standard output instead of the table")
    sim.add_argument("--plot", metavar="FILE.png", help="plot throughput over time and delay distribution")
    sim.add_argument("--events", metavar="FILE.csv", help="write every enqueue, dequeue and drop as CSV")
    sim.set_defaults(func=cmd_simulate)


def cmd_list(args, out=None):
    from xnf.plugins.pifo_sched import registry  # `xnf --help` imports this module; loaded only when this command runs

    out = out or sys.stdout
    schedulers = registry.available()
    broken = registry.broken()
    if getattr(args, "json", False):
        listing = {"schedulers": {name: {"summary": cls.summary()} for name, cls in schedulers.items()},
                   "broken": dict(broken)}
        out.write(json.dumps(listing, indent=2) + "\n")
        return 0
    width = max(map(len, list(schedulers) + list(broken)), default=0)
    for name, cls in schedulers.items():
        out.write(f"{name:<{width}}  {cls.summary()}\n")
    for name, error in broken.items():
        out.write(f"{name:<{width}}  BROKEN: {error}\n")
    return 0


def parse_weights(text):
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise SchedulerConfigError(f"--weights {text!r} is not a comma-separated list of numbers",
                                   "e.g. --weights 1,2,3") from None
    if not weights or any(w <= 0 for w in weights):
        raise SchedulerConfigError(f"--weights {text!r} must be positive", "e.g. --weights 1,2,3")
    return [int(w) if w.is_integer() else w for w in weights]


def load_config_file(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise SchedulerConfigError(f"cannot read config {path!r}: {err.strerror}", "check the path") from None
    try:
        if path.endswith(".toml"):
            # tomllib: Python >= 3.11 only, needed only for .toml configs
            import tomllib

            data = tomllib.loads(raw.decode())
        else:
            data = json.loads(raw)
    except (ValueError, ImportError) as err:
        raise SchedulerConfigError(f"config {path!r} is not valid {'TOML' if path.endswith('.toml') else 'JSON'}: {err}",
                                   "fix the syntax") from None
    if not isinstance(data, dict) or set(data) - FILE_KEYS:
        raise SchedulerConfigError(f"config {path!r} must be an object with keys from {sorted(FILE_KEYS)}",
                                   "put scheduler options under \"scheduler\"")
    return data


def build_run(args):
    """Merge config file and options into the keyword arguments of ``simulate``."""
    data = load_config_file(args.config) if args.config else {}
    config = dict(data.get("scheduler") or {})
    weights = parse_weights(args.weights) if args.weights else config.get("weights")
    if args.weights:
        config["weights"] = weights
    traffic = data.get("traffic")
    generated = any(v is not None for v in (args.traffic, args.flows, args.size, args.rate, args.rank))
    if (traffic is None or generated) and not args.trace:
        count = args.flows or (len(weights) if isinstance(weights, list) else 3)
        if count < 1:
            raise SchedulerConfigError("--flows must be at least 1", "e.g. --flows 3")
        kind = args.traffic or "bulk"
        traffic = []
        for flow in range(count):
            spec = {"kind": kind, "flow": flow, "size": args.size or "mixed"}
            if kind in ("cbr", "poisson", "onoff"):
                spec["rate"] = args.rate or "5mbit"
            if kind in ("reno", "cubic"):
                spec["size"] = args.size or 1500  # a transport sends full segments
            if kind == "flows":
                spec = {"kind": kind, "flow": flow * 1_000_000, "load": args.rate or "5mbit"}
            if args.rank:
                spec["rank"] = args.rank
            traffic.append(spec)
    return {
        "config": config,
        "traffic": traffic or (),
        "link_rate": args.link_rate or data.get("link_rate", "10mbit"),
        "duration": args.duration if args.duration is not None else data.get("duration", 10.0),
        "seed": args.seed if args.seed is not None else data.get("seed", 1),
        "trace": args.trace,
        "weights": weights,
    }


def format_table(results):
    lines = [f"{results['scheduler']}: {results['packets']} packets, {results['drops']} drops, "
             f"link {results['link_rate_bps'] / 1e6:g} Mbit/s, {results['duration_s']:g} s, "
             f"Jain {results['jain_index']}"]
    lines.append(f"{'flow':>12} {'weight':>7} {'share':>8} {'configured':>10} {'Mbit/s':>9} "
                 f"{'p50 us':>9} {'p99 us':>9} {'drops':>6}")
    for f in results["flows"][:50]:
        delay = f["delay_us"]
        lines.append(f"{str(f['flow']):>12} {f.get('weight', ''):>7} {f['share']:>8.4f} "
                     f"{f.get('configured_share', ''):>10} {f['throughput_bps'] / 1e6:>9.3f} "
                     f"{delay['p50'] if delay['p50'] is not None else '-':>9} "
                     f"{delay['p99'] if delay['p99'] is not None else '-':>9} {f['drops']:>6}")
    if len(results["flows"]) > 50:
        lines.append(f"... {len(results['flows']) - 50} more flows (see --json)")
    if results["rank_inversions"] is not None:
        lines.append(f"rank inversions vs ideal PIFO: {results['rank_inversions']} "
                     f"({results['inverted_packets']} packets overtook a lower rank)")
    return "\n".join(lines) + "\n"


def cmd_simulate(args, out=None):
    # `xnf --help` imports this module; loaded only when this command runs
    from xnf.plugins.pifo_sched.sim.runner import simulate, write_events

    out = out or sys.stdout
    run = build_run(args)
    results, metrics = simulate(args.algorithm, record_events=bool(args.events), **run)
    text = json.dumps(results, indent=2, sort_keys=True, default=str) + "\n"
    if args.json == "-":
        out.write(text)
    else:
        if args.json:
            with open(args.json, "w") as f:
                f.write(text)
        out.write(format_table(results))
    if args.events:
        write_events(metrics, args.events)
    if args.plot:
        # `xnf --help` imports this module; loaded only when this command runs
        from xnf.plugins.pifo_sched.sim.plot import plot

        plot(metrics, f"{args.algorithm} on {results['link_rate_bps'] / 1e6:g} Mbit/s", args.plot)
    return 0


def add_demo_arguments(parser):
    """Options of ``xnf demo pifo_sched``."""
    parser.add_argument("--weights", default="1,2,3", metavar="W1,W2,..", help="weights of the TCP flows, one flow each")
    parser.add_argument("--rate", default="100mbit", metavar="RATE", help="egress rate limit of the veth")
    parser.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds per measurement")
    parser.add_argument("--scheduler", default="wfq", choices=("wfq", "stfq"), help="rank function in BPF")


def demo(args, out=None):
    """Run weighted iperf3 flows through the kernel data path and print the shares."""
    # `xnf --help` imports this module; loaded only when this command runs
    from xnf.plugins.pifo_sched.demo import run_demo

    return run_demo(parse_weights(args.weights), args.rate, args.duration, args.scheduler, out or sys.stdout)
