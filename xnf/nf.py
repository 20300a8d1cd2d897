"""The network-function contract: what a plugin declares and what every `xnf` command calls.

A network function is a class registered under the entry-point group
``xnf.network_functions``. It declares its name, the BPF objects it ships, the hooks
it needs, the XDP modes it supports and its configuration as an attrs class; the CLI
turns that class's fields into options, so a third-party plugin works with every
``xnf`` command unchanged. See docs/writing-a-plugin.md.
"""
import contextlib
import enum
import importlib.resources
import os

import attrs

from xnf.core.attach.pinroot import PinRoot
from xnf.core.errors import ConfigError
from xnf.core.kernel import netns as _netns

HOOKS = ("xdp", "tc-ingress", "tc-egress", "qdisc")
MODES = ("auto", "skb", "native", "offload")
MODE_ALIASES = {"unspecified": "auto", "generic": "skb", "drv": "native", "hw": "offload"}
"""The XDP modes in xdp-loader's (``unspecified``, ``hw``) and iproute2's (``generic``,
``drv``) words, which ``-m/--mode`` accepts as well as its own."""


def xdp_mode_name(value):
    """``--mode``'s argument type: a mode name, an alias made the mode it names."""
    return MODE_ALIASES.get(value, value)


def warn(message):
    """A deprecation on the command line: one line on stderr, the command still runs."""
    import sys  # lazy: only a deprecated spelling gets here

    print(f"xnf: warning: {message}", file=sys.stderr)


@attrs.define
class NoConfig:
    """For network functions without options."""


class NetworkFunction:
    """Base class of network functions. Subclasses set the class attributes and implement
    :meth:`attach`, :meth:`detach`, :meth:`status` and, for a foreground loop, :meth:`run`."""

    name = ""
    description = ""
    objects = ()
    """BPF objects shipped as package data, relative to the plugin's package."""
    hooks = ()
    """Where it attaches: a subset of :data:`HOOKS`."""
    modes = ("skb", "native")
    """XDP modes it can run in (``offload`` only if it can run on a NIC)."""
    Config = NoConfig

    def __init__(self, iface, config=None, netns=None, mode="auto"):
        if mode not in MODES:
            raise ConfigError(f"unknown mode {mode!r}", f"choose one of {', '.join(MODES)}")
        if mode not in ("auto",) + tuple(self.modes):
            raise ConfigError(f"{self.name} cannot run in {mode} mode",
                              f"it supports: {', '.join(('auto',) + tuple(self.modes))}")
        self.iface = iface
        self.config = config if config is not None else self.Config()
        self.netns = netns
        self.mode = mode

    # --- what plugins implement -------------------------------------------------------

    @property
    def offline(self):
        """True when the configuration asks for a run that attaches nothing (pping's
        ``--read FILE``): `xnf run` then only calls :meth:`run`, `xnf attach` refuses."""
        return False

    def attach(self):
        """Load and attach everything, pinned under :attr:`pin_dir`; on failure leave nothing behind."""
        raise NotImplementedError

    def detach(self):
        """Remove everything :meth:`attach` created (programs, filters, qdiscs, pins)."""
        raise NotImplementedError

    def status(self):
        """A JSON-serialisable dict describing the attached instance."""
        return {"name": self.name, "iface": self.iface, "netns": self.netns, "mode": self.mode}

    def run(self, out, stop):
        """Foreground loop: write results to ``out`` (a text stream) until ``stop`` (an Event) is set."""
        stop.wait()

    def explain(self):
        """One line for `xnf attach` to print after attaching: which data path runs, where
        this kernel lacks the ideal one (pifo_sched); empty (nothing printed) by default."""
        return ""

    @classmethod
    def attached(cls, iface, netns=None):
        """The instance attached to ``iface`` (found through its pins), or None."""
        return None

    @classmethod
    def clear(cls, iface, netns=None):
        """Remove a broken instance (what a process killed while attaching or detaching left
        under the pin directory); False if there was none. `xnf detach` calls it when
        :meth:`attached` finds no whole instance. The default removes what the pins and
        their records name (attachments, tc filters, maps); override to remove more
        (pifo_sched removes the HTB root it built)."""
        pins = PinRoot(iface, cls.name, netns=netns)
        if not (pins.exists() or pins.leftovers()):
            return False
        pins.remove_all()
        return True

    # --- optional CLI extensions ------------------------------------------------------

    mode_help = "XDP mode: auto (default: the best the interface and the network function support)"
    """Help of ``-m/--mode``; a network function whose XDP hook is optional says when it applies."""

    @classmethod
    def xdp_modes(cls):
        """The XDP modes ``-m/--mode`` offers: ``auto`` and :attr:`modes`, or none without an XDP hook."""
        return ("auto",) + tuple(cls.modes) if "xdp" in cls.hooks and cls.modes else ()

    @classmethod
    def add_hook_arguments(cls, parser):
        """``-m/--mode`` with only the XDP modes this network function runs in (xdp-loader's
        and iproute2's names are accepted too, see :data:`MODE_ALIASES`). Without an XDP hook
        there is none; ``--mode auto``, which every network function used to accept, is
        kept hidden and warned about."""
        import argparse  # lazy: keeps import xnf light (the CLI has it loaded already)

        offered = cls.xdp_modes()
        if offered:
            parser.add_argument("-m", "--mode", type=xdp_mode_name, choices=offered, default=None,
                                help=cls.mode_help + " (ip's generic/drv and xdp-loader's unspecified/hw "
                                                     "name them too)")
        else:
            parser.add_argument("--mode", choices=("auto",), default=None, help=argparse.SUPPRESS)

    @classmethod
    def mode_from_args(cls, args):
        """The XDP mode the parsed options ask for (``auto`` if none)."""
        mode = getattr(args, "mode", None)
        if mode is not None and not cls.xdp_modes():
            warn(f"--mode is deprecated for {cls.name}, which has no XDP hook: drop it (docs/cli.md)")
        return mode or "auto"

    @classmethod
    def add_arguments(cls, parser):
        """Options for `attach` and `run`; by default one per field of :attr:`Config`."""
        add_config_arguments(parser, cls.Config)

    @classmethod
    def config_from_args(cls, args):
        return config_from_args(cls.Config, args)

    @classmethod
    def register_cli(cls, subparsers):
        """Add a command group of the plugin's own (``xnf <name> ...``); none by default."""

    demo = None
    """``xnf demo NAME``: a classmethod ``demo(args)`` returning the exit status, for
    network functions that have a self-contained demonstration; None: no demo."""

    @classmethod
    def add_demo_arguments(cls, parser):
        """Options of ``xnf demo NAME``; none by default."""

    # --- helpers for implementations --------------------------------------------------

    @classmethod
    def object_path(cls, relpath):
        """Filesystem path of a BPF object shipped in the plugin's package."""
        package = cls.__module__.rpartition(".")[0] or cls.__module__
        return os.fspath(importlib.resources.files(package).joinpath(relpath))

    @classmethod
    def pin_root(cls, iface, netns=None):
        """The :class:`~xnf.core.attach.pinroot.PinRoot` of this network function on ``iface``
        (for :meth:`attached` and :meth:`clear`, which have no instance yet)."""
        return PinRoot(iface, cls.name, netns=netns)

    @property
    def pins(self):
        """This instance's :class:`~xnf.core.attach.pinroot.PinRoot`: ``find``, ``read_record``,
        ``maps_dir``, ``remove_all``."""
        return self.pin_root(self.iface, self.netns)

    @property
    def pin_dir(self):
        """``/sys/fs/bpf/xnf/<ifname>[@<netns>]/<nf>/``: where this instance keeps its pins."""
        return self.pins.path

    @contextlib.contextmanager
    def building(self):
        """Build the pinned instance with the attach protocol, for :meth:`attach`::

            with self.building() as build, xnf.load(spec) as coll:
                build.attach("xdp", coll.programs["prog"], attach_xdp, mode=self.mode)
                build.pin_maps([("counts", coll.maps["counts"])])

        The interface is checked first; then, under the interface lock and in a staging
        directory, the body attaches and pins; leaving the block publishes the instance
        whole (one rename). An exception (or Ctrl-C) in the body removes only what this
        attempt made; an instance already there (whole or broken) is refused first. This
        process's fds are closed at the end: the pins keep what was published.
        """
        _netns.ifindex(self.iface, self.netns)  # a missing interface fails before the lock
        with self.pins.attaching() as txn:
            build = Building(self, txn)
            try:
                yield build
                txn.commit()
            finally:
                build.close()


class Building:
    """One instance being built by :meth:`NetworkFunction.building`: a
    :class:`~xnf.core.attach.pinroot.Transaction` with the network function's interface
    and namespace filled in."""

    def __init__(self, nf, txn):
        self.nf, self.txn = nf, txn
        self._attachments = []

    @property
    def maps_dir(self):
        """Where the maps go while building (they move with the instance on publish)."""
        return self.txn.maps_dir

    def attach(self, name, program, attach, **options):
        """``attach(program, iface, netns=..., **options)`` (``attach_xdp``, ``attach_tc``,
        ``attach_tcx``, ``attach_cls_bpf``), announced first and pinned as ``name``."""
        self.txn.intend(name, program)  # found again by a later detach if we die right after
        att = attach(program, self.nf.iface, netns=self.nf.netns, **options)
        self._attachments.append(att)
        self.txn.store(name, att)
        return att

    def pin_maps(self, maps):
        """Pin ``(name, map)`` pairs under the instance's ``maps`` directory."""
        self.txn.pin_maps(maps)

    def write_record(self, name, data):
        """A JSON record of the instance, read back with ``self.pins.read_record(name)``."""
        self.txn.write_record(name, data)

    def close(self):
        for att in self._attachments:
            att.close()
        self._attachments = []


# --- the contract, checked -------------------------------------------------------------------

_IMPLEMENTED = ("attach", "detach", "status", "attached")


def contract_problems(cls):
    """What ``cls`` does not satisfy of the contract (docs/writing-a-plugin.md), as one line
    each; [] when it does. Run it in a plugin's tests: the built-ins' run in xnf's."""
    problems = []
    if not issubclass(cls, NetworkFunction):
        return [f"{cls.__name__} does not derive from xnf.nf.NetworkFunction"]
    for attr in ("name", "description"):
        if not isinstance(getattr(cls, attr), str) or not getattr(cls, attr):
            problems.append(f"{attr} is not set")
    if not cls.hooks or not set(cls.hooks) <= set(HOOKS):
        problems.append(f"hooks {tuple(cls.hooks)!r} is not a non-empty subset of {HOOKS}")
    if not set(cls.modes) <= set(MODES) - {"auto"}:
        problems.append(f"modes {tuple(cls.modes)!r} is not a subset of skb, native, offload")
    if "xdp" in cls.hooks and not cls.modes:
        problems.append("attaches at xdp but declares no XDP mode")
    if not attrs.has(cls.Config):
        problems.append("Config is not an attrs class")
    if not cls.objects:
        problems.append("objects names no BPF object")
    for rel in cls.objects:
        try:
            path = cls.object_path(rel)
        except (TypeError, ImportError) as e:  # the class is not in a package
            problems.append(f"object {rel!r} has no object_path: {e}")
            continue
        if not os.path.isfile(path):
            problems.append(f"object {rel!r} is not at object_path({rel!r}) = {path}")
    for method in _IMPLEMENTED:
        if getattr(cls, method).__qualname__.startswith("NetworkFunction."):
            problems.append(f"{method}() is not implemented")
    if cls.demo is None and not cls.add_demo_arguments.__qualname__.startswith("NetworkFunction."):
        problems.append("add_demo_arguments() without demo()")
    return problems


# --- attrs config -> argparse ---------------------------------------------------------------

def add_config_arguments(parser, config_cls):
    """One ``--option`` per attrs field: bools become flags, enums and ``choices`` metadata choices."""
    for field in attrs.fields(config_cls):
        if field.metadata.get("cli") is False:
            continue
        opt = "--" + field.name.replace("_", "-")
        help_text = field.metadata.get("help", "")
        default = field.default if not isinstance(field.default, attrs.Factory) else field.default.factory()
        kwargs = {"dest": field.name, "default": default, "help": help_text}
        ftype = _field_type(field)
        if ftype is bool:
            kwargs["action"] = "store_false" if default else "store_true"
            if default:
                opt = "--no-" + field.name.replace("_", "-")
            kwargs.pop("default")
            parser.set_defaults(**{field.name: default})
        elif isinstance(ftype, type) and issubclass(ftype, enum.Enum):
            kwargs["choices"] = [m.value for m in ftype]
            kwargs["type"] = type(next(iter(ftype)).value)
        else:
            if "choices" in field.metadata:
                kwargs["choices"] = field.metadata["choices"]
            if ftype in (int, float, str):
                kwargs["type"] = ftype
        if "metavar" in field.metadata:
            kwargs["metavar"] = field.metadata["metavar"]
        parser.add_argument(opt, **kwargs)


def config_from_args(config_cls, args):
    """Build the attrs config from parsed options; validators' errors become ConfigError."""
    values = {}
    for field in attrs.fields(config_cls):
        if not hasattr(args, field.name):
            continue
        value = getattr(args, field.name)
        ftype = _field_type(field)
        if isinstance(ftype, type) and issubclass(ftype, enum.Enum) and not isinstance(value, ftype):
            value = ftype(value)
        values[field.name] = value
    try:
        return config_cls(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


_TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool}


def _field_type(field):
    return field.type if not isinstance(field.type, str) else _TYPE_NAMES.get(field.type, str)
