"""Every kind of traffic source by name, for a run's ``traffic`` specs.

The open-loop kinds live in :mod:`.traffic`, the window kinds in :mod:`.tcp`, which
builds on :class:`.traffic.Source`; this table sits above both so neither imports the
other back.
"""
from xnf.plugins.pifo_sched.errors import SchedulerConfigError
from xnf.plugins.pifo_sched.sim.tcp import Cubic, Reno
from xnf.plugins.pifo_sched.sim.traffic import KINDS as OPEN_LOOP_KINDS

KINDS = dict(OPEN_LOOP_KINDS, reno=Reno, cubic=Cubic)


def make_source(spec, rng, duration_ns):
    """Build the source a spec dict describes."""
    if not isinstance(spec, dict):
        raise SchedulerConfigError(f"a traffic source must be an object, got {spec!r}",
                                   "e.g. {\"kind\": \"bulk\", \"flow\": 0}")
    kind = spec.get("kind", "bulk")
    if kind not in KINDS:
        raise SchedulerConfigError(f"unknown traffic kind {kind!r}", "kinds: " + ", ".join(KINDS))
    return KINDS[kind](spec, rng, duration_ns)
