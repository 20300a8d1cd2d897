"""Scheduler plugins: the ``xnf.schedulers`` namespace of :mod:`xnf.registry`.

A third-party package registers a scheduler with an entry point such as
``my_sched = mypkg.sched:MySched`` under ``xnf.schedulers``; it is then listed
(``xnf sched list``), created (:func:`create`) and simulated (``xnf sched simulate``)
like a built-in one. Attaching is another matter: ``xnf attach pifo_sched`` runs only
the rank functions compiled into its tc egress program (``wfq`` and ``stfq``, the keys
of :data:`xnf.plugins.pifo_sched.kernel.MODES`) and refuses any other name, built-in or
not, with a hint to simulate it instead.
"""
from xnf import registry as _registry
from xnf.core.errors import PluginError
from xnf.plugins.pifo_sched.errors import UnknownSchedulerError


def available():
    """``{name: class}`` of every scheduler that loads; those that do not are in :func:`broken`."""
    return dict(sorted(_registry.schedulers().items()))


def broken():
    """``{name: one-line error}`` of every registered scheduler that fails to import."""
    return dict(sorted(_registry.broken(_registry.SCHEDULERS).items()))


def load(name):
    """The scheduler class registered as ``name``."""
    try:
        return _registry.scheduler(name)
    except PluginError as e:
        raise UnknownSchedulerError(e.args[0], e.hint) from None


def create(name, config=None):
    """An instance of scheduler ``name`` configured with ``config``."""
    return load(name)(config)
