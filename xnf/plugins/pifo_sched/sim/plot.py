"""``--plot FILE.png``: throughput over time per flow and queueing delay distribution."""
from xnf.plugins.pifo_sched.shaping import NS
from xnf.plugins.pifo_sched.sim.metrics import BINS


def plot(metrics, title, path):
    # matplotlib (optional extra): only for plots
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (rate_ax, delay_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    bin_s = metrics.duration / BINS / NS
    times = [(i + 0.5) * bin_s for i in range(BINS)]
    for key in sorted(metrics.flows, key=lambda k: (str(type(k)), k)):
        stats = metrics.flows[key]
        rate_ax.plot(times, [b * 8 / bin_s / 1e6 for b in stats.bins], label=f"flow {key}")
        delays = sorted(d / 1e3 for d in stats.delays)
        if delays:
            delay_ax.plot(delays, [(i + 1) / len(delays) for i in range(len(delays))], label=f"flow {key}")
    rate_ax.set(xlabel="time (s)", ylabel="throughput (Mbit/s)", title=title)
    delay_ax.set(xlabel="queueing delay (us)", ylabel="CDF", xscale="symlog", title="delay distribution")
    if len(metrics.flows) <= 12:
        rate_ax.legend(fontsize="small")
        delay_ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
