"""xnf: BPF network functions for Linux, in pure Python.

Importing this package is cheap on purpose: netlink (pyroute2) and ELF parsing
(pyelftools) are imported only by the modules that use them.
"""

__version__ = "0.1.0"

__all__ = ["load", "open_object", "pping", "__version__"]


def open_object(path, **kwargs):
    """Parse a BPF ELF object into an editable :class:`xnf.core.spec.ObjectSpec`."""
    from xnf.core.elf import load_spec

    return load_spec(path, **kwargs)


def load(path_or_spec, **kwargs):
    """Parse (if needed) and load a BPF object; returns a live :class:`xnf.core.loader.Collection`."""
    from xnf.core.loader import load_collection

    return load_collection(path_or_spec, **kwargs)


def pping(iface, **kwargs):
    """Attach pping to ``iface`` and yield its events (RTT and flow events) as objects."""
    from xnf.plugins.pping.api import stream

    return stream(iface, **kwargs)
