"""Command line: ``meanfield-dropout COMMAND ...`` (or ``python -m meanfield_dropout``).

* ``simulate`` — train coupled variants on the teacher–student task, write a result file;
* ``demo`` — a small teacher–student comparison → ``demo.png``;
* ``sme``, ``sme-order``, ``alignment`` — the SME paper's experiments, one figure each;
* ``reproduce`` — the papers' figures of this package (``python -m phase_diagram reproduce``
  also makes the phase-diagram and convergence figures);
* ``warmup`` — compile the Numba kernels ahead of the first run; ``cache info|clear`` — where
  the compiled kernels are cached, their size, and clearing them.

Each handler parses, calls the library, prints; bad input and failed runs give one line on
stderr and exit status 2 (:func:`meanfield_dropout.cli.options.run_main`).
"""
import dataclasses
import time
from pathlib import Path

import numpy as np

from .. import plots, warmup
from ..runtime import results
from .options import (IntRange, ListOf, MakeDirectories, OutputFile, SettingOption, add_renamed,
                      add_reproduce_command, build_parser, data_choice, default_output,
                      input_file, input_path, program, run_line, run_main)
from ..data import data_label, load_dataset, teacher_student
from ..data.registry import DATA_HELP
from ..engine import VARIANTS, simulate
from ..experiments import EXPERIMENTS, FigureSet
from ..experiments import sme as sme_experiments
from ..sme.model import OUTPUT_SCALES

DEMO_VARIANTS = ("gd", "dropout", "ram", "pn_ram")
DEMO_MASTER_LR, DEMO_KEEP_PROB = 0.5, 0.7
#: Options of ``reproduce`` that set one experiment's settings.
REPRODUCE_OPTIONS = (
    SettingOption("--mnist", ("images_variants", "mnist"), "mnist", "PATH",
                  "a local full MNIST (images_variants: .npz with x_train/y_train, "
                  "x_test/y_test; mnist: also a directory of IDX files) instead of the "
                  "bundled data", input_path),
    SettingOption("--task", "mnist", "task", "TASK",
                  "binary47 (4 vs 7, logistic) or full (10 classes, softmax)"),
    SettingOption("--keep-probs", "mnist", "keep_probs", "Q,...",
                  "keep probabilities q (default 0.6,0.7,0.8,0.9)", ListOf(float)),
    SettingOption("--width", "mnist", "width", "N", "hidden units n (default 4000)",
                  IntRange(1)),
    SettingOption("--steps", "mnist", "steps", "K", "SGD steps", IntRange(1)),
    SettingOption("--repeats", "mnist", "repeats", "R", "repeats (seeds)", IntRange(1)),
    SettingOption("--batch-size", "mnist", "batch_size", "B", "SGD batch (default 64)",
                  IntRange(1)),
    SettingOption("--sharpness-every", "mnist", "sharpness_every", "K",
                  "sharpness and batch sharpness every K steps (a multiple of 100; 0: off)",
                  IntRange(0)),
    SettingOption("--dtype", ("teacher_student", "mnist"), "dtype", "DTYPE",
                  "float64 or float32 (defaults: float64 for teacher_student, float32 for "
                  "mnist)"),
)


def _simulate_data(args):
    """The data of ``simulate``/``demo``: ``--data`` (``--dim``/``--data-points`` reshape the
    teacher-student problem)."""
    shape = {k: getattr(args, k) for k in ("dim", "data_points")
             if getattr(args, k, None) is not None}
    if shape and args.data != "teacher-student":
        raise ValueError(f"--dim and --data-points set the teacher-student problem, not "
                         f"--data {args.data}")
    if shape:
        return teacher_student(seed=args.data_seed, **shape)
    return load_dataset(args.data, seed=args.data_seed)


def _run_simulate(args):
    data = _simulate_data(args)
    snaps = [0, args.steps] if args.snapshot_every == 0 else \
        np.append(np.arange(0, args.steps + 1, args.snapshot_every), args.steps)
    result = simulate(data.inputs, data.targets, width=args.width, keep_prob=args.keep_prob,
                      master_lr=args.master_lr, steps=args.steps, variants=args.variants,
                      seed=args.seed, activation=args.activation, bias=args.bias,
                      loss=args.loss, batch_size=args.batch_size,
                      val_inputs=data.val_inputs, val_targets=data.val_targets,
                      loss_every=args.loss_every, snapshot_steps=snaps,
                      snapshot_neurons=args.snapshot_neurons, dtype=args.dtype,
                      progress=not args.no_progress)
    result.settings["data"] = data_label(args.data)
    path = result.save(args.out)        # args.out already ends with .npz
    print(f"data {result.settings['data']}, width {args.width}, seed {args.seed}, "
          f"{args.steps} steps (horizon T = {args.steps * args.master_lr:g})")
    for name in result.variants:
        print(f"{name:>10}: train loss {result.train_loss[name][-1]:.5g}, "
              f"validation loss {result.val_loss[name][-1]:.5g}")
    print(f"wrote {path}")


def _run_demo(args):
    start = time.perf_counter()
    out = args.out or default_output(Path("demo.png"), "--out")
    data = _simulate_data(args)
    snaps = np.arange(0, args.steps + 1, max(1, args.steps // 60))
    result = simulate(data.inputs, data.targets, width=args.width, keep_prob=DEMO_KEEP_PROB,
                      master_lr=DEMO_MASTER_LR, steps=args.steps, variants=DEMO_VARIANTS,
                      seed=args.seed, val_inputs=data.val_inputs,
                      val_targets=data.val_targets, snapshot_steps=snaps,
                      progress=not args.no_progress)
    plots.save_figure(plots.demo_figure(result), out)
    print(f"data {data_label(args.data)}, width {args.width}, seed {args.seed}, {args.steps} "
          f"steps (horizon T = {args.steps * DEMO_MASTER_LR:g}); wrote {out} in "
          f"{time.perf_counter() - start:.1f} s")


def _add_data_options(parser):
    """``--data`` and ``--data-seed`` of a command that simulates on a named data set."""
    parser.add_argument("--data", default="teacher-student", type=data_choice,
                        help=DATA_HELP)
    parser.add_argument("--data-seed", type=IntRange(0), default=0,
                        help="seed of the data (the teacher and points, or MNIST's split)")


def _run_warmup(args):
    dtypes = warmup.DTYPES if args.dtype == "all" else (args.dtype,)
    seconds = warmup.warmup(dtypes, jobs=args.jobs, progress=not args.no_progress)
    print(f"compiled the {', '.join(dtypes)} kernels into {warmup.cache_dir()} in "
          f"{seconds:.1f} s")


def _run_cache(args):
    info = warmup.cache_info()
    others = [str(folder) for folder in info["folders"] if folder != info["path"]]
    also = f" and {', '.join(others)}" if others else ""
    if args.action == "clear":
        print(f"removed {warmup.clear_cache() / 2 ** 20:.1f} MB of compiled kernels from "
              f"{info['path']}{also}")
        return
    print(f"kernel cache: {info['path']} (chosen {info['chosen_by']})")
    if others:
        print(f"also {', '.join(others)}: entries of kernels that another version of the "
              "package defined there (`cache clear` removes them)")
    print(f"{info['entries']} compiled kernels, {info['size'] / 2 ** 20:.1f} MB"
          + ("; caching is off (NUMBA_DISABLE_CACHE)" if info["disabled"] else ""))


def _add_cache_commands(sub):
    p = sub.add_parser("warmup", help="compile the Numba kernels ahead of the first run")
    p.add_argument("--dtype", default="float64", choices=(*warmup.DTYPES, "all"),
                   help="precision of the kernels to compile (default float64; float32 "
                        "kernels are compiled only for float32 runs)")
    p.add_argument("--jobs", type=IntRange(1), default=None,
                   help="processes compiling at once (default: the CPUs this process may use)")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    p.set_defaults(run=_run_warmup)
    p = sub.add_parser("cache", help="where the compiled kernels are cached; clear them")
    p.add_argument("action", choices=("info", "clear"),
                   help="info: the cache directory, entries and size; clear: delete them")
    p.set_defaults(run=_run_cache)


def _settings(cls, args):
    """Settings ``cls`` from the options of the same names."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                  if hasattr(args, f.name)})


def _sme_command(parser, stem, run, figure, summary, settings_class):
    """Add ``--seed`` and ``--out`` to an SME command; its handler runs, caches the result
    beside the PNG, draws and prints."""
    parser.add_argument("--seed", type=IntRange(0), default=0, help="root seed")
    parser.add_argument("-o", "--out", type=OutputFile("figure"), action=MakeDirectories,
                        help=f"figure file (default {stem}.png in the current directory); the "
                             "results are cached beside it as .npz")
    parser.add_argument("--no-progress", action="store_true", help="hide tqdm bars")

    def handler(args):
        start = time.perf_counter()
        if args.out is None:
            args.out = default_output(Path(f"{stem}.png"), "--out")
            default_output(args.out.with_suffix(".npz"), "--out")
        settings = _settings(settings_class, args)
        result = run(settings, progress=not args.no_progress)
        cache = results.save(result, args.out.with_suffix(".npz"))
        plots.save_figure(figure(result), args.out)
        print(run_line(settings))
        print("\n".join(summary(result)))
        print(f"wrote {args.out} and {cache} in {time.perf_counter() - start:.1f} s")
    parser.set_defaults(run=handler)


def _count_options(parser, defaults, **helps):
    """Add an integer option ≥ 1 per keyword ``field=help``: ``--field`` (dashes for
    underscores) with default ``defaults.field``; returns their actions by field."""
    return {field: parser.add_argument("--" + field.replace("_", "-"), type=IntRange(1),
                                       default=getattr(defaults, field), help=text)
            for field, text in helps.items()}


def _add_digits_run_args(parser, defaults):
    """The data and network options of ``sme`` and ``alignment``."""
    parser.add_argument("--data", default=defaults.data, choices=("digits", "mnist"),
                        help="MNIST pooled to 7x7, 10 classes (the bundled 5000 images, or "
                             "--mnist-images; the default with the data extra), or "
                             f"scikit-learn's 8x8 digits (default: {defaults.data})")
    parser.add_argument("--mnist-images", type=input_file,
                        help="local MNIST IDX image file (.gz ok) or .npz archive instead of "
                             "the bundled images")
    parser.add_argument("--mnist-labels", type=input_file,
                        help="MNIST IDX label file (not needed for .npz)")
    _count_options(parser, defaults, pool="digits average-pooling factor (2: 4x4 images)",
                   n_train="training samples n", n_test="test samples", width="hidden units m")
    parser.add_argument("--keep-prob", type=float, default=defaults.keep_prob,
                        help="keep probability p")
    parser.add_argument("--lr", type=float, default=defaults.lr, help="learning rate eta")
    _count_options(parser, defaults, steps="dropout steps N")
    parser.add_argument("--output-scale", default=defaults.output_scale, choices=OUTPUT_SCALES,
                        help="kappa")
    parser.add_argument("--activation", default=defaults.activation, help="activation sigma")


def _add_sme_commands(sub):
    loss = sme_experiments.LossCurvesSettings()
    p = sub.add_parser("sme", help="dropout vs SME vs GD on L_S loss curves -> PNG")
    _add_digits_run_args(p, loss)
    p.add_argument("--order", type=int, default=loss.order, choices=(1, 2), help="SME order")
    p.add_argument("--sde-step", type=float, default=None, help="EM step h (default eta)")
    counts = _count_options(p, loss, repeats="runs per noisy method",
                            loss_every="record the loss every this many steps")
    add_renamed(p, "--record-every", counts["loss_every"])
    add_renamed(p, "--trials", counts["repeats"])
    _sme_command(p, "sme_loss", sme_experiments.run_loss_curves,
                 FigureSet(plots.__name__, "sme_loss_figure"), sme_experiments.loss_summary,
                 sme_experiments.LossCurvesSettings)

    order = sme_experiments.WeakOrderSettings()
    p = sub.add_parser("sme-order", help="weak-error order of the SMEs -> PNG")
    p.add_argument("--lrs", type=ListOf(float), default=order.lrs, help="comma list of eta")
    p.add_argument("--keep-probs", type=ListOf(float), default=order.keep_probs,
                   help="comma list of p")
    p.add_argument("--time", type=float, default=order.time, help="comparison time T")
    p.add_argument("--sde-step", type=float, default=None, help="EM step h")
    counts = _count_options(p, order, repeats="runs per process and setting",
                            width="hidden units m", samples="synthetic samples n",
                            dim="synthetic input dimension d")
    add_renamed(p, "--runs", counts["repeats"])
    p.add_argument("--data", default=order.data, choices=("mnist", "synthetic"),
                   help="Gaussian points, or the first images of the bundled MNIST at 7x7 "
                        f"(10 classes; slow, see README) (default: {order.data})")
    p.add_argument("--no-extrapolate", dest="extrapolate", action="store_false",
                   help="skip the Richardson extrapolation of the EM step (3x cheaper, "
                        "O(h) bias)")
    _sme_command(p, "sme_order", sme_experiments.run_weak_order,
                 FigureSet(plots.__name__, "sme_order_figure"), sme_experiments.order_summary,
                 sme_experiments.WeakOrderSettings)

    align = sme_experiments.AlignmentSettings()
    p = sub.add_parser("alignment", help="Hessian-variance alignment over training -> PNG")
    _add_digits_run_args(p, align)
    _count_options(p, align, eval_every="measure the alignment every this many steps",
                   masks="masks for the empirical Sigma",
                   baseline_samples="random directions of the alignment baseline")
    _sme_command(p, "sme_alignment", sme_experiments.run_alignment,
                 FigureSet(plots.__name__, "sme_alignment_figure"),
                 sme_experiments.alignment_summary, sme_experiments.AlignmentSettings)


def parser():
    """The parser of every sub-command."""
    top, sub = build_parser(program("meanfield_dropout", "meanfield-dropout"),
                            "Simulate dropout on wide two-layer networks.")
    p = sub.add_parser("simulate", help="train coupled variants on the teacher-student task")
    p.add_argument("--width", type=IntRange(1), required=True, help="neurons n")
    p.add_argument("--keep-prob", type=float, default=1.0, help="keep probability q")
    p.add_argument("--master-lr", type=float, required=True, help="master learning rate tau")
    p.add_argument("--steps", type=IntRange(0), required=True, help="steps K (horizon T = K tau)")
    p.add_argument("--variants", type=ListOf(str, VARIANTS), default=["dropout"],
                   help=f"comma list of {list(VARIANTS)}")
    p.add_argument("--seed", type=IntRange(0), default=0,
                   help="seed of the initialisation and the masks")
    _add_data_options(p)
    p.add_argument("--dim", type=IntRange(1), default=None,
                   help="input dimension d of the teacher-student problem (default 20)")
    p.add_argument("--data-points", type=IntRange(1), default=None,
                   help="training points m of the teacher-student problem (default 500)")
    p.add_argument("--activation", default="relu", help="activation sigma")
    p.add_argument("--bias", action="store_true", help="give each neuron a bias")
    p.add_argument("--loss", default="square", choices=("square", "logistic"), help="loss")
    p.add_argument("--batch-size", type=IntRange(1), default=None,
                   help="minibatch B (full if unset)")
    p.add_argument("--loss-every", type=IntRange(1), default=1,
                   help="record the losses every this many steps")
    p.add_argument("--snapshot-every", type=IntRange(0), default=0,
                   help="store particles every this many steps (0: first and last only)")
    p.add_argument("--snapshot-neurons", type=IntRange(1), default=None,
                   help="keep only the first k neurons in snapshots")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"),
                   help="floating-point type of the particles")
    p.add_argument("-o", "--out", required=True, type=OutputFile(".npz"),
                   action=MakeDirectories,
                   help="result file (.npz is appended if missing; parent directories are "
                        "created)")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    p.set_defaults(run=_run_simulate)

    p = sub.add_parser("demo", help="small teacher-student comparison -> demo.png",
                       description=f"Train GD, dropout, RaM and PN+RaM ({', '.join(DEMO_VARIANTS)}"
                                   f") from one initialisation at master learning rate "
                                   f"{DEMO_MASTER_LR} and keep probability {DEMO_KEEP_PROB} "
                                   "and draw their losses and distances.")
    p.add_argument("--width", type=IntRange(1), default=1000, help="neurons n")
    p.add_argument("--steps", type=IntRange(1), default=300, help="steps K")
    p.add_argument("-o", "--out", type=OutputFile("figure"), action=MakeDirectories,
                   help="figure file (default demo.png in the current directory)")
    p.add_argument("--seed", type=IntRange(0), default=0,
                   help="seed of the initialisation and the masks")
    _add_data_options(p)
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    p.set_defaults(run=_run_demo)

    _add_sme_commands(sub)
    _add_cache_commands(sub)
    add_reproduce_command(sub, EXPERIMENTS, REPRODUCE_OPTIONS)
    return top


def main(argv=None):
    """Parse ``argv`` and run the chosen sub-command; returns the exit status."""
    return run_main(parser(), argv)
