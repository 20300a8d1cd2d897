"""One call from a scheduler name and options to JSON-ready results."""
from xnf.plugins.pifo_sched import registry
from xnf.plugins.pifo_sched.sim.engine import Simulation
from xnf.plugins.pifo_sched.sim.trace import read_trace


def simulate(algorithm, config=None, traffic=(), link_rate="10mbit", duration=10.0, seed=1,
             trace=None, weights=None, record_events=False):
    """Simulate scheduler ``algorithm``; returns ``(results, metrics)``.

    ``weights`` (list by flow index or dict by flow) are used for the configured shares
    and Jain's index; pass them in ``config`` too for schedulers that use weights.
    """
    scheduler = registry.create(algorithm, config)
    packets = read_trace(trace) if trace else None
    sim = Simulation(scheduler, traffic, link_rate, duration, seed, trace=packets, weights=weights,
                     record_events=record_events)
    metrics = sim.run()
    results = {
        "scheduler": algorithm,
        "config": config or {},
        "link_rate_bps": sim.link_rate,
        "duration_s": duration,
        "seed": seed,
        "trace": trace,
    }
    results.update(metrics.results())
    return results, metrics


def write_events(metrics, path):
    """The event trace (enqueue, dequeue, drop) as CSV: identical bytes for equal runs."""
    with open(path, "w") as f:
        f.write("time_ns,event,flow,seq,size\n")
        for time, event, flow, seq, size in metrics.events:
            f.write(f"{time},{event},{flow},{seq},{size}\n")
