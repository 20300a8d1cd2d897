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


CORE_GROUPS = ("features", "prog", "map")
"""Command groups that need no plugins: for them, plugins are not even looked up."""


def build_parser(argv=()):
    from xnf.cli import features, maps, prog  # `import xnf.cli.main` stays light (bench/import_time.py)

    command = next((a for a in argv if not a.startswith("-")), None)
    parser = _Parser(prog="xnf", description="BPF network functions for Linux.")
    parser.add_argument("--version", action="version", version=f"xnf {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="on a verifier rejection, also print the end of the verifier log")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    if command not in CORE_GROUPS:
        from xnf.cli import nf_commands  # stevedore and every plugin: not for `xnf features|prog|map`

        nf_commands.register(sub)
    features.register(sub)
    prog.register(sub)
    maps.register(sub)
    if command not in CORE_GROUPS:
        nf_commands.register_plugin_groups(sub)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    verbose = "-v" in argv or "--verbose" in argv
    try:
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        return args.func(args) or 0
    except VerifierError as e:
        if verbose:
            print(f"xnf: error: {e.describe()}", file=sys.stderr)
        elif isinstance(e, LicenseError):
            print(f"xnf: error: {e}", file=sys.stderr)
        else:
            print(f"xnf: error: {e.args[0]} (run `xnf --verbose ...` to see the verifier log)", file=sys.stderr)
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
