"""Helpers shared by the command lines of both packages: the parser, the option types (lists,
bounded integers, input and output paths), the ``reproduce`` command and the one error
handler that turns errors into exit codes.

A command's handler is stored as the ``run`` default of its sub-parser; :func:`run_main`
parses, runs it and returns the exit status: 0, or 2 with one line on stderr for bad input and
failed runs (``ValueError``, ``DivergenceError``, ``RuntimeError``, ``OSError``,
``MemoryError``). Warnings are printed as one ``warning: ...`` line each. Ctrl-C is one line
(``interrupted``, or what an interrupted run kept: see
:class:`meanfield_dropout.runtime.runner.Interrupted`) and exit status 130.

Paths are checked when the options are parsed, before anything is computed (by the checks of
:mod:`meanfield_dropout.validation` that the Python API uses): an output file must not be a
directory or read-only, a figure must have a format matplotlib writes, and the file's first
existing ancestor must be a writable directory; the missing parent directories of the output
files are created once the whole command line is parsed (:class:`MakeDirectories`); an input
file must be an existing, readable regular file (a FIFO is refused without being opened).
"""
import argparse
import functools
import gc
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import NamedTuple

from .. import __version__
from ..data import DATASETS
from ..engine import DivergenceError
from ..validation import check_data_file, check_output_dir, check_output_file
from ..experiments import reproduce
from ..runtime.runner import DASK_TIMEOUT


#: The rule of output paths, stated in both programs' ``--help``.
OUTPUT_RULE = ("Outputs: -o/--out FILE is the one file a command writes (a figure, or a "
               "result .npz for simulate); --out-dir DIR a directory of results (scan and map "
               "cells, reproduce's figures); --csv FILE a table; --data-out FILE a result .npz "
               "beside a figure. Default outputs never overwrite a file tracked in the "
               "package's git repository.")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help text with each option's default, unless it is None or False or the help already
    states it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS or "default" in text):
            return text
        default = action.default
        if isinstance(default, (list, tuple)):
            default = ",".join(map(str, default))
        return f"{text} (default: {str(default).replace('%', '%%')})".lstrip()


class Parser(argparse.ArgumentParser):
    """Argument parser whose usage errors also exit with status 2 and one line, and whose
    help gives every option's default (:class:`HelpFormatter`)."""

    def __init__(self, *args, formatter_class=HelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Renamed(argparse.Action):
    """The old spelling of an option: warns (FutureWarning) and acts as the new option."""

    def __init__(self, option_strings, dest, target=None, **kwargs):
        self.target = target
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        warnings.warn(f"{option_string} is now {self.target.option_strings[-1]}; the old "
                      "spelling will be removed", FutureWarning, stacklevel=2)
        self.target(parser, namespace, values, self.target.option_strings[-1])


def add_renamed(parser, old, target):
    """Accept ``old``, hidden from ``--help``, as a spelling of the option ``target`` (the
    action ``parser.add_argument`` returned) that warns. A required ``target`` becomes
    optional to argparse and is checked by :func:`run_main` instead, so that either spelling
    satisfies it."""
    parser.add_argument(old, dest=target.dest, action=_Renamed, target=target,
                        nargs=target.nargs, type=target.type, help=argparse.SUPPRESS)
    if target.required:
        target.required = False
        required = parser.get_default("_required") or []
        parser.set_defaults(_required=required + [(target.option_strings[-1], target.dest)])


def program(module, command):
    """The program name for usage lines: the console ``command`` or ``python -m module``."""
    return command if Path(sys.argv[0]).name == command else f"python -m {module}"


def build_parser(prog, description):
    """A :class:`Parser` with ``--version`` and a required sub-command; returns both."""
    parser = Parser(prog=prog, description=description, epilog=OUTPUT_RULE)
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


class IntRange:
    """``type=`` of an integer option in ``[low, high]`` (either bound optional)."""

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def __call__(self, text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (self.low is not None and value < self.low) \
                or (self.high is not None and value > self.high):
            bounds = " and ".join(bound for bound in (
                f">= {self.low}" if self.low is not None else "",
                f"<= {self.high}" if self.high is not None else "") if bound)
            raise argparse.ArgumentTypeError(
                f"expected an integer{' ' + bounds if bounds else ''}, got {text!r}")
        return value


def seconds(text):
    """``type=`` of a duration option: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def add_dask_options(parser, what="the cells"):
    """``--dask ADDRESS`` and ``--dask-timeout SECONDS`` (the backend of
    :func:`meanfield_dropout.runtime.runner.run_unordered`)."""
    parser.add_argument("--dask", default=None, metavar="ADDRESS",
                        help=f"run {what} on dask.distributed: a scheduler address, or "
                             f"'local' for a local cluster of --workers processes")
    parser.add_argument("--dask-timeout", default=None, type=seconds, metavar="SECONDS",
                        help=f"seconds the --dask scheduler has to answer (default "
                             f"{DASK_TIMEOUT:g})")


class OutputFile:
    """``type=`` of an output file option; returns the :class:`~pathlib.Path` to be written
    (:func:`~meanfield_dropout.validation.check_output_file`, the check the Python API uses).

    ``suffix``: a suffix appended when the name lacks it (``".npz"``, as the results codec
    does), or ``"figure"``: a format matplotlib writes, ``.png`` appended when there is none.
    Use it with ``action=MakeDirectories`` so that the missing parent directories are created
    once the command line has been parsed, before the command runs.
    """

    def __init__(self, suffix=None):
        self.suffix = suffix

    def __call__(self, text):
        try:
            return check_output_file(text, suffix=self.suffix)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None


def output_dir(text):
    """``type=`` of an output directory option: an existing directory, or one that can be
    created (the command creates it when it writes); a Path."""
    try:
        return check_output_dir(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class MakeDirectories(argparse.Action):
    """Store an :class:`OutputFile` path and have :func:`run_main` create its missing parent
    directories after parsing, before the command runs."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        directory = values.parent
        pending = [item for item in getattr(namespace, "_directories", [])
                   if item[0] != self.dest]
        namespace._directories = pending + [(self.dest, option_string or self.dest,
                                             directory)]


def _make_directories(args):
    """Create the directories of the output options given (ValueError naming the option)."""
    for _, option, directory in getattr(args, "_directories", ()):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{option}: cannot create directory {directory} "
                             f"({exc.strerror})") from None


def tracked_files(directory):
    """Names of the files in ``directory`` tracked by git in the repository that holds this
    package (empty without git, or when the package is not in a repository)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return set()
    try:
        relative = Path(directory).resolve().relative_to(root)
    except ValueError:
        return set()
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "--", str(relative)],
                                capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {Path(line).name for line in listed.splitlines()
            if Path(line).parent == relative}


def default_output(path, option, prefix=None):
    """The default output ``path`` of ``option``, refused (ValueError) if it would overwrite a
    file tracked in the package's repository; ``prefix``: refuse any tracked file of
    ``path`` (a directory) whose name starts with it."""
    path = Path(path)
    directory, name = (path, prefix) if prefix is not None else (path.parent, path.name)
    clash = sorted(f for f in tracked_files(directory)
                   if (f.startswith(name) if prefix is not None else f == name))
    if clash:
        raise ValueError(f"the default output would overwrite {directory / clash[0]}, tracked "
                         f"in the package's repository; give {option} explicitly (the same "
                         "path to overwrite it)")
    return path


def _input_file(path):
    """``path`` checked as a data file (:func:`~meanfield_dropout.validation.check_data_file`:
    a readable regular file, a FIFO refused without being opened), for argparse."""
    try:
        return check_data_file(path)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def input_file(text):
    """``type=`` of an input file option: an existing, readable regular file; a Path."""
    path = Path(text)
    if not text.strip() or not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return _input_file(path)


def data_choice(text):
    """``type=`` of a ``--data`` option: a name of :data:`~meanfield_dropout.data.DATASETS` or
    a readable ``.npz`` file (returned as a string)."""
    if text in DATASETS:
        return text
    if not text.endswith(".npz"):
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(DATASETS)} or an .npz "
                                         f"file, got {text!r}")
    return str(input_file(text))


def input_path(text):
    """``type=`` of an input that may be a file or a directory: an existing, readable
    directory or regular file; a Path."""
    path = Path(text)
    if not text.strip() or not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {text!r}")
    if not path.is_dir():
        return _input_file(path)
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{path} is not readable")
    return path


def input_dir(text):
    """``type=`` of an input directory option: an existing directory; a Path."""
    path = Path(text)
    if not text.strip() or not path.exists():
        raise argparse.ArgumentTypeError(f"no such directory: {text!r}")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is not a directory")
    return path


def run_main(parser, argv=None):
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status.

    With ``argv=None`` (a command line: its process exits next) the objects alive then are
    frozen (``gc.freeze``), which the interpreter's last garbage collections skip."""
    try:
        return _run_command(parser, argv)
    finally:
        if argv is None:
            gc.freeze()


def _run_command(parser, argv):
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        warnings.simplefilter("default", FutureWarning)
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:       # usage errors (2), --help and --version (0)
            return exc.code
        missing = [flag for flag, dest in getattr(args, "_required", ())
                   if getattr(args, dest) is None]
        if missing:
            print(f"{parser.prog} {args.command}: error: the following arguments are "
                  f"required: {', '.join(missing)}", file=sys.stderr)
            return 2
        try:
            _make_directories(args)
            args.run(args)
        except DivergenceError as exc:
            return _fail("diverged", exc)
        except RuntimeError as exc:
            return _fail("failed", exc)
        except (ValueError, OSError) as exc:
            return _fail("error", exc)
        except MemoryError as exc:
            return _fail("error", f"out of memory{': ' + str(exc) if str(exc) else ''}; "
                                  "ask for a smaller run")
        except KeyboardInterrupt as exc:
            print(str(exc) or "interrupted", file=sys.stderr)
            return 130
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Print a warning as one ``warning: ...`` line on stderr."""
    print(f"warning: {str(message).replace(chr(10), ' ')}", file=sys.stderr)


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
    type: object = str

    @property
    def experiments(self):
        """The names of the experiments this option sets a field of (a tuple)."""
        return self.experiment if isinstance(self.experiment, tuple) else (self.experiment,)

    def applies_to(self, name):
        """Whether this option sets a field of the experiment ``name``."""
        return name in self.experiments


def add_reproduce_command(sub, experiments, options=()):
    """Register ``reproduce [--all] [--quick] [--replot] [NAME ...]`` for ``experiments``
    (name → :class:`~meanfield_dropout.experiments.Experiment`) with extra
    :class:`SettingOption` s."""
    p = sub.add_parser("reproduce", help="make the papers' figures (see figures/README.md)",
                       description="Run the papers' experiments and write their figures. "
                                   "Each experiment first prints its estimated time on stderr "
                                   "(a cost model's estimate, excluding compilation).")
    p.add_argument("names", nargs="*", metavar="NAME",
                   help=f"experiments to run, from {', '.join(experiments)}")
    p.add_argument("--all", action="store_true", help="run every experiment")
    p.add_argument("--quick", action="store_true",
                   help="small settings (about a minute); outputs get a _quick suffix")
    p.add_argument("--paper", action="store_true",
                   help="the papers' full-length settings where the default is shortened "
                        "(mnist: 40 000 steps, 10 repeats); "
                        "outputs get a _paper suffix")
    p.add_argument("--replot", action="store_true",
                   help="redraw from the cached results without recomputing")
    p.add_argument("--out-dir", default=None, type=output_dir,
                   help="output directory (default: figures/ in the current directory, unless "
                        "that would overwrite files tracked in the package's repository)")
    p.add_argument("--seed", type=IntRange(0), default=0, help="root seed (default 0)")
    p.add_argument("--no-progress", action="store_true",
                   help="hide tqdm bars (the estimates are still printed)")
    p.add_argument("--workers", type=IntRange(1), default=None,
                   help="processes running independent runs (default: one per core); "
                        "results do not depend on it")
    if any(experiment.run_options for experiment in experiments.values()):
        p.add_argument("--cells-dir", default=None, metavar="DIR",
                       help="keep finished cells in DIR and skip those found there (resume "
                            "after a kill); default with --paper: OUT_DIR/NAME_paper_cells")
        add_dask_options(p)
    for option in options:
        p.add_argument(option.flag, dest=option.field, metavar=option.metavar,
                       type=option.type, help=f"{', '.join(option.experiments)}: {option.help}")
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
    # every option given must set something of an experiment that runs
    owners = {o.flag: o.experiments for o in options if getattr(args, o.field) is not None}
    for field, option in (("cells_dir", "cells_dir"), ("dask", "dask"),
                          ("dask_timeout", "dask")):
        if getattr(args, field, None) is not None:
            owners[f"--{field.replace('_', '-')}"] = tuple(
                n for n, e in experiments.items() if option in e.run_options)
    for flag, owner in owners.items():
        if not set(owner) & set(names):
            raise ValueError(f"{flag} is an option of {', '.join(owner)}, not of "
                             f"{', '.join(names)}")
    total = 0.0
    for name in names:
        experiment = experiments[name]
        preset = experiment.settings.quick() if args.quick else \
            experiment.settings.paper() if args.paper else experiment.settings.full()
        settings = preset.with_seed(args.seed).replace(**{
            o.field: getattr(args, o.field) for o in options
            if o.applies_to(name) and getattr(args, o.field) is not None})
        if args.out_dir is None:
            stem = settings.cache_stem() if hasattr(settings, "cache_stem") else \
                experiment.cache
            default_output(Path("figures"), "--out-dir",
                           prefix=stem + ("_quick" if args.quick else "_paper" if args.paper
                                          else ""))
        run_options = _run_options(experiment, settings, args)
        if run_options.get("cells_dir") and not args.replot:
            print(f"{name}: finished cells go to {run_options['cells_dir']}", flush=True)
        done = reproduce(experiment, args.out_dir or Path("figures"), settings=settings,
                         quick=args.quick,
                         replot=args.replot, progress=not args.no_progress,
                         workers=args.workers, paper=args.paper, run_options=run_options)
        print(f"{name}: {run_line(settings)}")
        print("\n".join(done.summary))
        print(f"{name}: wrote {', '.join(str(p) for p in [*done.figures, done.cache])} in "
              f"{done.seconds:.1f} s")
        total += done.seconds
    print(f"reproduce: {len(names)} experiment(s) in {total:.1f} s")


#: The settings a run line names, when the settings have them.
RUN_FIELDS = ("data", "width", "widths", "seed", "steps", "time", "horizon")


def run_line(settings):
    """``data X, width n, seed s, steps K`` of an experiment's ``settings`` (the fields of
    :data:`RUN_FIELDS` it has): what a command ran on, printed with its results."""
    return ", ".join(f"{name} {getattr(settings, name)}" for name in RUN_FIELDS
                     if getattr(settings, name, None) is not None)


def _run_options(experiment, settings, args):
    """The ``cells_dir``/``dask`` options an experiment's run accepts (see ``--cells-dir``)."""
    options = {}
    if "cells_dir" in experiment.run_options:
        cells = args.cells_dir
        if cells is None and args.paper:
            stem = settings.cache_stem() if hasattr(settings, "cache_stem") else \
                experiment.cache
            cells = str(Path(args.out_dir or "figures") / f"{stem}_paper_cells")
        options["cells_dir"] = cells
    if "dask" in experiment.run_options:
        options.update(dask=args.dask, dask_timeout=args.dask_timeout)
    return options
