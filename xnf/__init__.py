"""xnf: BPF network functions for Linux, in pure Python.

Importing this package is cheap on purpose: netlink (pyroute2) and ELF parsing
(pyelftools) are imported only by the modules that use them.
"""

__version__ = "0.1.0"

_ATTACH = ["attach_xdp", "attach_tc", "attach_tcx", "attach_cls_bpf", "detach_xdp", "query", "load_pinned",
           "Attachment"]
_ERRORS = ["XnfError", "BPFError", "VerifierError", "LicenseError", "NotSupportedError", "ELFError", "SectionError",
           "ObjectLimitError", "BTFError", "MapIncompatibleError", "MapTypeError", "ObjectClosedError",
           "ReaderClosedError", "PinError", "LinkError", "AttachError", "InterfaceNotFoundError",
           "NamespaceNotFoundError", "ModeNotSupportedError", "PluginError", "ConfigError", "ValueEncodeError"]

__all__ = ["load", "open_object", "pping", "Map", "Program", "RingBuffer", "PerfBuffer", "__version__",
           *_ATTACH, *_ERRORS]

_LAZY = {"Map": "xnf.core.kernel.maps", "Program": "xnf.core.kernel.program", "RingBuffer": "xnf.core.kernel.ringbuf",
         "PerfBuffer": "xnf.core.kernel.perfbuf",
         **dict.fromkeys(_ATTACH, "xnf.core.attach"), **dict.fromkeys(_ERRORS, "xnf.core.errors")}

def __getattr__(name):
    """Classes of the public API, imported on first use."""
    if name in _LAZY:
        # `import xnf` stays a few names: the API classes come on first use
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'xnf' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def open_object(path, **kwargs):
    """Parse a BPF ELF object into an editable :class:`xnf.core.object.spec.ObjectSpec`."""
    from xnf.core.object.elf import load_spec  # `import xnf` stays light: pyelftools and attrs load on first use

    return load_spec(path, **kwargs)


def load(path_or_spec, **kwargs):
    """Parse (if needed) and load a BPF object; returns a live :class:`xnf.core.kernel.collection.Collection`."""
    from xnf.core.kernel.loader import load_collection  # `import xnf` stays light: the loader loads on first use

    return load_collection(path_or_spec, **kwargs)


def pping(iface, **kwargs):
    """Attach pping to ``iface`` and yield its events (RTT and flow events) as objects."""
    from xnf.plugins.pping.api import stream  # `import xnf` stays light: pping (pyroute2) loads on first use

    return stream(iface, **kwargs)
