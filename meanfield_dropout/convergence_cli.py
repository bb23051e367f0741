"""``converge`` sub-command: measured convergence of dropout to its limit dynamics.

Examples
--------
One scaling, compared with its predicted limit (the phase comes from ``phase_diagram``)::

    python -m meanfield_dropout converge --tau "0.5*n**-0.5" --keep "0.7*n**-0.5" \\
        --widths 250,500,1000,2000 --limit jump-poisson --out figures/converge.png

The five-phase check (one panel per phase, predicted and wrong limits; widths 100–1600,
5 seeds; about 2 minutes on 2 shared cores)::

    python -m meanfield_dropout converge --all-phases --repeats 5 \
        --out figures/convergence_phases.png

A ``--limit`` that is not the scaling's predicted limit is refused (exit status 2) unless
``--force`` is given; then it runs with a warning on stderr, with the constants of the scaling
or those given by ``--alpha/--beta/--limit-tau``.
"""
import sys

import numpy as np

from .convergence import (METRICS, PHASE_STUDIES, convergence_study, flatten, phase_study,
                          plot_convergence, scaling_limit)
from .limits import LIMITS


def _int_list(text):
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--widths must be comma-separated integers, got {text!r}") from None


def add_commands(subparsers):
    """Register ``converge``."""
    p = subparsers.add_parser(
        "converge", help="distance from dropout to the limit dynamics as the width grows",
        description=__doc__.splitlines()[0])
    p.add_argument("--tau", help="master learning rate tau_n as an expression in n")
    p.add_argument("--keep", help="keep probability q_n as an expression in n")
    p.add_argument("--all-phases", action="store_true",
                   help="run the built-in scaling of each of the five phases")
    p.add_argument("--widths", default="100,200,400,800,1600",
                   help="comma-separated widths (default %(default)s)")
    p.add_argument("--limit", action="append", default=None,
                   help=f"limit to compare with (repeatable or comma-separated; one of "
                        f"{', '.join(LIMITS)}); default: the predicted limit")
    p.add_argument("--alpha", type=float, help="override alpha = lim tau_n/q_n")
    p.add_argument("--beta", type=float, help="override beta = lim (1-q_n)/(n q_n)")
    p.add_argument("--limit-tau", type=float, help="override tau = lim tau_n (jump-bernoulli)")
    p.add_argument("--force", action="store_true",
                   help="allow limits other than the scaling's predicted one")
    p.add_argument("--repeats", type=int, default=3, help="seeds per width (default 3)")
    p.add_argument("--horizon", type=float, default=None,
                   help="time horizon T (default 2; per phase with --all-phases)")
    p.add_argument("--n-times", type=int, default=5, help="grid times in [0, T] (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--coupled", default="",
                   help="comma-separated coupled systems (ram, gd, jump-bernoulli) for the "
                        "coupled RMS")
    p.add_argument("--metric", choices=METRICS, default="predictor",
                   help="distance plotted (default predictor)")
    p.add_argument("--out", required=True, help="PNG file for the figure")
    p.add_argument("--data-out", help="optional .npz file for the distance arrays")
    p.add_argument("--no-progress", action="store_true", help="hide tqdm bars")
    p.set_defaults(run=run_converge)


def _requested_limits(args):
    if not args.limit:
        return []
    names = [name.strip() for item in args.limit for name in item.split(",") if name.strip()]
    for name in names:
        if name not in LIMITS:
            raise ValueError(f"--limit must be one of {', '.join(LIMITS)}, got {name!r}")
    return names


def run_converge(args):
    """Handler of ``converge``."""
    widths = _int_list(args.widths)
    coupled = tuple(v.strip() for v in args.coupled.split(",") if v.strip())
    common = dict(repeats=args.repeats, seed=args.seed, n_times=args.n_times,
                  progress=not args.no_progress)
    if coupled:
        common["coupled"] = coupled
    if args.horizon is not None:
        common["horizon"] = args.horizon
    if args.all_phases:
        if args.tau or args.keep or args.limit:
            raise ValueError("--all-phases takes no --tau, --keep or --limit")
        studies = [phase_study(phase, widths, **common) for phase in PHASE_STUDIES]
    else:
        if not (args.tau and args.keep):
            raise ValueError("give --tau and --keep (or --all-phases)")
        studies = [_single_study(args, widths, common)]
    plot_convergence(studies, args.out, metric=args.metric)
    if args.data_out:
        arrays = {}
        for study in studies:
            arrays.update(flatten({k: v for k, v in study.items() if k != "limits"},
                                  prefix=f"{study['label']}/"))
        np.savez_compressed(args.data_out, **arrays)
    for study in studies:
        print(study["label"])
        for key, fits in study["fits"].items():
            for metric, fit in fits.items():
                lo, hi = fit["slope_ci"]
                print(f"  {key:24s} {metric:12s} slope {fit['slope']:+.3f}  "
                      f"95% CI [{lo:+.3f}, {hi:+.3f}]")
    print(f"figure written to {args.out}")


def _single_study(args, widths, common):
    scaling, phase, constants = scaling_limit(args.tau, args.keep)
    names = _requested_limits(args) or ([phase] if phase in LIMITS else [])
    if not names:
        raise ValueError(f"the scaling is {phase}: it has no limit dynamics; name one with "
                         "--limit and its constants with --alpha/--beta/--limit-tau and --force")
    wrong = [name for name in names if name != phase]
    if wrong and not args.force:
        raise ValueError(f"the scaling classifies as {phase!r}, not {', '.join(wrong)}; "
                         "pass --force to compare anyway")
    if wrong:
        print(f"warning: scaling is {phase!r}; comparing with {', '.join(wrong)} as requested "
              "(--force)", file=sys.stderr)
    constants = dict(constants or {})
    for key, value in (("alpha", args.alpha), ("beta", args.beta), ("tau", args.limit_tau)):
        if value is not None:
            constants[key] = value
    return convergence_study(
        scaling.tau, scaling.keep, widths, limits=names, alpha=constants.get("alpha"),
        beta=constants.get("beta"), limit_tau=constants.get("tau"),
        label=f"{phase}: τ={args.tau}, q={args.keep}", **common)
