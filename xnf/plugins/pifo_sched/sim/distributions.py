"""Random values from short text specs: packet sizes, flow sizes, ranks.

Specs: an integer (fixed); ``mixed`` (uniform 64..1500 bytes); ``imix`` (64/576/1500 at
7:4:1); ``uniform:LO:HI``; ``exp:MEAN``; ``pareto:MEAN:SHAPE``; ``lognormal:MEDIAN:SIGMA``;
a list of integers (one picked uniformly). Every draw uses the caller's
``random.Random`` so a seed fixes the whole run.

A sampler also has ``batch(rng, n)``: its next ``n`` draws as a list, the same values
in the same order, for a caller whose ``rng`` serves nothing else (a bulk source's
sizes: one list per few hundred packets instead of a call per packet).
"""
import math
from itertools import repeat, starmap
from math import floor

from xnf.plugins.pifo_sched.errors import SchedulerConfigError

IMIX = (64,) * 7 + (576,) * 4 + (1500,)
# floor(x) is int(x) for the non-negative floats below, at half the cost (a draw per packet)


def _numbers(spec, parts, count):
    if len(parts) != count:
        raise SchedulerConfigError(f"bad distribution {spec!r}", _HINT)
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise SchedulerConfigError(f"bad number in distribution {spec!r}", _HINT) from None


_HINT = "use an integer, mixed, imix, uniform:LO:HI, exp:MEAN, pareto:MEAN:SHAPE or lognormal:MEDIAN:SIGMA"


def _with_batch(draw, batch=None):
    """``draw`` with its ``batch(rng, n)``; by default a call of ``draw`` per value."""
    draw.batch = batch or (lambda rng, n: [draw(rng) for _ in range(n)])
    return draw


def _table(choices):
    """(draw, batch) of a value of ``choices`` picked uniformly (the draw written out in
    the batch: per packet)."""
    count = len(choices)
    return ((lambda rng: choices[floor(rng.random() * count)]),
            (lambda rng, n: [choices[floor(draw * count)] for draw in _draws(rng, n)]))


def _draws(rng, n):
    """The next ``n`` values of ``rng.random()``, drawn in C (a tenth of a batch's cost)."""
    return starmap(rng.random, repeat((), n))


def sampler(spec, minimum=1):
    """A function ``rng -> int`` drawing from ``spec``; values are at least ``minimum``;
    its ``batch(rng, n)`` gives the next ``n`` draws."""
    return _with_batch(*_sampler(spec, minimum))


def _sampler(spec, minimum):
    """(draw, batch or None) for :func:`sampler`."""
    if isinstance(spec, bool):
        raise SchedulerConfigError(f"bad distribution {spec!r}", _HINT)
    if isinstance(spec, (int, float)):
        if spec < minimum:
            raise SchedulerConfigError(f"value {spec} is below {minimum}", _HINT)
        value = int(spec)
        return (lambda rng: value), (lambda rng, n: [value] * n)
    if isinstance(spec, (list, tuple)) and spec and all(isinstance(v, int) and v >= minimum for v in spec):
        return _table(tuple(spec))
    if not isinstance(spec, str):
        raise SchedulerConfigError(f"bad distribution {spec!r}", _HINT)
    name, *parts = spec.strip().lower().split(":")
    if name.isdigit() and not parts:
        return _sampler(int(name), minimum)
    if name == "mixed" and not parts:  # the draw written out in the batch: per packet
        return ((lambda rng: 64 + floor(rng.random() * 1437)),
                (lambda rng, n: [64 + floor(draw * 1437) for draw in _draws(rng, n)]))
    if name == "imix" and not parts:
        return _table(IMIX)
    if name == "fixed":
        (value,) = _numbers(spec, parts, 1)
        return _sampler(int(value), minimum)
    if name == "uniform":
        low, high = _numbers(spec, parts, 2)
        if high < low:
            raise SchedulerConfigError(f"uniform range {spec!r} is empty", _HINT)
        low, high = int(low), int(high)
        return (lambda rng: max(minimum, low + floor(rng.random() * (high - low + 1)))), None
    if name == "exp":
        (mean,) = _numbers(spec, parts, 1)
        return (lambda rng: max(minimum, int(rng.expovariate(1.0 / mean)))), None
    if name == "pareto":
        mean, shape = _numbers(spec, parts, 2)
        if shape <= 1:
            raise SchedulerConfigError(f"pareto shape must be > 1 for a finite mean, got {shape}", _HINT)
        scale = mean * (shape - 1) / shape
        return (lambda rng: max(minimum, int(scale * rng.paretovariate(shape)))), None
    if name == "lognormal":
        median, sigma = _numbers(spec, parts, 2)
        mu = math.log(median)
        return (lambda rng: max(minimum, int(rng.lognormvariate(mu, sigma)))), None
    raise SchedulerConfigError(f"unknown distribution {spec!r}", _HINT)
