"""Sub-commands ``sme``, ``sme-order`` and ``alignment`` of ``python -m meanfield_dropout``."""
import time
from pathlib import Path

import numpy as np

from ..data.images import (digits_problem_data, flatten, load_mnist, one_hot)
from .alignment import alignment_along_training, plot_alignment
from .equations import simulate_dropout, simulate_modified_gd, simulate_sme
from .model import OUTPUT_SCALES, init_params, make_problem, predict
from .weak_order import plot_weak_order, weak_error_study


def _float_list(text, name):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{name} must be a comma-separated list of numbers, got {text!r}")
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def _add_data_args(parser, n_train):
    parser.add_argument("--data", default="digits", choices=("digits", "mnist"),
                        help="scikit-learn 8x8 digits, or a local MNIST file (pooled to 7x7)")
    parser.add_argument("--mnist-images", help="MNIST IDX image file (.gz ok) or .npz archive")
    parser.add_argument("--mnist-labels", help="MNIST IDX label file (not needed for .npz)")
    parser.add_argument("--pool", type=int, default=2,
                        help="digits average-pooling factor (2: 4x4 images)")
    parser.add_argument("--n-train", type=int, default=n_train, help="training samples n")
    parser.add_argument("--n-test", type=int, default=300, help="test samples")


def _load(args):
    """Train/test inputs (with bias), one-hot targets and test labels."""
    if args.n_train < 1 or args.n_test < 1:
        raise ValueError(f"--n-train and --n-test must be >= 1, got {args.n_train}, "
                         f"{args.n_test}")
    if args.data == "digits":
        return digits_problem_data(args.n_train, args.n_test, seed=args.seed, pool=args.pool)
    if not args.mnist_images:
        raise ValueError("--data mnist needs --mnist-images (and --mnist-labels for IDX)")
    images, labels = load_mnist(args.mnist_images, args.mnist_labels, pool=4)
    if args.n_train + args.n_test > labels.size:
        raise ValueError(f"--n-train + --n-test must be <= {labels.size}")
    x, y = flatten(images), one_hot(labels, 10)
    tr, te = slice(0, args.n_train), slice(args.n_train, args.n_train + args.n_test)
    return x[tr], y[tr], x[te], y[te], labels[te]


def _save(path, **arrays):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path.with_suffix(".npz"), **arrays)
    return path


def add_commands(sub):
    """Register ``sme``, ``sme-order`` and ``alignment``."""
    sme = sub.add_parser("sme", help="dropout vs SME vs GD on L_S loss curves -> PNG")
    _add_data_args(sme, n_train=500)
    sme.add_argument("--width", type=int, default=50, help="hidden units m")
    sme.add_argument("--keep-prob", type=float, default=0.3, help="keep probability p")
    sme.add_argument("--lr", type=float, default=0.2, help="learning rate eta")
    sme.add_argument("--steps", type=int, default=2000, help="dropout steps N")
    sme.add_argument("--order", type=int, default=1, choices=(1, 2), help="SME order")
    sme.add_argument("--sde-step", type=float, default=None, help="EM step h (default eta)")
    sme.add_argument("--trials", type=int, default=6, help="runs per noisy method")
    sme.add_argument("--record-every", type=int, default=20)
    sme.add_argument("--output-scale", default="1", choices=OUTPUT_SCALES, help="kappa")
    sme.add_argument("--activation", default="tanh")
    sme.add_argument("--seed", type=int, default=0)
    sme.add_argument("--out", default="figures/sme_loss.png")
    sme.set_defaults(run=_run_sme)

    order = sub.add_parser("sme-order", help="weak-error order of the SMEs -> PNG")
    order.add_argument("--lrs", default="0.4,0.2,0.1,0.05", help="comma list of eta")
    order.add_argument("--keep-probs", default="0.7,0.9", help="comma list of p")
    order.add_argument("--time", type=float, default=0.8, help="comparison time T")
    order.add_argument("--sde-step", type=float, default=None, help="EM step h")
    order.add_argument("--runs", type=int, default=2000, help="runs per process and setting")
    order.add_argument("--width", type=int, default=4)
    order.add_argument("--samples", type=int, default=6, help="synthetic samples n")
    order.add_argument("--dim", type=int, default=2, help="synthetic input dimension d")
    order.add_argument("--no-extrapolate", dest="extrapolate", action="store_false",
                       help="skip the Richardson extrapolation of the EM step (3x cheaper, "
                            "O(h) bias)")
    order.add_argument("--seed", type=int, default=0)
    order.add_argument("--out", default="figures/sme_order.png")
    order.set_defaults(run=_run_order)

    align = sub.add_parser("alignment", help="Hessian-variance alignment over training -> PNG")
    _add_data_args(align, n_train=300)
    align.add_argument("--width", type=int, default=20, help="hidden units m")
    align.add_argument("--keep-prob", type=float, default=0.5, help="keep probability p")
    align.add_argument("--lr", type=float, default=0.2, help="learning rate eta")
    align.add_argument("--steps", type=int, default=2000)
    align.add_argument("--eval-every", type=int, default=200)
    align.add_argument("--masks", type=int, default=200, help="masks for the empirical Sigma")
    align.add_argument("--baseline-samples", type=int, default=100)
    align.add_argument("--output-scale", default="1", choices=OUTPUT_SCALES, help="kappa")
    align.add_argument("--activation", default="tanh")
    align.add_argument("--seed", type=int, default=0)
    align.add_argument("--out", default="figures/sme_alignment.png")
    align.set_defaults(run=_run_alignment)


def _band(ax, times, values, color, label):
    ax.plot(times, values.mean(axis=0), color=color, label=label)
    if values.shape[0] > 1:
        ax.fill_between(times, values.min(axis=0), values.max(axis=0), color=color, alpha=0.2)


def _run_sme(args):
    start = time.perf_counter()
    x, y, x_test, y_test, labels_test = _load(args)
    problem = make_problem(x, y, args.width, args.keep_prob, args.output_scale, args.activation)
    test = problem.with_data(x_test, y_test)
    theta0 = init_params(problem, seed=args.seed)
    common = dict(record_every=args.record_every, record_params=True, progress=True)
    runs = {
        "dropout": simulate_dropout(problem, theta0, args.lr, args.steps, n_runs=args.trials,
                                    seed=args.seed, **common),
        f"order-{args.order} SME": simulate_sme(problem, theta0, args.lr, args.steps,
                                                sde_step=args.sde_step, order=args.order,
                                                n_runs=args.trials, seed=args.seed, **common),
        "GD on L_S": simulate_modified_gd(problem, theta0, args.lr, args.steps, **common),
    }
    curves = {}
    for name, run in runs.items():
        outputs = [[predict(test, th, x_test) for th in trial] for trial in run.params]
        test_loss = np.array([[0.5 * np.mean(np.sum((f - y_test) ** 2, axis=1)) for f in t]
                              for t in outputs])
        accuracy = np.array([[np.mean(f.argmax(axis=1) == labels_test) for f in t]
                             for t in outputs])
        curves[name] = (run.times, run.loss, test_loss, accuracy)

    from matplotlib.figure import Figure
    fig = Figure(figsize=(13, 4), layout="constrained")
    axes = fig.subplots(1, 3)
    for (name, (times, train, test_loss, acc)), color in zip(curves.items(), ("C0", "C1", "C2")):
        label = name.replace("L_S", "$L_S$")
        _band(axes[0], times, train, color, label)
        _band(axes[1], times, test_loss, color, label)
        _band(axes[2], times, acc, color, label)
    for ax, label in zip(axes, ("training loss $R_S$", "test loss", "test accuracy")):
        ax.set_xlabel("time t = N η")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    fig.suptitle(f"{args.data}: width m={args.width}, keep p={args.keep_prob}, η={args.lr}, "
                 f"{args.trials} trials (mean, min–max band)")
    out = _save(args.out, **{f"{k.split()[0].lower()}_{q}": v for k, c in curves.items()
                             for q, v in zip(("times", "train", "test", "acc"), c)})
    fig.savefig(out, dpi=120)
    for name, (_, train, test_loss, acc) in curves.items():
        print(f"{name:>14}: final train loss {train[:, -1].mean():.4g}, test loss "
              f"{test_loss[:, -1].mean():.4g}, test accuracy {acc[:, -1].mean():.3f}")
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")


def _run_order(args):
    start = time.perf_counter()
    lrs = _float_list(args.lrs, "--lrs")
    keep_probs = _float_list(args.keep_probs, "--keep-probs")
    if args.samples < 1 or args.dim < 1:
        raise ValueError(f"--samples and --dim must be >= 1, got {args.samples}, {args.dim}")
    rng = np.random.default_rng(np.random.SeedSequence(args.seed).spawn(1)[0])
    x = rng.standard_normal((args.samples, args.dim))
    y = rng.standard_normal(args.samples)
    problem = make_problem(x, y, args.width, keep_probs[0])
    theta0 = init_params(problem, seed=args.seed, input_weight_std=1.0, output_weight_std=1.0)
    result = weak_error_study(problem, theta0, lrs, keep_probs, time=args.time,
                              sde_step=args.sde_step, n_runs=args.runs, seed=args.seed,
                              extrapolate=args.extrapolate)
    out = _save(args.out, lrs=result.lrs, keep_probs=result.keep_probs, errors=result.errors,
                floors=result.floors, slopes=result.slopes, slope_errors=result.slope_errors)
    plot_weak_order(result, out)
    for o in range(2):
        for a, p in enumerate(result.keep_probs):
            print(f"order {o + 1}, p = {p:g}: slope {result.slopes[o, a]:.2f} ± "
                  f"{result.slope_errors[o, a]:.2f}; errors {np.round(result.errors[o, a], 5)}")
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")


def _run_alignment(args):
    start = time.perf_counter()
    x, y, *_ = _load(args)
    problem = make_problem(x, y, args.width, args.keep_prob, args.output_scale, args.activation)
    theta0 = init_params(problem, seed=args.seed)
    result = alignment_along_training(problem, theta0, args.lr, args.steps, args.eval_every,
                                      n_masks=args.masks, n_baseline=args.baseline_samples,
                                      seed=args.seed)
    out = _save(args.out, times=result.times, alpha_exact=result.alpha_exact,
                alpha_empirical=result.alpha_empirical, loss=result.loss,
                baseline=result.baseline)
    plot_alignment(result, out, title=f"{args.data}, m={args.width}, p={args.keep_prob}, "
                                      f"η={args.lr}, D={problem.n_params}")
    print(f"alpha exact: min {result.alpha_exact.min():.3f}, final "
          f"{result.alpha_exact[-1]:.3f}; empirical: min {result.alpha_empirical.min():.3f}; "
          f"random baseline {result.baseline.mean():.2e}")
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
