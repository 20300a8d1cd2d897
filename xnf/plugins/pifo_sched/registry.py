"""Scheduler plugins: the ``xnf.schedulers`` namespace of :mod:`xnf.registry`.

A third-party package registers a scheduler with an entry point such as
``my_sched = mypkg.sched:MySched`` under ``xnf.schedulers``; it is then listed,
simulated and attached like a built-in one.
"""
from xnf import registry as _registry
from xnf.core.errors import PluginError
from xnf.plugins.pifo_sched.errors import UnknownSchedulerError


def available():
    """``{name: class}`` of every scheduler that loads; broken plugins are left out."""
    return dict(sorted(_registry.schedulers().items()))


def load(name):
    """The scheduler class registered as ``name``."""
    try:
        return _registry.scheduler(name)
    except PluginError as e:
        raise UnknownSchedulerError(e.args[0], e.hint) from None


def create(name, config=None):
    """An instance of scheduler ``name`` configured with ``config``."""
    return load(name)(config)
