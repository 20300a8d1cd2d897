"""The `xnf` command: builds the argument parser from the command groups and plugins, and
turns every error into one line on stderr and a non-zero exit."""
import argparse
import os
import sys

from xnf import __version__
from xnf.core.errors import LicenseError, VerifierError, XnfError

EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 1, 2, 70, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"xnf: error: {message} (see `{self.prog} --help`)\n")

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and not hasattr(namespace, "_usage_of"):  # the command that left them, not `xnf`
            namespace._usage_of = self.prog
        return namespace, extras

    def parse_args(self, args=None, namespace=None):
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # argparse would name `xnf --help`; the command's own help says what it takes
            self.exit(EXIT_USAGE, f"xnf: error: unrecognized arguments: {' '.join(extras)} "
                                  f"(see `{namespace._usage_of} --help`)\n")
        return namespace


CORE_GROUPS = ("features", "prog", "map")
"""Command groups that need no plugins: for them, plugins are not even looked up."""
NF_LOOKUPS = ("list", "detach", "status")
"""Commands that look plugins up only when they run, not to build their options."""
NF_VERBS = ("attach", "run", "demo")
"""Commands whose options come from one network function: only that one is imported."""


def _command(argv):
    """The command (the first argument that is no option) and what follows it."""
    for i, a in enumerate(argv):
        if not a.startswith("-"):
            return a, argv[i + 1:]
    return None, []


def _top_level():
    parser = _Parser(prog="xnf", description="BPF network functions for Linux.")
    parser.add_argument("--version", action="version", version=f"xnf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="on a verifier rejection, also print the end of the verifier log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    return parser, sub


def _nfs_needed(command, rest):
    """{name: class} of the network functions whose options the command needs, or None
    for all of them (and the plugins' own command groups)."""
    from xnf import registry
    from xnf.cli import plugin_groups

    if command in NF_LOOKUPS:
        return {}
    if command in NF_VERBS:
        name, _ = _command(rest)
        cls = plugin_groups.network_function(name)  # where `xnf --help` found it: no entry-point scan
        if cls is not None:
            return {name: cls}
        if name in registry.names(registry.NETWORK_FUNCTIONS):
            try:
                return {name: registry.network_function(name)}
            except XnfError:
                return None  # a broken plugin: the full parser says how it fails
    return None


def _commands(sub, nfs):
    """Every command; the network-function ones with the options of ``nfs`` only."""
    from xnf.cli import features, maps, nf_commands, prog  # `import xnf.cli.main` stays light

    nf_commands.register(sub, nfs)
    features.register(sub)
    prog.register(sub)
    maps.register(sub)


def build_parser(argv=()):
    """The parser for ``argv``: every command is there, but only the options ``argv`` can
    reach are built, and plugins are imported for those alone."""
    command, rest = _command(argv)
    parser, sub = _top_level()
    nfs = {} if command in CORE_GROUPS else _nfs_needed(command, rest)
    _commands(sub, nfs)
    if nfs is None:
        from xnf.cli import nf_commands, plugin_groups

        groups = nf_commands.register_plugin_groups(sub)
        if command is None:
            installed = nf_commands.registry.network_functions()
            plugin_groups.save(groups, installed.values(), installed)
    return parser


def _help_parser():
    """`xnf`, `xnf --help`, `xnf --version`: every command with its one-line help and
    nothing below it, the plugins' groups from a cache (:mod:`xnf.cli.plugin_groups`);
    None when the cache cannot be used."""
    from xnf.cli import plugin_groups

    groups = plugin_groups.load()
    if groups is None:
        return None
    parser, sub = _top_level()
    _commands(sub, {})
    for name, text in groups:
        sub.add_parser(name, help=text)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    verbose = "-v" in argv or "--verbose" in argv
    try:
        parser = (_help_parser() if _command(argv)[0] is None else None) or build_parser(argv)
        args = parser.parse_args(argv)
        return args.func(args) or 0
    except VerifierError as e:
        if isinstance(e, LicenseError):
            print(f"xnf: error: {e}", file=sys.stderr)
        else:  # one line, and the C line the verifier stopped in (from the program's BTF line info)
            more = "" if verbose else " (run `xnf --verbose ...` to see the verifier log)"
            print(f"xnf: error: {e.args[0]}{more}", file=sys.stderr)
            if e.source and e.source[2].strip() not in e.args[0]:  # CO-RE errors name it already
                file, line, text = e.source
                print(f"  {f'{file}:{line}: ' if file else ''}{text.expandtabs(1)}", file=sys.stderr)
        if verbose:
            print("\n".join("  " + line for line in e.log_tail), file=sys.stderr)
        return EXIT_ERROR
    except XnfError as e:
        print(f"xnf: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"xnf: error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # a bug: still one line, the traceback only on request
        if os.environ.get("XNF_DEBUG"):
            raise
        print(f"xnf: internal error: {type(e).__name__}: {e} (set XNF_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
