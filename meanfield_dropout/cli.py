"""Command-line interface: ``python -m meanfield_dropout COMMAND ...``.

Each topical module contributes its sub-commands through an ``add_commands(subparsers)``
function listed in :data:`_COMMAND_MODULES`; a sub-command stores its handler as the
``run`` default. Bad arguments (``ValueError``) become a one-line message and exit status 2.
"""
import argparse
import importlib
import sys

from .engine import DivergenceError

_COMMAND_MODULES = (
    "meanfield_dropout.engine_cli",
    "meanfield_dropout.convergence_cli",
    "meanfield_dropout.sme.cli",
    "meanfield_dropout.reproduce",
)


class Parser(argparse.ArgumentParser):
    """Argument parser whose usage errors also exit with status 2 and one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    """The top-level parser with every registered sub-command."""
    parser = Parser(prog="python -m meanfield_dropout", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in _COMMAND_MODULES:
        importlib.import_module(module).add_commands(sub)
    return parser


def dispatch(args):
    """Run the parsed sub-command ``args.run(args)`` and return the exit status.

    Bad input (``ValueError``) prints one line and gives 2; a run that fails on valid input
    (a divergence, a failed worker: ``DivergenceError``, ``RuntimeError``) gives 1.
    """
    try:
        args.run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except DivergenceError as exc:
        print(f"diverged: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    return dispatch(build_parser().parse_args(argv))
