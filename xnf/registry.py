"""Plugin look-ups through stevedore entry points.

Namespaces: ``xnf.network_functions`` (network functions), ``xnf.schedulers``
(pifo_sched scheduling algorithms), ``xnf.drivers`` (NIC driver profiles).
A third-party package registers under the same names in its own packaging metadata.
"""
import sys

from xnf.core.errors import PluginError

NETWORK_FUNCTIONS = "xnf.network_functions"
SCHEDULERS = "xnf.schedulers"
DRIVERS = "xnf.drivers"

_cache = {}


def _manager(namespace):
    key = (namespace, tuple(sys.path))  # a package added to the path later is found too
    if key not in _cache:
        # stevedore and the entry-point scan: only for commands that look plugins up
        from stevedore import ExtensionManager

        failures = {}

        def on_failure(_manager, entrypoint, exc):
            failures[entrypoint.name] = exc

        # stevedore keeps each namespace's entry points for the life of the process; drop
        # them so a path added or removed since is seen (the key above says when to rescan)
        ExtensionManager.ENTRY_POINT_CACHE.pop(namespace, None)
        mgr = ExtensionManager(namespace, invoke_on_load=False, on_load_failure_callback=on_failure)
        _cache[key] = ({ext.name: ext.plugin for ext in mgr}, failures)
    return _cache[key]


def available(namespace):
    """{name: plugin class} of every plugin that imports cleanly (see :func:`broken`)."""
    return dict(_manager(namespace)[0])


def broken(namespace):
    """{name: one-line error} of every registered plugin that failed to import, so that
    listings can show it instead of letting it vanish."""
    return {name: f"{type(exc).__name__}: {exc}" for name, exc in _manager(namespace)[1].items()}


def get(namespace, name):
    plugins, failures = _manager(namespace)
    if name in plugins:
        return plugins[name]
    if name in failures:
        raise PluginError(f"plugin {name!r} in {namespace} failed to load: {failures[name]}")
    kind = {NETWORK_FUNCTIONS: "network function", SCHEDULERS: "scheduler", DRIVERS: "driver profile"}.get(
        namespace, "plugin")
    names = ", ".join(sorted(plugins)) or "none installed"
    raise PluginError(f"no {kind} named {name!r}", f"available: {names}")


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
