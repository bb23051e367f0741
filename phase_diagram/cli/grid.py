"""The ``grid`` sub-command: the phase diagram decided point by point from simulations
(:mod:`phase_diagram.scan.grid`).

Bad input is a one-line usage error with exit status 2
(:func:`meanfield_dropout.cli.options.run_main`).
"""
import dataclasses
import resource
import time
from pathlib import Path

from meanfield_dropout.cli.options import ListOf, add_renamed, default_output, output_dir
import meanfield_dropout.plots
from meanfield_dropout.runtime.memory import format_duration

from .. import plots
from ..scan.grid import QUICK, GridConfig, decide_grid, estimate_grid_cost, summarize_grid
from .finder import (RUN_ONLY, FigureOrOldDirectory, _number, add_flat_slope, add_run_options,
                     dask_address, refuse_ignored)

__all__ = ["add_grid"]

_SETTINGS = ("grid", "widths", "max_width", "repeats", "max_repeats", "min_width", "horizon",
             "max_steps")


def _config(args):
    if args.quick:
        refuse_ignored(args, _SETTINGS, "--quick sets the grid's settings")
    chosen = {k: getattr(args, k) for k in _SETTINGS + ("seed",) if getattr(args, k) is not None}
    if "widths" in chosen:
        chosen["widths"] = tuple(chosen["widths"])
    base = QUICK if args.quick else GridConfig()
    return dataclasses.replace(base, **chosen)


def _print_estimate(config):
    cost = estimate_grid_cost(config)
    stages = ", ".join(f"n={w}: {format_duration(s)}" for w, s in cost["stages"].items())
    print(f"grid: {config.grid} divisions, {cost['points']} points within the budget of "
          f"{config.max_steps} steps ({cost['beyond']} beyond), widths "
          f"{', '.join(map(str, config.widths))} doubling up to {config.max_width}, "
          f"{config.repeats} repeats (up to {config.max_repeats}), smallest width "
          f"{config.min_width}")
    print(f"cost model (CPU time): first stage {format_duration(cost['first_stage'])}; per "
          f"stage (every point still undetermined, {config.repeats} repeats) {stages}; at "
          f"most {format_duration(cost['upper_bound'])} (every point at every width with "
          f"{config.max_repeats} repeats)")


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _grid(args):
    out_dir = Path(args.out_dir or ("grid_runs/quick" if args.quick else "grid_runs/default"))
    if args.replot:
        refuse_ignored(args, _SETTINGS + RUN_ONLY + ("estimate",),
                       "--replot redraws the grid in --out-dir")
        summary = summarize_grid(out_dir, args.flat_slope)
    else:
        config = _config(args)
        _print_estimate(config)
        if args.estimate:
            return
        start, cpu = time.perf_counter(), _children_cpu()
        with dask_address(args) as address:
            summary = decide_grid(config, out_dir, workers=args.workers, dask=address,
                                  dask_timeout=args.dask_timeout,
                                  progress=not args.no_progress,
                                  flat_slope=args.flat_slope)
        print(f"ran in {time.perf_counter() - start:.0f} s, {_children_cpu() - cpu:.0f} "
              f"CPU-s in local worker processes -> {out_dir}")
    print("\n".join(summary.lines()))
    output = args.out or default_output(
        Path("grid_decision_quick.png" if args.quick else "grid_decision.png"), "--out")
    paths = meanfield_dropout.plots.save_figure(plots.grid_decision_figure(summary), output)
    print(f"figure written to {', '.join(map(str, paths))}")


def add_grid(sub):
    """Register ``grid``."""
    p = sub.add_parser(
        "grid", help="decide the phase of every grid point from simulations",
        description="Run dropout and every candidate limit along the power law through each "
                    "point of a simplex grid (and the theory's lines and points); decide each "
                    "point's phase by the scan's rule, growing the width only where it is "
                    "still undetermined. Resumable: rerun with the same --out.")
    p.add_argument("--grid", type=_number(int, 2, 40, name="--grid"),
                   help=f"grid divisions K (default {GridConfig.grid})")
    p.add_argument("--widths", type=ListOf(int),
                   help="comma-separated widths of the first stage (default 256,512)")
    p.add_argument("--max-width", type=_number(int, 16, 1 << 20, name="--max-width"),
                   help=f"largest width (default {GridConfig.max_width})")
    p.add_argument("--repeats", type=_number(int, 2, 100, name="--repeats"),
                   help=f"seeds per point and width (default {GridConfig.repeats})")
    p.add_argument("--max-repeats", type=_number(int, 2, 100, name="--max-repeats"),
                   help=f"most seeds per point and width: a point whose intervals alone block "
                        f"its decision doubles its repeats up to it (default "
                        f"{GridConfig.max_repeats})")
    p.add_argument("--min-width", type=_number(int, 16, 1 << 20, name="--min-width"),
                   help=f"smallest width: a point whose dropout explodes at every width halves "
                        f"its smallest width down to it (default {GridConfig.min_width})")
    p.add_argument("--horizon", type=_number(float, 0, 1e4, low_open=True, name="--horizon"),
                   help=f"horizon T (default {GridConfig.horizon:g})")
    p.add_argument("--max-steps", type=_number(int, 1, 1 << 40, name="--max-steps"),
                   help=f"step budget of one dropout run (default {GridConfig.max_steps})")
    p.add_argument("--quick", action="store_true",
                   help=f"grid {QUICK.grid}, widths {QUICK.widths[0]}..{QUICK.max_width}, "
                        f"budget {QUICK.max_steps} steps: the easy points in a few minutes")
    p.add_argument("--seed", type=_number(int, 0, 2 ** 63, name="--seed"),
                   help=f"root seed (default {GridConfig.seed})")
    add_flat_slope(p)
    p.add_argument("--estimate", action="store_true",
                   help="print the cost model's CPU-hours and stop")
    p.add_argument("--out-dir", metavar="DIR", type=output_dir,
                   help="run directory (resumable; default grid_runs/default or "
                        "grid_runs/quick)")
    add_renamed(p, "--output", p.add_argument(
        "-o", "--out", metavar="PNG", action=FigureOrOldDirectory,
        help="figure (default grid_decision[_quick].png in the current directory)"))
    add_run_options(p)
    p.set_defaults(run=_grid)
