"""Typed errors of the scheduling framework, on top of :mod:`xnf.core.errors`."""
from xnf.core.errors import ConfigError, PluginError, XnfError


class PifoError(XnfError):
    """A PIFO queue refused an operation."""


class RankRangeError(PifoError, ValueError):
    """The rank lies outside the window the bucketed PIFO can hold in order."""


class QueueFullError(PifoError, OverflowError):
    """The PIFO already holds its capacity of elements."""


class QueueEmptyError(PifoError, IndexError):
    """Dequeue or peek on an empty PIFO."""


class SchedulerConfigError(ConfigError):
    """A scheduler or simulation configuration that cannot be used as given."""


class UnknownSchedulerError(PluginError, LookupError):
    """No scheduler of that name is registered in ``xnf.schedulers``."""


class TraceError(ConfigError):
    """A trace file (CSV or pcap) that cannot be read."""


__all__ = ["PifoError", "RankRangeError", "QueueFullError", "QueueEmptyError",
           "SchedulerConfigError", "UnknownSchedulerError", "TraceError"]
