"""Command line: ``phase-diagram COMMAND ...`` (or ``python -m phase_diagram``).

* ``classify --master-lr EXPR --keep-prob EXPR [--width N]``: phase, limit constants and
  simplex point.
* ``scan CONFIG --out-dir DIR [--workers K] [--dask ADDRESS|local] [--allow-import]``: run or
  resume a scan.
* ``plot DIR -o FILE.png [--pdf]``: phase diagram with the scan overlaid, plus distance panels.
* ``theory -o FILE.png [--pdf]``: the theoretical phase diagram alone.

A scaling's master learning rate τ_n and keep probability q_n are ``--master-lr`` and
``--keep-prob``, expressions in n (``classify``, ``converge``), the same flags as the numbers
of one network (``locate``); ``--tau``/``--keep`` are their old spellings (a warning).
* ``converge``: distance from dropout along a scaling (or, ``--all-phases``, along one scaling
  per phase) to the limit dynamics, as the width grows.
* ``reproduce``: every figure of both papers (``meanfield_dropout``'s experiments included).
* ``locate --width N --master-lr TAU --keep-prob Q``: which limit describes this network
  (:mod:`phase_diagram.finder.locate`).
* ``map [--grid K] [--widths ...] [--quick] -o FILE.png``: finite-width phase maps over the
  simplex (:mod:`phase_diagram.finder.phase_map`).
* ``grid [--grid K] [--max-width N] [--quick] [--estimate] --out DIR -o FILE.png``: every grid
  point's phase decided by measured convergence (:mod:`phase_diagram.scan.grid`).

Bad input (malformed expressions, bad configurations, usage errors) and failed runs print one
line and exit with status 2.
"""
import argparse
import math
import sys
import time
from pathlib import Path

import mpmath

from meanfield_dropout.runtime import results
from meanfield_dropout.runtime.tables import write_csv
from meanfield_dropout.cli.options import (IntRange, ListOf, MakeDirectories, OutputFile,
                                           SettingOption, add_dask_options,
                                           add_reproduce_command, build_parser, add_renamed,
                                           data_choice, input_dir, input_file, output_dir,
                                           program, run_main)
from meanfield_dropout.cli.main import REPRODUCE_OPTIONS
from meanfield_dropout.convergence import COUPLED_VARIANTS, DEFAULT_DATA, METRICS
from meanfield_dropout.data.registry import DATA_HELP
from meanfield_dropout.limits import LIMITS
import meanfield_dropout.plots

from ..convergence import PHASE_STUDIES, phase_study, scaling_study, verdict_lines
from ..experiments import EXPERIMENTS
from ..theory.expressions import format_width, quote
from .. import plots
from ..theory.phases import classify
from ..theory.scalings import parse_scaling
from ..scan import load_config, run_scan
from ..scan.cell_functions import DEFAULT_CELL_FUNCTION
from ..scan.sequential import run_sequential, summarize_sequential
from ..scan.summary import decision_lines, decision_table
from .finder import add_flat_slope, add_locate, add_map, dask_address
from .grid import add_grid


def _classify(args):
    scaling = parse_scaling(args.master_lr, args.keep_prob)
    print(classify(scaling).summary())
    if args.width is not None:
        point = scaling.simplex_point(args.width)
        tau, keep = scaling.precise_values(args.width)
        print(f"simplex point at n={format_width(args.width)}: ("
              + ", ".join(f"{u:.4f}" for u in point) + ")"
              f"  [tau_n={mpmath.nstr(tau, 6)}, q_n={mpmath.nstr(keep, 6)}]")


def _width(text):
    """A width for ``classify --width``: an integer >= 1, also written as a power like 10**400."""
    base, _, exponent = text.strip().partition("**")
    if not (base.isdigit() and (not exponent or exponent.isdigit())) or len(text) > 1000:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 (or a power such as "
                                         f"10**400), got {quote(text)}")
    if exponent:
        digits = int(exponent) * math.log10(max(int(base), 1)) if len(exponent) < 7 else 1e9
    else:
        digits = len(base)
    value = (int(base) ** int(exponent) if exponent else int(base)) if digits < 4000 else 0
    if not 1 <= value < 10**4000:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 and < 10**4000, got "
                                         f"{quote(text)}")
    return value


def _scan(args):
    config = load_config(args.config, allow_import=args.allow_import)
    if args.max_width is not None and not args.sequential:
        raise ValueError("--max-width needs --sequential")
    if args.sequential and (args.max_width is None or args.max_width <= max(config.widths)):
        raise ValueError(f"--sequential needs --max-width above the largest width "
                         f"{max(config.widths)}")
    start = time.perf_counter()
    with dask_address(args) as address:
        if args.sequential:
            counts = run_sequential(config, args.out_dir, max_width=args.max_width,
                                    workers=args.workers, dask=address,
                                    dask_timeout=args.dask_timeout,
                                    progress=not args.no_progress,
                                    allow_import=args.allow_import)
            print(f"sequential scan: stages up to n = {', '.join(map(str, counts['stages']))};"
                  f" {counts['computed']} cells computed in "
                  f"{time.perf_counter() - start:.1f} s -> {args.out_dir}")
        else:
            counts = run_scan(config, args.out_dir, workers=args.workers, dask=address,
                              dask_timeout=args.dask_timeout,
                              progress=not args.no_progress, allow_import=args.allow_import)
            extra = "".join([
                f", {counts['by_other']} by another scan" if counts["by_other"] else "",
                f" ({counts['invalid']} invalid records recomputed)" if counts["invalid"]
                else ""])
            print(f"{counts['total']} cells: {counts['skipped']} already done, "
                  f"{counts['computed']} computed{extra} in "
                  f"{time.perf_counter() - start:.1f} s -> {args.out_dir}")
    data = config.options.get("data", DEFAULT_DATA) if config.cell_function == \
        DEFAULT_CELL_FUNCTION else f"set by the cell function {config.cell_function}"
    print(f"scan: data {data}, widths {', '.join(map(str, config.widths))}, {config.repeats} "
          f"repeats, seed {config.seed}, horizon T = {config.horizon:g}")
    _, scalings, _ = summarize_sequential(args.out_dir, args.flat_slope)
    print("\n".join(decision_lines(scalings, verbose=True, flat_slope=args.flat_slope)))
    if args.csv:
        write_csv(decision_table(scalings), args.csv)
        print(f"decisions written to {args.csv}")


def _plot(args):
    config, scalings, missing = summarize_sequential(args.dir, args.flat_slope)
    total = len(config.scalings) * len(config.widths) * config.repeats
    if not any(r.decision is not None for r in scalings):
        raise ValueError(f"{args.dir}: no scaling has finished cells at two or more widths "
                         f"({missing} of {total} cells are not finished)")
    if missing:
        print(f"warning: {missing} of {total} cells of the scan are not finished",
              file=sys.stderr)
    out = Path(args.out)
    save_figure = meanfield_dropout.plots.save_figure
    paths = save_figure(plots.phase_diagram_figure(scalings, args.flat_slope), out,
                        pdf=args.pdf)
    paths += save_figure(plots.distance_panels_figure(scalings, config.statistic),
                         out.with_name(out.stem + "_panels" + out.suffix), pdf=args.pdf)
    print("\n".join(decision_lines(scalings, args.verbose, args.flat_slope)))
    print(f"wrote {', '.join(map(str, paths))}")


def _theory(args):
    paths = meanfield_dropout.plots.save_figure(plots.theory_figure(), args.out, pdf=args.pdf)
    print(f"wrote {', '.join(map(str, paths))}")


def _converge(args):
    common = dict(repeats=args.repeats, seed=args.seed, n_times=args.n_times, data=args.data,
                  progress=not args.no_progress)
    if args.coupled:
        common["coupled"] = tuple(args.coupled)
    if args.horizon is not None:
        common["horizon"] = args.horizon
    limits = [name for names in args.limit or () for name in names]
    if args.all_phases:
        if args.master_lr or args.keep_prob or limits:
            raise ValueError("--all-phases takes no --master-lr, --keep-prob or --limit")
        studies = [phase_study(phase, args.widths, **common) for phase in PHASE_STUDIES]
    else:
        if not (args.master_lr and args.keep_prob):
            raise ValueError("give --master-lr and --keep-prob (or --all-phases)")
        study, phase = scaling_study(args.master_lr, args.keep_prob, args.widths,
                                     limits=limits,
                                     force=args.force, alpha=args.alpha, beta=args.beta,
                                     tau=args.limit_tau, **common)
        forced = [name for name in limits if name != phase]
        if forced:
            print(f"warning: scaling is {phase!r}; comparing with {', '.join(forced)} as "
                  "requested (--force)", file=sys.stderr)
        studies = [study]
    meanfield_dropout.plots.save_figure(
        meanfield_dropout.plots.convergence_figure(studies, metric=args.metric), args.out)
    if args.data_out:
        results.save(studies, args.data_out)
    for study in studies:
        s = study.settings
        print(f"{study.label}: data {s['data']}, widths {', '.join(map(str, study.widths))}, "
              f"{s['repeats']} repeats, seed {s['seed']}, horizon T = {s['horizon']:g}")
        for key, fits in study.fits.items():
            for metric, fit in fits.items():
                lo, hi = fit["slope_ci"]
                print(f"  {key:24s} {metric:12s} slope {fit['slope']:+.3f}  "
                      f"95% CI [{lo:+.3f}, {hi:+.3f}]")
        print("\n".join(verdict_lines(study)))
    print(f"figure written to {args.out}")


def _add_converge(sub):
    p = sub.add_parser(
        "converge", help="distance from dropout to the limit dynamics as the width grows",
        description="Measured convergence of dropout to its limit dynamics. A --limit that "
                    "is not the scaling's predicted limit is refused unless --force is given.")
    _add_scaling_options(p, required=False)
    p.add_argument("--all-phases", action="store_true",
                   help="run the built-in scaling of each of the five phases")
    p.add_argument("--widths", type=ListOf(int), default="100,200,400,800,1600",
                   help="comma-separated widths (default %(default)s)")
    p.add_argument("--limit", type=ListOf(str, LIMITS), action="append", default=None,
                   help=f"limit to compare with (repeatable or comma-separated; one of "
                        f"{', '.join(LIMITS)}); default: the predicted limit")
    p.add_argument("--alpha", type=float, help="override alpha = lim tau_n/q_n")
    p.add_argument("--beta", type=float, help="override beta = lim (1-q_n)/(n q_n)")
    p.add_argument("--limit-tau", type=float, help="override tau = lim tau_n (jump-bernoulli)")
    p.add_argument("--force", action="store_true",
                   help="allow limits other than the scaling's predicted one")
    p.add_argument("--repeats", type=IntRange(1), default=3,
                   help="seeds per width (default 3)")
    p.add_argument("--horizon", type=float, default=None,
                   help="time horizon T (default 2; per phase with --all-phases)")
    p.add_argument("--n-times", type=IntRange(2), default=5,
                   help="grid times in [0, T] (default 5)")
    p.add_argument("--seed", type=IntRange(0), default=0, help="root seed")
    p.add_argument("--data", default=DEFAULT_DATA, type=data_choice, help=DATA_HELP)
    p.add_argument("--coupled", type=ListOf(str, COUPLED_VARIANTS), default=(),
                   help="comma-separated coupled systems (ram, gd, jump-bernoulli) for the "
                        "coupled RMS")
    p.add_argument("--metric", choices=METRICS, default="predictor",
                   help="distance plotted (default predictor)")
    p.add_argument("-o", "--out", required=True, type=OutputFile("figure"),
                   action=MakeDirectories, help="PNG file for the figure")
    p.add_argument("--data-out", type=OutputFile(".npz"), action=MakeDirectories,
                   help="optional .npz file for the studies (results codec)")
    p.add_argument("--no-progress", action="store_true", help="hide tqdm bars")
    p.set_defaults(run=_converge)


def _add_scaling_options(parser, required):
    """``--master-lr`` and ``--keep-prob`` as expressions in n (old spellings ``--tau``,
    ``--keep``)."""
    lr = parser.add_argument("--master-lr", required=required, metavar="EXPR",
                             help='master learning rate tau_n, an expression in n, e.g. '
                                  '"0.5*n**-1.5"')
    keep = parser.add_argument("--keep-prob", required=required, metavar="EXPR",
                               help='keep probability q_n, an expression in n, e.g. "1/n"')
    add_renamed(parser, "--tau", lr)
    add_renamed(parser, "--keep", keep)


def parser():
    """The parser of every sub-command."""
    top, sub = build_parser(program("phase_diagram", "phase-diagram"),
                            "Phase-diagram explorer for dropout in the mean-field regime.")
    p = sub.add_parser("classify", help="phase of a scaling tau_n, q_n")
    _add_scaling_options(p, required=True)
    p.add_argument("--width", type=_width,
                   help="also print the simplex point at this n (an integer, or e.g. 10**400)")
    p.set_defaults(run=_classify)

    p = sub.add_parser("scan", help="run or resume an empirical scan")
    p.add_argument("config", help="TOML scan configuration (see examples/phase_scan.toml)")
    out_dir = p.add_argument("--out-dir", required=True, type=output_dir,
                             help="output directory (resumable; created if missing)")
    add_renamed(p, "--out", out_dir)
    p.add_argument("--workers", type=IntRange(1), help="worker processes (default: all cores)")
    add_dask_options(p)
    p.add_argument("--jobqueue", metavar="TOML",
                   help="run on an HPC cluster through dask-jobqueue (see "
                        "examples/jobqueue_slurm.toml)")
    p.add_argument("--allow-import", action="store_true",
                   help='allow a cell_function given as "module:function" (imports it)')
    p.add_argument("--sequential", action="store_true",
                   help="give undetermined scalings larger widths (doubling) until decided")
    p.add_argument("--max-width", type=IntRange(1),
                   help="largest width of --sequential")
    add_renamed(p, "--quiet", p.add_argument("--no-progress", action="store_true",
                                             help="hide the progress bar"))
    p.add_argument("--csv", type=OutputFile(".csv"), action=MakeDirectories,
                   help="also write the decisions as a table (one row per scaling)")
    add_flat_slope(p)
    p.set_defaults(run=_scan)

    p = sub.add_parser("plot", help="phase diagram and distance panels of a scan")
    p.add_argument("dir", type=input_dir, help="scan output directory")
    add_renamed(p, "--output", p.add_argument(
        "-o", "--out", required=True, type=OutputFile("figure"), action=MakeDirectories,
        help="PNG path of the phase diagram"))
    p.add_argument("--pdf", action="store_true", help="also write PDFs")
    p.add_argument("--verbose", action="store_true", help="print the reason of each decision")
    add_flat_slope(p)
    p.set_defaults(run=_plot)

    p = sub.add_parser("theory", help="the theoretical phase diagram alone")
    add_renamed(p, "--output", p.add_argument(
        "-o", "--out", required=True, type=OutputFile("figure"), action=MakeDirectories,
        help="PNG path"))
    p.add_argument("--pdf", action="store_true", help="also write a PDF")
    p.set_defaults(run=_theory)

    _add_converge(sub)
    add_locate(sub)
    add_map(sub)
    add_grid(sub)
    add_reproduce_command(sub, EXPERIMENTS, REPRODUCE_OPTIONS + (
        SettingOption("--scan-dir", "phase_diagram", "scan_dir", "DIR",
                      "scan directory (default: scan_runs/phase[_quick])", output_dir),
        SettingOption("--scan-config", "phase_diagram", "config", "TOML",
                      "scan configuration (default: examples/phase_scan.toml)", input_file)))
    return top


def main(argv=None):
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    return run_main(parser(), argv)
