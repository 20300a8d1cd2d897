"""The plugin command groups that `xnf --help` lists (``sched``, ``pping``, ...), cached.

Listing them means importing every plugin, which costs more than the rest of `xnf --help`
together (bench/cli_startup.py). Their names and one-line helps are kept in a small file
under the user's cache directory, valid while the search path's directories and the
plugins' source files keep their modification times: installing, removing or editing a
plugin rebuilds it. Any problem with the file only means the slow path. The same file
says where each network function's class is, so that `xnf run|attach|demo NF` imports
it without reading every installed distribution's entry points (importlib.metadata and
the scan: ~19 ms of CPU, issue 14 item 4).
"""
import importlib
import json
import os
import sys
import zlib

VERSION = 2


def _path():
    """One file per search path: the console script, ``python -m`` and other interpreters
    each keep their own instead of invalidating each other's."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = zlib.crc32("\0".join(sys.path).encode("utf-8", "surrogateescape"))
    return os.path.join(base, "xnf", f"cli-groups-{key:08x}.json")


def _stamp(dirs):
    """Modification times of the search path (packages installed or removed) and of the
    plugins' source files (an editable plugin edited)."""
    stamp = []
    for d in [p for p in sys.path if p] + sorted(dirs):  # not "" (the working directory): it changes often
        try:
            stamp.append([d, os.stat(d).st_mtime_ns])
            if d in dirs:
                stamp += sorted([e.name, e.stat().st_mtime_ns, e.stat().st_size]
                                for e in os.scandir(d) if e.name.endswith(".py"))
        except OSError:
            stamp.append([d, None])
    return stamp


def _valid():
    """The cache's contents, or None when it is missing or stale."""
    try:
        with open(_path()) as f:
            data = json.load(f)
        if data["version"] != VERSION or data["stamp"] != _stamp(set(data["dirs"])):
            return None
        return data
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load():
    """[(name, help)] of the plugin groups, or None when the cache is missing or stale."""
    try:
        return [tuple(g) for g in _valid()["groups"]]
    except (KeyError, TypeError):
        return None


def network_function(name):
    """The class of network function ``name``, imported from where the cache recorded it;
    None when the cache cannot say (missing, stale, no such name, or the import fails:
    the registry then looks it up and reports a broken plugin as it does)."""
    try:
        module, _, qualname = _valid()["network_functions"][name].partition(":")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        return cls
    except Exception:  # anything the cache or the plugin does wrong: the slow path decides
        return None


def save(groups, plugin_classes, network_functions=None):
    """Remember ``groups`` ([(name, help)]) as registered by ``plugin_classes``, and
    ``network_functions`` ({name: class}) by where their classes are."""
    dirs = set()
    for cls in plugin_classes:
        path = getattr(sys.modules.get(cls.__module__), "__file__", None)
        if path:
            dirs.add(os.path.dirname(os.path.abspath(path)))
    data = {"version": VERSION, "dirs": sorted(dirs), "stamp": _stamp(dirs), "groups": groups,
            "network_functions": {n: f"{c.__module__}:{c.__qualname__}"
                                  for n, c in (network_functions or {}).items()}}
    path = _path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: the next `xnf --help` takes the slow path again
