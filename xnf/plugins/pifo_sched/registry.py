"""Scheduler plugins: the ``xnf.schedulers`` namespace of :mod:`xnf.registry`.

A third-party package registers a scheduler with an entry point such as
``my_sched = mypkg.sched:MySched`` under ``xnf.schedulers``; it is then listed
(``xnf sched list``), created (:func:`create`) and simulated (``xnf sched simulate``)
like a built-in one.

Attaching runs a rank function in the kernel. On the HTB path (no BPF qdisc) that is
one of the two compiled into the tc egress program (``wfq``, ``stfq``: the keys of
:data:`xnf.plugins.pifo_sched.kernel.MODES`). On the BPF qdisc it is one of the qdisc's
built-in schedulers, or a plugin's own: a scheduler class that sets ``rank_object``
(a BPF object shipped in its package, compiled from C that includes
``xnf/plugins/pifo_sched/qdisc/rank.h``; docs/writing-a-plugin.md) has that object put
into the qdisc by ``xnf attach pifo_sched IFACE --scheduler NAME``.
"""
import os
import sys

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


def rank_object(name):
    """The file of the BPF qdisc object scheduler ``name`` ships (its ``rank_object``,
    relative to the directory of its class's module), or None if it ships none or is not registered.

    Raises :class:`PluginError` when the class names an object that is not there."""
    if name not in _registry.names(_registry.SCHEDULERS):
        return None
    cls = load(name)
    rel = getattr(cls, "rank_object", None)
    if not rel:
        return None
    module = sys.modules[cls.__module__]  # imported by load(); a package's module or a plain one
    path = os.path.join(os.path.dirname(os.path.abspath(module.__file__)), rel)
    if not os.path.isfile(path):
        raise PluginError(f"scheduler {name!r} names rank_object {rel!r}, which is not at {path}",
                          "ship the compiled .bpf.o as package data beside its .bpf.c")
    return path


def rank_objects():
    """``{name: object file}`` of every registered scheduler that ships a BPF rank object."""
    out = {}
    for name in available():
        try:
            path = rank_object(name)
        except PluginError:
            continue  # reported when that scheduler is asked for by name
        if path is not None:
            out[name] = path
    return out
