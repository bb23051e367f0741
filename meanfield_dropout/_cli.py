"""Helpers shared by the command lines of both packages: the parser, the one list parser, the
``reproduce`` command and the one error handler that turns errors into exit codes.

A command's handler is stored as the ``run`` default of its sub-parser; :func:`run_main`
parses, runs it and returns the exit status: 0, or 2 with one line on stderr for bad input and
failed runs (``ValueError``, ``DivergenceError``, ``RuntimeError``, ``OSError``).
"""
import argparse
import functools
import sys
from pathlib import Path
from typing import Callable, NamedTuple, Optional

from . import __version__
from .engine import DivergenceError
from .experiments import reproduce


class Parser(argparse.ArgumentParser):
    """Argument parser whose usage errors also exit with status 2 and one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def program(module, command):
    """The program name for usage lines: the console ``command`` or ``python -m module``."""
    return command if Path(sys.argv[0]).name == command else f"python -m {module}"


def build_parser(prog, description):
    """A :class:`Parser` with ``--version`` and a required sub-command; returns both."""
    parser = Parser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser, parser.add_subparsers(dest="command", required=True, parser_class=Parser)


class ListOf:
    """``type=`` of a comma-separated list option: ``ListOf(int)``, ``ListOf(float)`` or
    ``ListOf(str, choices)``; returns a list, never empty."""

    _KINDS = {int: "integers", float: "numbers", str: "names"}

    def __init__(self, kind, choices=None):
        self.kind = kind
        self.choices = choices

    def __call__(self, text):
        wanted = self._KINDS[self.kind] + (f" from {', '.join(self.choices)}"
                                           if self.choices else "")
        try:
            values = [self.kind(part.strip()) for part in text.split(",") if part.strip()]
        except ValueError:
            values = []
        if not values or (self.choices and not set(values) <= set(self.choices)):
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of {wanted}, got {text!r}")
        return values


def run_main(parser, argv=None):
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:       # usage errors (2), --help and --version (0)
        return exc.code
    try:
        args.run(args)
    except DivergenceError as exc:
        return _fail("diverged", exc)
    except RuntimeError as exc:
        return _fail("failed", exc)
    except (ValueError, OSError) as exc:
        return _fail("error", exc)
    return 0


def _fail(kind, exc):
    print(f"{kind}: {str(exc).replace(chr(10), ' ')}", file=sys.stderr)
    return 2


class SettingOption(NamedTuple):
    """A ``reproduce`` option that sets the field ``field`` of experiment ``experiment`` (a
    name, or a tuple of names sharing the option), parsed by ``type`` (default: a string)."""

    flag: str
    experiment: str
    field: str
    metavar: str
    help: str
    type: Optional[Callable] = None

    def applies_to(self, name):
        """Whether this option sets a field of the experiment ``name``."""
        names = self.experiment if isinstance(self.experiment, tuple) else (self.experiment,)
        return name in names


def add_reproduce_command(sub, experiments, options=()):
    """Register ``reproduce [--all] [--quick] [--replot] [NAME ...]`` for ``experiments``
    (name → :class:`~meanfield_dropout.experiments.Experiment`) with extra
    :class:`SettingOption` s."""
    p = sub.add_parser("reproduce", help="make the papers' figures (see figures/README.md)",
                       description="Run the papers' experiments and write their figures.")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"experiments to run, from {', '.join(experiments)}")
    p.add_argument("--all", action="store_true", help="run every experiment")
    p.add_argument("--quick", action="store_true",
                   help="small settings (about a minute); outputs get a _quick suffix")
    p.add_argument("--paper", action="store_true",
                   help="the papers' full-length settings where the default is shortened "
                        "(mnist: 40 000 steps, 10 repeats; prints the estimated time first); "
                        "outputs get a _paper suffix")
    p.add_argument("--replot", action="store_true",
                   help="redraw from the cached results without recomputing")
    p.add_argument("--out-dir", default="figures",
                   help="output directory (default: figures/ in the current directory)")
    p.add_argument("--seed", type=int, default=0, help="root seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="hide tqdm bars")
    p.add_argument("--workers", type=int, default=None,
                   help="processes running independent runs (default: one per core); "
                        "results do not depend on it")
    if any(experiment.run_options for experiment in experiments.values()):
        p.add_argument("--cells-dir", default=None, metavar="DIR",
                       help="keep finished cells in DIR and skip those found there (resume "
                            "after a kill); default with --paper: OUT_DIR/NAME_paper_cells")
        p.add_argument("--dask", default=None, metavar="ADDRESS",
                       help="run the cells on dask.distributed: a scheduler address, or "
                            "'local' for a local cluster of --workers processes")
    for option in options:
        names = option.experiment if isinstance(option.experiment, tuple) else \
            (option.experiment,)
        p.add_argument(option.flag, dest=option.field, metavar=option.metavar,
                       help=f"{', '.join(names)}: {option.help}",
                       **({"type": option.type} if option.type else {}))
    p.set_defaults(run=functools.partial(_reproduce, experiments=experiments, options=options))


def _reproduce(args, experiments, options):
    """Handler of ``reproduce``: run the named experiments (or all) in order."""
    if args.all == bool(args.names):
        raise ValueError("give experiment NAMEs or --all (not both)")
    if args.quick and args.paper:
        raise ValueError("give at most one of --quick and --paper")
    names = list(experiments) if args.all else args.names
    for name in names:
        if name not in experiments:
            raise ValueError(f"NAME must be one of {sorted(experiments)}, got {name!r}")
    total = 0.0
    for name in names:
        experiment = experiments[name]
        preset = experiment.settings.quick() if args.quick else \
            experiment.settings.paper() if args.paper else experiment.settings.full()
        settings = preset.with_seed(args.seed).replace(**{
            o.field: getattr(args, o.field) for o in options
            if o.applies_to(name) and getattr(args, o.field) is not None})
        run_options = _run_options(experiment, settings, args)
        if args.paper and experiment.estimate is not None and not args.replot:
            seconds = experiment.estimate(settings, args.workers)
            print(f"{name}: estimated time {seconds / 3600:.1f} h ({seconds:.0f} s) on "
                  f"{args.workers or 'all'} worker(s), calibrated on a few steps here; "
                  f"finished cells go to {run_options.get('cells_dir')}", flush=True)
        done = reproduce(experiment, args.out_dir, settings=settings, quick=args.quick,
                         replot=args.replot, progress=not args.no_progress,
                         workers=args.workers, paper=args.paper, run_options=run_options)
        print("\n".join(done.summary))
        print(f"{name}: wrote {', '.join(str(p) for p in [*done.figures, done.cache])} in "
              f"{done.seconds:.1f} s")
        total += done.seconds
    print(f"reproduce: {len(names)} experiment(s) in {total:.1f} s")


def _run_options(experiment, settings, args):
    """The ``cells_dir``/``dask`` options an experiment's run accepts (see ``--cells-dir``)."""
    options = {}
    if "cells_dir" in experiment.run_options:
        cells = args.cells_dir
        if cells is None and args.paper:
            stem = settings.cache_stem() if hasattr(settings, "cache_stem") else \
                experiment.cache
            cells = str(Path(args.out_dir) / f"{stem}_paper_cells")
        options["cells_dir"] = cells
    if "dask" in experiment.run_options:
        options["dask"] = args.dask
    return options
