"""The ``locate`` and ``map`` sub-commands and the shared ``--dask``/``--jobqueue`` handling.

Bad input (out-of-range numbers, unknown data, conflicting options) is a one-line usage error
with exit status 2 (:func:`meanfield_dropout.cli.options.run_main`).
"""
import argparse
import contextlib
import dataclasses
import math
import warnings
from pathlib import Path

from meanfield_dropout.cli.options import (ListOf, MakeDirectories, OutputFile,
                                           add_dask_options, add_renamed, data_choice,
                                           default_output, output_dir)
from meanfield_dropout.convergence import DEFAULT_DATA
from meanfield_dropout.data.registry import DATA_HELP
from meanfield_dropout.validation import check_output_dir, check_output_file
import meanfield_dropout.plots
from meanfield_dropout.runtime.tables import concat, write_csv

from ..cluster import load_jobqueue_config
from ..finder.locate import MAX_WIDTH, LocateSettings, horizon_report, locate_horizons
from ..finder.phase_map import QUICK, MapConfig, estimated_seconds, run_map, summarize_map
from .. import plots

__all__ = ["FigureOrOldDirectory", "add_locate", "add_map", "add_run_options", "dask_address"]


def _number(kind, low, high, *, low_open=False, name="value"):
    """An argparse ``type`` accepting ``kind`` values in [low, high] (or (low, high])."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value > high or value < low or (
                low_open and value == low):
            bracket = "(" if low_open else "["
            raise argparse.ArgumentTypeError(
                f"{name} must be {'an integer' if kind is int else 'a number'} in "
                f"{bracket}{low:g}, {high:g}], got {text!r}")
        return value
    return parse


def _numbers(kind, low, high, *, low_open=False, name="value"):
    """An argparse ``type`` of a comma list of :func:`_number` values."""
    one = _number(kind, low, high, low_open=low_open, name=name)

    def parse(text):
        return [one(part.strip()) for part in text.split(",")]
    return parse


@contextlib.contextmanager
def dask_address(args):
    """The scheduler address of ``--dask`` or of a ``--jobqueue`` cluster (None: local pool)."""
    if args.dask and args.jobqueue:
        raise ValueError("give --dask or --jobqueue, not both")
    if not args.jobqueue:
        yield args.dask
        return
    cluster = load_jobqueue_config(args.jobqueue).start()
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def _locate(args):
    options = dict(data=args.data, repeats=args.repeats, seed=args.seed, ladder=args.ladder,
                   workers=args.workers, settings=LocateSettings(budget=args.budget),
                   progress=not args.no_progress)
    located = locate_horizons(args.width, args.master_lr, args.keep_prob, steps=args.steps,
                              horizons=None if args.steps else args.horizon or [2.0],
                              **options)
    for result in located:
        print(result.summary())
    if len(located) > 1:
        print("\n".join(horizon_report(located)))
    if args.csv:
        write_csv(concat([r.to_frame() for r in located]), args.csv)
        print(f"table written to {args.csv}")
    if args.out:
        paths = meanfield_dropout.plots.save_figure(plots.locate_figure(located[-1]),
                                                    args.out)
        print(f"figure written to {', '.join(map(str, paths))}"
              + (f" (the horizon T = {located[-1].horizon:g})" if len(located) > 1 else ""))


def add_locate(sub):
    """Register ``locate``."""
    p = sub.add_parser("locate", help="which limit dynamics describes a concrete network",
                       description="Simulate dropout at one width and every limit with the "
                                   "plug-in constants of that width; report the distances, "
                                   "the nearest limit and how clearly it wins.")
    p.add_argument("--width", required=True,
                   type=_number(int, 16, MAX_WIDTH, name="--width"), help="width n")
    p.add_argument("--master-lr", required=True,
                   type=_number(float, 0, 1, low_open=True, name="--master-lr"),
                   help="master learning rate tau in (0, 1]")
    p.add_argument("--keep-prob", required=True,
                   type=_number(float, 0, 1, low_open=True, name="--keep-prob"),
                   help="keep probability q in (0, 1]")
    p.add_argument("--data", default=DEFAULT_DATA, type=data_choice, help=DATA_HELP)
    horizon = p.add_mutually_exclusive_group()
    horizon.add_argument("--steps", type=_numbers(int, 1, 10 ** 7, name="--steps"),
                         help="dropout steps K (horizon T = K tau); a comma list compares "
                              "horizons")
    horizon.add_argument("--horizon", type=_numbers(float, 0, 1e6, low_open=True,
                                                    name="--horizon"),
                         help="horizon T in time units t = k tau (default 2); a comma list "
                              "compares horizons")
    p.add_argument("--repeats", type=_number(int, 2, 100, name="--repeats"), default=3,
                   help="seeds (default 3)")
    p.add_argument("--seed", type=_number(int, 0, 2 ** 63, name="--seed"), default=0,
                   help="root seed")
    p.add_argument("--ladder", action="store_true",
                   help="also measure at n/8, n/4, n/2 along the power law through the point")
    p.add_argument("--workers", type=_number(int, 1, 1024, name="--workers"),
                   help="worker processes (default: one per core)")
    p.add_argument("--budget", type=_number(float, 0, 1e7, low_open=True, name="--budget"),
                   default=120.0, help="estimated seconds allowed per limit and repeat "
                                       "(default 120)")
    add_renamed(p, "--figure", p.add_argument(
        "-o", "--out", type=OutputFile("figure"), action=MakeDirectories,
        help="write the figure to this file (of the last horizon)"))
    p.add_argument("--csv", type=OutputFile(".csv"), action=MakeDirectories,
                   help="write the distances as a table (LocateResult.to_frame)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(run=_locate)


#: The options of ``map`` that set its configuration.
_MAP_SETTINGS = ("grid", "widths", "repeats", "budget", "horizon")
#: The options of a command with :func:`add_run_options` that only a run (not ``--replot``)
#: reads.
RUN_ONLY = ("seed", "workers", "dask", "jobqueue")


def refuse_ignored(args, names, why):
    """``ValueError`` naming the options of ``names`` (their ``dest``) given on the command
    line, which ``why`` (a mode such as ``--replot``) would ignore; given means not None and
    not False."""
    given = [name for name in names if getattr(args, name, None) not in (None, False)]
    if given:
        raise ValueError(f"{why}; it takes no "
                         f"{', '.join('--' + k.replace('_', '-') for k in given)}")


def _map(args):
    if args.replot:
        refuse_ignored(args, _MAP_SETTINGS + ("data",) + RUN_ONLY,
                       "--replot redraws the map in --out-dir")
    if args.quick:
        refuse_ignored(args, _MAP_SETTINGS, "--quick sets the map's settings")
    chosen = {k: getattr(args, k) for k in _MAP_SETTINGS + ("data", "seed")
              if getattr(args, k) is not None}
    if "widths" in chosen:
        chosen["widths"] = tuple(chosen["widths"])
    config = dataclasses.replace(QUICK if args.quick else MapConfig(), **chosen)
    suffix = "_quick" if args.quick else ""
    out_dir = args.out_dir or check_output_dir(f"map_runs/phase_map{suffix}", "--out-dir")
    output = args.out or check_output_file(
        default_output(Path(f"phase_map{suffix}.png"), "--out"), "--out")
    if not args.replot:
        print(f"map: data {config.data}, {config.grid} divisions, widths "
              f"{', '.join(map(str, config.widths))}, seed {config.seed}, horizon T = "
              f"{config.horizon:g}, {config.repeats} repeats, budget {config.budget:g} s per "
              f"limit and cell; "
              f"estimated {estimated_seconds(config) / 60:.1f} core-minutes")
        with dask_address(args) as address:
            counts = run_map(config, out_dir, workers=args.workers, dask=address,
                             dask_timeout=args.dask_timeout,
                             progress=not args.no_progress)
        print(f"{counts['total']} cells: {counts['skipped']} already done, "
              f"{counts['computed']} computed in {counts['seconds']:.1f} s; "
              f"{counts['beyond']} point-width pairs beyond budget -> {out_dir}")
    summary = summarize_map(out_dir)
    if args.quick:
        print("quick map: a coarse grid at small widths for a first look; its agreement "
              "figures are not those of the full map")
    if summary.missing:
        print(f"warning: {summary.missing} cells are not finished")
    for width in summary.config.widths:
        a = summary.agreement[width]
        print(f"n={width:6d}: {a['points']} points; agree with theory: simplest within 25% "
              f"{a['describes']:.0%}, nearest {a['nearest']:.0%}; cells "
              f"{summary.cell_seconds[width]:.0f} s")
    paths = meanfield_dropout.plots.save_figure(plots.phase_map_figure(summary), output)
    print(f"figure written to {', '.join(map(str, paths))}")
    if args.csv:
        write_csv(summary.to_frame(), args.csv)
        print(f"table written to {args.csv}")


class FigureOrOldDirectory(MakeDirectories):
    """``-o/--out`` of a command with an ``--out-dir``: the figure file. ``--out`` named that
    directory before, so a value without a suffix is taken as the old spelling of
    ``--out-dir`` (a FutureWarning)."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            if not Path(values).suffix:
                warnings.warn(f"{option_string} DIR is now --out-dir DIR ({option_string} is "
                              "the figure file); the old spelling will be removed",
                              FutureWarning, stacklevel=2)
                namespace.out_dir = output_dir(values)
                return
            path = OutputFile("figure")(values)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        super().__call__(parser, namespace, path, option_string)


def add_map(sub):
    """Register ``map``."""
    p = sub.add_parser("map", help="finite-width phase maps over the whole simplex",
                       description="Colour a grid of the simplex (power laws through each "
                                   "point) by the limit that describes dropout, per width.")
    p.add_argument("--grid", type=_number(int, 2, 40, name="--grid"),
                   help=f"grid divisions K (default {MapConfig.grid})")
    p.add_argument("--widths", type=ListOf(int),
                   help="comma-separated widths (default 256,1024,4096)")
    p.add_argument("--repeats", type=_number(int, 2, 50, name="--repeats"),
                   help=f"seeds per point and width (default {MapConfig.repeats})")
    p.add_argument("--horizon", type=_number(float, 0, 1e4, low_open=True, name="--horizon"),
                   help=f"horizon T (default {MapConfig.horizon:g})")
    p.add_argument("--budget", type=_number(float, 0, 1e6, low_open=True, name="--budget"),
                   help=f"estimated seconds per limit and cell (default {MapConfig.budget:g})")
    p.add_argument("--data", type=data_choice,
                   help=f"{DATA_HELP} (default {DEFAULT_DATA})")
    p.add_argument("--quick", action="store_true", help="a small map in about a minute")
    p.add_argument("--seed", type=_number(int, 0, 2 ** 63, name="--seed"),
                   help=f"root seed (default {MapConfig.seed})")
    p.add_argument("--out-dir", metavar="DIR", type=output_dir,
                   help="cell directory (resumable; default map_runs/phase_map[_quick])")
    add_renamed(p, "--output", p.add_argument(
        "-o", "--out", metavar="PNG", action=FigureOrOldDirectory,
        help="figure (default phase_map[_quick].png in the current directory)"))
    p.add_argument("--csv", type=OutputFile(".csv"), action=MakeDirectories,
                   help="also write the map as a table (one row per point and width)")
    add_run_options(p)
    p.set_defaults(run=_map)


def add_flat_slope(p):
    """``--flat-slope S``: the decision rule's not-falling option
    (:func:`phase_diagram.finder.decision.decide_asymptotic`), applied to the records as they
    are read."""
    p.add_argument("--flat-slope", metavar="S",
                   type=_number(float, 0, 10, name="--flat-slope"),
                   help="also decide 'degenerate' when every limit diverged, moves away or is "
                        "clearly not falling (slope interval above -S); applied to the records "
                        "as they are read, so it re-decides a finished run (default: off; the "
                        "symmetric rule is 0.15)")


def add_run_options(p):
    """``--workers``, ``--dask``, ``--jobqueue``, ``--replot`` and ``--no-progress`` of a
    command whose cells run on a pool or a cluster into a resumable ``--out-dir``."""
    p.add_argument("--workers", type=_number(int, 1, 1024, name="--workers"),
                   help="worker processes (default: one per core)")
    add_dask_options(p)
    p.add_argument("--jobqueue", metavar="TOML", help="HPC cluster through dask-jobqueue")
    p.add_argument("--replot", action="store_true", help="redraw from the cells in --out-dir")
    add_renamed(p, "--quiet", p.add_argument("--no-progress", action="store_true",
                                             help="hide the progress bar"))

