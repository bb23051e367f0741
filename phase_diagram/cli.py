"""Command line: ``python -m phase_diagram {classify,scan,plot,theory} ...``.

* ``classify --tau EXPR --keep EXPR [--width N]``: phase, limit constants and simplex point.
* ``scan CONFIG --out DIR [--workers K] [--dask ADDRESS|local]``: run or resume a scan.
* ``plot DIR -o FILE.png [--pdf]``: phase diagram with the scan overlaid, plus distance panels.
* ``theory -o FILE.png [--pdf]``: the theoretical phase diagram alone.

Bad input (malformed expressions, bad configurations, usage errors) prints one line and exits
with status 2; a failing cell or worker exits with status 1.
"""
import argparse
import math
import sys
import time
from pathlib import Path

import mpmath

from meanfield_dropout.cli import Parser, dispatch

from .expressions import format_width, quote
from .regimes import classify
from .scalings import parse_scaling


def _classify(args):
    scaling = parse_scaling(args.tau, args.keep)
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
    from .scan import load_config, run_scan
    config = load_config(args.config)
    start = time.perf_counter()
    counts = run_scan(config, args.out, workers=args.workers, dask=args.dask,
                      progress=not args.quiet)
    print(f"{counts['total']} cells: {counts['skipped']} already done, {counts['computed']} "
          f"computed in {time.perf_counter() - start:.1f} s -> {args.out}")


def _plot(args):
    from .plots import distance_panels_figure, phase_diagram_figure, save_figure
    from .scan import summarize
    config, results, missing = summarize(args.dir)
    if missing:
        print(f"warning: {missing} cells of the scan are not finished", file=sys.stderr)
    out = Path(args.output)
    paths = save_figure(phase_diagram_figure(results), out, pdf=args.pdf)
    paths += save_figure(distance_panels_figure(results, config.statistic),
                         out.with_name(out.stem + "_panels" + out.suffix), pdf=args.pdf)
    decided = [r for r in results if r.decision is not None]
    for r in decided:
        mark = "agree" if r.agrees else "DISAGREE"
        print(f"{r.spec.name:40s} theory={r.regime.phase:15s} detected={r.decision.phase:15s} "
              f"confidence={r.decision.confidence:.2f} {mark}")
    agree = sum(bool(r.agrees) for r in decided)
    print(f"agreement: {agree}/{len(decided)} scalings; wrote {', '.join(map(str, paths))}")


def _theory(args):
    from .plots import save_figure, theory_figure
    paths = save_figure(theory_figure(), args.output, pdf=args.pdf)
    print(f"wrote {', '.join(map(str, paths))}")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser():
    """The parser with the four sub-commands."""
    parser = Parser(prog="python -m phase_diagram", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("classify", help="phase of a scaling tau_n, q_n")
    p.add_argument("--tau", required=True, help='master learning rate, e.g. "0.5*n**-1.5"')
    p.add_argument("--keep", required=True, help='keep probability, e.g. "1/n"')
    p.add_argument("--width", type=_width,
                   help="also print the simplex point at this n (an integer, or e.g. 10**400)")
    p.set_defaults(run=_classify)

    p = sub.add_parser("scan", help="run or resume an empirical scan")
    p.add_argument("config", help="TOML scan configuration (see examples/phase_scan.toml)")
    p.add_argument("--out", required=True, help="output directory (resumable)")
    p.add_argument("--workers", type=_positive_int, help="worker processes (default: all cores)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help='run on dask.distributed: a scheduler address, or "local"')
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_scan)

    p = sub.add_parser("plot", help="phase diagram and distance panels of a scan")
    p.add_argument("dir", help="scan output directory")
    p.add_argument("-o", "--output", required=True, help="PNG path of the phase diagram")
    p.add_argument("--pdf", action="store_true", help="also write PDFs")
    p.set_defaults(run=_plot)

    p = sub.add_parser("theory", help="the theoretical phase diagram alone")
    p.add_argument("-o", "--output", required=True, help="PNG path")
    p.add_argument("--pdf", action="store_true", help="also write a PDF")
    p.set_defaults(run=_theory)
    return parser


def main(argv=None):
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    return dispatch(build_parser().parse_args(argv))
