"""Scheduler plugins: stevedore look-ups in the ``xnf.schedulers`` namespace.

A third-party package registers a scheduler with an entry point such as
``my_sched = mypkg.sched:MySched`` under ``xnf.schedulers``; it is then listed,
simulated and attached like a built-in one.
"""
from xnf.plugins.pifo_sched.errors import UnknownSchedulerError

NAMESPACE = "xnf.schedulers"


def _manager():
    from stevedore import ExtensionManager

    failures = []
    manager = ExtensionManager(NAMESPACE, invoke_on_load=False,
                               on_load_failure_callback=lambda _m, ep, err: failures.append((ep.name, err)))
    return manager, failures


def available():
    """``{name: class}`` of every scheduler that loads; broken plugins are left out."""
    manager, _ = _manager()
    return {ext.name: ext.plugin for ext in sorted(manager, key=lambda e: e.name)}


def load(name):
    """The scheduler class registered as ``name``."""
    from stevedore import DriverManager
    from stevedore.exception import NoMatches

    try:
        return DriverManager(NAMESPACE, name, invoke_on_load=False).driver
    except NoMatches:
        known = ", ".join(sorted(available())) or "none (is xnf installed? run pip install -e .)"
        raise UnknownSchedulerError(f"no scheduler named {name!r}", f"known schedulers: {known}") from None
    except (ImportError, AttributeError) as err:
        raise UnknownSchedulerError(f"scheduler {name!r} failed to load: {err}",
                                    "reinstall the package that provides it") from err


def create(name, config=None):
    """An instance of scheduler ``name`` configured with ``config``."""
    return load(name)(config)
