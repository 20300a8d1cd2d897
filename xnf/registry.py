"""Plugin look-ups through entry points.

Namespaces: ``xnf.network_functions`` (network functions), ``xnf.schedulers``
(pifo_sched scheduling algorithms), ``xnf.drivers`` (NIC driver profiles).
A third-party package registers under the same names in its own packaging metadata.

Entry points are read with :mod:`importlib.metadata`, and a plugin is imported only when
it is asked for by name (:func:`get`) or when all are listed (:func:`available`): a
command that needs one plugin does not pay for the others (bench/cli_startup.py).
"""
import sys

from xnf.core.errors import PluginError

NETWORK_FUNCTIONS = "xnf.network_functions"
SCHEDULERS = "xnf.schedulers"
DRIVERS = "xnf.drivers"

_points = {}
_loaded = {}


def _entry_points(namespace):
    """{name: entry point} of ``namespace``, read once per search path (a package added to
    the path later is found too)."""
    key = (namespace, tuple(sys.path))
    if key not in _points:
        # the scan of installed distributions: only for commands that look plugins up
        from importlib.metadata import entry_points

        found = {}
        for ep in entry_points(group=namespace):
            found.setdefault(ep.name, ep)  # the first on the path wins, as for imports
        _points[key] = found
    return _points[key]


def _load(namespace, name):
    """(plugin, None) or (None, the exception its import raised), imported once."""
    ep = _entry_points(namespace)[name]
    key = (namespace, ep.name, ep.value, tuple(sys.path))
    if key not in _loaded:
        try:
            _loaded[key] = (ep.load(), None)
        except Exception as exc:  # any error in plugin code: reported by broken() and get()
            _loaded[key] = (None, exc)
    return _loaded[key]


def names(namespace):
    """Names registered in ``namespace``, sorted, without importing any plugin."""
    return sorted(_entry_points(namespace))


def _manager(namespace):
    plugins, failures = {}, {}
    for name in _entry_points(namespace):
        plugin, exc = _load(namespace, name)
        if exc is None:
            plugins[name] = plugin
        else:
            failures[name] = exc
    return plugins, failures


def available(namespace):
    """{name: plugin class} of every plugin that imports cleanly (see :func:`broken`)."""
    return dict(_manager(namespace)[0])


def broken(namespace):
    """{name: one-line error} of every registered plugin that failed to import, so that
    listings can show it instead of letting it vanish."""
    return {name: f"{type(exc).__name__}: {exc}" for name, exc in _manager(namespace)[1].items()}


def get(namespace, name):
    if name in _entry_points(namespace):
        plugin, exc = _load(namespace, name)
        if exc is None:
            return plugin
        raise PluginError(f"plugin {name!r} in {namespace} failed to load: {exc}")
    plugins = _manager(namespace)[0]
    kind = {NETWORK_FUNCTIONS: "network function", SCHEDULERS: "scheduler", DRIVERS: "driver profile"}.get(
        namespace, "plugin")
    listed = ", ".join(sorted(plugins)) or "none installed"
    raise PluginError(f"no {kind} named {name!r}", f"available: {listed}")


def network_functions():
    return available(NETWORK_FUNCTIONS)


def network_function(name):
    return get(NETWORK_FUNCTIONS, name)


def schedulers():
    return available(SCHEDULERS)


def scheduler(name):
    return get(SCHEDULERS, name)


def drivers():
    return available(DRIVERS)


def driver(name):
    return get(DRIVERS, name)
